//! The physical-limit reference of the benchmarks (`bench/`): the least a
//! tokio connect scan can do. Connects to every port of a range with N in
//! flight, closes each with a reset, and prints the open ones. No plugins,
//! no scope, no output format: what wscan's port plugin is measured against.
//!
//! `connect_loop ADDRESS FIRST-LAST [CONCURRENCY] [TIMEOUT-MS]`

use futures::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: connect_loop ADDRESS FIRST-LAST [CONCURRENCY] [TIMEOUT-MS]";
    let ip: IpAddr = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
    let (first, last) = args
        .get(2)
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
        .expect(usage);
    let concurrency: usize = args.get(3).map_or(1000, |c| c.parse().expect(usage));
    let timeout = Duration::from_millis(args.get(4).map_or(1000, |t| t.parse().expect(usage)));

    let mut open: Vec<u16> = futures::stream::iter(first..=last)
        .map(|port| async move {
            let addr = SocketAddr::new(ip, port);
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(stream)) if stream.local_addr().ok() != Some(addr) => {
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    Some(port)
                }
                _ => None,
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(|p| async move { p })
        .collect()
        .await;
    open.sort_unstable();
    for port in open {
        println!("{port}/tcp open");
    }
}
