//! The worker: `wscan worker --redis URL`. It joins the workers' group,
//! takes one item at a time (a lost worker's first, then new ones), runs it
//! with its own engine and limits, sends each unit as it ends, and
//! acknowledges the item only after everything it found is on the results
//! stream.

use super::{
    ClusterError, DEAD, GROUP, Item, ItemTotals, Message, Meta, UnitResult, WORK, failures_key,
    meta_key, plugin_key, results_key,
};
use crate::engine::registry::Registry;
use crate::engine::{Engine, LoadedPlugin};
use crate::model::PluginInfo;
use crate::output::{Record, Sink};
use crate::primitives::tls::TlsCore;
use crate::scheduler::spec::Gathered;
use crate::scheduler::{Durable, ScanSpec, Summary};
use crate::store::Resumed;
use crate::store::journal::{Journal, Op};
use indicatif::ProgressBar;
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Redis.
    pub redis: super::Endpoint,
    /// Its name in the group (unique per worker).
    pub name: String,
    /// How long an item may go without a heartbeat before another worker
    /// takes it (`--lease`).
    pub lease: Duration,
    /// Where components fetched from Redis are kept, by digest.
    pub dir: PathBuf,
    /// Limits that replace the scan's, where given.
    pub limits: Overrides,
}

/// The worker's own limits (`--concurrency`...): each replaces the scan's
/// where given, since a scan's limits say what one machine may do.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Operations in flight.
    pub concurrency: Option<usize>,
    /// Operations in flight against one address.
    pub host_concurrency: Option<usize>,
    /// Operations per second.
    pub rate: Option<f64>,
    /// Plugin instances at once.
    pub parallel: Option<usize>,
}

/// Turns a scan's command line into its spec, as `wscan scan` does: the
/// CLI's parser, handed in so this module does not depend on it.
pub type Resolve =
    dyn Fn(&[String], &[&PluginInfo], Gathered) -> Result<ScanSpec, String> + Send + Sync;

/// How often a worker tells Redis it still holds its item. Any lease of
/// 3 s or more outlasts a few missed heartbeats.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Deliveries before a dead letter when the scan does not say.
const DEFAULT_DELIVERIES: u32 = 3;

/// Scans a worker keeps resolved (their plugins loaded).
const PREPARED: usize = 8;

/// A scan made ready to run items of.
struct Prepared {
    spec: ScanSpec,
    registry: Arc<Registry>,
    /// The plugins it was prepared with.
    plugins: Vec<super::Shipped>,
}

/// Take and run items until `stop` completes. Fails only when Redis
/// cannot be reached at the start (a wrong URL or password); later
/// outages are waited out.
pub async fn run(
    options: Options,
    engine: Arc<Engine>,
    resolve: &Resolve,
    stop: impl Future<Output = ()>,
) -> Result<(), ClusterError> {
    let mut conn = super::connect(&options.redis).await?;
    let reader = super::connect(&options.redis).await?;
    super::ensure_group(&mut conn)
        .await
        .map_err(|error| ClusterError::Redis {
            url: options.redis.shown(),
            error,
        })?;
    std::fs::create_dir_all(&options.dir).map_err(|e| ClusterError::Plugin {
        name: "(all)".into(),
        error: format!("cannot create {}: {e}", options.dir.display()),
    })?;
    eprintln!(
        "wscan: worker {} joined {}; waiting for work",
        options.name,
        options.redis.shown()
    );
    let (stopped_tx, stopped) = watch::channel(false);
    let mut worker = Worker {
        options,
        engine,
        resolve,
        conn,
        reader,
        prepared: HashMap::new(),
        stopped,
        cursor: "0-0".into(),
    };
    let mut stop = std::pin::pin!(stop);
    loop {
        let entry = tokio::select! {
            entry = worker.next() => entry,
            () = &mut stop => break,
        };
        let Some(entry) = entry else { continue };
        // Stopping cuts the item short: it is left to another worker.
        let handled = worker.handle(entry);
        tokio::select! {
            () = handled => {}
            () = &mut stop => {
                let _ = stopped_tx.send(true);
                break;
            }
        }
    }
    let _ = stopped_tx.send(true);
    eprintln!("wscan: worker {} stopped", worker.options.name);
    Ok(())
}

