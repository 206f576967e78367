//! The `wscan:plugin/dns` interface: forward and reverse queries through the
//! scan's resolver.

pub mod cache;
pub mod core;
pub mod direct;
pub mod pool;

pub use self::core::{Chain, Data, DnsCore, DnsError, Kind, Record, ResolverSettings};
