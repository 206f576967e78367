//! The `wscan:plugin/tcp` interface: connects, reads, writes and probes.

pub mod core;
pub mod host;

pub use self::core::{NetError, PortState, TcpCore};
pub use host::{ConnectionHandle, FutureBytes, FutureConnection, FutureWritten, PortProbe};