struct Worker<'r> {
    options: Options,
    engine: Arc<Engine>,
    resolve: &'r Resolve,
    /// Commands.
    conn: ConnectionManager,
    /// Blocking reads (a blocked connection holds everything behind it).
    reader: ConnectionManager,
    prepared: HashMap<String, Arc<Prepared>>,
    stopped: watch::Receiver<bool>,
    /// Where the next look for a lost worker's items starts (XAUTOCLAIM
    /// looks at a few pending entries a call).
    cursor: String,
}

impl Worker<'_> {
    /// The next item: one a lost worker held past the lease, or a new
    /// one (waiting a second for it). `None` when there is none, or Redis
    /// is away (after a pause, so a restart is waited out).
    async fn next(&mut self) -> Option<StreamId> {
        let lease = self.options.lease.as_millis() as u64;
        let claimed: redis::RedisResult<StreamAutoClaimReply> = redis::cmd("XAUTOCLAIM")
            .arg(WORK)
            .arg(GROUP)
            .arg(&self.options.name)
            .arg(lease)
            .arg(&self.cursor)
            .arg("COUNT")
            .arg(1)
            .query_async(&mut self.conn)
            .await;
        match claimed {
            Ok(reply) => {
                self.cursor = reply.next_stream_id.clone();
                if let Some(entry) = reply.claimed.into_iter().find(|e| !e.map.is_empty()) {
                    tracing::info!("took over item {} (its worker was lost)", entry.id);
                    return Some(entry);
                }
            }
            Err(e) => return self.pause(e).await,
        }
        let read: redis::RedisResult<Option<StreamReadReply>> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.options.name)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(super::BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(WORK)
            .arg(">")
            .query_async(&mut self.reader)
            .await;
        match read {
            Ok(reply) => reply?.keys.into_iter().flat_map(|k| k.ids).next(),
            Err(e) => self.pause(e).await,
        }
    }

    /// After a failed read: say so, wait, and make sure the group is
    /// there (a restarted Redis without persistence has lost it).
    async fn pause(&mut self, e: redis::RedisError) -> Option<StreamId> {
        tracing::warn!("Redis: {e}; trying again in 1s");
        eprintln!(
            "wscan: worker {}: Redis: {e}; trying again",
            self.options.name
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = super::ensure_group(&mut self.conn).await;
        None
    }

    /// Run one item, or route it to the dead letters, or drop it (its scan
    /// is gone). An item that fails is left pending: after the lease,
    /// some worker takes it again.
    async fn handle(&mut self, entry: StreamId) {
        let id = entry.id.clone();
        let item: Item = match super::field(&entry, "m").map(|m| serde_json::from_str(&m)) {
            Some(Ok(item)) => item,
            _ => {
                tracing::warn!("dropped {id} on {WORK}: not a wscan work item");
                self.finish(&id, None).await;
                return;
            }
        };
        // Redis away: the item stays pending, and comes back.
        let Some(meta) = self
            .command::<Option<String>, _>(redis::cmd("GET").arg(meta_key(&item.scan)))
            .await
        else {
            return;
        };
        let Some(meta) = meta else {
            tracing::info!(
                "dropped item {} of scan {}: the scan is over or withdrawn",
                item.item,
                item.scan
            );
            self.finish(&id, Some(&item)).await;
            return;
        };
        let deliveries = self.deliveries(&id).await;
        let meta = match serde_json::from_str::<Meta>(&meta) {
            Ok(meta) => meta,
            Err(e) => {
                // Another wscan's scan: it fails here every time, and
                // after the usual deliveries it is a dead letter.
                if deliveries > u64::from(DEFAULT_DELIVERIES) {
                    self.bury(&id, &item, deliveries).await;
                } else {
                    let error = format!(
                        "this worker cannot read the scan's description (another wscan version?): {e}"
                    );
                    self.failed(&item, &error).await;
                }
                return;
            }
        };
        if deliveries > u64::from(meta.max_deliveries) {
            self.bury(&id, &item, deliveries).await;
            return;
        }
        let prepared = match self.prepare(&item.scan, &meta).await {
            Ok(prepared) => prepared,
            Err(error) => return self.failed(&item, &error).await,
        };
        let earlier = match deliveries {
            1 => Resumed::default(),
            _ => self.earlier(&item).await,
        };
        let started = Instant::now();
        match self.run_item(&prepared, &item, &id, earlier).await {
            Ok((run, units, mut totals)) => {
                totals.elapsed_ms = started.elapsed().as_millis() as u64;
                let done = Message::Item {
                    item: item.item,
                    run,
                    units,
                    worker: self.options.name.clone(),
                    totals,
                };
                let results = results_key(&item.scan);
                let sent: Option<()> = self
                    .command(
                        redis::pipe()
                            .cmd("XADD")
                            .arg(&results)
                            .arg("*")
                            .arg("m")
                            .arg(serde_json::to_string(&done).expect("message serializes"))
                            .ignore()
                            .add_command(expire_nx(&results))
                            .ignore(),
                    )
                    .await;
                // Acknowledged only once its end is sent: an item whose
                // end was lost runs again, and the coordinator keeps the
                // first of each unit.
                if sent.is_some() {
                    self.finish(&id, Some(&item)).await;
                    tracing::info!(
                        "item {} of scan {} done in {:?}",
                        item.item,
                        item.scan,
                        started.elapsed()
                    );
                }
            }
            Err(Cut::Withdrawn) => {
                tracing::info!(
                    "item {} of scan {}: the scan was withdrawn",
                    item.item,
                    item.scan
                );
                self.finish(&id, Some(&item)).await;
            }
            // Not the item's fault: it is left to, or held by, another
            // worker.
            Err(Cut::Stopped | Cut::TakenOver) => {}
            Err(Cut::Failed(error)) => self.failed(&item, &error).await,
        }
    }

    /// What earlier runs of `item` sent (another worker's, killed or
    /// stalled mid-item): those units are not run again, and the subjects
    /// they emitted are routed on, as `--resume` does with a scan's store.
    /// A hash that cannot be read is as good as empty: the units run
    /// again, and the coordinator keeps the first of each.
    async fn earlier(&mut self, item: &Item) -> Resumed {
        let key = super::units_key(&item.scan, item.item);
        let sent: Option<HashMap<String, String>> =
            self.command(redis::cmd("HGETALL").arg(&key)).await;
        let mut resumed = Resumed::default();
        let mut keys = std::collections::BTreeSet::new();
        for (unit, emitted) in sent.unwrap_or_default() {
            // A unit whose subjects do not all parse runs again (and emits
            // them again).
            let subjects: Option<Vec<(bool, crate::model::Subject)>> = serde_json::from_str::<
                Vec<(bool, String)>,
            >(&emitted)
            .ok()
            .and_then(|emitted| {
                emitted
                    .into_iter()
                    .map(|(outside, json)| serde_json::from_str(&json).ok().map(|s| (outside, s)))
                    .collect()
            });
            let Some(subjects) = subjects else { continue };
            for (outside, subject) in subjects {
                resumed.add_emitted(outside, subject);
            }
            keys.insert(unit);
        }
        if !keys.is_empty() {
            eprintln!(
                "wscan: worker {}: item {} of scan {}: {} unit(s) an earlier run sent are not run again",
                self.options.name,
                item.item,
                item.scan,
                keys.len()
            );
        }
        resumed.done = crate::store::DoneUnits::of(keys);
        resumed
    }

    /// Note why `item` failed, for the dead letter it may become.
    async fn failed(&mut self, item: &Item, error: &str) {
        tracing::warn!("item {} of scan {} failed: {error}", item.item, item.scan);
        eprintln!(
            "wscan: worker {}: item {} of scan {} failed: {error}",
            self.options.name, item.item, item.scan
        );
        let key = failures_key(&item.scan);
        let _: Option<()> = self
            .command(
                redis::pipe()
                    .cmd("HSET")
                    .arg(&key)
                    .arg(item.item)
                    .arg(error)
                    .ignore()
                    .add_command(expire_nx(&key))
                    .ignore(),
            )
            .await;
    }

    /// How many times entry `id` was delivered (1 if Redis cannot say).
    async fn deliveries(&mut self, id: &str) -> u64 {
        let pending: Option<StreamPendingCountReply> = self
            .command(
                redis::cmd("XPENDING")
                    .arg(WORK)
                    .arg(GROUP)
                    .arg(id)
                    .arg(id)
                    .arg(1),
            )
            .await;
        pending
            .and_then(|p| p.ids.first().map(|p| p.times_delivered as u64))
            .unwrap_or(1)
    }

    /// Send `item` to the dead letters and tell its coordinator.
    async fn bury(&mut self, id: &str, item: &Item, deliveries: u64) {
        let error: Option<String> = self
            .command(
                redis::cmd("HGET")
                    .arg(failures_key(&item.scan))
                    .arg(item.item),
            )
            .await;
        let error = error.unwrap_or_else(|| {
            "the worker running it was lost each time (killed, or cut off from Redis)".into()
        });
        let dead = Message::Dead {
            item: item.item,
            deliveries,
            error: error.clone(),
        };
        let sent: Option<()> = self
            .command(
                redis::pipe()
                    .atomic()
                    .cmd("XADD")
                    .arg(DEAD)
                    // The dead letters are for people to read: the last
                    // ten thousand or so are kept.
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(10_000)
                    .arg("*")
                    .arg("scan")
                    .arg(&item.scan)
                    .arg("item")
                    .arg(item.item)
                    .arg("deliveries")
                    .arg(deliveries)
                    .arg("error")
                    .arg(&error)
                    .ignore()
                    .cmd("XADD")
                    .arg(results_key(&item.scan))
                    .arg("*")
                    .arg("m")
                    .arg(serde_json::to_string(&dead).expect("message serializes"))
                    .ignore()
                    .add_command(expire_nx(&results_key(&item.scan)))
                    .ignore(),
            )
            .await;
        if sent.is_some() {
            eprintln!(
                "wscan: worker {}: item {} of scan {} failed {deliveries} deliveries; moved to {DEAD}",
                self.options.name, item.item, item.scan
            );
            self.finish(id, Some(item)).await;
        }
    }

    /// Acknowledge entry `id` and remove it from the stream.
    async fn finish(&mut self, id: &str, item: Option<&Item>) {
        let mut pipe = redis::pipe();
        pipe.cmd("XACK")
            .arg(WORK)
            .arg(GROUP)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(WORK)
            .arg(id)
            .ignore();
        // What its runs sent is no longer needed by another run.
        if let Some(item) = item {
            pipe.cmd("DEL")
                .arg(super::units_key(&item.scan, item.item))
                .ignore();
        }
        let _: Option<()> = self.command(&mut pipe).await;
    }

    /// Run a command (or a pipeline), waiting out a Redis that is away
    /// for a while; `None` if it still fails (said on standard error).
    async fn command<T: redis::FromRedisValue, Q: Query>(&mut self, query: &mut Q) -> Option<T> {
        let (conn, query) = (self.conn.clone(), &*query);
        match super::retry("a command", Duration::from_secs(60), || {
            let mut conn = conn.clone();
            async move { query.run(&mut conn).await }
        })
        .await
        {
            Ok(value) => Some(value),
            Err(e) => {
                eprintln!("wscan: worker {}: Redis: {e}", self.options.name);
                None
            }
        }
    }

    /// The scan `scan`, resolved from its meta, its plugins fetched by
    /// digest and loaded (compiled through the cache).
    async fn prepare(&mut self, scan: &str, meta: &Meta) -> Result<Arc<Prepared>, String> {
        // A scan whose plugins changed (a hot swap on the coordinator) is
        // prepared again, with the new versions.
        if let Some(ready) = self.prepared.get(scan)
            && ready.plugins == meta.plugins
        {
            return Ok(ready.clone());
        }
        let mut plugins: Vec<LoadedPlugin> = Vec::new();
        for shipped in &meta.plugins {
            let path = self.options.dir.join(format!("{}.wasm", shipped.digest));
            if !path.is_file() {
                let bytes: Option<Option<Vec<u8>>> = self
                    .command(redis::cmd("GET").arg(plugin_key(&shipped.digest)))
                    .await;
                let bytes = bytes.flatten().ok_or_else(|| {
                    format!(
                        "plugin {} (sha256 {}) is not in Redis under {}: the coordinator publishes each plugin for 7 days; start the scan again",
                        shipped.name,
                        shipped.digest,
                        plugin_key(&shipped.digest)
                    )
                })?;
                if crate::engine::digest(&bytes) != shipped.digest {
                    return Err(format!(
                        "plugin {}: what Redis holds under {} has another SHA-256; not run",
                        shipped.name,
                        plugin_key(&shipped.digest)
                    ));
                }
                let partial = path.with_extension(format!("part{}", std::process::id()));
                std::fs::write(&partial, &bytes)
                    .and_then(|()| std::fs::rename(&partial, &path))
                    .map_err(|e| format!("cannot keep plugin {}: {e}", shipped.name))?;
            }
            let plugin = self
                .engine
                .load_file(&path)
                .await
                .map_err(|e| format!("plugin {}: {e}", shipped.name))?;
            if plugin.digest != shipped.digest {
                let _ = std::fs::remove_file(&path);
                return Err(format!(
                    "plugin {}: the copy kept in {} changed; removed, it is fetched again",
                    shipped.name,
                    path.display()
                ));
            }
            plugins.push(plugin);
        }
        let mut ca_files = Vec::new();
        for pem in &meta.ca_pems {
            let path = self
                .options
                .dir
                .join(format!("ca-{}.pem", crate::engine::digest(pem.as_bytes())));
            if !path.is_file() {
                std::fs::write(&path, pem)
                    .map_err(|e| format!("cannot keep a CA file in {}: {e}", path.display()))?;
            }
            ca_files.push(path);
        }
        let tls = TlsCore::new(&ca_files).map_err(|e| e.to_string())?;
        let registry = Arc::new(Registry::new(Vec::new(), Vec::new(), plugins));
        let active = registry.active();
        let available: Vec<&PluginInfo> = active.iter().map(|a| &a.plugin.info).collect();
        let gathered = Gathered {
            exclude_file: meta.exclude_file.clone(),
            tls,
            seed: meta.seed,
        };
        let mut spec = (self.resolve)(&meta.argv, &available, gathered)?;
        let o = &self.options.limits;
        spec.limits.concurrency = o.concurrency.unwrap_or(spec.limits.concurrency);
        spec.limits.host_concurrency = o.host_concurrency.or(spec.limits.host_concurrency);
        spec.limits.rate = o.rate.or(spec.limits.rate);
        spec.parallel = o.parallel.unwrap_or(spec.parallel);
        if spec.resolver.share {
            spec.resolver.shared = Some(Arc::new(super::answers::RedisAnswers::new(
                self.conn.clone(),
                &spec.resolver.servers,
            )));
        }
        let ready = Arc::new(Prepared {
            spec,
            registry,
            plugins: meta.plugins.clone(),
        });
        if self.prepared.len() >= PREPARED {
            self.prepared.clear();
        }
        self.prepared.insert(scan.to_string(), ready.clone());
        Ok(ready)
    }

    /// Run `item` of a prepared scan: each unit is sent as it ends; the
    /// item's counters when all are sent. Heartbeats keep the item this
    /// worker's while it runs; a withdrawn scan or a stopping worker cuts
    /// it short (an error: the item is not done).
    async fn run_item(
        &mut self,
        prepared: &Prepared,
        item: &Item,
        id: &str,
        earlier: Resumed,
    ) -> Result<(u64, u64, ItemTotals), Cut> {
        let mut spec = prepared.spec.clone();
        spec.part = Some(item.part);
        // A chunk of `-i` lines is scanned as a local scan reads `-i`,
        // from a file of its own.
        let chunk = match &item.lines {
            Some(lines) => {
                let path = self.options.dir.join(format!(
                    "input-{}-{}-{}.txt",
                    item.scan,
                    item.item,
                    std::process::id()
                ));
                let mut text = lines.join("\n");
                text.push('\n');
                std::fs::write(&path, text).map_err(|e| {
                    Cut::Failed(format!(
                        "cannot write the item's lines to {}: {e}",
                        path.display()
                    ))
                })?;
                spec.input = Some(crate::scheduler::input::InputSource::File(path.clone()));
                Some(TempFile(path))
            }
            None => {
                spec.input = None;
                None
            }
        };
        let run = fastrand::u64(..);
        let (journal, ops) = Journal::forward(4096);
        let (units_tx, units) = mpsc::channel::<UnitResult>(1024);
        let number = item.item;
        let grouper = std::thread::Builder::new()
            .name("wscan-units".into())
            .spawn(move || group_units(number, run, ops, units_tx))
            .map_err(|e| Cut::Failed(format!("cannot start a thread: {e}")))?;
        let sender = tokio::spawn(send_units(
            self.conn.clone(),
            results_key(&item.scan),
            super::units_key(&item.scan, item.item),
            units,
        ));
        let (lost_tx, lost) = watch::channel(None);
        let heart = tokio::spawn(heartbeat(
            self.conn.clone(),
            self.options.name.clone(),
            id.to_string(),
            meta_key(&item.scan),
            lost_tx,
        ));
        let mut stopped = self.stopped.clone();
        let mut lost_rx = lost.clone();
        let stop = async move {
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => {}
                _ = lost_rx.wait_for(Option::is_some) => {}
            }
        };
        let outcome = crate::scheduler::run(
            &spec,
            self.engine.clone(),
            prepared.registry.clone(),
            &mut Discard,
            &ProgressBar::hidden(),
            Some(Durable {
                journal,
                resumed: earlier,
            }),
            stop,
        )
        .await;
        heart.abort();
        // The journal is closed: the grouper ends, then the sender.
        let _ = grouper.join();
        let sent = sender
            .await
            .map_err(|e| Cut::Failed(format!("the sender failed: {e}")))?;
        match *lost.borrow() {
            Some(Lost::Withdrawn) => return Err(Cut::Withdrawn),
            Some(Lost::TakenOver) => return Err(Cut::TakenOver),
            None => {}
        }
        let summary = outcome.map_err(|e| Cut::Failed(e.to_string()))?;
        let units = sent.map_err(Cut::Failed)?;
        if summary.interrupted {
            return Err(Cut::Stopped);
        }
        drop(chunk);
        Ok((run, units, totals(&summary)))
    }
}

