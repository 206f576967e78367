//! The scheduler: turns targets into units of work (one plugin, one
//! subject), runs them with bounded parallelism, routes the subjects that
//! plugins emit to the plugins that consume them, and hands every record to
//! the sink as it arrives.
//!
//! Targets are pulled lazily, only when a slot is free, so the pending work
//! stays small whatever the size of the target list.

pub mod input;
mod summary;

pub use summary::{NetTotals, PluginStats, Summary};

use input::{Expander, InputSource, Start};

use crate::engine::registry::Registry;
use crate::engine::{CallError, CallOptions, Engine, Event, PluginId, ScanContext};
use crate::model::{Subject, SubjectKey};
use crate::output::{Record, Sink};
use crate::primitives::NetSettings;
use crate::primitives::dns::ResolverSettings;
use crate::primitives::gate::Limits;
use crate::primitives::tls::TlsCore;
use crate::scope::Scope;
use crate::store::{DoneUnits, Journal, Resumed, StoreError};
use crate::targets::{Endpoint, Order, PortSpec, RangeSet, Shard, Target, TargetArg, TargetSpace};
use indicatif::ProgressBar;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Everything a scan needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct ScanSpec {
    /// Addresses to scan.
    pub targets: Vec<Target>,
    /// Host names to scan (lowercase, no trailing dot).
    pub hosts: Vec<String>,
    /// `host:port` and URL targets: that port only.
    pub one_port: Vec<(Endpoint, u16)>,
    /// Where more targets are read from, line by line (`-i`).
    pub input: Option<InputSource>,
    /// What not to scan, ever (`--exclude`).
    pub exclude: Arc<RangeSet>,
    /// The order addresses are visited in.
    pub order: Order,
    /// Which share of the addresses this run takes.
    pub shard: Shard,
    /// Which ports (handed to plugins; the port plugin sweeps them).
    pub ports: PortSpec,
    /// Per-operation timeout.
    pub timeout: Duration,
    /// Wall-clock limit of one plugin call.
    pub plugin_timeout: Duration,
    /// Linear memory one plugin call may grow to, in bytes.
    pub plugin_memory: usize,
    /// Concurrency, per-host cap, rate and retries of network operations.
    pub limits: Limits,
    /// Name servers and DNS cache.
    pub resolver: ResolverSettings,
    /// TLS trust roots.
    pub tls: TlsCore,
    /// Plugin calls running at once.
    pub parallel: usize,
    /// Arguments per plugin name.
    pub plugin_args: HashMap<String, Vec<(String, String)>>,
    /// The plugins to run, by name (`--plugins`); `None` runs every plugin
    /// in use, including plugins hot-loaded during the scan.
    pub plugins: Option<Vec<String>>,
}

impl ScanSpec {
    /// The scope (targets less exclusions) and the shared context of the
    /// scan's calls.
    fn context(&self) -> (Arc<Scope>, Arc<ScanContext>) {
        let scope = Arc::new(self.scope());
        let settings = NetSettings {
            timeout: self.timeout,
            limits: self.limits,
            resolver: self.resolver.clone(),
            tls: self.tls.clone(),
        };
        (scope.clone(), Arc::new(ScanContext::new(scope, settings)))
    }

    /// The scope of the command line's targets, less exclusions: what
    /// `-i` lines are added to (and deduplicated against), for the scan as
    /// for `--dry-run`.
    pub fn scope(&self) -> Scope {
        let scope = Scope::new(&self.targets, &self.hosts, self.exclude.clone());
        for (host, port) in &self.one_port {
            scope.add(&TargetArg::Port {
                host: host.clone(),
                port: *port,
            });
        }
        scope
    }

    /// What one call of `plugin` gets: the scan's ports, or those of the
    /// target that named its own.
    fn call_options(&self, plugin: &str, ports: Option<&[(u16, u16)]>, unit: u64) -> CallOptions {
        CallOptions {
            unit,
            ports: ports.unwrap_or(self.ports.ranges()).to_vec(),
            timeout: self.timeout,
            args: self.plugin_args.get(plugin).cloned().unwrap_or_default(),
            deadline: self.plugin_timeout,
            memory: self.plugin_memory,
        }
    }

