//! The scheduler: turns targets into units of work (one plugin, one
//! subject), runs them with bounded parallelism, routes the subjects that
//! plugins emit to the plugins that consume them, and hands every record to
//! the sink as it arrives.
//!
//! Targets are pulled lazily, only when a slot is free, so the pending work
//! stays small whatever the size of the target list.

use crate::engine::registry::Registry;
use crate::engine::{CallError, CallOptions, Engine, Event, PluginId, ScanContext};
use crate::model::{Subject, SubjectKey};
use crate::output::{Record, Sink};
use crate::primitives::NetSettings;
use crate::primitives::dns::ResolverSettings;
use crate::primitives::tls::TlsCore;
use crate::scope::Scope;
use crate::targets::{Order, PortSpec, Shard, Target, TargetSpace};
use ipnet::IpNet;
use std::collections::{HashMap, HashSet, VecDeque};
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
    /// What not to scan, ever (`--exclude`).
    pub exclude: Vec<IpNet>,
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
    /// Network operations in flight across the scan.
    pub concurrency: usize,
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
        let scope = Arc::new(Scope::new(&self.targets, &self.hosts, &self.exclude));
        let settings = NetSettings {
            timeout: self.timeout,
            concurrency: self.concurrency,
            resolver: self.resolver.clone(),
            tls: self.tls.clone(),
        };
        (scope.clone(), Arc::new(ScanContext::new(scope, settings)))
    }

    /// What one call of `plugin` gets.
    fn call_options(&self, plugin: &str) -> CallOptions {
        CallOptions {
            ports: self.ports.ranges().to_vec(),
            timeout: self.timeout,
            args: self.plugin_args.get(plugin).cloned().unwrap_or_default(),
            deadline: self.plugin_timeout,
        }
    }

    /// The host names this run starts from: this shard's share, by
    /// position, so N shards split them with no overlap.
    pub fn shard_hosts(&self) -> impl Iterator<Item = &String> + '_ {
        let (index, count) = (self.shard.index - 1, self.shard.count);
        self.hosts
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i as u64 % count == index)
            .map(|(_, h)| h)
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

/// What a finished scan did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Plugin calls run.
    pub units: u64,
    /// Findings written.
    pub findings: u64,
    /// Units that failed (trap, deadline, plugin error).
    pub errors: u64,
    /// Subjects emitted by plugins that were out of scope, and dropped.
    pub out_of_scope: u64,
    /// Operations the scope check denied.
    pub denied: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Why a scan stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The output could not be written.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

/// One plugin on one subject. The plugin is named, not held: it is looked
/// up when the unit starts, so a plugin swapped in meanwhile is the one
/// that runs, and a removed one does not.
struct Unit {
    plugin: String,
    subject: Subject,
}

struct Outcome {
    plugin: Arc<PluginId>,
    subject: Subject,
    result: Result<(), CallError>,
}

/// Decides which plugins a subject goes to.
struct Router<'a> {
    registry: &'a Registry,
    selection: Option<&'a [String]>,
}

impl Router<'_> {
    /// Queue a unit for every selected plugin in use whose filter matches.
    /// `seen` (for derived subjects) keeps a plugin from scanning the same
    /// subject twice.
    fn route(
        &self,
        subject: &Subject,
        ready: &mut VecDeque<Unit>,
        mut seen: Option<&mut HashSet<(String, SubjectKey)>>,
    ) {
        for active in self.registry.active().iter() {
            let info = &active.plugin.info;
            if self
                .selection
                .is_some_and(|names| !names.contains(&info.name))
                || !info.consumes.matches(subject)
            {
                continue;
            }
            if let Some(seen) = seen.as_deref_mut()
                && !seen.insert((info.name.clone(), subject.key()))
            {
                continue;
            }
            ready.push_back(Unit {
                plugin: info.name.clone(),
                subject: subject.clone(),
            });
        }
    }
}

