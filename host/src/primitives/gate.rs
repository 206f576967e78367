//! The gate every outbound operation of a scan passes: the global budget of
//! operations in flight (`--concurrency`), the per-host cap
//! (`--host-concurrency`), the pace of new connections and queries
//! (`--rate`), and the counters the summary and `--stats` report.
//!
//! One gate per scan, shared by every primitive, so the limits hold across
//! plugins: two plugins sweeping at once share one budget and one rate.
//! The scans of a daemon also share one [`Budget`], fairly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The scan's limits on outbound operations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Operations in flight across the scan.
    pub concurrency: usize,
    /// Operations in flight against one address; `None`: no cap.
    pub host_concurrency: Option<usize>,
    /// New connections and queries per second; `None`: as fast as the
    /// other limits allow.
    pub rate: Option<f64>,
    /// Extra attempts after a connect times out.
    pub retries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            concurrency: 1000,
            host_concurrency: None,
            rate: None,
            retries: 0,
        }
    }
}

/// What the scan's network operations did, for the summary and `--stats`.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Connection attempts (probes, connects, TLS and HTTP connections),
    /// retries included.
    pub connects: AtomicU64,
    /// Probed ports found open.
    pub open: AtomicU64,
    /// Probed ports found closed.
    pub closed: AtomicU64,
    /// Probed ports that never answered.
    pub filtered: AtomicU64,
    /// Probed ports with no route.
    pub unreachable: AtomicU64,
    /// Connection attempts that timed out (each attempt counts).
    pub timeouts: AtomicU64,
    /// Attempts repeated after a timeout (`--retries`).
    pub retries: AtomicU64,
    /// DNS queries sent to name servers (answers from the scan's cache
    /// are not counted).
    pub dns_queries: AtomicU64,
    /// DNS answers taken from the cache shared beyond this process
    /// (`--dns-cache redis`) instead of a name server.
    pub dns_shared_hits: AtomicU64,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl NetStats {
    /// The most operations that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::Relaxed)
    }

    /// The operations in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Add one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Spaces out new operations to a rate: each caller reserves the next free
/// slot and waits for it (no burst beyond one slot, like nmap's
/// `--max-rate` and ZMap's `--rate`).
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(per_second: f64) -> Self {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            // An idle spell does not bank slots for a later burst.
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// Per-address semaphores, created on demand and dropped when no operation
/// holds them, so the table is as large as the hosts in flight, not as the
/// hosts scanned.
#[derive(Debug)]
struct HostSlots {
    per_host: usize,
    slots: Mutex<HashMap<IpAddr, Arc<Semaphore>>>,
}

/// Operations in flight shared by all the scans of a process (`wscan
/// serve --concurrency`), fairly: each scan may hold at most its share,
/// the budget divided by the scans running, so a big scan cannot starve a
/// small one. A scan's own `--concurrency` still applies within its share.
#[derive(Debug)]
pub struct Budget {
    total: usize,
    permits: Arc<Semaphore>,
    /// Scans (gates) sharing the budget now.
    scans: AtomicUsize,
    /// Signalled when the scans sharing it change: the shares change.
    shares_changed: Notify,
}

impl Budget {
    /// A budget of `total` operations in flight.
    pub fn new(total: usize) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(Budget {
            total,
            permits: Arc::new(Semaphore::new(total)),
            scans: AtomicUsize::new(0),
            shares_changed: Notify::new(),
        })
    }

    /// What one scan may hold now.
    fn share(&self) -> usize {
        (self.total / self.scans.load(Ordering::SeqCst).max(1)).max(1)
    }
}

/// A gate's part of a [`Budget`].
#[derive(Debug)]
struct Share {
    budget: Arc<Budget>,
    /// Budget passes this scan holds (or is about to take).
    held: AtomicUsize,
    /// Signalled when this scan gives one back.
    freed: Notify,
}

impl Share {
    /// Wait until this scan is under its share, then for a budget permit.
    async fn enter(&self) -> OwnedSemaphorePermit {
        loop {
            // Registered before the check, so a change between the check
            // and the wait is not missed.
            let changed = self.budget.shares_changed.notified();
            let freed = self.freed.notified();
            let share = self.budget.share();
            let reserved = self
                .held
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                    (held < share).then_some(held + 1)
                })
                .is_ok();
            if reserved {
                break;
            }
            tokio::select! {
                () = changed => {}
                () = freed => {}
            }
        }
        // Given back if the wait is cut short (the operation cancelled);
        // once the permit is there, the caller's `ShareHold` gives it back.
        struct Reserved<'a>(&'a Share);
        impl Drop for Reserved<'_> {
            fn drop(&mut self) {
                self.0.leave();
            }
        }
        let reserved = Reserved(self);
        // The semaphore is never closed.
        let permit = self
            .budget
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("budget permit");
        std::mem::forget(reserved);
        permit
    }

    fn leave(&self) {
        self.held.fetch_sub(1, Ordering::SeqCst);
        self.freed.notify_one();
    }
}

