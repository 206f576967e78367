//! The physical-limit reference of the benchmarks (`bench/`): the least a
//! tokio connect scan can do. Connects to every port of a range with N in
//! flight, spread over one task per core as wscan's sweep is, closes each
//! with a reset, and prints the open ones. No plugins, no scope, no output
//! format: what wscan's port plugin is measured against.
//!
//! `connect_loop ADDRESS FIRST-LAST [CONCURRENCY] [TIMEOUT-MS]`

use futures::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
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

    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = Arc::new(AtomicU32::new(u32::from(first)));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let ports = futures::stream::iter(std::iter::from_fn(|| {
                let port = next.fetch_add(1, Ordering::Relaxed);
                (port <= u32::from(last)).then_some(port as u16)
            }));
            ports
                .map(|port| async move {
                    let addr = SocketAddr::new(ip, port);
                    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await
                    {
                        Ok(Ok(stream)) if stream.local_addr().ok() != Some(addr) => {
                            let _ =
                                socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                            Some(port)
                        }
                        _ => None,
                    }
                })
                .buffer_unordered((concurrency / workers).max(1))
                .filter_map(|p| async move { p })
                .collect::<Vec<u16>>()
                .await
        }));
    }
    let mut open = Vec::new();
    for task in tasks {
        open.extend(task.await.expect("worker"));
    }
    open.sort_unstable();
    for port in open {
        println!("{port}/tcp open");
    }
}
