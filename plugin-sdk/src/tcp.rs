//! TCP through the host: connects, reads, writes and whole-port probes.
//!
//! Each call starts the operation on the host at once and returns a Rust
//! future; nothing blocks the plugin until it is awaited.

use crate::bindings::wscan::plugin::tcp as raw;
use crate::convert::{from_ip, to_ip};
use crate::wait::ready;
use crate::{ErrorCode, PortRange};
use std::net::IpAddr;
use std::time::Duration;

pub use raw::{PortState, ProbeResult};

fn millis(timeout: Option<Duration>) -> Option<u32> {
    timeout.map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX))
}

/// Connect to `ip`:`port`. `timeout` defaults to the scan's `--timeout`.
///
/// Errors: `connection-refused` (closed), `timeout` (filtered), `unreachable`,
/// `access-denied` (out of scope), `limit-exceeded`.
pub async fn connect(
    ip: IpAddr,
    port: u16,
    timeout: Option<Duration>,
) -> Result<Connection, ErrorCode> {
    let future = raw::connect(from_ip(ip), port, millis(timeout));
    let inner = ready(future.subscribe(), || future.get()).await?;
    Ok(Connection { inner })
}

/// An open TCP connection; dropping it closes the socket.
pub struct Connection {
    inner: raw::Connection,
}

impl Connection {
    /// The peer's address and port.
    pub fn peer(&self) -> (IpAddr, u16) {
        let (ip, port) = self.inner.peer();
        (to_ip(ip), port)
    }

    /// Read up to `max_bytes` as soon as any arrive. An empty vector means
    /// the peer closed the stream; `Err(Timeout)` means nothing came in time.
    pub async fn read(
        &self,
        max_bytes: u32,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, ErrorCode> {
        let future = self.inner.read(max_bytes, millis(timeout));
        ready(future.subscribe(), || future.get()).await
    }

    /// Write all of `data`; returns the number of bytes written.
    pub async fn write(&self, data: &[u8], timeout: Option<Duration>) -> Result<u64, ErrorCode> {
        let future = self.inner.write(data, millis(timeout));
        ready(future.subscribe(), || future.get()).await
    }

    /// Close the connection now.
    pub fn close(self) {
        self.inner.close();
    }
}

/// A running sweep of ports on one address; see [`probe`].
pub struct Probe {
    inner: raw::PortProbe,
}

impl Probe {
    /// The next batch of results, as they come in; `None` when every port
    /// has been reported.
    pub async fn next(&mut self) -> Option<Vec<ProbeResult>> {
        let pollable = wstd::runtime::AsyncPollable::new(self.inner.subscribe());
        loop {
            match self.inner.next() {
                None => return None,
                Some(batch) if !batch.is_empty() => return Some(batch),
                Some(_) => pollable.wait_for().await,
            }
        }
    }
}

/// Connect-probe every port in `ports` on `ip`, with as many connects in
/// flight as the scan allows. `timeout` defaults to the scan's `--timeout`.
///
/// Errors: `access-denied` (out of scope), `invalid-argument`,
/// `limit-exceeded`.
pub fn probe(
    ip: IpAddr,
    ports: &[PortRange],
    timeout: Option<Duration>,
) -> Result<Probe, ErrorCode> {
    let inner = raw::probe(from_ip(ip), ports, millis(timeout))?;
    Ok(Probe { inner })
}