/// A host slot held; dropping it frees the slot and, when nothing else
/// holds or waits on the host, its entry (also when the operation is
/// cancelled before it starts).
#[derive(Debug)]
struct HostHold {
    ip: IpAddr,
    permit: Option<OwnedSemaphorePermit>,
    gate: Arc<Gate>,
}

impl Drop for HostHold {
    fn drop(&mut self) {
        // The permit holds a reference to the host's semaphore: gone first,
        // so the entry is seen unused.
        drop(self.permit.take());
        self.gate.release_host(self.ip);
    }
}

/// A permit of the daemon's budget, counted in its gate's share until
/// dropped (also when the operation is cancelled before it starts).
#[derive(Debug)]
struct ShareHold {
    _permit: OwnedSemaphorePermit,
    gate: Arc<Gate>,
}

impl Drop for ShareHold {
    fn drop(&mut self) {
        if let Some(share) = &self.gate.share {
            share.leave();
        }
    }
}

/// The right to one operation in flight; dropping it frees the slot.
#[derive(Debug)]
pub struct Pass {
    _global: OwnedSemaphorePermit,
    _host: Option<HostHold>,
    _shared: Option<ShareHold>,
    stats: Arc<NetStats>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The scan's gate; see the module documentation.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    permits: Arc<Semaphore>,
    pacer: Option<Pacer>,
    hosts: Option<HostSlots>,
    share: Option<Share>,
    stats: Arc<NetStats>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(share) = &self.share {
            share.budget.scans.fetch_sub(1, Ordering::SeqCst);
            share.budget.shares_changed.notify_waiters();
        }
    }
}

