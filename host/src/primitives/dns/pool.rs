//! UDP sockets shared by a scan's DNS queries.
//!
//! hickory-resolver binds a fresh UDP socket on a random port for every
//! query, and closes it after the answer: on a scan of many names the
//! socket calls, not the queries, are most of the cost (a resolve loop
//! makes about 10,000 queries a second against a local server that
//! answers over 100,000). [`PooledProvider`] is hickory's Tokio runtime
//! with one change: the socket a query gets is a [`PooledUdp`], a handle
//! on one of a few long-lived sockets, and answers are handed to the query
//! they answer by their message id and source, as a stub resolver with
//! several queries in flight on one port does (dnsperf, massdns).
//!
//! The cost is entropy: a forged answer must match the id, the server's
//! address and port, and one of [`SOCKETS`] source ports, not a source
//! port of its own. hickory checks the rest of the answer (the question it
//! carries) as before, and TCP is untouched.

use hickory_resolver::net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_resolver::net::runtime::{
    DnsUdpSocket, RuntimeProvider, TokioHandle, TokioRuntimeProvider, TokioTime,
};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::OnceCell;
use tokio::task::AbortHandle;

/// Sockets of each address family. Many queries share one; an id used
/// twice at once to one server goes to another.
pub const SOCKETS: usize = 32;

/// Answers kept for a query that has not read them yet (a duplicate, a
/// late answer to a retry).
const MAX_QUEUED: usize = 4;

/// The largest datagram read: UDP's own limit, so no answer is cut.
const MAX_DATAGRAM: usize = 65_535;

/// hickory's Tokio runtime, with UDP queries on pooled sockets.
#[derive(Clone, Default)]
pub struct PooledProvider {
    tokio: TokioRuntimeProvider,
    pool: Arc<Pool>,
}

/// The sockets of each family, bound on first use.
#[derive(Default)]
struct Pool {
    v4: OnceCell<Arc<Sockets>>,
    v6: OnceCell<Arc<Sockets>>,
}

/// What a query is known by: its message id, and the server it went to.
type Key = (u16, SocketAddr);

/// One family's sockets, each read by its own task.
struct Sockets {
    shared: Vec<Arc<Shared>>,
    /// Where the next query starts looking for a socket.
    next: AtomicUsize,
    readers: Vec<AbortHandle>,
}

/// One socket, and the queries waiting for an answer on it.
struct Shared {
    socket: UdpSocket,
    waiting: Mutex<HashMap<Key, Slot>>,
}

/// A query's answers, until it reads them.
#[derive(Default)]
struct Slot {
    answers: VecDeque<(Vec<u8>, SocketAddr)>,
    waker: Option<Waker>,
}

impl Shared {
    fn waiting(&self) -> MutexGuard<'_, HashMap<Key, Slot>> {
        // A panic while holding the lock leaves the map whole.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sockets {
    /// Bind [`SOCKETS`] sockets on `ip` (any port) and start reading them.
    async fn bind(ip: IpAddr) -> io::Result<Arc<Sockets>> {
        let mut shared = Vec::with_capacity(SOCKETS);
        let mut readers = Vec::with_capacity(SOCKETS);
        for _ in 0..SOCKETS {
            let socket = Arc::new(Shared {
                socket: UdpSocket::bind(SocketAddr::new(ip, 0)).await?,
                waiting: Mutex::default(),
            });
            readers.push(tokio::spawn(read(socket.clone())).abort_handle());
            shared.push(socket);
        }
        Ok(Arc::new(Sockets {
            shared,
            next: AtomicUsize::new(0),
            readers,
        }))
    }

    /// A socket on which no query has `key` in flight, with `key`
    /// registered on it.
    fn register(&self, key: Key) -> io::Result<Arc<Shared>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.shared.len() {
            let shared = &self.shared[(start + i) % self.shared.len()];
            if let Entry::Vacant(slot) = shared.waiting().entry(key) {
                slot.insert(Slot::default());
                return Ok(shared.clone());
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{SOCKETS} queries with id {} to {} are in flight",
                key.0, key.1
            ),
        ))
    }
}

