//! TLS handshakes through the host (rustls), with the certificate chain and
//! the host's verdict on it. A bad certificate never fails the handshake:
//! it is listed in [`HandshakeInfo::problems`].

use crate::bindings::wscan::plugin::tls as raw;
use crate::convert::from_ip;
use crate::wait::ready;
use crate::{ErrorCode, Service};
use std::net::IpAddr;
use std::time::Duration;

pub use raw::{CertProblem, Certificate, HandshakeInfo, HandshakeOptions};

impl HandshakeOptions {
    /// No SNI (the certificate is judged against the address), no ALPN,
    /// the scan's timeout.
    pub fn new() -> Self {
        HandshakeOptions {
            server_name: None,
            alpn: Vec::new(),
            timeout_ms: None,
        }
    }

    /// The options for `service`: its host name, when it was reached
    /// through one, as SNI (else none), the scan's timeout.
    pub fn for_service(service: &Service) -> Self {
        match &service.host {
            Some(name) => Self::new().server_name(name.clone()),
            None => Self::new(),
        }
    }

    /// Send `name` as SNI and judge the certificate against it.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Offer these ALPN protocols (`h2`, `http/1.1`).
    pub fn alpn(mut self, protocols: &[&str]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_string()).collect();
        self
    }

    /// Bound the connect and the handshake, each.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        self
    }
}

impl Default for HandshakeOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Connect to `ip`:`port` and shake hands.
///
/// Errors: `connection-refused`, `timeout`, `unreachable`,
/// `connection-reset`, `tls-failure` (no common version or suite, or not
/// TLS at all), `access-denied` (out of scope, or no `tls` capability),
/// `invalid-argument` (a malformed server name).
pub async fn handshake(
    ip: IpAddr,
    port: u16,
    options: &HandshakeOptions,
) -> Result<HandshakeInfo, ErrorCode> {
    let future = raw::handshake(from_ip(ip), port, options);
    ready(future.subscribe(), || future.get()).await
}

impl CertProblem {
    /// The problem's name in findings: `expired`, `self-signed`...
    pub fn as_str(self) -> &'static str {
        match self {
            CertProblem::Expired => "expired",
            CertProblem::NotYetValid => "not-yet-valid",
            CertProblem::SelfSigned => "self-signed",
            CertProblem::UnknownIssuer => "unknown-issuer",
            CertProblem::NameMismatch => "name-mismatch",
            CertProblem::Invalid => "invalid",
        }
    }
}
