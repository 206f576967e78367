//! The scheduler: turns targets into units of work (one plugin, one
//! subject), runs them with bounded parallelism, routes the subjects that
//! plugins emit to the plugins that consume them, and hands every record to
//! the sink as it arrives.
//!
//! Targets are pulled lazily, only when a slot is free, so the pending work
//! stays small whatever the size of the target list.
//!
//! - [`spec`]: what a scan is ([`ScanSpec`]);
//! - [`input`]: `-i` lines, read on a thread as the scan takes them;
//! - `route`: the units of each subject, and the books every record goes
//!   through;
//! - this module: the loop that starts units, waits on them and takes in
//!   what they send.

mod batch;
pub mod input;
mod route;
pub mod spec;
mod summary;

pub use batch::MAX_BATCH;
pub use spec::ScanSpec;
pub use summary::{ClusterTotals, NetTotals, PluginStats, Summary, WorkerTotals};

use crate::engine::registry::Registry;
use crate::engine::{Engine, Event, ScanContext};
use crate::model::Subject;
use crate::output::{Record, Sink};
use crate::store::{Journal, Resumed, StoreError};
use indicatif::ProgressBar;
use input::{InputSource, Start};
use route::ScanState;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

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

/// The result store's part in a scan: the journal every record and
/// completed unit goes to, and what earlier runs of the scan did.
pub struct Durable {
    /// Where this run's records and completed units are written.
    pub journal: Journal,
    /// What earlier runs left (empty for a new scan).
    pub resumed: Resumed,
}

/// Run `spec` with the plugins of `registry`, writing every record to
/// `sink`. `progress` counts units finished out of the units known (the
/// targets not taken yet count one each; a hidden bar
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
    let (journal, resumed) = match durable {
        Some(d) => (Some(d.journal), d.resumed),
        None => (None, Resumed::default()),
    };
    let (singles, space) = spec.starts();
    progress.set_length(
        u64::try_from(space.count())
            .unwrap_or(u64::MAX)
            .saturating_add(singles.len() as u64),
    );
    // Names and single ports first: there are few, and each may lead to
    // many units.
    let starts = singles.into_iter().chain(
        space
            .iter()
            .map(|ip| Start::new(Subject::Address { ip, host: None })),
    );
    let (input, reader) = open_input(spec, &scope)?;
    let tracker = engine
        .metrics()
        .scan_started(scan.tcp.gate().stats().clone(), scope.clone());
    let state = ScanState::new(
        spec,
        &registry,
        &scope,
        journal.as_ref(),
        resumed,
        engine.metrics().clone(),
    );
    let (events_tx, events) = mpsc::channel::<Event>(1024);
    let mut scan = Scan {
        spec,
        engine,
        registry: &registry,
        context: scan,
        state,
        starts: Box::new(starts),
        starts_done: false,
        input,
        running: JoinSet::new(),
        batches: HashMap::new(),
        caps: HashMap::new(),
        again: VecDeque::new(),
        events_tx,
        events,
        next_unit: 0,
        progress,
    };
    scan.run(sink, stop).await?;
    let net = NetTotals::from(scan.context.tcp.gate().stats().as_ref());
    let input = scan.input.take();
    let mut summary = std::mem::take(&mut scan.state.summary);
    drop(scan);
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
    if let Some(journal) = journal {
        journal.close()?;
    }
    progress.finish_and_clear();
    summary.denied = scope.denied();
    summary.net = net;
    summary.elapsed = started.elapsed();
    tracker.end(match summary.interrupted {
        true => "interrupted",
        false => "completed",
    });
    Ok(summary)
}

/// How long the scheduler lets events gather after one arrives, while
/// calls run (see [`Scan::run`]).
const SETTLE: std::time::Duration = std::time::Duration::from_millis(1);

/// The thread reading `-i` lines, and the file it reads.
type Reader<'s> = Option<(&'s InputSource, JoinHandle<std::io::Result<()>>)>;

/// Start reading `spec`'s `-i` lines on a thread: the channel they come on.
fn open_input<'s>(
    spec: &'s ScanSpec,
    scope: &Arc<crate::scope::Scope>,
) -> Result<(Option<mpsc::Receiver<input::Item>>, Reader<'s>), ScanError> {
    let Some(source) = &spec.input else {
        return Ok((None, None));
    };
    let file = source.open().map_err(|e| ScanError::Input {
        from: source.to_string(),
        error: e,
    })?;
    let (tx, rx) = mpsc::channel(256);
    let thread = input::stream(file, spec.expander(), scope.clone(), tx);
    Ok((Some(rx), Some((source, thread))))
}

