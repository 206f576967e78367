//! The DNS reference of the benchmarks (`bench/`): the least a scan of
//! names through hickory-resolver can do. Resolves the A records of every
//! name of a file with N queries in flight, through one resolver set up as
//! wscan sets up its own (the given server, UDP then TCP, a cache), and
//! prints one line per answer. No plugins, no scope, no output format: what
//! wscan's dns plugin is measured against.
//!
//! With `--pooled`, the resolver's UDP queries share wscan's pool of
//! sockets (`wscan::primitives::dns::pool`), as wscan's own do: the
//! difference between the two is what the pool is worth.
//!
//! `resolve_loop NAMES-FILE SERVER-ADDRESS [CONCURRENCY] [--pooled]`

use futures::StreamExt;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::{RuntimeProvider, TokioRuntimeProvider};
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{ConnectionProvider, Resolver};
use std::net::IpAddr;
use std::time::Duration;
use wscan::primitives::dns::pool::PooledProvider;

/// wscan's allocator (see `host/src/main.rs`), so the reference and wscan
/// differ in what they do, not in how they allocate.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let pooled = args.iter().any(|a| a == "--pooled");
    args.retain(|a| a != "--pooled");
    let usage = "usage: resolve_loop NAMES-FILE SERVER-ADDRESS [CONCURRENCY] [--pooled]";
    let names = std::fs::read_to_string(args.get(1).expect(usage)).expect("names file");
    let server: IpAddr = args.get(2).and_then(|a| a.parse().ok()).expect(usage);
    let concurrency: usize = args.get(3).map_or(1000, |c| c.parse().expect(usage));
    let answers = if pooled {
        resolve(PooledProvider::default(), &names, server, concurrency).await
    } else {
        resolve(TokioRuntimeProvider::default(), &names, server, concurrency).await
    };
    for line in answers {
        println!("{line}");
    }
}

/// Every name's first A record, through `provider`'s sockets.
async fn resolve<P>(provider: P, names: &str, server: IpAddr, concurrency: usize) -> Vec<String>
where
    P: RuntimeProvider + ConnectionProvider,
{
    let config = ResolverConfig::from_name_servers(vec![NameServerConfig::udp_and_tcp(server)]);
    let mut builder = Resolver::builder_with_config(config, provider);
    let options = builder.options_mut();
    options.timeout = Duration::from_secs(1);
    options.attempts = 2;
    options.cache_size = 16_384;
    options.use_hosts_file = ResolveHosts::Never;
    let resolver = builder.build().expect("resolver");

    futures::stream::iter(names.lines().filter(|l| !l.is_empty()))
        .map(|name| {
            let resolver = resolver.clone();
            async move {
                let mut fqdn = Name::from_ascii(name).ok()?;
                fqdn.set_fqdn(true);
                let lookup = resolver.lookup(fqdn, RecordType::A).await.ok()?;
                let first = lookup.answers().first()?;
                Some(format!("{name} A {}", first.data))
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(|a| async move { a })
        .collect()
        .await
}
