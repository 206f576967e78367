//! HTTP through the host's pooled client (reqwest). The host never follows
//! redirects: a plugin follows them itself, so that every hop is checked
//! against the scan's scope.

use crate::ErrorCode;
use crate::bindings::wscan::plugin::http as raw;
use crate::convert::{from_ip, to_ip};
use crate::wait::ready;
use std::net::IpAddr;
use std::time::Duration;

pub use raw::{Request, Response};

impl Request {
    /// A `GET` of `url`, sent to the address the URL names (or, for a host
    /// name, the address the scan's resolver gives), certificates unchecked.
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            connect_to: None,
            max_body_bytes: None,
            timeout_ms: None,
            verify_tls: false,
        }
    }

    /// Use `method` (`HEAD`, `POST`...).
    pub fn method(mut self, method: &str) -> Self {
        self.method = method.to_string();
        self
    }

    /// Connect to `ip`, whatever the URL's host; the host name still goes in
    /// `Host` and SNI.
    pub fn connect_to(mut self, ip: IpAddr) -> Self {
        self.connect_to = Some(from_ip(ip));
        self
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Send a body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Keep at most `bytes` of the response body.
    pub fn max_body(mut self, bytes: u32) -> Self {
        self.max_body_bytes = Some(bytes);
        self
    }

    /// Bound the whole request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        self
    }

    /// Check the server's certificate (a bad one is `tls-failure`).
    pub fn verify_tls(mut self, verify: bool) -> Self {
        self.verify_tls = verify;
        self
    }
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The address and port the request reached.
    pub fn remote(&self) -> (IpAddr, u16) {
        (to_ip(self.remote.0), self.remote.1)
    }
}

/// Send `request`.
///
/// Errors: `connection-refused`, `timeout`, `unreachable`,
/// `connection-reset`, `tls-failure`, `http-protocol`, `access-denied` (out
/// of scope, or no `http` capability), `invalid-argument`.
pub async fn send(request: &Request) -> Result<Response, ErrorCode> {
    let future = raw::send(request);
    ready(future.subscribe(), || future.get()).await
}
