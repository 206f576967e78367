//! The network primitives behind each WIT interface, one module per
//! interface: the protocol logic on tokio, with no wasmtime types. The glue
//! that implements the generated `Host` traits over them is the engine's
//! (`engine::host`): this floor imports nothing above it.

pub mod bytes;
pub mod dns;
pub mod gate;
pub mod http;
pub mod tcp;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

/// Limits and defaults shared by every primitive of one scan.
#[derive(Debug, Clone)]
pub struct NetSettings {
    /// Per-operation timeout when the plugin gives none (`--timeout`).
    pub timeout: Duration,
    /// Concurrency, per-host cap, rate and retries.
    pub limits: gate::Limits,
    /// Which name servers to ask, and whether to cache their answers.
    pub resolver: dns::ResolverSettings,
    /// TLS trust roots (`--ca-file`) and engine.
    pub tls: tls::TlsCore,
    /// The daemon's budget shared with its other scans, if any.
    pub budget: Option<Arc<gate::Budget>>,
    /// Where the scan's network counters go, when someone reads them while
    /// it runs (the daemon's progress events); else its gate's own.
    pub counters: Option<Arc<gate::NetStats>>,
}

/// The machine's cores, asked once: `available_parallelism` reads cgroup
/// files each time, which cost a tenth of a one-port scan's CPU per address.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}