/// Why an item did not complete.
enum Cut {
    /// Its coordinator withdrew the scan: the item is dropped.
    Withdrawn,
    /// The worker is stopping: the item is left to another.
    Stopped,
    /// Another worker holds it now: this one neither acknowledges it nor
    /// counts a failure.
    TakenOver,
    /// It failed: the reason is kept for the dead letter it may become.
    Failed(String),
}

/// An item's counters from its run's summary.
fn totals(summary: &Summary) -> ItemTotals {
    ItemTotals {
        targets: summary.targets,
        denied: summary.denied,
        net: summary.net.clone(),
        plugin_ms: summary
            .plugins
            .iter()
            .map(|(name, p)| (name.clone(), p.time.as_millis() as u64))
            .collect(),
        elapsed_ms: 0,
        bad_lines: summary.bad_lines,
        input_errors: summary.input_errors.clone(),
    }
}

/// Gather the journal's steps into one result per unit, handed on when
/// the unit ends (a unit cut short is never sent: it runs again).
fn group_units(
    item: u64,
    run: u64,
    ops: std::sync::mpsc::Receiver<Op>,
    units: mpsc::Sender<UnitResult>,
) {
    let mut open: HashMap<Arc<str>, UnitResult> = HashMap::new();
    let fresh = |unit: &str| UnitResult {
        item,
        run,
        unit: unit.to_string(),
        failed: false,
        records: Vec::new(),
        emitted: Vec::new(),
    };
    for op in ops {
        match op {
            Op::Record { unit, json, .. } => open
                .entry(unit.clone())
                .or_insert_with(|| fresh(&unit))
                .records
                .push(json),
            Op::Emitted {
                unit,
                outside,
                json,
            } => open
                .entry(unit.clone())
                .or_insert_with(|| fresh(&unit))
                .emitted
                .push((outside, json)),
            Op::Done { unit, failed } => {
                let mut result = open.remove(&unit).unwrap_or_else(|| fresh(&unit));
                result.failed = failed;
                if units.blocking_send(result).is_err() {
                    return;
                }
            }
        }
    }
}

