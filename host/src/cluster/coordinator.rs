//! The coordinator: `wscan scan ... --redis URL`. It publishes the scan
//! (its [`Meta`], its plugins by digest, its work items), then takes in
//! what workers send: each unit's records go to the sink and the result
//! store once, whoever sent them how many times, and the scan ends when
//! every item has ended (done, or a dead letter).

use super::{ClusterError, DEAD, Item, ItemTotals, Message, Meta, Shipped, UnitResult, WORK};
use crate::engine::registry::Registry;
use crate::engine::{LoadedPlugin, PluginSource};
use crate::model::{Subject, SubjectKey, SubjectKind};
use crate::output::{ErrorRecord, PluginRef, SubjectRecord};
use crate::output::{Record, Sink};
use crate::scheduler::spec::Part;
use crate::scheduler::{ClusterTotals, Durable, ScanError, ScanSpec, Summary};
use crate::scope::Scope;
use crate::store::Resumed;
use indicatif::ProgressBar;
use redis::aio::ConnectionManager;
use redis::streams::StreamReadReply;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the coordinator splits and publishes a scan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Where and how the scan is published.
    pub publish: Publish,
    /// The scan's command line, without the program name.
    pub argv: Vec<String>,
    /// The text of `--exclude-file`.
    pub exclude_file: Option<String>,
    /// The PEM text of each `--ca-file`.
    pub ca_pems: Vec<String>,
    /// Where the per-worker figures go (`--metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Where a coordinator publishes its scans, and how they are cut: the
/// `--redis`, `--item-size` and `--max-deliveries` of `wscan scan` or of
/// `wscan serve`.
#[derive(Debug, Clone)]
pub struct Publish {
    /// The Redis.
    pub redis: super::Endpoint,
    /// Steps of the address walk per work item (`--item-size`).
    pub item_size: u128,
    /// Deliveries of an item before it is a dead letter.
    pub max_deliveries: u32,
}

impl Plan {
    /// The plan of the scan `request`, whose command line (without the
    /// program name) is `argv`: the files it names are read here, since
    /// workers cannot read them. The scan is checked against what work
    /// items can hold.
    pub fn new(
        argv: Vec<String>,
        spec: &ScanSpec,
        request: &crate::scheduler::spec::ScanRequest,
        publish: Publish,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Plan, ClusterError> {
        items(spec, publish.item_size)?;
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read_to_string(path).map_err(|error| ClusterError::Read {
                what: format!("{what} {}", path.display()),
                error,
            })
        };
        let exclude_file = match &request.exclude_file {
            Some(path) => Some(read("the exclude file", path)?),
            None => None,
        };
        let ca_pems = request
            .call
            .ca_files
            .iter()
            .map(|path| read("the CA file", path))
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            publish,
            argv,
            exclude_file,
            ca_pems,
            metrics,
        })
    }
}

/// How long published components stay in Redis after the last scan that
/// used them: long enough for any scan, short enough not to pile up.
const PLUGIN_TTL_S: u64 = 7 * 24 * 3600;

/// How long Redis may be away before the coordinator gives up (the scan
/// is stored and `--resume` continues it).
const PATIENCE: Duration = Duration::from_secs(120);