/// The ports of a `host:port` target's units, instead of the scan's.
type Ports = Option<Arc<[(u16, u16)]>>;

/// Subjects of a failed batch, to run again alone: the plugin, the ports
/// of its call, and each unit's number and subject.
type Again = (String, Ports, Vec<(u64, Subject)>);

/// One run of a scan: its books, where targets come from, and the batches
/// running.
struct Scan<'s> {
    spec: &'s ScanSpec,
    engine: Arc<Engine>,
    registry: &'s Registry,
    context: Arc<ScanContext>,
    state: ScanState<'s>,
    /// The command line's targets, in order.
    starts: Box<dyn Iterator<Item = Start> + Send + 's>,
    /// Whether `starts` has given all it had.
    starts_done: bool,
    /// Lines of `-i`, until there are none.
    input: Option<mpsc::Receiver<input::Item>>,
    /// Plugin calls, each on a batch of units; each returns the units to
    /// run again alone.
    running: JoinSet<Again>,
    /// The units of each running call, for a call lost to a host panic.
    batches: HashMap<tokio::task::Id, Vec<u64>>,
    /// Batch sizes lowered, by plugin, after batches of it failed.
    caps: HashMap<String, usize>,
    /// Units of failed batches, each to run in an instance of its own
    /// before anything new starts.
    again: VecDeque<(String, Ports, u64, Subject)>,
    events_tx: mpsc::Sender<Event>,
    /// What running units send: findings, subjects, and their ends.
    events: mpsc::Receiver<Event>,
    next_unit: u64,
    progress: &'s ProgressBar,
}

