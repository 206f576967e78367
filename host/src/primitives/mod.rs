//! The host side of each WIT interface, one module per interface.
//!
//! Each module splits the protocol logic (`core`: tokio, no wasmtime types)
//! from the glue that implements the generated `Host` traits (`host`).

pub mod dns;
pub mod gate;
pub mod http;
pub mod log;
pub mod pending;
pub mod report;
pub mod tcp;
pub mod tls;

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
}