/// Run `spec` with the plugins of `registry`, writing every record to `sink`.
pub async fn run(
    spec: &ScanSpec,
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    sink: &mut dyn Sink,
) -> Result<Summary, ScanError> {
    let started = Instant::now();
    let (scope, scan) = spec.context();
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(1024);
    let mut summary = Summary::default();
    let router = Router {
        registry: &registry,
        selection: spec.plugins.as_deref(),
    };

    let space = spec.space();
    // Host names first: there are few, and each may lead to many units.
    let mut starts = spec
        .shard_hosts()
        .map(|h| Subject::Host(h.clone()))
        .chain(space.iter().map(|ip| Subject::Address { ip, host: None }));
    let mut ready: VecDeque<Unit> = VecDeque::new();
    // Units derived from plugin output, keyed so none runs twice.
    let mut seen: HashSet<(String, SubjectKey)> = HashSet::new();
    let mut running: JoinSet<Outcome> = JoinSet::new();
    let parallel = spec.parallel.max(1);

    loop {
        // Fill free slots: derived units first (they finish what is already
        // started), then the next target.
        while running.len() < parallel {
            let Some(unit) = ready.pop_front() else {
                match starts.next() {
                    Some(subject) => {
                        router.route(&subject, &mut ready, None);
                        continue;
                    }
                    None => break,
                }
            };
            let Some(plugin) = registry.get(&unit.plugin) else {
                tracing::debug!(plugin = %unit.plugin, subject = %unit.subject, "plugin no longer in use; unit dropped");
                continue;
            };
            let options = spec.call_options(&plugin.info.name);
            let (engine, scan, events) = (engine.clone(), scan.clone(), events_tx.clone());
            summary.units += 1;
            running.spawn(async move {
                let result = plugin
                    .scan(&engine, scan, events, &unit.subject, &options)
                    .await;
                Outcome {
                    plugin: plugin.id().clone(),
                    subject: unit.subject,
                    result,
                }
            });
        }

        if running.is_empty() {
            // Events sent by the last units may still sit in the channel.
            let mut drained = false;
            while let Ok(event) = events_rx.try_recv() {
                drained = true;
                handle_event(
                    event,
                    &router,
                    &scope,
                    &mut seen,
                    &mut ready,
                    sink,
                    &mut summary,
                )?;
            }
            if !drained && ready.is_empty() {
                break;
            }
            continue;
        }

        tokio::select! {
            Some(event) = events_rx.recv() => {
                handle_event(event, &router, &scope, &mut seen, &mut ready, sink, &mut summary)?;
            }
            Some(joined) = running.join_next() => {
                let outcome = match joined {
                    Ok(outcome) => outcome,
                    // A panic in host code for this unit: a bug, but the scan goes on.
                    Err(e) => {
                        tracing::error!("a scan task failed: {e}");
                        summary.errors += 1;
                        continue;
                    }
                };
                if let Err(e) = outcome.result {
                    tracing::info!(plugin = %outcome.plugin.name, subject = %outcome.subject, "unit failed: {e}");
                    summary.errors += 1;
                    sink.write(&Record::error(&outcome.plugin, &outcome.subject, e.to_string()))?;
                }
            }
        }
    }
    sink.finish()?;
    summary.denied = scope.denied();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

fn handle_event(
    event: Event,
    router: &Router<'_>,
    scope: &Scope,
    seen: &mut HashSet<(String, SubjectKey)>,
    ready: &mut VecDeque<Unit>,
    sink: &mut dyn Sink,
    summary: &mut Summary,
) -> Result<(), ScanError> {
    match event {
        Event::Finding { plugin, finding } => {
            summary.findings += 1;
            sink.write(&Record::finding(&plugin, finding))?;
        }
        Event::Subject { plugin, subject } => {
            let in_scope = match &subject {
                Subject::Host(name) => scope.contains_name(name),
                other => other.ip().is_some_and(|ip| scope.contains(ip)),
            };
            if !in_scope {
                summary.out_of_scope += 1;
                tracing::info!(plugin = %plugin.name, %subject, "subject outside the scan's scope; not scanned");
                return Ok(());
            }
            router.route(&subject, ready, Some(seen));
        }
    }
    Ok(())
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
    let (events_tx, mut events_rx) = mpsc::channel::<Event>(1024);
    let options = spec.call_options(&plugin.info.name);
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
            Event::Finding { plugin, finding } => {
                summary.findings += 1;
                sink.write(&Record::finding(&plugin, finding))?;
            }
            Event::Subject { plugin, subject } => {
                sink.write(&Record::subject(&plugin, &subject))?
            }
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
    summary.elapsed = started.elapsed();
    Ok(summary)
}