impl Scan<'_> {
    /// Start units and take in what they send until there is nothing left
    /// to do, or `stop` completes (then running units are cut short and
    /// what they sent is kept).
    async fn run(
        &mut self,
        sink: &mut dyn Sink,
        stop: impl Future<Output = ()>,
    ) -> Result<(), ScanError> {
        let mut stop = std::pin::pin!(stop);
        let mut settle = false;
        loop {
            // After an event, while calls run, let the next ones gather
            // before taking them in: a sweep's calls end thousands of
            // units a second, and a loop woken for each (a thread parked
            // and woken, on both sides of the channel) costs more CPU
            // than the units. A millisecond is far below what a unit
            // takes, and the channel holds a millisecond's events many
            // times over.
            if std::mem::take(&mut settle) && !self.running.is_empty() {
                tokio::select! {
                    () = tokio::time::sleep(SETTLE) => {}
                    () = &mut stop => {
                        self.cut_short(sink).await?;
                        break;
                    }
                }
                self.state.drain(&mut self.events, sink, self.progress)?;
            }
            self.fill();
            if self.running.is_empty() {
                // Events sent by the last units may still sit in the
                // channel.
                if self.state.drain(&mut self.events, sink, self.progress)?
                    || !self.state.ready.is_empty()
                    || !self.again.is_empty()
                {
                    continue;
                }
                // Nothing to do but wait for the next line of input.
                if self.input.is_none() {
                    break;
                }
                tokio::select! {
                    item = next_input(&mut self.input) => self.take(item),
                    () = &mut stop => {
                        self.state.summary.interrupted = true;
                        break;
                    }
                }
                continue;
            }
            let wants_input = self.state.ready.is_empty() && self.has_room();
            let blocked = self.context.blocked.clone();
            tokio::select! {
                Some(event) = self.events.recv() => {
                    self.state.handle(event, sink, self.progress)?;
                    settle = true;
                }
                // Every call may now wait for a derived subject's place:
                // `fill` sees whether to start more.
                () = blocked.notify.notified() => {}
                item = next_input(&mut self.input), if wants_input && self.input.is_some() => {
                    self.take(item)
                }
                () = &mut stop => {
                    self.cut_short(sink).await?;
                    break;
                }
                Some(joined) = self.running.join_next_with_id() => {
                    // Every event of the call was sent before it returned.
                    self.state.drain(&mut self.events, sink, self.progress)?;
                    match joined {
                        Ok((id, (plugin, ports, again))) => {
                            let size = self.batches.remove(&id).map_or(0, |units| units.len());
                            if !again.is_empty() {
                                self.shrink(&plugin, size);
                            }
                            self.again.extend(
                                again
                                    .into_iter()
                                    .map(|(unit, subject)| (plugin.clone(), ports.clone(), unit, subject)),
                            );
                        }
                        // A panic in host code: a bug, but the scan goes on.
                        // Its units not ended are not marked done: a resume
                        // runs them again.
                        Err(e) => {
                            tracing::error!("a scan task failed: {e}");
                            for unit in self.batches.remove(&e.id()).unwrap_or_default() {
                                self.state.abandon(unit, self.progress);
                                self.state.summary.errors += 1;
                            }
                        }
                    }
                }
            }
        }
        self.state.write_outside_of_unfinished(sink)
    }

    /// Stopped: cut the running units short. What they reported is
    /// written (and kept in the store, until a resume runs them again),
    /// but they are not marked done.
    async fn cut_short(&mut self, sink: &mut dyn Sink) -> Result<(), ScanError> {
        self.state.summary.interrupted = true;
        self.running.abort_all();
        while self.running.join_next().await.is_some() {}
        self.state.drain(&mut self.events, sink, self.progress)?;
        Ok(())
    }

    /// Halve the batches of `plugin` after one of `size` failed: a plugin
    /// that traps or runs out of memory now and then loses less to each
    /// failure (its unfinished subjects run again alone), down to one
    /// subject an instance.
    fn shrink(&mut self, plugin: &str, size: usize) {
        let cap = self
            .caps
            .entry(plugin.to_string())
            .or_insert(self.spec.batch);
        let lower = (size / 2).clamp(1, *cap);
        if lower < *cap {
            tracing::info!(%plugin, batch = lower, "a batch failed; the plugin's batches are smaller from now on");
            *cap = lower;
        }
    }

    /// Whether every running call waits for a place for a derived subject
    /// while queued units could free some: then only starting those can
    /// move the scan on (plugins that emit faster than their subjects run
    /// would otherwise wait on each other forever).
    fn jammed(&self) -> bool {
        let running = self.running.len();
        running > 0 && !self.state.ready.is_empty() && self.context.blocked.count() >= running
    }

    /// Whether an instance is free: under `--parallel`, or, jammed, a few
    /// more (up to twice `--parallel`, within the instance pool).
    fn instance_free(&self) -> bool {
        let (running, parallel) = (self.running.len(), self.spec.parallel.max(1));
        let most =
            (parallel + parallel.max(4)).min(crate::engine::limits::MAX_INSTANCES as usize - 64);
        running < parallel || (running < most && self.jammed())
    }

    /// Whether new work may start: an instance is free, and the work in
    /// flight is within the scan's budget.
    fn has_room(&self) -> bool {
        self.running.len() < self.spec.parallel.max(1) && self.state.weight < self.spec.budget()
    }

    /// Start calls while there is room: units of failed batches first
    /// (alone; they count in the budget already), then batches of what
    /// waits, topped up from the next targets and lines of input until it
    /// fills the budget.
    fn fill(&mut self) {
        while self.instance_free() {
            if let Some((plugin, ports, unit, subject)) = self.again.pop_front() {
                self.spawn(plugin, ports, vec![(unit, subject)]);
                continue;
            }
            // Jammed, queued units start whatever the budget, and no new
            // target is taken.
            let jammed = self.jammed();
            if !jammed && !self.has_room() {
                break;
            }
            let mut room = self.spec.budget().saturating_sub(self.state.weight).max(1);
            if jammed {
                // Each unit started frees its subject's place: a batch of
                // one would let a waiting plugin emit one more subject.
                room = room.max(self.spec.budget() / 4);
            }
            while !jammed && self.state.ready.weight() < room && self.pull() {}
            // While calls run, a new one waits until a quarter of the
            // budget is free: starting one as each unit ends would give
            // every instance a batch of one. Nothing running, or nothing
            // more to come, it starts with what there is.
            let tail = self.starts_done && self.input.is_none();
            if !jammed
                && room < (self.spec.budget() / 4).max(1)
                && !self.running.is_empty()
                && !tail
            {
                break;
            }
            let free = self
                .spec
                .parallel
                .max(1)
                .saturating_sub(self.running.len())
                .max(1);
            let (caps, most) = (&self.caps, self.spec.batch);
            let cap = |plugin: &str| caps.get(plugin).copied().unwrap_or(most);
            let Some(batch) = self.state.ready.take(free, room, cap) else {
                break;
            };
            let (plugin, ports) = (batch[0].plugin.clone(), batch[0].ports.clone());
            // Unloaded while its units waited: they are dropped before they
            // start (`spawn` checks again, for units run again, which have).
            if self.registry.get(&plugin).is_none() {
                tracing::debug!(%plugin, units = batch.len(), "plugin no longer in use; units dropped");
                self.progress.inc(batch.len() as u64);
                continue;
            }
            let tasks = batch
                .into_iter()
                .map(|unit| {
                    self.next_unit += 1;
                    (self.next_unit, self.state.started(self.next_unit, unit))
                })
                .collect();
            self.spawn(plugin, ports, tasks);
        }
    }

    /// Take the next target, or a line of input already read; whether
    /// there was one.
    fn pull(&mut self) -> bool {
        if !self.starts_done {
            match self.starts.next() {
                Some(start) => {
                    self.state.start(start, true, self.progress);
                    return true;
                }
                None => self.starts_done = true,
            }
        }
        match self.input.as_mut().map(|rx| rx.try_recv()) {
            Some(Ok(item)) => {
                self.state.take(item, self.progress);
                true
            }
            Some(Err(mpsc::error::TryRecvError::Disconnected)) => {
                self.input = None;
                false
            }
            Some(Err(mpsc::error::TryRecvError::Empty)) | None => false,
        }
    }

    /// A line of input, or its end.
    fn take(&mut self, item: Option<input::Item>) {
        match item {
            Some(item) => self.state.take(item, self.progress),
            None => self.input = None,
        }
    }

    /// Start one call of `plugin` on `tasks` (units already started), with
    /// `ports` (those of a `host:port` target) or the scan's. When the
    /// plugin is no longer in use, the units are abandoned.
    fn spawn(&mut self, plugin: String, ports: Ports, tasks: Vec<(u64, Subject)>) {
        let Some(loaded) = self.registry.get(&plugin) else {
            tracing::debug!(%plugin, "plugin no longer in use; units abandoned");
            for (unit, _) in tasks {
                self.state.abandon(unit, self.progress);
            }
            return;
        };
        let options = self.spec.call_options(&plugin, ports.as_deref());
        let units = tasks.iter().map(|(unit, _)| *unit).collect();
        let (engine, scan, events) = (
            self.engine.clone(),
            self.context.clone(),
            self.events_tx.clone(),
        );
        let handle = self.running.spawn(async move {
            let again = loaded.scan(&engine, scan, events, tasks, &options).await;
            (plugin, ports, again)
        });
        self.batches.insert(handle.id(), units);
    }
}