    /// The names and `host:port` targets this run starts from, this
    /// shard's share by position (so N shards split them with no overlap),
    /// then the addresses: the starts of the command line's targets.
    pub fn starts(&self) -> (Vec<Start>, TargetSpace) {
        let mut expander = self.expander();
        let mut singles = Vec::new();
        let names = self.hosts.iter().map(|h| TargetArg::Host(h.clone()));
        let ports = self.one_port.iter().map(|(host, port)| TargetArg::Port {
            host: host.clone(),
            port: *port,
        });
        for target in names.chain(ports) {
            expander.expand(&target, |start| {
                singles.push(start);
                true
            });
        }
        (singles, self.space())
    }

    /// The pins of the names given as `host:port` on the command line
    /// (see [`Pin`]).
    fn pins(&self) -> Pins {
        let mut pins = Pins::new();
        for (host, port) in &self.one_port {
            if let Endpoint::Name(name) = host {
                pins.entry(name.clone()).or_default().ports.push(*port);
            }
        }
        let bare: HashSet<&str> = self.hosts.iter().map(String::as_str).collect();
        for (name, pin) in &mut pins {
            pin.routed = pin_ports(pin, bare.contains(name.as_str()), self.ports.ranges());
        }
        pins
    }

    /// Expands `-i` lines the way this scan splits and orders work.
    pub fn expander(&self) -> Expander {
        Expander::new(self.exclude.clone(), self.order, self.shard)
    }

    /// The addresses this run visits, in order: targets less exclusions,
    /// this shard only.
    pub fn space(&self) -> TargetSpace {
        TargetSpace::new(
            self.targets.clone(),
            self.exclude.clone(),
            self.order,
            self.shard,
        )
    }
}

/// Why a scan stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The result store could not be written.
    #[error("cannot write to the result store: {0}")]
    Store(#[from] StoreError),
    /// The target input could not be opened.
    #[error("cannot read targets from {from}: {error}")]
    Input {
        /// The file, or standard input.
        from: String,
        /// Why.
        error: std::io::Error,
    },
}

/// One plugin on one subject. The plugin is named, not held: it is looked
/// up when the unit starts, so a plugin swapped in meanwhile is the one
/// that runs, and a removed one does not.
struct Unit {
    plugin: String,
    subject: Subject,
    /// The ports of a `host:port` target, instead of the scan's.
    ports: Option<Arc<[(u16, u16)]>>,
    /// Its identity in the result store's journal ([`unit_key`]).
    key: Arc<str>,
}

/// What identifies a unit across runs of a scan: the plugin, the subject's
/// key and the ports of a `host:port` target. Stable text, stored in the
/// journal of completed units.
fn unit_key(plugin: &str, subject: &Subject, ports: Option<&[(u16, u16)]>) -> String {
    let kind = match subject.kind() {
        crate::model::SubjectKind::Host => "host",
        crate::model::SubjectKind::Address => "address",
        crate::model::SubjectKind::Service => "service",
    };
    let key = format!("{plugin} {kind} {}", subject.key());
    match ports {
        Some(ports) => {
            let ports: Vec<String> = ports.iter().map(crate::model::range_text).collect();
            format!("{key} ports {}", ports.join(","))
        }
        None => key,
    }
}

/// The result store's part in a scan: the journal every record and
/// completed unit goes to, and what earlier runs of the scan did.
pub struct Durable {
    /// Where this run's records and completed units are written.
    pub journal: Journal,
    /// What earlier runs left (empty for a new scan).
    pub resumed: Resumed,
}

struct Outcome {
    unit: u64,
    plugin: Arc<PluginId>,
    subject: Subject,
    result: Result<(), CallError>,
    elapsed: Duration,
}

/// Port ranges shared by the units of one target.
type PortList = Arc<[(u16, u16)]>;

/// Decides which plugins a subject goes to.
struct Router<'a> {
    registry: &'a Registry,
    selection: Option<&'a [String]>,
    /// Units an earlier run completed (by [`unit_key`]): not run again.
    done: DoneUnits,
    /// The scan's ports (`-p`): those of a unit keyed without ports.
    scan_ports: &'a [(u16, u16)],
}