/// Publish `spec` as work items on Redis and collect what workers send,
/// writing every record to `sink` (and the journal of `durable`) as a
/// local scan does. `progress` counts items ended. When `stop` completes,
/// the scan is withdrawn (workers drop its items) and returns interrupted.
pub async fn run(
    spec: &ScanSpec,
    registry: &Registry,
    plan: Plan,
    sink: &mut dyn Sink,
    progress: &ProgressBar,
    durable: Option<Durable>,
    stop: impl Future<Output = ()>,
) -> Result<Summary, ClusterError> {
    let started = Instant::now();
    let redis_err = |error| ClusterError::Redis {
        url: plan.publish.redis.shown(),
        error,
    };
    let mut conn = super::connect(&plan.publish.redis).await?;
    let (journal, resumed) = match durable {
        Some(d) => (Some(d.journal), d.resumed),
        None => (None, Resumed::default()),
    };
    // An earlier run of this scan that was killed may still have work out:
    // withdraw it (its workers drop it), its items are published anew.
    for old in &resumed.cluster_runs {
        withdraw(&mut conn, old).await;
    }
    let scan = format!("{:016x}", fastrand::u64(..));
    // The plugins in use as the scan is published: a change (a hot swap,
    // `--watch` or an upload) is published to the workers.
    let mut in_use = registry.active();
    let plugins = components(spec, registry)?;
    let meta = Meta {
        argv: plan.argv.clone(),
        seed: spec.seed().unwrap_or(0),
        exclude_file: plan.exclude_file.clone(),
        ca_pems: plan.ca_pems.clone(),
        plugins: plugins.iter().map(|(shipped, _)| shipped.clone()).collect(),
        max_deliveries: plan.publish.max_deliveries,
    };
    let parts = parts(spec, plan.publish.item_size)?;
    let (lines, inputs) = read_input(spec, plan.publish.item_size).await?;
    let work = Arc::new(Work { parts, lines });
    let total = work.len();
    if u128::from(total) > super::MAX_ITEMS {
        return Err(ClusterError::TooManyItems {
            items: u128::from(total),
        });
    }
    let mut books = Books::new(spec, journal.as_ref(), resumed, work.clone());
    books.metrics = Some(plan.metrics.clone());
    books.inputs = inputs;
    for item in 0..total {
        if books.resumed.done.contains(&super::item_unit(item)) {
            books.ended.insert(item);
        }
    }
    let mut publication = Publication {
        scan: scan.clone(),
        meta,
        plugins,
        work,
    };

    let published = publication
        .publish(&mut conn, &books.ended)
        .await
        .map_err(redis_err)?;
    if let Some(journal) = &journal {
        journal
            .done(
                &Arc::from(format!("{}{scan}", crate::store::CLUSTER_RUN)),
                false,
            )
            .map_err(ScanError::Store)?;
    }
    progress.set_length(total);
    progress.set_position(books.ended.len() as u64);
    tracing::info!("scan {scan}: {published} of {total} work item(s) published on {WORK}");
    eprintln!(
        "wscan: {published} work item(s) published to {} as scan {scan}; workers (`wscan worker --redis URL`) run them",
        plan.publish.redis.shown()
    );

    let results = super::results_key(&scan);
    let mut last = "0-0".to_string();
    let mut stop = std::pin::pin!(stop);
    let mut refreshed = Instant::now();
    while books.ended.len() < total as usize {
        let active = registry.active();
        if !Arc::ptr_eq(&active, &in_use) {
            in_use = active;
            // A file that changed again since it was loaded is left to
            // the next swap.
            match components(spec, registry) {
                Ok(now) => {
                    let names = publication.swap(&mut conn, now).await.map_err(redis_err)?;
                    if !names.is_empty() {
                        eprintln!(
                            "wscan: plugin(s) {} changed; published to the workers for the items they take next",
                            names.join(", ")
                        );
                    }
                }
                Err(e) => tracing::warn!("a swapped plugin is not published: {e}"),
            }
        }
        if refreshed.elapsed() >= REFRESH {
            refreshed = Instant::now();
            let again = publication
                .refresh(&mut conn, &books.ended)
                .await
                .map_err(redis_err)?;
            if let Some(items) = again {
                // A new results stream: read it from its start.
                last = "0-0".to_string();
                plan.metrics.cluster_republished(items as u64);
            }
        }
        let read = super::retry("reading results", PATIENCE, || {
            let mut conn = conn.clone();
            let (results, last) = (results.clone(), last.clone());
            async move {
                redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(1000)
                    .arg("BLOCK")
                    .arg(super::BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&results)
                    .arg(&last)
                    .query_async::<Option<StreamReadReply>>(&mut conn)
                    .await
            }
        });
        let reply = tokio::select! {
            reply = read => reply.map_err(redis_err)?,
            () = &mut stop => {
                books.summary.interrupted = true;
                break;
            }
        };
        let Some(reply) = reply else { continue };
        for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
            last = entry.id.clone();
            let message: Result<Message, String> = super::field(&entry, "m")
                .ok_or_else(|| "no field m".to_string())
                .and_then(|m| serde_json::from_str(&m).map_err(|e| e.to_string()));
            // One message this wscan cannot read (a worker of another
            // version) does not end the scan: the item it belongs to does
            // not end, and is run again if it never completes.
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    tracing::warn!("skipped a message on {results} ({}): {e}", entry.id);
                    continue;
                }
            };
            if let Some(item) = books.take(message, sink, progress)? {
                let published = publication.again(&mut conn, item).await;
                published.map_err(redis_err)?;
                plan.metrics.cluster_republished(1);
            }
        }
        // What is taken in is in the journal's queue: Redis need not
        // keep it.
        let _ = redis::cmd("XTRIM")
            .arg(&results)
            .arg("MINID")
            .arg(&last)
            .query_async::<i64>(&mut conn)
            .await;
    }
    // Workers drop what is left of it (nothing, unless it was stopped),
    // and its keys go.
    withdraw(&mut conn, &scan).await;
    let mut summary = std::mem::take(&mut books.summary);
    summary.cluster = Some(std::mem::take(&mut books.cluster));
    drop(books);
    sink.finish().map_err(ScanError::Output)?;
    if let Some(journal) = journal {
        journal.close().map_err(ScanError::Store)?;
    }
    progress.finish_and_clear();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The work items of `spec`: windows of `size` steps of its address walk;
