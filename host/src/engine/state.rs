//! What a `Store` carries: the resource table, an empty WASI context, limits,
//! and the context of the call (which plugin, which scan, where results go).

use super::limits::{CallLimiter, MAX_LIVE_RESOURCES, MAX_STDERR_BYTES};
use crate::model::{Capability, Finding, PluginId, Subject};
use crate::primitives::NetSettings;
use crate::primitives::dns::DnsCore;
use crate::primitives::gate::Gate;
use crate::primitives::http::HttpCore;
use crate::primitives::tcp::TcpCore;
use crate::primitives::tls::TlsCore;
use crate::scope::Scope;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::CallError;
use super::bindings::ErrorCode;

/// What a running call sends to the scheduler, as it happens. Every event
/// of a unit comes before its [`Event::Done`].
#[derive(Debug)]
pub enum Event {
    /// A finding was reported.
    Finding {
        /// The unit it belongs to (the caller's number for the task).
        unit: u64,
        /// Who reported it.
        plugin: Arc<PluginId>,
        /// What.
        finding: Finding,
    },
    /// A new subject was emitted.
    Subject {
        /// The unit it came from.
        unit: u64,
        /// Who emitted it.
        plugin: Arc<PluginId>,
        /// What.
        subject: Subject,
        /// Its place among the derived subjects waiting to run
        /// ([`ScanContext::derived`]), taken before it is sent; held by its
        /// units until they start. `None` only while held in its call.
        permit: Option<OwnedSemaphorePermit>,
    },
    /// A unit ended: its task was finished (or dropped) by the plugin, or
    /// its call failed.
    Done {
        /// The unit.
        unit: u64,
        /// Who ran it.
        plugin: Arc<PluginId>,
        /// How it ended.
        result: Result<(), CallError>,
        /// From the start of its call to its end.
        elapsed: Duration,
    },
}

/// Everything shared by the calls of one scan.
#[derive(Debug)]
pub struct ScanContext {
    /// Who may be contacted.
    pub scope: Arc<Scope>,
    /// The TCP engine, with the scan's gate (concurrency, rate, retries,
    /// counters).
    pub tcp: TcpCore,
    /// The scan's resolver and its cache.
    pub dns: DnsCore,
    /// The scan's TLS engine and trust roots.
    pub tls: TlsCore,
    /// The scan's HTTP clients.
    pub http: HttpCore,
    /// Timeouts and limits.
    pub settings: NetSettings,
    /// Places for derived subjects waiting to run: a plugin that emits
    /// subjects faster than they run waits for one, so the queue of
    /// derived units stays bounded.
    pub derived: Arc<Semaphore>,
    /// Calls waiting for such a place.
    pub blocked: Arc<Blocked>,
    /// The recording its network calls go to, or are answered from
    /// (`plugin run --record` / `--replay`).
    pub tape: Option<Arc<super::tape::Tape>>,
}

/// Derived subjects that may wait to run at once, across the scan.
pub const MAX_DERIVED_WAITING: usize = 10_000;

/// The calls of a scan waiting for a place for a derived subject. When
/// every running call waits, only units that are already queued can free a
/// place: the scheduler is told, and starts some beyond `--parallel`.
#[derive(Debug, Default)]
pub struct Blocked {
    count: AtomicUsize,
    /// Signalled as a call starts waiting.
    pub notify: Notify,
}

impl Blocked {
    /// Calls waiting now.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Take a place from `places`, counted as waiting while there is none.
    pub async fn acquire(&self, places: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = places.clone().try_acquire_owned() {
            return Some(permit);
        }
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.count);
        self.notify.notify_one();
        places.clone().acquire_owned().await.ok()
    }
}

impl ScanContext {
    /// A context for a scan with `scope` and `settings`.
    pub fn new(scope: Arc<Scope>, settings: NetSettings) -> Self {
        let gate = Gate::sharing(
            settings.limits,
            settings.budget.clone(),
            settings.counters.clone(),
        );
        ScanContext {
            tcp: TcpCore::new(gate.clone()),
            dns: DnsCore::new(&settings.resolver, settings.timeout, gate),
            tls: settings.tls.clone(),
            http: HttpCore::new(settings.tls.clone()),
            scope,
            settings,
            derived: Arc::new(Semaphore::new(MAX_DERIVED_WAITING)),
            blocked: Arc::default(),
            tape: None,
        }
    }
}

/// One subject of a call (a `task` resource's state): what it is, what it
/// reported so far, and whether the plugin finished it.
#[derive(Debug)]
pub struct TaskState {
    /// The caller's number for it, stamped on its events.
    pub unit: u64,
    /// What the plugin scans.
    pub subject: Subject,
    /// Findings reported, against [`super::limits::MAX_FINDINGS_PER_CALL`].
    pub findings: u64,
    /// Subjects emitted, against [`super::limits::MAX_SUBJECTS_PER_CALL`].
    pub subjects: u64,
    /// Its events not sent yet. While the call has other tasks they are
    /// held back until it is finished: a failed call runs its unfinished
    /// tasks again alone, and what they reported in the failed call must
    /// not be written twice.
    pub held: VecDeque<(Event, usize)>,
    /// The size of `held`, by the estimate each event was counted with.
    pub held_bytes: usize,
    /// Reported more than [`super::limits::MAX_HELD_EVENTS`], or held the
    /// most when the call passed [`super::limits::MAX_HELD_BYTES`]: its
    /// events go straight on, and a failed call ends it with its error
    /// instead of running it again (what it reported is kept, never
    /// written twice).
    pub streamed: bool,
    /// Ended: its [`Event::Done`] is queued (sent once `held` is empty).
    pub finished: bool,
}