impl Gate {
    /// A gate enforcing `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Self::sharing(limits, None, None)
    }

    /// A gate enforcing `limits`, within its share of `budget` if given,
    /// counting in `stats` if given (someone else reads them while the
    /// scan runs).
    pub fn sharing(
        limits: Limits,
        budget: Option<Arc<Budget>>,
        stats: Option<Arc<NetStats>>,
    ) -> Arc<Self> {
        let share = budget.map(|budget| {
            budget.scans.fetch_add(1, Ordering::SeqCst);
            budget.shares_changed.notify_waiters();
            Share {
                budget,
                held: AtomicUsize::new(0),
                freed: Notify::new(),
            }
        });
        let concurrency = limits.concurrency.max(1);
        Arc::new(Gate {
            limits: Limits {
                concurrency,
                ..limits
            },
            permits: Arc::new(Semaphore::new(concurrency)),
            pacer: limits.rate.filter(|r| *r > 0.0).map(Pacer::new),
            hosts: limits.host_concurrency.map(|n| HostSlots {
                per_host: n.max(1),
                slots: Mutex::default(),
            }),
            share,
            stats: stats.unwrap_or_default(),
        })
    }

    /// The limits this gate enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The scan's counters.
    pub fn stats(&self) -> &Arc<NetStats> {
        &self.stats
    }

    /// Wait for the right to start one operation towards `ip` (`None`: an
    /// operation with no single destination of the scan's, a DNS query).
    /// The host slot is taken first, so a busy host does not sit on global
    /// slots other hosts could use; the rate applies last, to the moment
    /// the operation really starts.
    pub async fn enter(self: &Arc<Self>, ip: Option<IpAddr>) -> Pass {
        let host = match (&self.hosts, ip) {
            (Some(hosts), Some(ip)) => {
                let slot = {
                    let mut slots = hosts.slots.lock().unwrap_or_else(|e| e.into_inner());
                    slots
                        .entry(ip)
                        .or_insert_with(|| Arc::new(Semaphore::new(hosts.per_host)))
                        .clone()
                };
                let mut hold = HostHold {
                    ip,
                    permit: None,
                    gate: self.clone(),
                };
                // The semaphores are never closed.
                hold.permit = Some(slot.acquire_owned().await.expect("host slot"));
                Some(hold)
            }
            _ => None,
        };
        let global = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("global slot");
        if let Some(pacer) = &self.pacer {
            pacer.wait().await;
        }
        // The daemon's budget last: a scan waiting for its share, or for
        // its rate, holds none of it.
        let shared = match &self.share {
            Some(share) => Some(ShareHold {
                _permit: share.enter().await,
                gate: self.clone(),
            }),
            None => None,
        };
        let now = self.stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.stats.peak_in_flight.fetch_max(now, Ordering::Relaxed);
        Pass {
            _global: global,
            _host: host,
            _shared: shared,
            stats: self.stats.clone(),
        }
    }

    /// Forget `ip`'s semaphore when nothing holds or waits on it.
    fn release_host(&self, ip: IpAddr) {
        if let Some(hosts) = &self.hosts {
            let mut slots = hosts.slots.lock().unwrap_or_else(|e| e.into_inner());
            // One reference is the table's own.
            if slots.get(&ip).is_some_and(|s| Arc::strong_count(s) == 1) {
                slots.remove(&ip);
            }
        }
    }

    /// How long to wait before retry number `attempt` (1-based): 100 ms
    /// doubling each time, at most 5 s, with up to half of it as random
    /// jitter so retries against one host do not arrive in lockstep.
    pub fn backoff(attempt: u32) -> Duration {
        let base = 100u64
            .saturating_mul(1 << attempt.saturating_sub(1).min(6))
            .min(5_000);
        Duration::from_millis(base / 2 + fastrand::u64(0..=base / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_rate_spaces_operations_out() {
        let gate = Gate::new(Limits {
            rate: Some(100.0),
            ..Limits::default()
        });
        let start = Instant::now();
        for _ in 0..21 {
            drop(gate.enter(None).await);
        }
        // 21 operations at 100/s: the last starts 200 ms after the first.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(195), "{took:?}");
    }

    #[tokio::test]
    async fn a_host_gets_no_more_than_its_share() {
        let gate = Gate::new(Limits {
            concurrency: 10,
            host_concurrency: Some(2),
            ..Limits::default()
        });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let a = gate.enter(Some(ip)).await;
        let b = gate.enter(Some(ip)).await;
        // A third pass to the same host waits; another host does not.
        let third = tokio::time::timeout(Duration::from_millis(50), gate.enter(Some(ip))).await;
        assert!(third.is_err());
        let _c = gate.enter(Some(other)).await;
        drop(a);
        let _d = tokio::time::timeout(Duration::from_secs(1), gate.enter(Some(ip)))
            .await
            .expect("a slot was freed");
        drop(b);
        assert_eq!(gate.stats().peak_in_flight(), 3);
    }

    #[tokio::test]
    async fn idle_hosts_leave_no_entry_behind() {
        let gate = Gate::new(Limits {
            host_concurrency: Some(1),
            ..Limits::default()
        });
        for i in 1..=50u8 {
            let ip = IpAddr::from([127, 0, 0, i]);
            drop(gate.enter(Some(ip)).await);
        }
        // An operation cancelled while it waits for a global slot, its
        // host slot taken, leaves nothing behind either.
        let narrow = Gate::new(Limits {
            concurrency: 1,
            host_concurrency: Some(1),
            ..Limits::default()
        });
        let held = narrow.enter(Some(IpAddr::from([127, 0, 0, 1]))).await;
        let cut = tokio::time::timeout(
            Duration::from_millis(20),
            narrow.enter(Some(IpAddr::from([127, 0, 0, 2]))),
        )
        .await;
        assert!(cut.is_err());
        drop(held);
        assert!(no_host_entries(&narrow));
        assert!(no_host_entries(&gate));
    }

    fn no_host_entries(gate: &Gate) -> bool {
        let hosts = gate.hosts.as_ref().unwrap();
        hosts.slots.lock().unwrap().is_empty()
    }

    #[tokio::test]
    async fn a_big_scan_cannot_starve_a_small_one_of_the_shared_budget() {
        let budget = Budget::new(10);
        let big = Gate::sharing(Limits::default(), Some(budget.clone()), None);
        // Alone, the big scan takes the whole budget.
        let mut held: Vec<Pass> = Vec::new();
        for _ in 0..10 {
            held.push(big.enter(None).await);
        }
        let small = Gate::sharing(Limits::default(), Some(budget.clone()), None);
        let wait = Duration::from_millis(50);
        // A second scan halves the shares: the big one, over its share,
        // gets no more, even as it gives passes back...
        let more = tokio::spawn({
            let big = big.clone();
            async move { big.enter(None).await }
        });
        tokio::time::sleep(wait).await;
        held.truncate(5);
        // ...and the small one gets what the big one gives back.
        let mut small_held = Vec::new();
        for _ in 0..5 {
            small_held.push(
                tokio::time::timeout(Duration::from_secs(1), small.enter(None))
                    .await
                    .expect("the small scan's share"),
            );
        }
        assert!(!more.is_finished());
        // Up to its own share of 5 (a wait cut short gives its place back).
        assert!(
            tokio::time::timeout(wait, small.enter(None)).await.is_err(),
            "over its share"
        );
        held.truncate(4);
        let _fifth = tokio::time::timeout(Duration::from_secs(1), more)
            .await
            .expect("the big scan's share")
            .unwrap();
        // The small scan ends: the big one may take the whole budget again.
        drop(small_held);
        drop(small);
        for _ in 0..5 {
            held.push(
                tokio::time::timeout(Duration::from_secs(1), big.enter(None))
                    .await
                    .expect("the whole budget"),
            );
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for _ in 0..100 {
            let first = Gate::backoff(1);
            assert!((50..=100).contains(&first.as_millis()), "{first:?}");
            let third = Gate::backoff(3);
            assert!((200..=400).contains(&third.as_millis()), "{third:?}");
            assert!(Gate::backoff(30) <= Duration::from_secs(5));
        }
    }
}