/// the first also takes the names and `host:port` targets.
fn parts(spec: &ScanSpec, size: u128) -> Result<Vec<Part>, ClusterError> {
    let steps = spec.space().steps();
    let size = size.max(1);
    let count = items(spec, size)?;
    Ok((0..count)
        .map(|k| Part {
            from: k * size,
            to: (k + 1).saturating_mul(size).min(steps),
            singles: k == 0,
        })
        .collect())
}

/// How many work items `spec` makes with `size` steps of its walk each;
/// an error when that is more than a coordinator keeps (checked before
/// anything is published or stored).
pub fn items(spec: &ScanSpec, size: u128) -> Result<u128, ClusterError> {
    let mut count = spec.space().steps().div_ceil(size.max(1));
    // One item at least, for the names, unless `-i` lines are all there is.
    let singles = !spec.hosts.is_empty() || !spec.one_port.is_empty();
    if count == 0 && (singles || spec.input.is_none()) {
        count = 1;
    }
    match count > super::MAX_ITEMS {
        true => Err(ClusterError::TooManyItems { items: count }),
        false => Ok(count),
    }
}

/// A scan's work items: windows of its address walk, numbered from 0,
/// then chunks of its `-i` lines.
struct Work {
    parts: Vec<Part>,
    lines: Vec<Arc<Vec<String>>>,
}

impl Work {
    fn len(&self) -> u64 {
        (self.parts.len() + self.lines.len()) as u64
    }

    /// Item `item` of scan `scan`.
    fn item(&self, scan: &str, item: u64) -> Option<Item> {
        let k = item as usize;
        let (part, lines) = match self.parts.get(k) {
            Some(part) => (*part, None),
            None => (
                // Only lines: no window of the walk, no names.
                Part {
                    from: 0,
                    to: 0,
                    singles: false,
                },
                Some(self.lines.get(k - self.parts.len())?.clone()),
            ),
        };
        Some(Item {
            scan: scan.to_string(),
            item,
            part,
            lines,
        })
    }
}

/// Read the scan's `-i` input: its lines in chunks of `size` (16,384 at
/// most, so an item stays a small message), and the scope they add.
async fn read_input(
    spec: &ScanSpec,
    size: u128,
) -> Result<(Vec<Arc<Vec<String>>>, Option<Scope>), ClusterError> {
    let Some(source) = spec.input.clone() else {
        return Ok((Vec::new(), None));
    };
    let scope = spec.scope();
    let size = size.clamp(1, 16_384) as usize;
    let failed = |error: std::io::Error, source: &crate::scheduler::input::InputSource| {
        ClusterError::Scan(ScanError::Input {
            from: source.to_string(),
            error,
        })
    };
    tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut reader = source.open().map_err(|e| failed(e, &source))?;
        let (mut chunks, mut chunk) = (Vec::new(), Vec::with_capacity(size));
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| failed(e, &source))?
                == 0
            {
                break;
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            chunk.push(line);
            if chunk.len() == size {
                chunks.push(Arc::new(std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(size),
                )));
            }
        }
        if !chunk.is_empty() {
            chunks.push(Arc::new(chunk));
        }
        for lines in &chunks {
            let text = lines.join("\n");
            crate::scheduler::input::for_each_target(
                &mut std::io::Cursor::new(text.as_bytes()),
                Some(&scope),
                |_| true,
            )
            .map_err(|e| failed(e, &source))?;
        }
        Ok((chunks, Some(scope)))
    })
    .await
    .map_err(|e| ClusterError::Malformed {
        key: "-i".into(),
        error: e.to_string(),
    })?
}

