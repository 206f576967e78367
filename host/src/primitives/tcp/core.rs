//! TCP on tokio, with no knowledge of wasmtime: connect with a timeout and a
//! clear verdict, banner-sized reads, writes, and a many-port probe that
//! keeps the scan's whole concurrency budget busy.

use crate::primitives::gate::{Gate, NetStats, Pass};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex, mpsc, watch};

/// Why a TCP operation failed. Mirrors the WIT `error-code` cases that TCP
/// can produce; the glue (`engine::host::tcp`) converts them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// RST: closed port.
    #[error("connection refused")]
    Refused,
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// No route, ICMP unreachable.
    #[error("unreachable")]
    Unreachable,
    /// Reset mid-stream.
    #[error("connection reset")]
    Reset,
    /// Closed by this side before or during the operation.
    #[error("connection closed")]
    Closed,
    /// Anything else, with the OS's words.
    #[error("{0}")]
    Other(String),
}

impl From<io::Error> for NetError {
    fn from(e: io::Error) -> Self {
        use io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => NetError::Refused,
            TimedOut => NetError::Timeout,
            HostUnreachable | NetworkUnreachable => NetError::Unreachable,
            ConnectionReset | ConnectionAborted => NetError::Reset,
            BrokenPipe | NotConnected => NetError::Closed,
            _ => NetError::Other(e.to_string()),
        }
    }
}

/// The state of one probed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortState {
    /// Accepted.
    Open,
    /// Refused.
    Closed,
    /// No answer in time.
    Filtered,
    /// No route.
    Unreachable,
}

/// The scan's TCP engine: one per scan, shared by every plugin call.
#[derive(Debug, Clone)]
pub struct TcpCore {
    /// Concurrency, host cap, rate, retries and counters.
    gate: Arc<Gate>,
}

impl TcpCore {
    /// A TCP engine whose operations pass `gate`.
    pub fn new(gate: Arc<Gate>) -> Self {
        TcpCore { gate }
    }