impl Router<'_> {
    /// Queue a unit for every selected plugin in use whose filter matches.
    /// `seen` (for derived subjects) keeps a plugin from scanning the same
    /// subject twice. Whether any such plugin consumes the subject at all
    /// (queued now, or before).
    fn route(
        &self,
        subject: &Subject,
        ports: Option<&Arc<[(u16, u16)]>>,
        ready: &mut VecDeque<Unit>,
        mut seen: Option<&mut HashSet<(String, SubjectKey)>>,
        summary: &mut Summary,
    ) -> bool {
        let mut consumed = false;
        for active in self.registry.active().iter() {
            let info = &active.plugin.info;
            if self
                .selection
                .is_some_and(|names| !names.contains(&info.name))
                || !info.consumes.matches(subject)
            {
                continue;
            }
            consumed = true;
            if let Some(seen) = seen.as_deref_mut()
                && !seen.insert((info.name.clone(), subject.key()))
            {
                continue;
            }
            let Some((ports, key)) = self.left(&info.name, subject, ports) else {
                summary.skipped += 1;
                continue;
            };
            ready.push_back(Unit {
                plugin: info.name.clone(),
                subject: subject.clone(),
                ports,
                key: key.into(),
            });
        }
        consumed
    }

    /// What is left of `plugin` on `subject` and `ports` after earlier
    /// runs: the ports and key of the unit to run, or `None` when they
    /// did it all. An address's ports count, not how they were split into
    /// units: those of a name given both bare and as `NAME:PORT` in `-i`
    /// are split by when each line arrived, which a resume does not
    /// repeat.
    fn left(
        &self,
        plugin: &str,
        subject: &Subject,
        ports: Option<&Arc<[(u16, u16)]>>,
    ) -> Option<(Option<PortList>, String)> {
        let key = unit_key(plugin, subject, ports.map(|p| &p[..]));
        if self.done.is_empty() {
            return Some((ports.cloned(), key));
        }
        if self.done.contains(&key) {
            return None;
        }
        if !matches!(subject, Subject::Address { .. }) {
            return Some((ports.cloned(), key));
        }
        let base = unit_key(plugin, subject, None);
        let mut covered: Vec<(u16, u16)> = Vec::new();
        if ports.is_some() && self.done.contains(&base) {
            covered.extend_from_slice(self.scan_ports);
        }
        for more in self.done.extensions(&base, " ports ") {
            // Keys are written by `unit_key`; one that does not parse
            // covers nothing (its ports run again).
            if let Ok(done) = more.parse::<PortSpec>() {
                covered.extend_from_slice(done.ranges());
            }
        }
        if covered.is_empty() {
            return Some((ports.cloned(), key));
        }
        let wanted = ports.map_or(self.scan_ports, |p| &p[..]);
        let left = ports_minus(wanted, &covered);
        if left.is_empty() {
            None
        } else if ports_minus(wanted, &left).is_empty() {
            Some((ports.cloned(), key))
        } else {
            let key = unit_key(plugin, subject, Some(&left));
            Some((Some(left.into()), key))
        }
    }
}