/// Send units to the results stream as they come, many to a round trip;
/// how many were sent.
async fn send_units(
    conn: ConnectionManager,
    key: String,
    done_key: String,
    mut units: mpsc::Receiver<UnitResult>,
) -> Result<u64, String> {
    let mut batch = Vec::with_capacity(256);
    let mut sent = 0;
    while units.recv_many(&mut batch, 256).await > 0 {
        sent += batch.len() as u64;
        let messages: Vec<(String, String, String)> = batch
            .drain(..)
            .map(|u| {
                let emitted = serde_json::to_string(&u.emitted).expect("subjects serialize");
                let unit = u.unit.clone();
                let message = serde_json::to_string(&Message::Unit(u)).expect("message serializes");
                (unit, emitted, message)
            })
            .collect();
        super::retry("sending results", Duration::from_secs(120), || {
            let mut conn = conn.clone();
            // All or nothing: a unit in the item's hash (skipped by a
            // later run of the item) has its records on the stream.
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (unit, emitted, message) in &messages {
                pipe.cmd("XADD")
                    .arg(&key)
                    .arg("*")
                    .arg("m")
                    .arg(message)
                    .ignore();
                pipe.cmd("HSET")
                    .arg(&done_key)
                    .arg(unit)
                    .arg(emitted)
                    .ignore();
            }
            // A stream written for a coordinator that is gone expires; the
            // hash lives while the item's runs write to it.
            pipe.add_command(expire_nx(&key)).ignore();
            pipe.cmd("EXPIRE")
                .arg(&done_key)
                .arg(super::KEYS_TTL_S)
                .ignore();
            async move { pipe.query_async::<()>(&mut conn).await }
        })
        .await
        .map_err(|e| format!("cannot send results: {e}"))?;
    }
    Ok(sent)
}

