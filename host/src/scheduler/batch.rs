//! Units waiting to run, grouped so that one plugin instance takes many:
//! a batch is units of one plugin with the same ports (one call's
//! options), and its size follows the work waiting.
//!
//! Instantiating a component costs about as much CPU as a connect; on a
//! sweep of many addresses and one port, one instance per address would
//! be the whole cost of the scan. An instance runs its subjects
//! concurrently, so what waits is shared out over about as many instances
//! as there are cores (each instance runs on one thread at a time): a few
//! units still go to several instances (three HTTP services on two cores:
//! two and one), many fill instances of [`MAX_BATCH`].

use super::route::Unit;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// The most subjects one instance is given at once. Past a few hundred,
/// an instance's cost is already spread thin, and a batch stopped by one
/// bad subject has more to run again.
pub const MAX_BATCH: usize = 256;

/// What units of one batch share: the plugin, and the ports of a
/// `host:port` target (`None`: the scan's).
type Group = (String, Option<Arc<[(u16, u16)]>>);

/// The queue of units not started yet, by group; groups take turns.
#[derive(Default)]
pub(super) struct Ready {
    groups: HashMap<Group, VecDeque<Unit>>,
    /// Groups with units waiting, the next to run first.
    turn: VecDeque<Group>,
    /// Units waiting.
    len: usize,
    /// The units' weight, summed.
    weight: usize,
    /// Units ever queued.
    queued: u64,
}

impl Ready {
    /// Queue `unit` behind the units of its group.
    pub fn push(&mut self, unit: Unit) {
        let group = (unit.plugin.clone(), unit.ports.clone());
        let queue = self.groups.entry(group.clone()).or_default();
        if queue.is_empty() {
            self.turn.push_back(group);
        }
        self.len += 1;
        self.queued += 1;
        self.weight += unit.weight;
        queue.push_back(unit);
    }

    /// The units' weight, summed ([`Unit::weight`]).
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// How many units were ever queued.
    pub fn queued(&self) -> u64 {
        self.queued
    }

    /// Whether no unit waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The next batch: units of the group whose turn it is, as many as
    /// [`batch_size`] says for `free` instances and at most `max` for its
    /// plugin, while their weight fits in `room` (one unit at least,
    /// whatever its weight).
    pub fn take(
        &mut self,
        free: usize,
        room: usize,
        max: impl Fn(&str) -> usize,
    ) -> Option<Vec<Unit>> {
        let group = self.turn.pop_front()?;
        let queue = self.groups.get_mut(&group)?;
        let size = batch_size(queue.len(), free).min(max(&group.0).max(1));
        let mut batch = Vec::with_capacity(size);
        let mut weight = 0;
        while batch.len() < size {
            let Some(unit) = queue.front() else { break };
            if !batch.is_empty() && weight + unit.weight > room {
                break;
            }
            weight += unit.weight;
            batch.extend(queue.pop_front());
        }
        self.len -= batch.len();
        self.weight -= weight;
        if queue.is_empty() {
            self.groups.remove(&group);
        } else {
            self.turn.push_back(group);
        }
        Some(batch)
    }
}

/// How many of `waiting` units the next instance takes: an even share
/// over as many instances as there are cores (fewer when fewer are
/// free), within 1 and [`MAX_BATCH`].
pub(super) fn batch_size(waiting: usize, free: usize) -> usize {
    let instances = crate::primitives::cores().min(free).max(1);
    waiting.div_ceil(instances).clamp(1, MAX_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Subject;

    fn unit(plugin: &str, n: u8, ports: Option<&Arc<[(u16, u16)]>>) -> Unit {
        Unit {
            plugin: plugin.into(),
            subject: Subject::Address {
                ip: [10, 0, 0, n].into(),
                host: None,
            },
            ports: ports.cloned(),
            key: format!("{plugin} {n}").into(),
            weight: 1,
            place: None,
        }
    }

    #[test]
    fn few_units_spread_over_the_cores_many_fill_instances() {
        let cores = crate::primitives::cores();
        assert_eq!(batch_size(cores, 64), 1);
        assert_eq!(batch_size(3 * cores, 64), 3);
        assert_eq!(batch_size(100_000, 64), MAX_BATCH);
        assert_eq!(batch_size(5, 1), 5);
        assert_eq!(batch_size(5, 0), 5);
        assert_eq!(batch_size(0, 8), 1);
    }

    #[test]
    fn a_batch_holds_one_plugin_and_one_set_of_ports() {
        let pinned: Arc<[(u16, u16)]> = Arc::from(&[(443, 443)][..]);
        let mut ready = Ready::default();
        for n in 0..4 {
            ready.push(unit("port", n, None));
            ready.push(unit("dns", n, None));
        }
        ready.push(unit("port", 9, Some(&pinned)));
        assert_eq!(ready.weight(), 9);
        let mut seen = Vec::new();
        while let Some(batch) = ready.take(1, usize::MAX, |_| MAX_BATCH) {
            let first = &batch[0];
            assert!(
                batch
                    .iter()
                    .all(|u| u.plugin == first.plugin && u.ports == first.ports)
            );
            seen.push((first.plugin.clone(), first.ports.is_some(), batch.len()));
        }
        assert!(ready.is_empty());
        seen.sort();
        assert_eq!(
            seen,
            [
                ("dns".to_string(), false, 4),
                ("port".to_string(), false, 4),
                ("port".to_string(), true, 1)
            ]
        );
    }

    #[test]
    fn groups_take_turns_and_weight_bounds_a_batch() {
        let mut ready = Ready::default();
        for n in 0..10 {
            ready.push(unit("port", n, None));
        }
        ready.push(unit("http", 0, None));
        // One free instance: ten units, but only three fit.
        let first = ready.take(1, 3, |_| MAX_BATCH).unwrap();
        assert_eq!(first.len(), 3);
        assert_eq!(first[0].plugin, "port");
        // The other group's turn comes before the rest of the first.
        assert_eq!(ready.take(1, 3, |_| MAX_BATCH).unwrap()[0].plugin, "http");
        // A unit heavier than the room still runs, alone.
        let mut heavy = unit("port", 20, None);
        heavy.weight = 65_535;
        let mut alone = Ready::default();
        alone.push(heavy);
        alone.push(unit("port", 21, None));
        assert_eq!(alone.take(1, 10, |_| MAX_BATCH).unwrap().len(), 1);
        // And `--batch-size` bounds every batch.
        for n in 0..10 {
            alone.push(unit("port", n, None));
        }
        assert_eq!(alone.take(1, usize::MAX, |_| 3).unwrap().len(), 3);
    }
}
