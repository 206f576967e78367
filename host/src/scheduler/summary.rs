//! What a finished scan did: the summary printed on standard error and the
//! JSON that `--stats FILE` writes (documented in docs/output.md).

use crate::primitives::gate::NetStats;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Per-plugin totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PluginStats {
    /// Calls run.
    pub units: u64,
    /// Findings reported.
    pub findings: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Wall time of its calls, summed (calls overlap, so the sum of all
    /// plugins can exceed the scan's time).
    #[serde(rename = "time_s", serialize_with = "seconds")]
    pub time: Duration,
}

/// Totals of the scan's network operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NetTotals {
    /// Connection attempts, retries included.
    pub connects: u64,
    /// Probed ports found open.
    pub open: u64,
    /// Probed ports found closed.
    pub closed: u64,
    /// Probed ports that never answered.
    pub filtered: u64,
    /// Probed ports with no route.
    pub unreachable: u64,
    /// Connection attempts that timed out.
    pub timeouts: u64,
    /// Attempts repeated after a timeout.
    pub retries: u64,
    /// DNS lookups.
    pub dns_queries: u64,
    /// DNS answers taken from the shared cache (`--dns-cache redis`).
    #[serde(default)]
    pub dns_shared_hits: u64,
    /// The most operations in flight at once.
    pub peak_in_flight: u64,
}

impl NetTotals {
    /// Add `other`'s counters to these (all but `peak_in_flight`, which
    /// does not add up: the caller decides what a peak of several is).
    pub fn add_counts(&mut self, other: &NetTotals) {
        self.connects += other.connects;
        self.open += other.open;
        self.closed += other.closed;
        self.filtered += other.filtered;
        self.unreachable += other.unreachable;
        self.timeouts += other.timeouts;
        self.retries += other.retries;
        self.dns_queries += other.dns_queries;
        self.dns_shared_hits += other.dns_shared_hits;
    }
}

impl From<&NetStats> for NetTotals {
    fn from(s: &NetStats) -> Self {
        let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        NetTotals {
            connects: n(&s.connects),
            open: n(&s.open),
            closed: n(&s.closed),
            filtered: n(&s.filtered),
            unreachable: n(&s.unreachable),
            timeouts: n(&s.timeouts),
            retries: n(&s.retries),
            dns_queries: n(&s.dns_queries),
            dns_shared_hits: n(&s.dns_shared_hits),
            peak_in_flight: s.peak_in_flight() as u64,
        }
    }
}

/// What a finished scan did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Plugin calls run.
    pub units: u64,
    /// Findings written.
    pub findings: u64,
    /// Units that failed (trap, deadline, plugin error).
    pub errors: u64,
    /// Subjects emitted by plugins that were out of scope: reported (once
    /// each), not scanned.
    pub out_of_scope: u64,
    /// Operations the scope check denied.
    pub denied: u64,
    /// Targets taken from the target list (addresses and names).
    pub targets: u64,
    /// Units not run because an earlier run of this scan completed them
    /// (`--resume`).
    pub skipped: u64,
    /// Whether the scan was stopped (Ctrl-C, SIGTERM) before its end.
    pub interrupted: bool,
    /// Lines of `-i` input that were not targets (skipped).
    pub bad_lines: u64,
    /// What was wrong with the first ten of them.
    pub input_errors: Vec<String>,
    /// Why reading `-i` input stopped before its end, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_failure: Option<String>,
    /// Network operations.
    pub net: NetTotals,
    /// Per plugin, by name.
    pub plugins: BTreeMap<String, PluginStats>,
    /// A distributed scan's work items and workers (`--redis`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterTotals>,
    /// Wall time.
    #[serde(rename = "elapsed_s", serialize_with = "seconds")]
    pub elapsed: Duration,
}

/// What the workers of a distributed scan did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClusterTotals {
    /// Work items of the scan.
    pub items: u64,
    /// Items that went to the dead letters.
    pub dead: u64,
    /// Unit results received for units already stored, and dropped: the
    /// work of items run again after their worker was lost.
    pub duplicates: u64,
    /// Per worker, by name.
    pub workers: BTreeMap<String, WorkerTotals>,
}

/// What one worker did for a distributed scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkerTotals {
    /// Items it completed.
    pub items: u64,
    /// Connection attempts of those items.
    pub connects: u64,
    /// Wall time of those items, summed.
    #[serde(rename = "busy_s", serialize_with = "seconds")]
    pub busy: Duration,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

impl Summary {
    /// The lines printed on standard error at the end of a scan.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "wscan: {} unit(s), {} finding(s), {} error(s) in {:.2}s{}",
            self.units,
            self.findings,
            self.errors,
            self.elapsed.as_secs_f64(),
            if self.denied + self.out_of_scope > 0 {
                format!(
                    "; {} out-of-scope operation(s) denied",
                    self.denied + self.out_of_scope
                )
            } else {
                String::new()
            }
        )];
        let n = &self.net;
        if n.connects + n.dns_queries + n.dns_shared_hits > 0 {
            let shared = match n.dns_shared_hits {
                0 => String::new(),
                hits => format!(" ({hits} more answered by the shared cache)"),
            };
            lines.push(format!(
                "wscan: {} connect(s): {} open, {} closed, {} filtered, {} unreachable port(s); {} timeout(s), {} retried; {} DNS quer(ies){shared}; peak {} in flight",
                n.connects,
                n.open,
                n.closed,
                n.filtered,
                n.unreachable,
                n.timeouts,
                n.retries,
                n.dns_queries,
                n.peak_in_flight
            ));
        }
        if let Some(c) = &self.cluster {
            let per: Vec<String> = c
                .workers
                .iter()
                .map(|(name, w)| format!("{name} {}", w.items))
                .collect();
            lines.push(format!(
                "wscan: {} work item(s) on {} worker(s) ({}); {} dead; {} unit result(s) received again and dropped",
                c.items,
                c.workers.len(),
                per.join(", "),
                c.dead,
                c.duplicates
            ));
        }
        for (name, p) in &self.plugins {
            lines.push(format!(
                "wscan: plugin {name}: {} unit(s), {} finding(s), {} error(s), {:.2}s of plugin time (calls summed; they overlap)",
                p.units,
                p.findings,
                p.errors,
                p.time.as_secs_f64()
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_json_has_every_counter() {
        let mut summary = Summary {
            units: 2,
            findings: 3,
            elapsed: Duration::from_millis(1234),
            ..Summary::default()
        };
        summary.plugins.insert(
            "port".into(),
            PluginStats {
                units: 2,
                findings: 3,
                errors: 0,
                time: Duration::from_millis(500),
            },
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["elapsed_s"], 1.234);
        assert_eq!(json["plugins"]["port"]["time_s"], 0.5);
        assert_eq!(json["net"]["peak_in_flight"], 0);
        assert_eq!(summary.lines().len(), 2, "{:?}", summary.lines());
    }
}
