//! The `wscan:plugin/tcp` interface: connects, reads, writes and probes.

pub mod core;

pub use self::core::{NetError, PortState, TcpCore};