/// Whether `s` is inside `scope` (the scope of the `-i` lines).
fn in_scope(scope: &Scope, s: &SubjectRecord) -> bool {
    match (&s.host, s.address) {
        (_, Some(ip)) => scope.contains(ip),
        (Some(name), None) => scope.contains_name(name),
        (None, None) => false,
    }
}

/// The component of every plugin the scan runs, with its name and digest.
fn components(
    spec: &ScanSpec,
    registry: &Registry,
) -> Result<Vec<(Shipped, Vec<u8>)>, ClusterError> {
    let mut shipped = Vec::new();
    for active in registry.active().iter() {
        let plugin = &active.plugin;
        let wanted = spec
            .plugins
            .as_ref()
            .is_none_or(|names| names.contains(&plugin.info.name));
        if !wanted {
            continue;
        }
        let bytes = component(plugin).map_err(|error| ClusterError::Plugin {
            name: plugin.info.name.clone(),
            error,
        })?;
        let name = Shipped {
            name: plugin.info.name.clone(),
            digest: plugin.digest.clone(),
        };
        shipped.push((name, bytes));
    }
    Ok(shipped)
}

/// How often the coordinator renews its keys (and sees whether Redis lost
/// them).
const REFRESH: Duration = Duration::from_secs(5);

/// What a coordinator puts in Redis, kept to put it there again.
struct Publication {
    scan: String,
    meta: Meta,
    plugins: Vec<(Shipped, Vec<u8>)>,
    work: Arc<Work>,
}

impl Publication {
    /// Publish the scan: its plugins, its meta, and the items not in
    /// `ended`. How many items were published.
    async fn publish(
        &self,
        conn: &mut ConnectionManager,
        ended: &HashSet<u64>,
    ) -> redis::RedisResult<usize> {
        self.publish_meta(conn).await?;
        super::ensure_group(conn).await?;
        let todo: Vec<Item> = (0..self.work.len())
            .filter(|item| !ended.contains(item))
            .filter_map(|item| self.work.item(&self.scan, item))
            .collect();
        for chunk in todo.chunks(500) {
            let mut pipe = redis::pipe();
            for item in chunk {
                pipe.add_command(add_item(item)).ignore();
            }
            pipe.query_async::<()>(conn).await?;
        }
        Ok(todo.len())
    }

    /// Put the plugins and the meta in Redis (the plugins first: a worker
    /// that reads the meta finds every digest it names).
    async fn publish_meta(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        for (shipped, bytes) in &self.plugins {
            let key = super::plugin_key(&shipped.digest);
            redis::pipe()
                .cmd("SET")
                .arg(&key)
                .arg(bytes)
                .arg("NX")
                .arg("EX")
                .arg(PLUGIN_TTL_S)
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(PLUGIN_TTL_S)
                .ignore()
                .query_async::<()>(conn)
                .await?;
        }
        redis::cmd("SET")
            .arg(super::meta_key(&self.scan))
            .arg(serde_json::to_string(&self.meta).expect("meta serializes"))
            .arg("EX")
            .arg(super::KEYS_TTL_S)
            .query_async::<()>(conn)
            .await
    }