impl Drop for Sockets {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// Hand each datagram read from `shared` to the query it answers; drop
/// those no query waits for (late, or forged).
async fn read(shared: Arc<Shared>) {
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let (len, from) = match shared.socket.recv_from(&mut buf).await {
            Ok(read) => read,
            Err(e) => {
                // An ICMP error reported on the socket, or a transient
                // failure: the query it concerns times out and is retried.
                tracing::debug!("pooled DNS socket: {e}");
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let Some(id) = buf[..len].first_chunk::<2>() else {
            continue;
        };
        let key = (u16::from_be_bytes(*id), canonical(from));
        let mut waiting = shared.waiting();
        if let Some(slot) = waiting.get_mut(&key) {
            if slot.answers.len() < MAX_QUEUED {
                slot.answers.push_back((buf[..len].to_vec(), from));
            }
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }
}

/// `addr` with an IPv4-mapped IPv6 address as IPv4, as sources are
/// compared.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// A send in progress: it owns its bytes and its socket, so it can wait
/// for room among the socket's other senders.
type Sending = Pin<Box<dyn Future<Output = io::Result<usize>> + Send>>;

/// What hickory takes for a fresh socket: the first datagram sent on it
/// names the query (its id and server) and picks a pooled socket; reads
/// return the answers to that query only.
pub struct PooledUdp {
    sockets: Arc<Sockets>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    query: Option<(Arc<Shared>, Key)>,
    sending: Option<Sending>,
}

impl PooledUdp {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DnsUdpSocket for PooledUdp {
    type Time = TokioTime;

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let state = self.state();
        let Some((shared, key)) = &state.query else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "a pooled DNS socket is read before its query is sent",
            )));
        };
        let mut waiting = shared.waiting();
        let Some(slot) = waiting.get_mut(key) else {
            return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
        };
        match slot.answers.pop_front() {
            Some((answer, from)) => {
                let len = answer.len().min(buf.len());
                buf[..len].copy_from_slice(&answer[..len]);
                Poll::Ready(Ok((len, from)))
            }
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        let mut state = self.state();
        if state.sending.is_none() {
            let Some(id) = buf.first_chunk::<2>() else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a DNS message is at least 2 bytes",
                )));
            };
            let key = (u16::from_be_bytes(*id), canonical(target));
            let shared = match &state.query {
                Some((shared, registered)) if *registered == key => shared.clone(),
                _ => {
                    // hickory sends one query per socket; a second one
                    // would take the place of the first.
                    if let Some((shared, old)) = state.query.take() {
                        shared.waiting().remove(&old);
                    }
                    let shared = match self.sockets.register(key) {
                        Ok(shared) => shared,
                        Err(e) => return Poll::Ready(Err(e)),
                    };
                    state.query = Some((shared.clone(), key));
                    shared
                }
            };
            let bytes = buf.to_vec();
            state.sending = Some(Box::pin(async move {
                shared.socket.send_to(&bytes, target).await
            }));
        }
        let sending = state.sending.as_mut().expect("set above");
        let sent = ready!(sending.as_mut().poll(cx));
        state.sending = None;
        Poll::Ready(sent)
    }
}

impl Drop for PooledUdp {
    fn drop(&mut self) {
        if let Some((shared, key)) = self.state().query.take() {
            shared.waiting().remove(&key);
        }
    }
}

impl RuntimeProvider for PooledProvider {
    type Handle = TokioHandle;
    type Timer = TokioTime;
    type Udp = PooledUdp;
    type Tcp = AsyncIoTokioAsStd<TcpStream>;

    fn create_handle(&self) -> Self::Handle {
        self.tokio.create_handle()
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = io::Result<Self::Tcp>>>> {
        self.tokio.connect_tcp(server_addr, bind_addr, timeout)
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        _server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = io::Result<Self::Udp>>>> {
        let pool = self.pool.clone();
        Box::pin(async move {
            // The family's sockets, on the address asked for (any port:
            // the pool's ports are the OS's choice, made once).
            let (cell, ip) = match local_addr.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => (&pool.v4, Ipv4Addr::UNSPECIFIED.into()),
                IpAddr::V6(ip) if ip.is_unspecified() => (&pool.v6, Ipv6Addr::UNSPECIFIED.into()),
                ip @ IpAddr::V4(_) => (&pool.v4, ip),
                ip @ IpAddr::V6(_) => (&pool.v6, ip),
            };
            let sockets = cell.get_or_try_init(|| Sockets::bind(ip)).await?.clone();
            Ok(PooledUdp {
                sockets,
                state: Mutex::default(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on loopback that answers each datagram with itself.
    async fn echo() -> SocketAddr {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0; 512];
            loop {
                let (len, from) = server.recv_from(&mut buf).await.unwrap();
                server.send_to(&buf[..len], from).await.unwrap();
            }
        });
        addr
    }

    async fn exchange(provider: &PooledProvider, server: SocketAddr, message: &[u8]) -> Vec<u8> {
        let socket = provider
            .bind_udp("0.0.0.0:0".parse().unwrap(), server)
            .await
            .unwrap();
        socket.send_to(message, server).await.unwrap();
        let mut buf = [0; 512];
        let answer = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf));
        let (len, from) = answer.await.expect("an answer").unwrap();
        assert_eq!(from, server);
        buf[..len].to_vec()
    }

    #[tokio::test]
    async fn each_query_gets_its_own_answer() {
        let server = echo().await;
        let provider = PooledProvider::default();
        // More queries than sockets, in flight at once; each id is used
        // five times, so some must go to other sockets. (Few enough that
        // the server's receive buffer drops none.)
        let queries = (0..100u16).map(|n| {
            let provider = provider.clone();
            async move {
                let message = [(n % 20).to_be_bytes().as_slice(), &n.to_be_bytes()].concat();
                let answer = exchange(&provider, server, &message).await;
                assert_eq!(answer, message);
            }
        });
        futures::future::join_all(queries).await;
        let v4 = provider.pool.v4.get().unwrap();
        for shared in &v4.shared {
            assert!(shared.waiting().is_empty(), "every query unregistered");
        }
    }

    #[tokio::test]
    async fn an_id_in_flight_on_every_socket_is_refused() {
        let server = echo().await;
        let provider = PooledProvider::default();
        let mut held = Vec::new();
        for _ in 0..SOCKETS {
            let socket = provider
                .bind_udp("0.0.0.0:0".parse().unwrap(), server)
                .await
                .unwrap();
            socket.send_to(&[0, 7, 1], server).await.unwrap();
            // Answered, but still registered until dropped.
            let mut buf = [0; 8];
            socket.recv_from(&mut buf).await.unwrap();
            held.push(socket);
        }
        let one_more = provider
            .bind_udp("0.0.0.0:0".parse().unwrap(), server)
            .await
            .unwrap();
        let refused = one_more.send_to(&[0, 7, 1], server).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::AddrInUse);
        drop(held);
        assert_eq!(exchange(&provider, server, &[0, 7, 2]).await, [0, 7, 2]);
    }
}