/// Run `spec` with the plugins of `registry`, writing every record to
/// `sink`. `progress` counts targets taken out of their total (a hidden bar
/// draws nothing). With `durable`, records and completed units are also
/// journaled in the result store, and units an earlier run completed are
/// skipped. When `stop` completes (Ctrl-C), running units are cut short,
/// what they reported so far is kept, and the scan returns, marked
/// interrupted.
pub async fn run(
    spec: &ScanSpec,
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    sink: &mut dyn Sink,
    progress: &ProgressBar,
    durable: Option<Durable>,
    stop: impl Future<Output = ()>,
) -> Result<Summary, ScanError> {
    let started = Instant::now();
    let (scope, scan) = spec.context();
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(1024);
    let mut summary = Summary::default();
    let (journal, resumed) = match durable {
        Some(d) => (Some(d.journal), d.resumed),
        None => (None, Resumed::default()),
    };
    let router = Router {
        registry: &registry,
        selection: spec.plugins.as_deref(),
        done: resumed.done,
        scan_ports: spec.ports.ranges(),
    };

    let (singles, space) = spec.starts();
    progress.set_length(
        u64::try_from(space.count())
            .unwrap_or(u64::MAX)
            .saturating_add(singles.len() as u64),
    );
    // Names and single ports first: there are few, and each may lead to
    // many units.
    let mut starts = singles.into_iter().chain(
        space
            .iter()
            .map(|ip| Start::new(Subject::Address { ip, host: None })),
    );
    // Lines of `-i`, read on a thread as the scan takes them.
    let (mut input, reader) = match &spec.input {
        Some(source) => {
            let file = source.open().map_err(|e| ScanError::Input {
                from: source.to_string(),
                error: e,
            })?;
            let (tx, rx) = mpsc::channel(256);
            let thread = input::stream(file, spec.expander(), scope.clone(), tx);
            (Some(rx), Some((source, thread)))
        }
        None => (None, None),
    };
    let mut routing = Routing {
        router,
        scope: &scope,
        seen: HashSet::new(),
        outside: resumed.outside.into_iter().collect(),
        ready: VecDeque::new(),
        pins: spec.pins(),
        addresses: HashMap::new(),
        journal: journal.as_ref(),
        inflight: HashMap::new(),
        outside_found: HashMap::new(),
        scan_ports: spec.ports.ranges(),
    };
    // What the completed units of earlier runs emitted leads to units of
    // its own, done or not.
    for subject in resumed.emitted {
        scope.restore(&subject);
        routing.derive(subject, &mut summary);
    }
    let mut running: JoinSet<Outcome> = JoinSet::new();
    let parallel = spec.parallel.max(1);
    let mut next_unit: u64 = 0;
    let mut stop = std::pin::pin!(stop);

    loop {
        // Fill free slots: derived units first (they finish what is already
        // started), then the next target.
        while running.len() < parallel {
            let Some(unit) = routing.ready.pop_front() else {
                if let Some(start) = starts.next() {
                    routing.start(start, &mut summary, progress);
                    continue;
                }
                match input.as_mut().map(|rx| rx.try_recv()) {
                    Some(Ok(item)) => {
                        routing.take(item, &mut summary, progress);
                        continue;
                    }
                    Some(Err(mpsc::error::TryRecvError::Disconnected)) => input = None,
                    Some(Err(mpsc::error::TryRecvError::Empty)) | None => {}
                }
                break;
            };
            let Some(plugin) = registry.get(&unit.plugin) else {
                tracing::debug!(plugin = %unit.plugin, subject = %unit.subject, "plugin no longer in use; unit dropped");
                continue;
            };
            next_unit += 1;
            let id = next_unit;
            routing
                .inflight
                .insert(id, (unit.key.clone(), unit.subject.clone()));
            let options = spec.call_options(&plugin.info.name, unit.ports.as_deref(), id);
            let (engine, scan, events) = (engine.clone(), scan.clone(), events_tx.clone());
            summary.units += 1;
            running.spawn(async move {
                let started = Instant::now();
                let result = plugin
                    .scan(&engine, scan, events, &unit.subject, &options)
                    .await;
                Outcome {
                    unit: id,
                    plugin: plugin.id().clone(),
                    subject: unit.subject,
                    result,
                    elapsed: started.elapsed(),
                }
            });
        }

        if running.is_empty() {
            // Events sent by the last units may still sit in the channel.
            let mut drained = false;
            while let Ok(event) = events_rx.try_recv() {
                drained = true;
                routing.handle(event, sink, &mut summary)?;
            }
            if drained || !routing.ready.is_empty() {
                continue;
            }
            // Nothing to do but wait for the next line of input.
            if input.is_none() {
                break;
            }
            tokio::select! {
                item = next_input(&mut input) => match item {
                    Some(item) => routing.take(item, &mut summary, progress),
                    None => input = None,
                },
                () = &mut stop => {
                    summary.interrupted = true;
                    break;
                }
            }
            continue;
        }

        let wants_input = routing.ready.is_empty() && running.len() < parallel;
        tokio::select! {
            Some(event) = events_rx.recv() => {
                routing.handle(event, sink, &mut summary)?;
            }
            item = next_input(&mut input), if wants_input && input.is_some() => match item {
                Some(item) => routing.take(item, &mut summary, progress),
                None => input = None,
            },
            () = &mut stop => {
                // Cut the running units short; what they reported is
                // written (and kept in the store, until a resume runs
                // them again), but they are not marked done.
                summary.interrupted = true;
                running.abort_all();
                while running.join_next().await.is_some() {}
                while let Ok(event) = events_rx.try_recv() {
                    routing.handle(event, sink, &mut summary)?;
                }
                break;
            }
            Some(joined) = running.join_next() => {
                let outcome = match joined {
                    Ok(outcome) => outcome,
                    // A panic in host code for this unit: a bug, but the
                    // scan goes on. The unit is not marked done: a resume
                    // runs it again.
                    Err(e) => {
                        tracing::error!("a scan task failed: {e}");
                        summary.errors += 1;
                        continue;
                    }
                };
                // Every event of the unit was sent before its call
                // returned: handle them first, so that the journal's mark
                // follows all of the unit's records.
                while let Ok(event) = events_rx.try_recv() {
                    routing.handle(event, sink, &mut summary)?;
                }
                let key = routing.inflight.remove(&outcome.unit).map(|(key, _)| key);
                let journal = routing.journal.zip(key.as_ref());
                if let Some((_, outside)) = routing.outside_found.remove(&outcome.unit) {
                    let record = Record::out_of_scope(&outcome.plugin, &outcome.subject, &outside);
                    sink.write(&record)?;
                    if let Some((journal, key)) = journal {
                        journal.record(key, &record)?;
                    }
                }
                let stats = summary.plugins.entry(outcome.plugin.name.clone()).or_default();
                stats.units += 1;
                stats.time += outcome.elapsed;
                let failed = outcome.result.is_err();
                if let Err(e) = outcome.result {
                    stats.errors += 1;
                    tracing::info!(plugin = %outcome.plugin.name, subject = %outcome.subject, "unit failed: {e}");
                    summary.errors += 1;
                    let record = Record::error(&outcome.plugin, &outcome.subject, e.to_string());
                    sink.write(&record)?;
                    if let Some((journal, key)) = journal {
                        journal.record(key, &record)?;
                    }
                }
                if let Some((journal, key)) = journal {
                    journal.done(key, failed)?;
                }
                progress.set_message(progress_message(&summary));
            }
        }
    }
    // Units cut short (Ctrl-C) or lost to a host panic still report what
    // they found outside the scope: nothing found is dropped. (They are
    // not done, so a resume runs them again.)
    routing.write_outside_of_unfinished(sink)?;
    // When stopped, the reader may be blocked on a line that never comes
    // (standard input): it is left behind, not waited for.
    if let Some((source, thread)) = reader.filter(|_| !summary.interrupted) {
        // The thread is done or blocked on a full channel that is gone.
        drop(input);
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                summary.input_failure = Some(format!("reading targets from {source} stopped: {e}"))
            }
            Err(_) => summary.input_failure = Some(format!("reading targets from {source} failed")),
        }
    }
    sink.finish()?;
    drop(routing);
    if let Some(journal) = journal {
        journal.close()?;
    }
    progress.finish_and_clear();
    summary.denied = scope.denied();
    summary.net = NetTotals::from(scan.tcp.gate().stats().as_ref());
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn progress_message(summary: &Summary) -> String {
    format!(
        "{} unit(s), {} finding(s), {} error(s)",
        summary.units, summary.findings, summary.errors
    )
}

