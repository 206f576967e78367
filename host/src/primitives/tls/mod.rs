//! The `wscan:plugin/tls` interface: handshakes and certificate verdicts.

pub mod core;

pub use self::core::{
    CertInfo, Handshake, HandshakeRequest, Problem, TlsCore, TlsError, TlsSetupError,
};