    /// The gate this engine's operations pass.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    /// Connect to `addr` within `timeout`.
    pub async fn connect(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<TcpConnection, NetError> {
        let stream = self.connect_stream(addr, timeout).await?;
        TcpConnection::new(stream, addr)
    }

    /// A share of the scan's budget of operations in flight towards `ip`,
    /// for primitives that manage their own connections (HTTP); held until
    /// dropped.
    pub async fn permit(&self, ip: IpAddr) -> Pass {
        let pass = self.gate.enter(Some(ip)).await;
        NetStats::bump(&self.gate.stats().connects);
        pass
    }

    /// Connect to `addr` within `timeout` and hand over the raw stream, for
    /// the primitives that speak a protocol over TCP (TLS, HTTP). The
    /// connect counts against the scan's budget like any other, and a
    /// timeout is retried as `--retries` says.
    pub async fn connect_stream(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<TcpStream, NetError> {
        let mut attempt = 0;
        loop {
            let result = {
                let _pass = self.permit(addr.ip()).await;
                connect_once(addr, timeout).await
            };
            match result {
                Err(NetError::Timeout) => {
                    NetStats::bump(&self.gate.stats().timeouts);
                    if attempt >= self.gate.limits().retries {
                        return Err(NetError::Timeout);
                    }
                    attempt += 1;
                    NetStats::bump(&self.gate.stats().retries);
                    tokio::time::sleep(Gate::backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Probe every port in `ports` on each of `ips`, port by port across
    /// the addresses (so a limit per host never idles the sweep); results
    /// arrive on the returned channel as they are known. Dropping the
    /// receiver stops the probe.
    pub fn probe(
        &self,
        ips: Vec<IpAddr>,
        ports: Vec<(u16, u16)>,
        timeout: Duration,
    ) -> mpsc::UnboundedReceiver<(IpAddr, u16, PortState)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let ports: Vec<u16> = ports.into_iter().flat_map(|(a, b)| a..=b).collect();
        let total = ports.len().saturating_mul(ips.len());
        let sweep = Arc::new((ips, ports));
        let next = Arc::new(AtomicUsize::new(0));
        // Spread the sweep over one task per core so connect syscalls and
        // completions do not all queue on a single worker thread; each task
        // keeps its share of the concurrency budget busy.
        let workers = crate::primitives::cores().min(total.max(1));
        let limits = self.gate.limits();
        let budget = limits
            .host_concurrency
            .map_or(limits.concurrency, |h| h.min(limits.concurrency));
        let per_worker = (budget / workers).max(1);
        for _ in 0..workers {
            let (tx, sweep, next, core) = (tx.clone(), sweep.clone(), next.clone(), self.clone());
            tokio::spawn(async move {
                let (ips, ports) = &*sweep;
                let mut in_flight = futures::stream::FuturesUnordered::new();
                loop {
                    while in_flight.len() < per_worker {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            break;
                        }
                        let (ip, port) = (ips[i % ips.len()], ports[i / ips.len()]);
                        let core = core.clone();
                        in_flight.push(async move {
                            let state = core.probe_port(SocketAddr::new(ip, port), timeout).await;
                            (ip, port, state)
                        });
                    }
                    match futures::StreamExt::next(&mut in_flight).await {
                        Some(result) => {
                            if tx.send(result).is_err() {
                                return; // the plugin dropped the probe
                            }
                        }
                        None => return,
                    }
                }
            });
        }
        rx
    }

    /// One port of a probe: connect (retrying a timeout as `--retries`
    /// says), classify, count, and close with a reset so the sweep leaves
    /// no TIME_WAIT sockets behind.
    async fn probe_port(&self, addr: SocketAddr, timeout: Duration) -> PortState {
        let stats = self.gate.stats();
        let state = match self.connect_stream_probing(addr, timeout).await {
            Ok(stream) => {
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                PortState::Open
            }
            Err(NetError::Refused) => PortState::Closed,
            Err(NetError::Unreachable) => PortState::Unreachable,
            Err(_) => PortState::Filtered,
        };
        NetStats::bump(match state {
            PortState::Open => &stats.open,
            PortState::Closed => &stats.closed,
            PortState::Filtered => &stats.filtered,
            PortState::Unreachable => &stats.unreachable,
        });
        state
    }

    /// [`Self::connect_stream`], except that running out of file
    /// descriptors (or another local failure) is the scan's problem, not
    /// the port's: back off briefly and try again instead of reporting a
    /// state that was not observed.
    async fn connect_stream_probing(
        &self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<TcpStream, NetError> {
        let mut attempts = 0;
        loop {
            match self.connect_stream(addr, timeout).await {
                Err(NetError::Other(e)) if attempts < 20 => {
                    attempts += 1;
                    tracing::debug!(%addr, error = %e, "probe connect failed, retrying");
                    tokio::time::sleep(Duration::from_millis(10 * attempts)).await;
                }
                Err(NetError::Other(e)) => {
                    tracing::warn!(%addr, error = %e, "probe connect kept failing; reporting the port as filtered");
                    return Err(NetError::Other(e));
                }
                other => return other,
            }
        }
    }
}

async fn connect_once(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, NetError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    let stream = match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Err(_) => return Err(NetError::Timeout),
        Ok(result) => result?,
    };
    // On loopback a connect to a port in the ephemeral range can connect to
    // itself (TCP simultaneous open). Nothing listens there: call it closed.
    if stream.local_addr()? == addr {
        return Err(NetError::Refused);
    }
    Ok(stream)
}

/// An established connection, shared between the plugin's pending reads
/// and writes.
#[derive(Debug, Clone)]
pub struct TcpConnection {
    peer: SocketAddr,
    reader: Arc<Mutex<OwnedReadHalf>>,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    closed: watch::Sender<bool>,
}

impl TcpConnection {
    fn new(stream: TcpStream, peer: SocketAddr) -> Result<Self, NetError> {
        let (r, w) = stream.into_split();
        Ok(TcpConnection {
            peer,
            reader: Arc::new(Mutex::new(r)),
            writer: Arc::new(Mutex::new(w)),
            closed: watch::Sender::new(false),
        })
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Mark the connection closed: pending and later operations fail with
    /// [`NetError::Closed`]; the socket goes when the last one lets go.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    async fn until_closed(mut closed: watch::Receiver<bool>) {
        let _ = closed.wait_for(|c| *c).await;
    }

    /// Read up to `max` bytes as soon as any arrive; empty at end of stream.
    pub async fn read(&self, max: usize, timeout: Duration) -> Result<Vec<u8>, NetError> {
        let closed = self.closed.subscribe();
        if *closed.borrow() {
            return Err(NetError::Closed);
        }
        let reader = self.reader.clone();
        let read = async move {
            let mut reader = reader.lock().await;
            let mut buf = vec![0u8; max];
            let n = reader.read(&mut buf).await?;
            buf.truncate(n);
            Ok::<_, NetError>(buf)
        };
        tokio::select! {
            r = tokio::time::timeout(timeout, read) => r.map_err(|_| NetError::Timeout)?,
            _ = Self::until_closed(closed) => Err(NetError::Closed),
        }
    }

    /// Write all of `data`.
    pub async fn write(&self, data: Vec<u8>, timeout: Duration) -> Result<u64, NetError> {
        let closed = self.closed.subscribe();
        if *closed.borrow() {
            return Err(NetError::Closed);
        }
        let writer = self.writer.clone();
        let write = async move {
            let mut writer = writer.lock().await;
            writer.write_all(&data).await?;
            writer.flush().await?;
            Ok::<_, NetError>(data.len() as u64)
        };
        tokio::select! {
            r = tokio::time::timeout(timeout, write) => r.map_err(|_| NetError::Timeout)?,
            _ = Self::until_closed(closed) => Err(NetError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::gate::Limits;
    use tokio::net::TcpListener;

    fn core(concurrency: usize) -> TcpCore {
        TcpCore::new(Gate::new(Limits {
            concurrency,
            ..Limits::default()
        }))
    }

    async fn closed_port() -> SocketAddr {
        // Bind then drop: nothing listens there any more.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    }

    #[tokio::test]
    async fn connect_tells_open_from_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        let core = core(8);
        let conn = core.connect(open, Duration::from_secs(2)).await.unwrap();
        assert_eq!(conn.peer(), open);
        let closed = closed_port().await;
        assert_eq!(
            core.connect(closed, Duration::from_secs(2))
                .await
                .unwrap_err(),
            NetError::Refused
        );
    }

    #[tokio::test]
    async fn read_returns_banner_then_end_of_stream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"SSH-2.0-test\r\n").await.unwrap();
        });
        let conn = core(1).connect(addr, Duration::from_secs(2)).await.unwrap();
        assert_eq!(
            conn.read(512, Duration::from_secs(2)).await.unwrap(),
            b"SSH-2.0-test\r\n"
        );
        assert_eq!(conn.read(512, Duration::from_secs(2)).await.unwrap(), b"");
    }

    #[tokio::test]
    async fn silent_peer_times_out_and_close_wakes_readers() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conn = core(1).connect(addr, Duration::from_secs(2)).await.unwrap();
        let _accepted = listener.accept().await.unwrap();
        assert_eq!(
            conn.read(16, Duration::from_millis(50)).await.unwrap_err(),
            NetError::Timeout
        );
        let pending = {
            let conn = conn.clone();
            tokio::spawn(async move { conn.read(16, Duration::from_secs(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        conn.close();
        assert_eq!(pending.await.unwrap().unwrap_err(), NetError::Closed);
        assert_eq!(
            conn.write(b"x".to_vec(), Duration::from_secs(1))
                .await
                .unwrap_err(),
            NetError::Closed
        );
    }

    #[tokio::test]
    async fn probe_reports_every_port_of_every_address_once() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = closed_port().await.port();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let mut rx = core(4).probe(
            vec![a, b],
            vec![(open, open), (closed, closed)],
            Duration::from_secs(2),
        );
        let mut got = Vec::new();
        while let Some(r) = rx.recv().await {
            got.push(r);
        }
        got.sort();
        // The listener is bound to 127.0.0.1 alone: the same port on
        // 127.0.0.2 is closed.
        let mut want = vec![
            (a, open, PortState::Open),
            (a, closed, PortState::Closed),
            (b, open, PortState::Closed),
            (b, closed, PortState::Closed),
        ];
        want.sort();
        assert_eq!(got, want);
    }
}
