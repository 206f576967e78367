//! Glue: the generated `tcp` host traits over [`crate::primitives::tcp`].

use super::pending::{Pending, take};
use crate::engine::bindings::ErrorCode;
use crate::engine::bindings::wscan::plugin::tcp as wit;
use crate::engine::bindings::wscan::plugin::types::{IpAddress, PortRange};
use crate::engine::convert::{from_ip, to_ip};
use crate::engine::limits::MAX_READ_BYTES;
use crate::engine::state::HostState;
use crate::engine::tape::{self, Tape};
use crate::model::Capability;
use crate::primitives::tcp::core::{NetError, PortState, TcpConnection};
use futures::FutureExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::mpsc;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

impl From<NetError> for ErrorCode {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Refused => ErrorCode::ConnectionRefused,
            NetError::Timeout => ErrorCode::Timeout,
            NetError::Unreachable => ErrorCode::Unreachable,
            NetError::Reset => ErrorCode::ConnectionReset,
            NetError::Closed => ErrorCode::Closed,
            NetError::Other(why) => ErrorCode::Other(why),
        }
    }
}

impl From<PortState> for wit::PortState {
    fn from(s: PortState) -> Self {
        use wit::PortState as W;
        match s {
            PortState::Open => W::Open,
            PortState::Closed => W::Closed,
            PortState::Filtered => W::Filtered,
            PortState::Unreachable => W::Unreachable,
        }
    }
}

/// The `connection` resource: a live connection, or one of a replayed
/// recording (which only the recording answers).
pub struct ConnectionHandle {
    peer: SocketAddr,
    live: Option<TcpConnection>,
    /// The recording and this connection's name in it (`ADDR:PORT#N`, the
    /// Nth connect to that address).
    tape: Option<(Arc<Tape>, String)>,
}

impl ConnectionHandle {
    /// A call on this connection, for the recording.
    fn call(&self, what: &str) -> Option<(&Arc<Tape>, String)> {
        self.tape
            .as_ref()
            .map(|(tape, id)| (tape, format!("tcp.{what} {id}")))
    }
}