/// Claims entry ARGV[3] of stream KEYS[1], group ARGV[1], for consumer
/// ARGV[2] again (resetting its idle time), only while that consumer
/// holds it: 1 claimed, 0 another consumer took it over, -1 no longer
/// pending. One script, so nothing comes between the look and the claim.
const RECLAIM: &str = r"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 then return -1 end
if p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
";

/// Why a worker lets go of the item it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// Its coordinator withdrew the scan.
    Withdrawn,
    /// Another worker took it over (this one stalled past the lease), or
    /// it is no longer pending at all.
    TakenOver,
}

/// Every [`HEARTBEAT`], claim entry `id` again (which resets its idle
/// time, so no other worker takes it) and see that the scan is still
/// there; when the scan is gone, or another worker took the item over
/// after a stall of this one (or has finished it since), say so on
/// `lost`.
async fn heartbeat(
    mut conn: ConnectionManager,
    name: String,
    id: String,
    meta: String,
    lost: watch::Sender<Option<Lost>>,
) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        // EVAL with the text: a few hundred bytes a second, and no script
        // cache to lose when Redis restarts.
        let claimed: redis::RedisResult<i64> = redis::cmd("EVAL")
            .arg(RECLAIM)
            .arg(1)
            .arg(WORK)
            .arg(GROUP)
            .arg(&name)
            .arg(&id)
            .query_async(&mut conn)
            .await;
        match claimed {
            Ok(0) => {
                tracing::warn!(
                    "entry {id} was taken over by another worker (this one stalled past the lease); letting go of it"
                );
                let _ = lost.send(Some(Lost::TakenOver));
                return;
            }
            // The worker's own acknowledgement cannot be the cause: the
            // heartbeat is stopped before the item is acknowledged.
            Ok(-1) => {
                tracing::warn!(
                    "entry {id} is no longer pending: another worker took it over and finished it while this one stalled, or Redis lost it (then the coordinator publishes it again); letting go of it"
                );
                let _ = lost.send(Some(Lost::TakenOver));
                return;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("heartbeat: {e}"),
        }
        let exists: redis::RedisResult<i64> =
            redis::cmd("EXISTS").arg(&meta).query_async(&mut conn).await;
        if exists == Ok(0) {
            let _ = lost.send(Some(Lost::Withdrawn));
            return;
        }
    }
}

/// `EXPIRE key TTL NX`: a key a worker writes for a scan (its results,
/// its failures) expires with the scan's other keys when no coordinator
/// renews it, so a scan whose coordinator is gone leaves nothing behind.
fn expire_nx(key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("EXPIRE");
    cmd.arg(key).arg(super::KEYS_TTL_S).arg("NX");
    cmd
}

/// A command or a pipeline: what [`Worker::command`] runs.
trait Query: Sync {
    /// Send it on `conn`.
    fn run<T: redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send;
}

impl Query for redis::Cmd {
    fn run<T: redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

impl Query for redis::Pipeline {
    fn run<T: redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A worker writes nothing itself: its records go to the coordinator.
struct Discard;

impl Sink for Discard {
    fn write(&mut self, _: &Record) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
