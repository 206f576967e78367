//! # wscan
//!
//! A network scanner whose scan types are WebAssembly components. The host
//! (this crate) owns every socket and runs it on tokio; plugins are
//! `wasm32-wasip2` components implementing the `wscan:plugin` world (see
//! `wit/`), which reach the network only through the host's primitives.
//!
//! Layout, one job per module:
//! - [`cli`]: raw flags, resolved into a [`scheduler::ScanSpec`];
//! - [`targets`]: target and port-spec parsing, lazy expansion;
//! - [`engine`]: wasmtime engine, plugin loading, per-call limits;
//! - [`primitives`]: the host side of each WIT interface;
//! - [`scheduler`]: turns targets into plugin calls and routes subjects;
//! - [`output`]: the [`output::Sink`] trait and its writers;
//! - [`store`]: the SQLite result store and its journal of completed units;
//! - [`diff`]: what changed between two stored scans;
//! - [`scope`]: the one policy every outbound operation is checked against;
//! - [`serve`]: `wscan serve`, the HTTP API over the same engine and store;
//! - [`cluster`]: distributed scans over Redis streams: the coordinator
//!   (`wscan scan --redis`) and `wscan worker`.

pub mod cli;
pub mod cluster;
pub mod diff;
pub mod engine;
pub mod metrics;
pub mod model;
pub mod output;
pub mod primitives;
pub mod scheduler;
pub mod scope;
pub mod serve;
pub mod store;
pub mod targets;