/// The `future-connection` resource.
pub type FutureConnection = Pending<Result<ConnectionHandle, ErrorCode>>;
/// What a read got, in a recording as text or base64.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
struct Bytes(#[serde(with = "crate::primitives::bytes")] Vec<u8>);

/// The `future-bytes` resource.
pub type FutureBytes = Pending<Result<Vec<u8>, ErrorCode>>;
/// The `future-written` resource.
pub type FutureWritten = Pending<Result<u64, ErrorCode>>;

/// The `port-probe` resource: results stream in from the probe's tasks.
pub struct PortProbe {
    rx: mpsc::UnboundedReceiver<(IpAddr, u16, PortState)>,
    buffer: Vec<(IpAddr, u16, PortState)>,
    done: bool,
}

#[wasmtime_wasi::async_trait]
impl Pollable for PortProbe {
    async fn ready(&mut self) {
        if !self.buffer.is_empty() || self.done {
            return;
        }
        match self.rx.recv().await {
            Some(result) => self.buffer.push(result),
            None => self.done = true,
        }
    }
}

impl wit::Host for HostState {
    async fn connect(
        &mut self,
        address: IpAddress,
        port: u16,
        timeout_ms: Option<u32>,
    ) -> wasmtime::Result<Resource<FutureConnection>> {
        let addr = SocketAddr::new(to_ip(address), port);
        let timeout = self.call.timeout(timeout_ms);
        let pending = if port == 0 {
            Pending::ready(Err(ErrorCode::InvalidArgument("port 0".into())))
        } else {
            match self.call.authorize(Capability::Tcp, addr.ip()) {
                Err(code) => Pending::ready(Err(code)),
                Ok(scan) => {
                    let tcp = scan.tcp.clone();
                    let tape = scan.tape.clone().map(|tape| {
                        let ticket = tape.ticket(format!("tcp.connect {addr}"));
                        (tape, ticket)
                    });
                    match tape {
                        None => Pending::spawn(async move {
                            let live = tcp.connect(addr, timeout).await?;
                            Ok(ConnectionHandle {
                                peer: addr,
                                live: Some(live),
                                tape: None,
                            })
                        }),
                        // Unfinished when recorded: it never ends here either.
                        Some((tape, ticket)) if tape.unfinished(&ticket) => {
                            Pending::spawn(std::future::pending())
                        }
                        Some((tape, ticket)) if tape.is_replay() => {
                            Pending::ready(tape.replay::<()>(&ticket, None).map(|()| {
                                ConnectionHandle {
                                    peer: addr,
                                    live: None,
                                    tape: Some((tape.clone(), ticket.id())),
                                }
                            }))
                        }
                        Some((tape, ticket)) => Pending::spawn(async move {
                            let id = ticket.id();
                            let open = tape::Open::new(tape.clone(), ticket, None);
                            let result = tcp.connect(addr, timeout).await.map_err(ErrorCode::from);
                            open.finish(&result.as_ref().map(|_| ()).map_err(Clone::clone));
                            Ok(ConnectionHandle {
                                peer: addr,
                                live: Some(result?),
                                tape: Some((tape, id)),
                            })
                        }),
                    }
                }
            }
        };
        self.push(pending)
    }

    async fn probe(
        &mut self,
        addresses: Vec<IpAddress>,
        ports: Vec<PortRange>,
        timeout_ms: Option<u32>,
    ) -> wasmtime::Result<Result<Resource<PortProbe>, ErrorCode>> {
        if let Some(bad) = ports.iter().find(|r| r.first == 0 || r.first > r.last) {
            return Ok(Err(ErrorCode::InvalidArgument(format!(
                "port range {}-{}",
                bad.first, bad.last
            ))));
        }
        let ips: Vec<IpAddr> = addresses.into_iter().map(to_ip).collect();
        let timeout = self.call.timeout(timeout_ms);
        // Every address is checked before anything is sent: one outside
        // the scope denies the whole probe.
        for &ip in &ips {
            if let Err(code) = self.call.authorize(Capability::Tcp, ip) {
                return Ok(Err(code));
            }
        }
        let rx = match self.call.network(Capability::Tcp) {
            Err(code) => return Ok(Err(code)),
            // Probes are not recorded: a replay must send nothing, and a
            // recording must hold every call.
            Ok(scan) if scan.tape.is_some() => {
                return Ok(Err(ErrorCode::Other(
                    "port probes (tcp.probe) are not recorded or replayed; record a plugin that uses tcp.connect".into(),
                )));
            }
            Ok(scan) => scan.tcp.probe(
                ips,
                ports.iter().map(|r| (r.first, r.last)).collect(),
                timeout,
            ),
        };
        Ok(Ok(self.push(PortProbe {
            rx,
            buffer: Vec::new(),
            done: false,
        })?))
    }
}

impl wit::HostConnection for HostState {
    async fn peer(
        &mut self,
        this: Resource<ConnectionHandle>,
    ) -> wasmtime::Result<(IpAddress, u16)> {
        let peer = self.table.get(&this)?.peer;
        Ok((from_ip(peer.ip()), peer.port()))
    }

    async fn read(
        &mut self,
        this: Resource<ConnectionHandle>,
        max_bytes: u32,
        timeout_ms: Option<u32>,
    ) -> wasmtime::Result<Resource<FutureBytes>> {
        let timeout = self.call.timeout(timeout_ms);
        let handle = self.table.get(&this)?;
        let pending = if max_bytes == 0 || max_bytes > MAX_READ_BYTES {
            Pending::ready(Err(ErrorCode::InvalidArgument(format!(
                "max-bytes {max_bytes}: must be 1 to {MAX_READ_BYTES}"
            ))))
        } else {
            let (tape, call) = handle.call("read").unzip();
            let conn = handle.live.clone();
            let read = tape::wrap(tape, || call.unwrap_or_default(), None, async move {
                let conn = conn.ok_or(ErrorCode::Closed)?;
                let bytes = conn.read(max_bytes as usize, timeout).await?;
                Ok(Bytes(bytes))
            });
            // Mapped, not awaited in an `async` block: see `tape::wrap`.
            Pending::spawn(read.map(|read| read.map(|b| b.0)))
        };
        self.push(pending)
    }

    async fn write(
        &mut self,
        this: Resource<ConnectionHandle>,
        data: Vec<u8>,
        timeout_ms: Option<u32>,
    ) -> wasmtime::Result<Resource<FutureWritten>> {
        let timeout = self.call.timeout(timeout_ms);
        let handle = self.table.get(&this)?;
        let (tape, call) = handle.call("write").unzip();
        let sent = tape.map(|_| tape::bytes_json(&data));
        let conn = handle.live.clone();
        let write = tape::wrap(tape, || call.unwrap_or_default(), sent, async move {
            let conn = conn.ok_or(ErrorCode::Closed)?;
            Ok(conn.write(data, timeout).await?)
        });
        self.push(Pending::spawn(write))
    }

    async fn close(&mut self, this: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        if let Some(conn) = &self.table.get(&this)?.live {
            conn.close();
        }
        Ok(())
    }

    async fn drop(&mut self, this: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        if let Some(conn) = &self.delete(this)?.live {
            conn.close();
        }
        Ok(())
    }
}

impl wit::HostFutureConnection for HostState {
    async fn subscribe(
        &mut self,
        this: Resource<FutureConnection>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn get(
        &mut self,
        this: Resource<FutureConnection>,
    ) -> wasmtime::Result<Option<Result<Resource<ConnectionHandle>, ErrorCode>>> {
        Ok(match take(self.table.get_mut(&this)?) {
            Some(Ok(conn)) => Some(Ok(self.push(conn)?)),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        })
    }

    async fn drop(&mut self, this: Resource<FutureConnection>) -> wasmtime::Result<()> {
        self.delete(this)?;
        Ok(())
    }
}

impl wit::HostFutureBytes for HostState {
    async fn subscribe(
        &mut self,
        this: Resource<FutureBytes>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn get(
        &mut self,
        this: Resource<FutureBytes>,
    ) -> wasmtime::Result<Option<Result<Vec<u8>, ErrorCode>>> {
        Ok(take(self.table.get_mut(&this)?))
    }

    async fn drop(&mut self, this: Resource<FutureBytes>) -> wasmtime::Result<()> {
        self.delete(this)?;
        Ok(())
    }
}

impl wit::HostFutureWritten for HostState {
    async fn subscribe(
        &mut self,
        this: Resource<FutureWritten>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn get(
        &mut self,
        this: Resource<FutureWritten>,
    ) -> wasmtime::Result<Option<Result<u64, ErrorCode>>> {
        Ok(take(self.table.get_mut(&this)?))
    }

    async fn drop(&mut self, this: Resource<FutureWritten>) -> wasmtime::Result<()> {
        self.delete(this)?;
        Ok(())
    }
}

impl wit::HostPortProbe for HostState {
    async fn subscribe(
        &mut self,
        this: Resource<PortProbe>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn next(
        &mut self,
        this: Resource<PortProbe>,
    ) -> wasmtime::Result<Option<Vec<wit::ProbeResult>>> {
        let probe = self.table.get_mut(&this)?;
        loop {
            match probe.rx.try_recv() {
                Ok(result) => probe.buffer.push(result),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    probe.done = true;
                    break;
                }
            }
        }
        if probe.buffer.is_empty() && probe.done {
            return Ok(None);
        }
        Ok(Some(
            probe
                .buffer
                .drain(..)
                .map(|(ip, port, state)| wit::ProbeResult {
                    address: from_ip(ip),
                    port,
                    state: state.into(),
                })
                .collect(),
        ))
    }

    async fn drop(&mut self, this: Resource<PortProbe>) -> wasmtime::Result<()> {
        self.delete(this)?;
        Ok(())
    }
}
