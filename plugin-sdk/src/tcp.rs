//! TCP through the host: connects, reads, writes and whole-port probes.
//!
//! Each call starts the operation on the host at once and returns a Rust
//! future; nothing blocks the plugin until it is awaited.

use crate::bindings::wscan::plugin::tcp as raw;
use crate::convert::{from_ip, to_ip};
use crate::wait::ready;
use crate::{ErrorCode, PortRange};
use std::cell::RefCell;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use raw::PortState;

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
    Ok(Connection {
        inner,
        unread: RefCell::default(),
    })
}

/// An open TCP connection; dropping it closes the socket.
pub struct Connection {
    inner: raw::Connection,
    /// Bytes read past a delimiter by [`Connection::read_until`], handed
    /// out first by the next read.
    unread: RefCell<Vec<u8>>,
}

/// The end of the first `delimiter` in `buffer`, if it holds one.
fn delimited(buffer: &[u8], delimiter: &[u8]) -> Option<usize> {
    if delimiter.is_empty() {
        return Some(0);
    }
    buffer
        .windows(delimiter.len())
        .position(|w| w == delimiter)
        .map(|at| at + delimiter.len())
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
        {
            let mut unread = self.unread.borrow_mut();
            if !unread.is_empty() && max_bytes > 0 {
                let take = unread.len().min(max_bytes as usize);
                return Ok(unread.drain(..take).collect());
            }
        }
        let future = self.inner.read(max_bytes, millis(timeout));
        ready(future.subscribe(), || future.get()).await
    }

    /// Read until `delimiter` has arrived and return everything up to and
    /// including it (what came after it is kept for the next read). Ends
    /// early, with what came, when the peer closes or `max_bytes` arrived
    /// (then the first `max_bytes`); `Err(Timeout)` when `timeout` (for the
    /// whole read; `None`: the scan's `--timeout` for each wait) passes
    /// first, keeping what came for the next read.
    pub async fn read_until(
        &self,
        delimiter: &[u8],
        max_bytes: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, ErrorCode> {
        let deadline = timeout.map(|t| Instant::now() + t);
        // What came stays in `unread` between reads (never in a local
        // across an await), so a caller that drops this future loses
        // nothing; each search starts where the last one could not match.
        let mut searched: usize = 0;
        loop {
            {
                let mut unread = self.unread.borrow_mut();
                let window = unread.len().min(max_bytes);
                // (Another task may have read from this connection since.)
                let from = searched
                    .saturating_sub(delimiter.len().saturating_sub(1))
                    .min(window);
                if let Some(end) = delimited(&unread[from..window], delimiter) {
                    return Ok(unread.drain(..from + end).collect());
                }
                if unread.len() >= max_bytes {
                    return Ok(unread.drain(..max_bytes).collect());
                }
                searched = window;
            }
            let left = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(ErrorCode::Timeout),
                },
                None => None,
            };
            let want = max_bytes - self.unread.borrow().len();
            let want = u32::try_from(want).unwrap_or(u32::MAX).min(1 << 20);
            let future = self.inner.read(want, millis(left));
            let bytes = ready(future.subscribe(), || future.get()).await?;
            if bytes.is_empty() {
                // End of stream: what came is the answer.
                return Ok(std::mem::take(&mut *self.unread.borrow_mut()));
            }
            self.unread.borrow_mut().extend_from_slice(&bytes);
        }
    }

    /// Read one line (up to `\n`, at most `max_bytes`), as text without its
    /// line ending; see [`Connection::read_until`] for the rest.
    pub async fn read_line(
        &self,
        max_bytes: usize,
        timeout: Option<Duration>,
    ) -> Result<String, ErrorCode> {
        let bytes = self.read_until(b"\n", max_bytes, timeout).await?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(text.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Send `request`, then read the reply up to and including `until`
    /// (such as `b"\r\n"`), at most `max_bytes`, all within `timeout`:
    /// the request/response step of most TCP checks.
    pub async fn exchange(
        &self,
        request: &[u8],
        until: &[u8],
        max_bytes: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, ErrorCode> {
        let started = Instant::now();
        self.write(request, timeout).await?;
        let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
        self.read_until(until, max_bytes, left).await
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

/// A running sweep of ports; see [`probe`] and [`probe_many`].
pub struct Probe {
    inner: raw::PortProbe,
}

/// One port's outcome in a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    /// The address probed.
    pub ip: IpAddr,
    /// The port probed.
    pub port: u16,
    /// What was learned.
    pub state: PortState,
}

impl Probe {
    /// The next batch of results, as they come in; `None` when every port
    /// has been reported.
    pub async fn next(&mut self) -> Option<Vec<ProbeResult>> {
        let pollable = wstd::runtime::AsyncPollable::new(self.inner.subscribe());
        loop {
            match self.inner.next() {
                None => return None,
                Some(batch) if !batch.is_empty() => {
                    return Some(
                        batch
                            .into_iter()
                            .map(|r| ProbeResult {
                                ip: to_ip(r.address),
                                port: r.port,
                                state: r.state,
                            })
                            .collect(),
                    );
                }
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
    probe_many(&[ip], ports, timeout)
}

/// Connect-probe every port in `ports` on each of `ips` in one sweep: what
/// a plugin that scans a batch of addresses together uses
/// ([`Plugin::scan_batch`](crate::Plugin::scan_batch)). Errors as
/// [`probe`]; one address out of scope denies the whole sweep.
pub fn probe_many(
    ips: &[IpAddr],
    ports: &[PortRange],
    timeout: Option<Duration>,
) -> Result<Probe, ErrorCode> {
    let addresses: Vec<_> = ips.iter().map(|&ip| from_ip(ip)).collect();
    let inner = raw::probe(&addresses, ports, millis(timeout))?;
    Ok(Probe { inner })
}

#[cfg(test)]
mod tests {
    use super::delimited;

    #[test]
    fn delimiters_are_found_with_their_end() {
        assert_eq!(delimited(b"+OK\r\nrest", b"\r\n"), Some(5));
        assert_eq!(delimited(b"+OK\r", b"\r\n"), None);
        assert_eq!(delimited(b"", b"\n"), None);
        assert_eq!(delimited(b"abc", b""), Some(0));
    }
}
