//! The wasmtime glue: the generated `Host` traits of each WIT interface,
//! implemented over the wasmtime-free primitives (`crate::primitives`), one
//! module per interface, beside the bindings they implement (as
//! wasmtime-wasi keeps `p2/host/*.rs`).

pub mod dns;
pub mod http;
pub mod log;
pub mod pending;
pub mod report;
pub mod tcp;
pub mod tls;

pub use dns::FutureRecords;
pub use http::FutureResponse;
pub use tcp::{ConnectionHandle, FutureBytes, FutureConnection, FutureWritten, PortProbe};
pub use tls::FutureHandshake;