    /// Publish the plugins of `now` (the registry's plugins after a hot
    /// swap) that changed: a plugin of the scan with a new digest replaces
    /// the old one, and a new plugin is added when the scan runs every
    /// plugin; a plugin removed keeps its last version, since the scan
    /// names it. Items taken after this run the new versions, as units
    /// started after a swap do in a local scan. The names of the plugins
    /// published.
    async fn swap(
        &mut self,
        conn: &mut ConnectionManager,
        now: Vec<(Shipped, Vec<u8>)>,
    ) -> redis::RedisResult<Vec<String>> {
        let mut changed = Vec::new();
        for (shipped, bytes) in now {
            match self
                .plugins
                .iter_mut()
                .find(|(old, _)| old.name == shipped.name)
            {
                Some((old, _)) if old.digest == shipped.digest => continue,
                Some(old) => *old = (shipped.clone(), bytes),
                None => self.plugins.push((shipped.clone(), bytes)),
            }
            changed.push(shipped.name);
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        self.meta.plugins = self.plugins.iter().map(|(s, _)| s.clone()).collect();
        self.publish_meta(conn).await?;
        Ok(changed)
    }

    /// Renew the scan's keys. When Redis no longer has them (it restarted
    /// without persistence, or lost them), publish the scan again with the
    /// items not ended: workers cut short by the loss drop theirs, and what
    /// they sent before is stored once.
    async fn refresh(
        &self,
        conn: &mut ConnectionManager,
        ended: &HashSet<u64>,
    ) -> redis::RedisResult<Option<usize>> {
        let renewed: (i64, i64, i64) = super::retry("renewing the scan", PATIENCE, || {
            let mut conn = conn.clone();
            async move {
                redis::pipe()
                    .cmd("EXPIRE")
                    .arg(super::meta_key(&self.scan))
                    .arg(super::KEYS_TTL_S)
                    .cmd("EXPIRE")
                    .arg(super::results_key(&self.scan))
                    .arg(super::KEYS_TTL_S)
                    .cmd("EXPIRE")
                    .arg(super::failures_key(&self.scan))
                    .arg(super::KEYS_TTL_S)
                    .query_async(&mut conn)
                    .await
            }
        })
        .await?;
        if renewed.0 != 0 {
            return Ok(None);
        }
        let published = self.publish(conn, ended).await?;
        eprintln!(
            "wscan: the scan's work was gone from Redis (a restart without persistence?); {published} item(s) not ended published again"
        );
        Ok(Some(published))
    }

    /// Publish item `item` again: a run of it ended with units missing.
    async fn again(&self, conn: &mut ConnectionManager, item: u64) -> redis::RedisResult<()> {
        let Some(item) = self.work.item(&self.scan, item) else {
            return Ok(());
        };
        add_item(&item).query_async(conn).await
    }
}

/// The command that puts `item` on the work stream.
fn add_item(item: &Item) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(WORK)
        .arg("*")
        .arg("m")
        .arg(serde_json::to_string(item).expect("item serializes"));
    cmd
}

/// Withdraw scan `scan` from Redis: workers drop its items and cut short
/// the one they run at their next heartbeat.
async fn withdraw(conn: &mut ConnectionManager, scan: &str) {
    let _ = redis::cmd("DEL")
        .arg(super::meta_key(scan))
        .arg(super::results_key(scan))
        .arg(super::failures_key(scan))
        .query_async::<i64>(conn)
        .await;
}

