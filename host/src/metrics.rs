//! The process's metrics, in the OpenMetrics text format Prometheus
//! scrapes: `GET /metrics` of `wscan serve`, and `wscan scan --metrics
//! ADDR` for a CLI scan. The names are listed in docs/api.md.
//!
//! Network counters are not counted twice on the hot path: each scan's gate
//! already counts its connects and queries (the numbers of its summary), so
//! a scrape adds up the running scans' counters and the totals of the scans
//! that ended. Unit durations, findings and API requests are observed as
//! they happen.

use crate::engine::CallError;
use crate::engine::registry::ReloadStats;
use crate::primitives::gate::NetStats;
use crate::scheduler::NetTotals;
use crate::scope::Scope;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bucket bounds of unit durations, in seconds: a port probe takes
/// microseconds, a slow TLS or HTTP unit seconds, a stuck one its deadline.
const UNIT_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bucket bounds of API request durations, in seconds.
const REQUEST_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UnitLabels {
    plugin: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    plugin: String,
    kind: String,
    severity: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

/// The metrics of one wscan process; see the module documentation.
pub struct Metrics {
    registry: Registry,
    units: Family<UnitLabels, Histogram>,
    findings: Family<FindingLabels, Counter>,
    scans_started: Counter,
    scans_ended: Family<StatusLabels, Counter>,
    scans_running: Gauge,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram>,
    net: Arc<NetCollector>,
    plugins: Arc<PluginCollector>,
    cluster: Cluster,
}

/// A distributed scan's coordinator's figures (`wscan scan --redis`).
#[derive(Default)]
struct Cluster {
    items: Family<WorkerLabels, Counter>,
    connects: Family<WorkerLabels, Counter>,
    dropped: Counter,
    dead: Counter,
    republished: Counter,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wscan");
        let units = Family::<UnitLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(UNIT_BUCKETS)) as fn() -> Histogram,
        );
        let request_seconds = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(REQUEST_BUCKETS)) as fn() -> Histogram,
        );
        let metrics = Metrics {
            registry: Registry::default(),
            units: units.clone(),
            findings: Family::default(),
            scans_started: Counter::default(),
            scans_ended: Family::default(),
            scans_running: Gauge::default(),
            requests: Family::default(),
            request_seconds: request_seconds.clone(),
            net: Arc::default(),
            plugins: Arc::default(),
            cluster: Cluster::default(),
        };
        registry.register(
            "build",
            "The wscan version serving these metrics",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_with_unit(
            "unit_duration",
            "Units (one plugin on one subject) by plugin and outcome (ok, failed, trapped, deadline): their time from the start of their call to their end; _count is the units run",
            Unit::Seconds,
            units,
        );
        registry.register(
            "findings",
            "Findings reported, by plugin, kind and severity",
            metrics.findings.clone(),
        );
        registry.register(
            "scans_started",
            "Scans started (and resumed) by this process",
            metrics.scans_started.clone(),
        );
        registry.register(
            "scans_ended",
            "Scans of this process that ended, by status (completed, interrupted, failed)",
            metrics.scans_ended.clone(),
        );
        registry.register(
            "scans_running",
            "Scans running now",
            metrics.scans_running.clone(),
        );
        registry.register(
            "http_requests",
            "API requests served, by route, method and status",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "API request durations until the response starts (an event stream's headers), by route and method",
            Unit::Seconds,
            request_seconds,
        );
        let c = &metrics.cluster;
        registry.register(
            "cluster_items",
            "Work items of a distributed scan (--redis) completed, by worker",
            c.items.clone(),
        );
        registry.register(
            "cluster_worker_connects",
            "Connection attempts of the work items completed, by worker",
            c.connects.clone(),
        );
        registry.register(
            "cluster_unit_results_dropped",
            "Unit results a distributed scan received for units stored already (items run again after their worker was lost), and dropped",
            c.dropped.clone(),
        );
        registry.register(
            "cluster_dead_items",
            "Work items that failed every delivery and went to the dead letters",
            c.dead.clone(),
        );
        registry.register(
            "cluster_items_republished",
            "Work items published again: a run ended with unit results missing, or Redis lost the scan",
            c.republished.clone(),
        );
        registry.register_collector(Box::new(metrics.net.clone()));
        registry.register_collector(Box::new(metrics.plugins.clone()));
        Metrics {
            registry,
            ..metrics
        }
    }

    /// The metrics as OpenMetrics text ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; the encoder only propagates
        // the writer's errors.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Count the plugin folder's loads, swaps, rejections and removals
    /// (one registry per process).
    pub fn watch_plugins(&self, stats: Arc<ReloadStats>) {
        let _ = self.plugins.stats.set(stats);
    }

    /// Take in that a scan starts, with `net` and `scope` counting its
    /// operations: they count in the totals until it ends, then its
    /// numbers are kept. The scan ends when [`ScanTracker::end`] is
    /// called, or failed when the tracker is dropped first.
    pub fn scan_started(self: &Arc<Self>, net: Arc<NetStats>, scope: Arc<Scope>) -> ScanTracker {
        self.scans_started.inc();
        self.scans_running.inc();
        let id = {
            let mut books = self.net.books();
            books.next += 1;
            let id = books.next;
            books.live.push((id, net, scope));
            id
        };
        ScanTracker {
            metrics: self.clone(),
            id,
            ended: false,
        }
    }

    /// Take in that a unit of `plugin` ended with `result` after `elapsed`.
    pub fn unit_done(&self, plugin: &str, result: &Result<(), CallError>, elapsed: Duration) {
        let outcome = match result {
            Ok(()) => "ok",
            Err(CallError::Failed(_)) => "failed",
            Err(CallError::Trapped(_)) => "trapped",
            Err(CallError::Deadline(_)) => "deadline",
        };
        self.units
            .get_or_create(&UnitLabels {
                plugin: plugin.to_owned(),
                outcome,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Take in that `worker` completed a work item of a distributed scan,
    /// with `connects` connection attempts.
    pub fn cluster_item(&self, worker: &str, connects: u64) {
        let labels = WorkerLabels {
            worker: worker.to_owned(),
        };
        self.cluster.items.get_or_create(&labels).inc();
        self.cluster
            .connects
            .get_or_create(&labels)
            .inc_by(connects);
    }

    /// Take in a unit result dropped as received again.
    pub fn cluster_dropped(&self) {
        self.cluster.dropped.inc();
    }

    /// Take in a work item gone to the dead letters.
    pub fn cluster_dead(&self) {
        self.cluster.dead.inc();
    }

    /// Take in `items` work items published again.
    pub fn cluster_republished(&self, items: u64) {
        self.cluster.republished.inc_by(items);
    }

    /// Take in a finding of `plugin`.
    pub fn finding(&self, plugin: &str, kind: &str, severity: crate::model::Severity) {
        let severity = match severity {
            crate::model::Severity::Info => "info",
            crate::model::Severity::Low => "low",
            crate::model::Severity::Medium => "medium",
            crate::model::Severity::High => "high",
            crate::model::Severity::Critical => "critical",
        };
        self.findings
            .get_or_create(&FindingLabels {
                plugin: plugin.to_owned(),
                kind: kind.to_owned(),
                severity,
            })
            .inc();
    }

    /// Take in an API request to `route` (its pattern, as `/v1/scans/{id}`,
    /// so that the label set stays small) answered with `status`.
    pub fn request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method: method.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

/// A running scan, as the metrics know it.
#[must_use = "a scan that is dropped without end() counts as failed"]
pub struct ScanTracker {
    metrics: Arc<Metrics>,
    id: u64,
    ended: bool,
}

impl ScanTracker {
    /// The scan ended with `status`: `completed`, `interrupted` or
    /// `failed`.
    pub fn end(mut self, status: &'static str) {
        self.close(status);
    }

    fn close(&mut self, status: &'static str) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.metrics.net.retire(self.id);
        self.metrics.scans_running.dec();
        self.metrics
            .scans_ended
            .get_or_create(&StatusLabels { status })
            .inc();
    }
}

impl Drop for ScanTracker {
    fn drop(&mut self) {
        self.close("failed");
    }
}

/// The network counters of all scans: the running ones' live counters and
/// the ended ones' totals.
#[derive(Default)]
struct NetCollector {
    books: Mutex<NetBooks>,
}

#[derive(Default)]
struct NetBooks {
    next: u64,
    live: Vec<(u64, Arc<NetStats>, Arc<Scope>)>,
    /// Ended scans' totals, and their operations the scope denied.
    ended: (NetTotals, u64),
}

impl fmt::Debug for NetCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetCollector").finish_non_exhaustive()
    }
}

fn add(sum: &mut NetTotals, n: &NetTotals) {
    sum.add_counts(n);
}

impl NetCollector {
    fn books(&self) -> std::sync::MutexGuard<'_, NetBooks> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Move scan `id`'s numbers from the live list to the totals.
    fn retire(&self, id: u64) {
        let mut books = self.books();
        if let Some(at) = books.live.iter().position(|(i, ..)| *i == id) {
            let (_, net, scope) = books.live.swap_remove(at);
            add(&mut books.ended.0, &NetTotals::from(net.as_ref()));
            books.ended.1 += scope.denied();
        }
    }

    /// All scans' totals, operations denied, and operations in flight now.
    fn totals(&self) -> (NetTotals, u64, u64) {
        let books = self.books();
        let (mut sum, mut denied) = books.ended.clone();
        let mut in_flight = 0;
        for (_, net, scope) in &books.live {
            add(&mut sum, &NetTotals::from(net.as_ref()));
            denied += scope.denied();
            in_flight += net.in_flight() as u64;
        }
        (sum, denied, in_flight)
    }
}

/// A counter family with one label, written on each scrape.
fn labelled_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, u64)],
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (value, count) in values {
        let labels = [(label, *value)];
        ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

impl Collector for NetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let (n, denied, in_flight) = self.totals();
        counter(
            &mut encoder,
            "connects",
            "Connection attempts (port probes, connects, TLS and HTTP connections), retries included",
            n.connects,
        )?;
        labelled_counter(
            &mut encoder,
            "ports",
            "Probed ports by state",
            "state",
            &[
                ("open", n.open),
                ("closed", n.closed),
                ("filtered", n.filtered),
                ("unreachable", n.unreachable),
            ],
        )?;
        counter(
            &mut encoder,
            "connect_timeouts",
            "Connection attempts that timed out",
            n.timeouts,
        )?;
        counter(
            &mut encoder,
            "connect_retries",
            "Attempts repeated after a timeout (--retries)",
            n.retries,
        )?;
        counter(
            &mut encoder,
            "dns_queries",
            "DNS queries sent to name servers (answers from the scan's cache are not counted)",
            n.dns_queries,
        )?;
        counter(
            &mut encoder,
            "dns_shared_hits",
            "DNS answers taken from the cache shared through Redis (--dns-cache redis) instead of a name server",
            n.dns_shared_hits,
        )?;
        counter(
            &mut encoder,
            "scope_denied",
            "Operations the scope check denied",
            denied,
        )?;
        let gauge = ConstGauge::new(in_flight as i64);
        gauge.encode(encoder.encode_descriptor(
            "in_flight",
            "Network operations in flight now",
            None,
            gauge.metric_type(),
        )?)
    }
}