/// The next line of `-i` input; never, once there is none.
async fn next_input(input: &mut Option<mpsc::Receiver<input::Item>>) -> Option<input::Item> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What the addresses of a name given as `host:port` are scanned on: the
/// ports it was given with, and the scan's ports too when the name was also
/// given bare. Names given only bare have no pin (the scan's ports apply),
/// so a file of a million names keeps none.
#[derive(Debug, Default)]
struct Pin {
    /// The ports of its `host:port` targets.
    ports: Vec<u16>,
    /// The ports its addresses have been routed with so far.
    routed: Vec<(u16, u16)>,
}

/// Pins by name.
type Pins = HashMap<String, Pin>;

/// The ports of `pin`, with the scan's `scan_ports` when the name was given
/// bare too: merged, ascending ranges.
fn pin_ports(pin: &Pin, bare: bool, scan_ports: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut ports = PortBits::default();
    for &p in &pin.ports {
        ports.insert(p, p);
    }
    if bare {
        for &(a, b) in scan_ports {
            ports.insert(a, b);
        }
    }
    ports.ranges()
}

/// A set of ports as bits (8 KiB): unions and differences of port lists
/// without range arithmetic. Used only when a pin changes.
struct PortBits(Box<[u64; 1024]>);

impl Default for PortBits {
    fn default() -> Self {
        PortBits(Box::new([0; 1024]))
    }
}

impl PortBits {
    fn insert(&mut self, first: u16, last: u16) {
        for p in first..=last {
            self.0[usize::from(p / 64)] |= 1 << (p % 64);
        }
    }

    fn remove(&mut self, first: u16, last: u16) {
        for p in first..=last {
            self.0[usize::from(p / 64)] &= !(1 << (p % 64));
        }
    }