impl TaskState {
    /// A task for `subject`, numbered `unit` by the caller.
    pub fn new(unit: u64, subject: Subject) -> Self {
        TaskState {
            unit,
            subject,
            findings: 0,
            subjects: 0,
            held: VecDeque::new(),
            held_bytes: 0,
            streamed: false,
            finished: false,
        }
    }
}

/// The context of one call into a plugin.
#[derive(Debug)]
pub struct CallContext {
    /// The plugin being called.
    pub plugin: Arc<PluginId>,
    /// What it declared it would use.
    pub capabilities: Vec<Capability>,
    /// The scan it runs in; `None` while loading (`describe` gets no network).
    pub scan: Option<Arc<ScanContext>>,
    /// Where findings and subjects go; `None` while loading.
    pub events: Option<mpsc::Sender<Event>>,
    /// The subjects of the call, by the index their `task` resource holds.
    pub tasks: Vec<TaskState>,
    /// When the call started, for each unit's time.
    pub started: Instant,
    /// Log messages written, against [`super::limits::MAX_LOGS_PER_CALL`].
    pub logs: u64,
    /// Bytes held back by all its tasks, against
    /// [`super::limits::MAX_HELD_BYTES`].
    pub held_bytes: usize,
    /// Host resources currently held.
    pub live_resources: usize,
}

impl CallContext {
    /// Check that this call may reach `ip` using `capability`.
    pub fn authorize(&self, capability: Capability, ip: IpAddr) -> Result<&ScanContext, ErrorCode> {
        let scan = self.network(capability)?;
        if !scan.scope.check(ip) {
            tracing::warn!(plugin = %self.plugin.name, %ip, "plugin tried to reach an address outside the scan's scope");
            return Err(ErrorCode::AccessDenied(format!(
                "{ip} is outside the scan's scope"
            )));
        }
        Ok(scan)
    }

    /// The scan, when this call may use `capability` at all: not while
    /// loading, and only when the plugin declared it.
    pub(crate) fn network(&self, capability: Capability) -> Result<&ScanContext, ErrorCode> {
        let scan = self
            .scan
            .as_deref()
            .ok_or_else(|| ErrorCode::AccessDenied("describe() may not use the network".into()))?;
        if !self.capabilities.contains(&capability) {
            tracing::warn!(plugin = %self.plugin.name, ?capability, "plugin used a capability it did not declare");
            let name = format!("{capability:?}");
            // The fix in both SDKs' spelling: the host cannot tell which
            // language a component was written in.
            return Err(ErrorCode::AccessDenied(format!(
                "the plugin did not declare the {} capability (declare it in describe(): \
                 .capability(Capability::{name}) in Rust, Capability.{} in Python)",
                name.to_lowercase(),
                name.to_uppercase()
            )));
        }
        Ok(scan)
    }

    /// Check that this call may query `name` using `capability`.
    pub fn authorize_name(
        &self,
        capability: Capability,
        name: &str,
    ) -> Result<&ScanContext, ErrorCode> {
        let scan = self.network(capability)?;
        if !scan.scope.check_name(name) {
            tracing::warn!(plugin = %self.plugin.name, name, "plugin tried to query a name outside the scan's scope");
            return Err(ErrorCode::AccessDenied(format!(
                "{name} is outside the scan's scope"
            )));
        }
        Ok(scan)
    }

    /// The timeout a plugin asked for, or the scan's.
    pub fn timeout(&self, millis: Option<u32>) -> Duration {
        match millis {
            Some(ms) => Duration::from_millis(u64::from(ms)),
            None => self
                .scan
                .as_ref()
                .map_or(Duration::from_secs(5), |s| s.settings.timeout),
        }
    }
}

/// The data of every `Store` in wscan.
pub struct HostState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    pub(crate) limits: CallLimiter,
    stderr: MemoryOutputPipe,
    /// The call this store serves.
    pub call: CallContext,
}

impl HostState {
    /// A fresh state for one call: no preopened files, no environment, no
    /// sockets; stderr captured (bounded) to explain a trap; at most
    /// `memory` bytes of linear memory.
    pub fn new(call: CallContext, memory: usize) -> Self {
        let stderr = MemoryOutputPipe::new(MAX_STDERR_BYTES);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            table: ResourceTable::new(),
            wasi,
            limits: CallLimiter::new(memory),
            stderr,
            call,
        }
    }

    /// The plugin's last words on stderr, on one line: for a Rust panic,
    /// where it panicked and the message (the "note:" hint is dropped).
    pub fn stderr_tail(&self) -> Option<String> {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: "))
            .collect();
        let tail = &lines[lines.len().saturating_sub(2)..];
        (!tail.is_empty()).then(|| tail.join(" "))
    }

    /// Put a host resource in the table, counting it against the call's cap.
    pub fn push<T: Send + 'static>(&mut self, value: T) -> wasmtime::Result<Resource<T>> {
        if self.call.live_resources >= MAX_LIVE_RESOURCES {
            wasmtime::bail!(
                "plugin {} holds more than {MAX_LIVE_RESOURCES} host resources at once; it is leaking handles",
                self.call.plugin.name
            );
        }
        self.call.live_resources += 1;
        Ok(self.table.push(value)?)
    }

    /// Remove a host resource the plugin dropped.
    pub fn delete<T: 'static>(&mut self, resource: Resource<T>) -> wasmtime::Result<T> {
        let value = self.table.delete(resource)?;
        self.call.live_resources = self.call.live_resources.saturating_sub(1);
        Ok(value)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
