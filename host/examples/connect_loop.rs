//! The physical-limit reference of the benchmarks (`bench/`): the least a
//! tokio connect scan can do. Connects to every port of a range on every
//! address of a block with N in flight, spread over one task per core as
//! wscan's sweep is, closes each with a reset, and prints the open ones
//! (`PORT/tcp open`, after `ADDRESS` when the block has more than one). No
//! plugins, no scope, no output format: what wscan's port plugin is
//! measured against.
//!
//! `connect_loop ADDRESS[/PREFIX] FIRST-LAST [CONCURRENCY] [TIMEOUT-MS]`

use futures::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// wscan's allocator (see `host/src/main.rs`), so the reference and wscan
/// differ in what they do, not in how they allocate.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: connect_loop ADDRESS[/PREFIX] FIRST-LAST [CONCURRENCY] [TIMEOUT-MS]";
    let block: ipnet::IpNet = args
        .get(1)
        .and_then(|a| {
            a.parse()
                .ok()
                .or_else(|| a.parse::<IpAddr>().ok().map(Into::into))
        })
        .expect(usage);
    let ips: Arc<Vec<IpAddr>> = Arc::new(block.hosts().collect());
    let single = ips.len() == 1;
    let (first, last) = args
        .get(2)
        .and_then(|r| r.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
        .expect(usage);
    let concurrency: usize = args.get(3).map_or(1000, |c| c.parse().expect(usage));
    let timeout = Duration::from_millis(args.get(4).map_or(1000, |t| t.parse().expect(usage)));

    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Port by port across the addresses, as wscan's probe goes.
    let ports = u64::from(last - first) + 1;
    let total = ports * ips.len() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (next, ips) = (next.clone(), ips.clone());
        tasks.push(tokio::spawn(async move {
            let targets = futures::stream::iter(std::iter::from_fn(|| {
                let i = next.fetch_add(1, Ordering::Relaxed);
                (i < total).then(|| {
                    let n = ips.len() as u64;
                    SocketAddr::new(ips[(i % n) as usize], first + (i / n) as u16)
                })
            }));
            targets
                .map(|addr| async move {
                    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await
                    {
                        Ok(Ok(stream)) if stream.local_addr().ok() != Some(addr) => {
                            let _ =
                                socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                            Some(addr)
                        }
                        _ => None,
                    }
                })
                .buffer_unordered((concurrency / workers).max(1))
                .filter_map(|a| async move { a })
                .collect::<Vec<SocketAddr>>()
                .await
        }));
    }
    let mut open = Vec::new();
    for task in tasks {
        open.extend(task.await.expect("worker"));
    }
    open.sort_unstable();
    for addr in open {
        if single {
            println!("{}/tcp open", addr.port());
        } else {
            println!("{} {}/tcp open", addr.ip(), addr.port());
        }
    }
}