    fn contains(&self, p: u16) -> bool {
        self.0[usize::from(p / 64)] & (1 << (p % 64)) != 0
    }

    fn ranges(&self) -> Vec<(u16, u16)> {
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for p in 1..=u16::MAX {
            if !self.contains(p) {
                continue;
            }
            match ranges.last_mut() {
                Some(last) if last.1 + 1 == p => last.1 = p,
                _ => ranges.push((p, p)),
            }
        }
        ranges
    }
}

/// The ports of `new` that are not in `old`.
fn ports_minus(new: &[(u16, u16)], old: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut bits = PortBits::default();
    for &(a, b) in new {
        bits.insert(a, b);
    }
    for &(a, b) in old {
        bits.remove(a, b);
    }
    bits.ranges()
}

/// Where subjects go: the plugins' filters, what was already scanned, what
/// lies outside the scope, and the units ready to start.
struct Routing<'r> {
    router: Router<'r>,
    scope: &'r Scope,
    /// Units already queued, keyed so none runs twice.
    seen: HashSet<(String, SubjectKey)>,
    /// Out-of-scope subjects already reported, so each is written once.
    outside: HashSet<SubjectKey>,
    /// The scan's ports (`-p`), for pins of names also given bare.
    scan_ports: &'r [(u16, u16)],
    /// Out-of-scope subjects found by each running unit, by the number its
    /// events carry: written as one record when the unit ends.
    outside_found: HashMap<u64, (Arc<PluginId>, Vec<Subject>)>,
    ready: VecDeque<Unit>,
    /// Ports of `host:port` targets on names, for the addresses the names
    /// resolve to.
    pins: Pins,
    /// The addresses derived for each name so far that a plugin consumes,
    /// so that a pin that arrives later (a `NAME:PORT` line after the name
    /// was given bare and resolved) tops them up. About 90 bytes a name,
    /// beside the units `seen` keeps for the same addresses.
    addresses: HashMap<Box<str>, Box<[IpAddr]>>,
    /// The result store's journal, if the scan has one.
    journal: Option<&'r Journal>,
    /// The journal key of each running unit, by the number its events
    /// carry.
    inflight: HashMap<u64, (Arc<str>, Subject)>,
}