/// The plugin folder's reload counters, read on each scrape.
#[derive(Debug, Default)]
struct PluginCollector {
    stats: OnceLock<Arc<ReloadStats>>,
}

impl Collector for PluginCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(stats) = self.stats.get() else {
            return Ok(());
        };
        let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        labelled_counter(
            &mut encoder,
            "plugin_reloads",
            "Plugin files taken in while running (the plugin folder, uploads), by event: loaded (new), swapped (changed), rejected (the old version stays), removed",
            "event",
            &[
                ("loaded", n(&stats.loaded)),
                ("swapped", n(&stats.swapped)),
                ("rejected", n(&stats.rejected)),
                ("removed", n(&stats.removed)),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CallError;

    #[test]
    fn a_coordinators_figures_are_counted_by_worker() {
        let metrics = Metrics::new();
        metrics.cluster_item("w1", 512);
        metrics.cluster_item("w1", 500);
        metrics.cluster_item("w2", 7);
        metrics.cluster_dropped();
        metrics.cluster_dead();
        metrics.cluster_republished(3);
        let text = metrics.render();
        for line in [
            "wscan_cluster_items_total{worker=\"w1\"} 2\n",
            "wscan_cluster_items_total{worker=\"w2\"} 1\n",
            "wscan_cluster_worker_connects_total{worker=\"w1\"} 1012\n",
            "wscan_cluster_unit_results_dropped_total 1\n",
            "wscan_cluster_dead_items_total 1\n",
            "wscan_cluster_items_republished_total 3\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }

    #[test]
    fn counters_of_ended_scans_are_kept() {
        let metrics = Arc::new(Metrics::new());
        let net = Arc::new(NetStats::default());
        let tracker = metrics.scan_started(net.clone(), Arc::new(Scope::default()));
        NetStats::bump(&net.connects);
        NetStats::bump(&net.open);
        metrics.unit_done("port", &Ok(()), Duration::from_millis(3));
        metrics.unit_done(
            "port",
            &Err(CallError::Deadline(Duration::from_secs(1))),
            Duration::from_secs(1),
        );
        metrics.finding("port", "open-port", crate::model::Severity::Info);
        let live = metrics.render();
        assert!(live.contains("wscan_connects_total 1\n"), "{live}");
        assert!(live.contains("wscan_scans_running 1\n"), "{live}");
        tracker.end("completed");
        // A second scan's numbers add up with the first's.
        let other = Arc::new(NetStats::default());
        let second = metrics.scan_started(other.clone(), Arc::new(Scope::default()));
        NetStats::bump(&other.connects);
        drop(second);
        let text = metrics.render();
        for line in [
            "wscan_connects_total 2\n",
            "wscan_ports_total{state=\"open\"} 1\n",
            "wscan_scans_running 0\n",
            "wscan_scans_started_total 2\n",
            "wscan_scans_ended_total{status=\"completed\"} 1\n",
            "wscan_scans_ended_total{status=\"failed\"} 1\n",
            "wscan_unit_duration_seconds_count{plugin=\"port\",outcome=\"ok\"} 1\n",
            "wscan_unit_duration_seconds_count{plugin=\"port\",outcome=\"deadline\"} 1\n",
            "wscan_findings_total{plugin=\"port\",kind=\"open-port\",severity=\"info\"} 1\n",
            "wscan_build_info{version=",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