/// The component a loaded plugin was made from, checked against its
/// digest (a file changed since it was loaded is not the plugin running).
fn component(plugin: &LoadedPlugin) -> Result<Vec<u8>, String> {
    let bytes = match &plugin.source {
        PluginSource::Builtin => crate::engine::builtin_component(&plugin.digest)
            .ok_or("the built-in component is not in this binary")?
            .to_vec(),
        PluginSource::Dir(path) | PluginSource::File(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
    };
    match crate::engine::digest(&bytes) == plugin.digest {
        true => Ok(bytes),
        false => Err(format!(
            "{} changed since it was loaded; start the scan again",
            plugin.source
        )),
    }
}

/// The coordinator's books: which units and items have ended, the
/// out-of-scope subjects reported, and the summary being built.
struct Books<'a> {
    spec: &'a ScanSpec,
    journal: Option<&'a crate::store::Journal>,
    /// What earlier runs did; owned, since the store connection it reads
    /// through may be moved between threads but not shared.
    resumed: Resumed,
    /// Items ended (done or dead), this run or before.
    ended: HashSet<u64>,
    /// Units stored this run.
    units: HashSet<String>,
    /// Out-of-scope subjects reported, this run or before.
    outside: HashSet<SubjectKey>,
    summary: Summary,
    /// Every item, by number.
    work: Arc<Work>,
    /// The scope of every `-i` line: a subject one worker found outside
    /// its chunk's scope but inside another chunk's is scanned there, not
    /// reported.
    inputs: Option<Scope>,
    /// Items, workers, duplicates.
    cluster: ClusterTotals,
    /// Unit messages received, by item and run: a run's end counts only
    /// when all it sent has arrived.
    received: HashMap<(u64, u64), u64>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl<'a> Books<'a> {
    fn new(
        spec: &'a ScanSpec,
        journal: Option<&'a crate::store::Journal>,
        resumed: Resumed,
        work: Arc<Work>,
    ) -> Self {
        Books {
            spec,
            journal,
            outside: resumed.outside.iter().cloned().collect(),
            resumed,
            ended: HashSet::new(),
            units: HashSet::new(),
            summary: Summary::default(),
            cluster: ClusterTotals {
                items: work.len(),
                ..ClusterTotals::default()
            },
            work,
            inputs: None,
            received: HashMap::new(),
            metrics: None,
        }
    }

    /// Take in one message; the item to publish again, if a run of it
    /// ended with some of its units missing.
    fn take(
        &mut self,
        message: Message,
        sink: &mut dyn Sink,
        progress: &ProgressBar,
    ) -> Result<Option<u64>, ClusterError> {
        match message {
            Message::Unit(unit) => {
                *self.received.entry((unit.item, unit.run)).or_default() += 1;
                self.unit(unit, sink)?
            }
            Message::Item { item, .. } if item >= self.work.len() => {
                tracing::warn!("skipped the end of item {item}: the scan has no such item");
            }
            Message::Item {
                item,
                run,
                units,
                worker,
                totals,
            } => {
                let received = self.received.remove(&(item, run)).unwrap_or(0);
                if received != units && !self.ended.contains(&item) {
                    eprintln!(
                        "wscan: item {item} ended on {worker} with {units} unit(s) sent and {received} received; it runs again"
                    );
                    return Ok(Some(item));
                }
                if self.ended.insert(item) {
                    self.add(&totals);
                    let worker_name = worker.clone();
                    let w = self.cluster.workers.entry(worker).or_default();
                    w.items += 1;
                    w.connects += totals.net.connects;
                    w.busy += Duration::from_millis(totals.elapsed_ms);
                    if let Some(m) = &self.metrics {
                        m.cluster_item(&worker_name, totals.net.connects);
                    }
                    if let Some(journal) = self.journal {
                        journal
                            .done(&Arc::from(super::item_unit(item)), false)
                            .map_err(ScanError::Store)?;
                    }
                    progress.inc(1);
                }
            }
            Message::Dead {
                item,
                deliveries,
                error,
            } => {
                if item < self.work.len() && self.ended.insert(item) {
                    let record = self.dead(item, deliveries, &error);
                    let key: Arc<str> = Arc::from(super::item_unit(item));
                    sink.write(&record).map_err(ScanError::Output)?;
                    if let Some(journal) = self.journal {
                        journal.record(&key, &record).map_err(ScanError::Store)?;
                        journal.done(&key, true).map_err(ScanError::Store)?;
                    }
                    self.summary.errors += 1;
                    self.cluster.dead += 1;
                    if let Some(m) = &self.metrics {
                        m.cluster_dead();
                    }
                    progress.inc(1);
                }
            }
        }
        Ok(None)
    }

    /// Store a unit's work, unless it is stored already.
    fn unit(&mut self, unit: UnitResult, sink: &mut dyn Sink) -> Result<(), ClusterError> {
        if self.units.contains(&unit.unit) || self.resumed.done.contains(&unit.unit) {
            self.cluster.duplicates += 1;
            if let Some(m) = &self.metrics {
                m.cluster_dropped();
            }
            return Ok(());
        }
        let malformed = |error: serde_json::Error| ClusterError::Malformed {
            key: "results".into(),
            error: error.to_string(),
        };
        let key: Arc<str> = Arc::from(unit.unit.as_str());
        let plugin = unit.unit.split(' ').next().unwrap_or_default().to_string();
        for json in &unit.records {
            let mut record: Record = serde_json::from_str(json).map_err(malformed)?;
            if let Record::OutOfScope(out) = &mut record {
                // Each subject is reported once a scan, whichever unit
                // (on whichever worker) found it first.
                let inputs = self.inputs.as_ref();
                out.outside.retain(|s| {
                    !inputs.is_some_and(|scope| in_scope(scope, s))
                        && key_of(s).is_none_or(|key| self.outside.insert(key))
                });
                if out.outside.is_empty() {
                    continue;
                }
                self.summary.out_of_scope += out.outside.len() as u64;
            }
            match &record {
                Record::Finding(_) => {
                    self.summary.findings += 1;
                    self.stats(&plugin).findings += 1;
                }
                Record::Error(_) => self.summary.errors += 1,
                _ => {}
            }
            sink.write(&record).map_err(ScanError::Output)?;
            if let Some(journal) = self.journal {
                journal.record(&key, &record).map_err(ScanError::Store)?;
            }
        }
        if let Some(journal) = self.journal {
            for (outside, json) in &unit.emitted {
                let subject: Subject = serde_json::from_str(json).map_err(malformed)?;
                journal
                    .emitted(&key, &subject, *outside)
                    .map_err(ScanError::Store)?;
            }
            journal.done(&key, unit.failed).map_err(ScanError::Store)?;
        }
        self.summary.units += 1;
        let stats = self.stats(&plugin);
        stats.units += 1;
        stats.errors += u64::from(unit.failed);
        self.units.insert(unit.unit);
        Ok(())
    }

    fn stats(&mut self, plugin: &str) -> &mut crate::scheduler::PluginStats {
        self.summary.plugins.entry(plugin.to_string()).or_default()
    }

    /// The first subject item `item` starts from: an address of its
    /// window, a name or address of its lines, or a name of the command
    /// line's.
    fn first_subject(&self, item: u64) -> Option<Subject> {
        let item = self.work.item("", item)?;
        if let Some(lines) = &item.lines {
            return lines.iter().find_map(|line| {
                match line.trim().parse::<crate::targets::TargetArg>().ok()? {
                    crate::targets::TargetArg::Addresses(t) => Some(Subject::Address {
                        ip: t.first(),
                        host: None,
                    }),
                    crate::targets::TargetArg::Host(name) => Some(Subject::Host(name)),
                    crate::targets::TargetArg::Port { host, .. } => match host {
                        crate::targets::Endpoint::Ip(ip) => {
                            Some(Subject::Address { ip, host: None })
                        }
                        crate::targets::Endpoint::Name(name) => Some(Subject::Host(name)),
                    },
                }
            });
        }
        let mut spec = self.spec.clone();
        spec.part = Some(item.part);
        spec.input = None;
        let (singles, space) = spec.starts();
        space
            .iter()
            .next()
            .map(|ip| Subject::Address { ip, host: None })
            .or_else(|| singles.into_iter().next().map(|s| s.subject))
    }

    /// Add an item's counters to the summary's.
    fn add(&mut self, totals: &ItemTotals) {
        let s = &mut self.summary;
        s.targets += totals.targets;
        s.denied += totals.denied;
        s.bad_lines += totals.bad_lines;
        for error in &totals.input_errors {
            if s.input_errors.len() < 10 {
                s.input_errors.push(error.clone());
            }
        }
        s.net.add_counts(&totals.net);
        // Workers run apart: the peak of one is what any saw.
        s.net.peak_in_flight = s.net.peak_in_flight.max(totals.net.peak_in_flight);
        for (plugin, ms) in &totals.plugin_ms {
            self.stats(plugin).time += Duration::from_millis(*ms);
        }
    }

    /// The error record of an item that went to the dead letters: on the
    /// item's first address (or its first name), saying which addresses
    /// were not scanned and why.
    fn dead(&self, item: u64, deliveries: u64, error: &str) -> Record {
        let subject = self
            .first_subject(item)
            .unwrap_or(Subject::Host("unknown".into()));
        Record::Error(ErrorRecord {
            time: crate::output::now(),
            plugin: PluginRef {
                name: "cluster".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            subject: SubjectRecord::from(&subject),
            error: format!(
                "work item {item} of {} (this subject and the rest of its share of the scan) was not scanned: it was delivered {deliveries} times without completing and is in {DEAD}; last failure: {error}",
                self.work.len()
            ),
        })
    }
}

/// The key of a subject as records show it (the key out-of-scope subjects
/// are reported once by).
fn key_of(s: &SubjectRecord) -> Option<SubjectKey> {
    match (s.kind, &s.host, s.address, s.port) {
        (SubjectKind::Host, Some(name), _, _) => Some(SubjectKey::Host(name.to_lowercase())),
        (SubjectKind::Address, _, Some(ip), _) => Some(SubjectKey::Address(ip)),
        (SubjectKind::Service, _, Some(ip), Some(port)) => Some(SubjectKey::Service(ip, port)),
        _ => None,
    }
}