impl Routing<'_> {
    /// Queue the units of a target.
    fn start(&mut self, start: Start, summary: &mut Summary, progress: &ProgressBar) {
        summary.targets += 1;
        progress.inc(1);
        if let Subject::Host(name) = &start.subject {
            self.pin(name, start.pin, summary);
        }
        let ports: Option<Arc<[(u16, u16)]>> = start.ports.map(Arc::from);
        // Names are few: remember them, so a plugin that finds one again (a
        // certificate's SAN) does not start it over. Addresses are too many
        // to remember; a found address that is a target is skipped in
        // `handle` instead.
        let seen = matches!(start.subject, Subject::Host(_)).then_some(&mut self.seen);
        self.router.route(
            &start.subject,
            ports.as_ref(),
            &mut self.ready,
            seen,
            summary,
        );
    }

    /// Take one line's worth of `-i` input.
    fn take(&mut self, item: input::Item, summary: &mut Summary, progress: &ProgressBar) {
        match item {
            Ok(start) => self.start(start, summary, progress),
            Err(e) => {
                tracing::warn!("input {e}; skipped");
                summary.bad_lines += 1;
                if summary.input_errors.len() < 10 {
                    summary.input_errors.push(e.to_string());
                }
            }
        }
    }

    /// Write a finding; route an emitted subject, or report it once when it
    /// is outside the scope. Both are journaled under the unit that sent
    /// them.
    fn handle(
        &mut self,
        event: Event,
        sink: &mut dyn Sink,
        summary: &mut Summary,
    ) -> Result<(), ScanError> {
        match event {
            Event::Finding {
                unit,
                plugin,
                finding,
            } => {
                summary.findings += 1;
                summary
                    .plugins
                    .entry(plugin.name.clone())
                    .or_default()
                    .findings += 1;
                let record = Record::finding(&plugin, finding);
                sink.write(&record)?;
                if let (Some(journal), Some((key, _))) = (self.journal, self.inflight.get(&unit)) {
                    journal.record(key, &record)?;
                }
            }
            Event::Subject {
                unit,
                plugin,
                subject,
            } => {
                let in_scope = match &subject {
                    Subject::Host(name) => self.scope.contains_name(name),
                    other => other.ip().is_some_and(|ip| self.scope.contains(ip)),
                };
                let journal = self
                    .journal
                    .zip(self.inflight.get(&unit).map(|(key, _)| key));
                if !in_scope {
                    summary.out_of_scope += 1;
                    if self.outside.insert(subject.key()) {
                        tracing::info!(plugin = %plugin.name, %subject, "subject outside the scan's scope; reported, not scanned");
                        if let Some((journal, key)) = journal {
                            journal.emitted(key, &subject, true)?;
                        }
                        // Written as one record when the unit ends.
                        self.outside_found
                            .entry(unit)
                            .or_insert_with(|| (plugin.clone(), Vec::new()))
                            .1
                            .push(subject);
                    }
                    return Ok(());
                }
                // A bare address the user listed is visited by the target
                // sweep already.
                if self.is_swept(&subject) {
                    return Ok(());
                }
                if let Some((journal, key)) = journal {
                    journal.emitted(key, &subject, false)?;
                }
                self.derive(subject, summary);
            }
        }
        Ok(())
    }

    /// Whether `subject` is a bare address the user listed: the target
    /// sweep visits it already.
    fn is_swept(&self, subject: &Subject) -> bool {
        matches!(subject, Subject::Address { ip, host: None } if self.scope.is_target(*ip))
    }

    /// Write the out-of-scope records of units that did not finish.
    fn write_outside_of_unfinished(&mut self, sink: &mut dyn Sink) -> Result<(), ScanError> {
        let mut left: Vec<_> = self.outside_found.drain().collect();
        left.sort_by_key(|(unit, _)| *unit);
        for (unit, (plugin, outside)) in left {
            let Some((key, subject)) = self.inflight.get(&unit) else {
                continue;
            };
            let record = Record::out_of_scope(&plugin, subject, &outside);
            sink.write(&record)?;
            if let Some(journal) = self.journal {
                journal.record(key, &record)?;
            }
        }
        Ok(())
    }

    /// Take in that `name` was given with `port` (or bare, `None`). When
    /// that widens the ports its addresses are scanned on, the addresses
    /// already derived for it are routed again on the new ports only: a
    /// line `a.test` after `a.test:443` adds the scan's ports to a.test's
    /// addresses, even when its DNS unit has already run.
    fn pin(&mut self, name: &str, port: Option<u16>, summary: &mut Summary) {
        let addresses = self.addresses.get(name);
        let pin = match (port, self.pins.get_mut(name)) {
            (None, None) => return,
            (_, Some(pin)) => pin,
            (Some(_), None) => self.pins.entry(name.to_string()).or_insert_with(|| Pin {
                ports: Vec::new(),
                // Addresses derived before the name had a pin were routed
                // with the scan's ports.
                routed: match addresses {
                    Some(_) => self.scan_ports.to_vec(),
                    None => Vec::new(),
                },
            }),
        };
        if let Some(port) = port
            && !pin.ports.contains(&port)
        {
            pin.ports.push(port);
        }
        let bare = port.is_none() || self.scope.given_bare(name);
        let ports = pin_ports(pin, bare, self.scan_ports);
        let added = ports_minus(&ports, &pin.routed);
        if added.is_empty() {
            return;
        }
        pin.routed = ports;
        let added: Arc<[(u16, u16)]> = added.into();
        for &ip in addresses.into_iter().flatten() {
            let subject = Subject::Address {
                ip,
                host: Some(name.to_string()),
            };
            // Not deduplicated against `seen`: these ports are new to it.
            self.router
                .route(&subject, Some(&added), &mut self.ready, None, summary);
        }
    }

    /// Queue the units of an in-scope subject a plugin emitted (one the
    /// target sweep does not visit: emitted subjects are journaled only
    /// then, so those a resume routes again are such subjects too).
    fn derive(&mut self, subject: Subject, summary: &mut Summary) {
        // The addresses of a name given as host:port get its ports.
        let ports = match &subject {
            Subject::Address {
                host: Some(name), ..
            } => self
                .pins
                .get(name)
                .map(|pin| Arc::from(pin.routed.as_slice())),
            _ => None,
        };
        let consumed = self.router.route(
            &subject,
            ports.as_ref(),
            &mut self.ready,
            Some(&mut self.seen),
            summary,
        );
        // Remembered for a later pin only when some plugin scans it: with
        // none (a DNS-only scan), a pin would route it to none either.
        if let (
            true,
            Subject::Address {
                host: Some(name),
                ip,
            },
        ) = (consumed, &subject)
        {
            // Rarely more than a few: a boxed slice, not a Vec's spare
            // capacity.
            match self.addresses.get_mut(name.as_str()) {
                Some(known) if known.contains(ip) => {}
                Some(known) => *known = known.iter().copied().chain([*ip]).collect(),
                None => {
                    self.addresses.insert(name.as_str().into(), Box::new([*ip]));
                }
            }
        }
    }
}