/// The next line of `-i` input; never, once there is none.
async fn next_input(input: &mut Option<mpsc::Receiver<input::Item>>) -> Option<input::Item> {
    match input {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
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
    tape: Option<Arc<crate::engine::tape::Tape>>,
    sink: &mut dyn Sink,
) -> Result<Summary, ScanError> {
    let started = Instant::now();
    let (scope, scan) = spec.context_with(tape);
    let scan_stats = scan.tcp.gate().stats().clone();
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(1024);
    let options = spec.call_options(&plugin.info.name, None);
    let id = plugin.id().clone();
    let call_subject = subject.clone();
    let mut call = tokio::spawn(async move {
        plugin
            .scan(&engine, scan, events_tx, vec![(0, call_subject)], &options)
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
            Event::Done {
                plugin,
                result: Err(e),
                ..
            } => {
                summary.errors += 1;
                sink.write(&Record::error(&plugin, &subject, e.to_string()))?;
            }
            Event::Done { .. } => {}
        }
        Ok(())
    };
    let joined = loop {
        tokio::select! {
            Some(event) = events_rx.recv() => write(event, &mut summary)?,
            joined = &mut call => break joined,
        }
    };
    // The call's sender is gone with it: what is left in the channel is all.
    while let Some(event) = events_rx.recv().await {
        write(event, &mut summary)?;
    }
    if let Err(e) = joined {
        summary.errors += 1;
        sink.write(&Record::error(
            &id,
            &subject,
            format!("host task failed: {e}"),
        ))?;
    }
    sink.finish()?;
    summary.denied = scope.denied();
    summary.net = NetTotals::from(scan_stats.as_ref());
    summary.elapsed = started.elapsed();
    Ok(summary)
}