/// Run one plugin on one subject (`wscan plugin run`): findings, emitted
/// subjects and a failure, if any, all go to `sink`; nothing is routed on.
/// The scope is the subject's own address.
pub async fn run_one(
    spec: &ScanSpec,
    engine: Arc<Engine>,
    plugin: Arc<crate::engine::LoadedPlugin>,
    subject: Subject,
    sink: &mut dyn Sink,
) -> Result<Summary, ScanError> {
    let started = Instant::now();
    let (scope, scan) = spec.context();
    let scan_stats = scan.tcp.gate().stats().clone();
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(1024);
    let options = spec.call_options(&plugin.info.name, None, 0);
    let id = plugin.id().clone();
    let call_subject = subject.clone();
    let mut call = tokio::spawn(async move {
        plugin
            .scan(&engine, scan, events_tx, &call_subject, &options)
            .await
    });
    let mut summary = Summary {
        units: 1,
        ..Summary::default()
    };
    let mut write = |event: Event, summary: &mut Summary| -> Result<(), ScanError> {
        match event {
            Event::Finding {
                plugin, finding, ..
            } => {
                summary.findings += 1;
                sink.write(&Record::finding(&plugin, finding))?;
            }
            Event::Subject {
                plugin, subject, ..
            } => sink.write(&Record::subject(&plugin, &subject))?,
        }
        Ok(())
    };
    let result = loop {
        tokio::select! {
            Some(event) = events_rx.recv() => write(event, &mut summary)?,
            joined = &mut call => break joined,
        }
    };
    // The call's sender is gone with it: what is left in the channel is all.
    while let Some(event) = events_rx.recv().await {
        write(event, &mut summary)?;
    }
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(format!("host task failed: {e}")),
    };
    if let Some(error) = failure {
        summary.errors += 1;
        sink.write(&Record::error(&id, &subject, error))?;
    }
    sink.finish()?;
    summary.denied = scope.denied();
    summary.net = NetTotals::from(scan_stats.as_ref());
    summary.elapsed = started.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_add_the_scans_ports_when_the_name_was_also_given_bare() {
        let pin = Pin {
            ports: vec![443, 8443],
            ..Pin::default()
        };
        let scan = [(1, 100), (443, 443)];
        assert_eq!(pin_ports(&pin, false, &scan), [(443, 443), (8443, 8443)]);
        assert_eq!(
            pin_ports(&pin, true, &scan),
            [(1, 100), (443, 443), (8443, 8443)]
        );
        assert_eq!(
            ports_minus(
                &[(1, 100), (443, 443), (8443, 8443)],
                &[(443, 443), (50, 60)]
            ),
            [(1, 49), (61, 100), (8443, 8443)]
        );
        assert_eq!(ports_minus(&[(1, 65535)], &[(1, 65535)]), []);
        assert_eq!(ports_minus(&[(65535, 65535)], &[]), [(65535, 65535)]);
    }

    /// Journal keys are stable text: a resumed scan finds its units by them.
    #[test]
    fn unit_keys_name_plugin_subject_and_ports() {
        let address = Subject::Address {
            ip: "127.0.0.1".parse().unwrap(),
            host: Some("www.test".into()),
        };
        assert_eq!(unit_key("port", &address, None), "port address 127.0.0.1");
        assert_eq!(
            unit_key("port", &address, Some(&[(80, 80), (8000, 8100)])),
            "port address 127.0.0.1 ports 80,8000-8100"
        );
        let service = Subject::Service(crate::model::Service {
            ip: "::1".parse().unwrap(),
            port: 443,
            host: None,
            name: Some("https".into()),
            banner: None,
            tls: false,
        });
        assert_eq!(unit_key("tls", &service, None), "tls service [::1]:443");
        assert_eq!(
            unit_key("dns", &Subject::Host("WWW.Test".into()), None),
            "dns host www.test"
        );
    }
}
