//! The order a scan visits its addresses in, and which of them one shard
//! takes: a seeded pseudo-random permutation of every address of the
//! targets (as ZMap does, so load spreads across networks), generated one
//! address at a time in constant memory.

use super::{Exclusions, Target};
use std::net::IpAddr;
use std::sync::Arc;

/// How to walk the target space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As written: each target in turn, its addresses ascending.
    Ordered,
    /// A permutation chosen by this seed.
    Shuffled(u64),
}

/// `--shard I/N`: this run takes every Nth address of the targets, from the
/// Ith (1-based), and visits them in the scan's order. N runs with I = 1..N
/// cover every address exactly once. (A share defined on the targets, not
/// on the walk, can be counted without walking.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: expected I/N with 1 <= I <= N, such as 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Every address of a list of targets, less exclusions, in a chosen order,
/// restricted to one shard.
#[derive(Debug, Clone)]
pub struct TargetSpace {
    targets: Vec<Target>,
    /// Running total of addresses before each target, to map an index to
    /// its target by binary search.
    starts: Vec<u128>,
    total: u128,
    exclude: Arc<Exclusions>,
    order: Order,
    shard: Shard,
    /// This shard's residue of the target index: `index - 1`, less the
    /// offset of a space that continues another ([`TargetSpace::after`]).
    residue: u128,
    /// Only these steps of the walk (a distributed scan's work item,
    /// [`TargetSpace::window`]); `None` walks it all.
    window: Option<(u128, u128)>,
}

impl TargetSpace {
    /// The space of `targets` without `exclude`. Targets are taken in
    /// canonical pieces ([`Target::canonical_pieces`]), so the walk, the
    /// count and the scope agree on IPv4-mapped addresses.
    pub fn new(targets: Vec<Target>, exclude: Arc<Exclusions>, order: Order, shard: Shard) -> Self {
        let targets: Vec<Target> = targets.iter().flat_map(Target::canonical_pieces).collect();
        let mut starts = Vec::with_capacity(targets.len());
        let mut total: u128 = 0;
        for t in &targets {
            starts.push(total);
            total = total.saturating_add(t.len());
        }
        TargetSpace {
            targets,
            starts,
            total,
            exclude,
            order,
            shard,
            residue: u128::from(shard.index - 1),
            window: None,
        }
    }

    /// How many steps the walk has: one per address in order, one per
    /// value of the permutation's cycle when shuffled (fewer than twice
    /// the addresses; the values past the end are skipped). Windows of
    /// steps ([`TargetSpace::window`]) split the walk into parts.
    pub fn steps(&self) -> u128 {
        match self.order {
            Order::Ordered => self.total,
            Order::Shuffled(_) => Permutation::steps(self.total),
        }
    }

    /// Only the steps `from..to` of the walk: the parts `0..s`, `s..2s`...
    /// together visit what the whole walk visits, each address once, in
    /// the same order. A part starts at once, wherever it is in the walk
    /// (the permutation jumps ahead), so a distributed scan can hand out
    /// parts of a huge space as work items.
    pub fn window(mut self, from: u128, to: u128) -> Self {
        self.window = Some((from, to));
        self
    }

    /// This space numbered as the continuation of `before` addresses of
    /// earlier spaces (the lines of `-i` input before this one), so the
    /// shards split a file of one address per line as they split a block.
    pub fn after(mut self, before: u128) -> Self {
        let n = u128::from(self.shard.count);
        self.residue = (u128::from(self.shard.index - 1) + n - before % n) % n;
        self
    }

    /// Addresses of all targets, exclusions and shards not applied.
    pub fn total(&self) -> u128 {
        self.total
    }

    /// How many addresses this shard visits, exclusions subtracted:
    /// arithmetic on the targets and the excluded ranges that overlap
    /// them, in time independent of the blocks' sizes (`::/0` included).
    ///
    /// A window ([`TargetSpace::window`]) is counted by walking it: its
    /// addresses are wherever the permutation put them.
    pub fn count(&self) -> u128 {
        if self.window.is_some() {
            return self.iter().count() as u128;
        }
        let (r, n) = (self.residue, u128::from(self.shard.count));
        // Indices below `x` that are `r` modulo `n`.
        let below = |x: u128| if x <= r { 0 } else { (x - r - 1) / n + 1 };
        // Indices in `from..=to` (inclusive) that are this shard's.
        let mine = |from: u128, to: u128| below(to.saturating_add(1)) - below(from);
        let mut count: u128 = 0;
        for (target, &start) in self.targets.iter().zip(&self.starts) {
            let last = start.saturating_add(target.len() - 1);
            let excluded: u128 = self
                .exclude
                .overlaps(target)
                .map(|(a, b)| mine(start.saturating_add(a), start.saturating_add(b)))
                .sum();
            count = count.saturating_add(mine(start, last) - excluded);
        }
        count
    }

    /// The `i`th address of the targets, in the order written.
    fn nth(&self, i: u128) -> IpAddr {
        let t = self.starts.partition_point(|&s| s <= i) - 1;
        // Canonical already: the targets are canonical pieces.
        self.targets[t].nth(i - self.starts[t])
    }

    /// Walk the space lazily: this shard's indices, in the scan's order,
    /// less exclusions.
    pub fn iter(&self) -> impl Iterator<Item = IpAddr> + Send + '_ {
        let (from, to) = self.window.unwrap_or((0, self.steps()));
        let indices: Box<dyn Iterator<Item = u128> + Send> = match self.order {
            Order::Ordered => Box::new(from.min(self.total)..to.min(self.total)),
            Order::Shuffled(seed) => Box::new(Permutation::window(self.total, seed, from, to)),
        };
        let (index, count) = (self.residue, u128::from(self.shard.count));
        indices
            .filter(move |i| i % count == index)
            .map(|i| self.nth(i))
            .filter(|ip| !self.exclude.contains(*ip))
    }
}

/// A pseudo-random permutation of `0..n`: a full-period linear congruential
/// generator modulo the next power of two, skipping values past `n` (at most
/// half of them), so it needs no memory however large `n` is.
#[derive(Debug, Clone)]
pub struct Permutation {
    n: u128,
    mask: u128,
    a: u128,
    c: u128,
    x: u128,
    /// Steps left in the cycle after the current value.
    left: u128,
    done: bool,
}

/// splitmix64: expands one seed into well-mixed constants.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Permutation {
    /// A permutation of `0..n` chosen by `seed`.
    pub fn new(n: u128, seed: u64) -> Self {
        let bits = 128 - n.saturating_sub(1).leading_zeros();
        let mask = if bits >= 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        let mut s = seed;
        let wide = |s: &mut u64| (u128::from(splitmix(s)) << 64) | u128::from(splitmix(s));
        // Hull-Dobell: with a power-of-two modulus the period is full when
        // c is odd and a - 1 is a multiple of 4.
        let a = (wide(&mut s) & mask & !3) | 1;
        let c = (wide(&mut s) & mask) | 1;
        let x = wide(&mut s) & mask;
        // The cycle has mask + 1 values (2^128 for the whole IPv6 space,
        // which does not fit a u128): count the steps after the first.
        Permutation {
            n,
            mask,
            a,
            c,
            x,
            left: mask,
            done: false,
        }
    }
}

impl Permutation {
    /// The values of the cycle that permutes `0..n`: the next power of two
    /// (`u128::MAX` for the whole IPv6 space, one short of 2^128).
    pub fn steps(n: u128) -> u128 {
        match n {
            // Nothing to permute: no step (the cycle would hold 0 alone).
            0 => 0,
            n => Permutation::new(n, 0).mask.saturating_add(1),
        }
    }

    /// The part of [`Permutation::new`]'s walk from step `from` to step
    /// `to` (steps count the cycle's values, those past `n` included).
    pub fn window(n: u128, seed: u64, from: u128, to: u128) -> Self {
        let mut p = Permutation::new(n, seed);
        let end = to.min(p.mask.saturating_add(1));
        if from >= end {
            p.done = true;
            return p;
        }
        p.x = p.jump(from);
        // `end - from` values: the current one and the steps after it.
        p.left = end - from - 1;
        p
    }

    /// The value `j` steps after the first, in O(log j): the generator's
    /// step x -> a*x + c composed with itself by squaring.
    fn jump(&self, mut j: u128) -> u128 {
        let (mut acc_a, mut acc_c) = (1u128, 0u128);
        let (mut a, mut c) = (self.a, self.c);
        while j > 0 {
            if j & 1 == 1 {
                acc_a = a.wrapping_mul(acc_a);
                acc_c = a.wrapping_mul(acc_c).wrapping_add(c);
            }
            c = a.wrapping_mul(c).wrapping_add(c);
            a = a.wrapping_mul(a);
            j >>= 1;
        }
        acc_a.wrapping_mul(self.x).wrapping_add(acc_c) & self.mask
    }
}

impl Iterator for Permutation {
    type Item = u128;

    fn next(&mut self) -> Option<u128> {
        loop {
            if self.done {
                return None;
            }
            let value = self.x;
            if self.left == 0 {
                self.done = true;
            } else {
                self.left -= 1;
                self.x = self.a.wrapping_mul(self.x).wrapping_add(self.c) & self.mask;
            }
            if value < self.n {
                return Some(value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn targets(list: &[&str]) -> Vec<Target> {
        list.iter().map(|t| t.parse().unwrap()).collect()
    }

    #[test]
    fn windows_of_the_walk_are_the_walk_cut_in_parts() {
        for n in [1u128, 2, 7, 1000, 4096, 70001] {
            for seed in [0, 9] {
                let whole: Vec<u128> = Permutation::new(n, seed).collect();
                let steps = Permutation::steps(n);
                for size in [1u128, 3, 100, steps] {
                    let parts: Vec<u128> = (0..steps.div_ceil(size))
                        .flat_map(|k| Permutation::window(n, seed, k * size, (k + 1) * size))
                        .collect();
                    assert_eq!(parts, whole, "n={n} seed={seed} size={size}");
                }
            }
        }
        // Spaces too: with a shard and exclusions, ordered or not.
        let exclude = Arc::new(Exclusions::of(&targets(&["10.0.0.7", "10.0.1.0/28"])));
        for order in [Order::Ordered, Order::Shuffled(5)] {
            let shard = Shard { index: 2, count: 3 };
            let space = TargetSpace::new(targets(&["10.0.0.0/23"]), exclude.clone(), order, shard);
            let whole: Vec<IpAddr> = space.iter().collect();
            let parts: Vec<IpAddr> = (0..space.steps().div_ceil(50))
                .flat_map(|k| {
                    space
                        .clone()
                        .window(k * 50, (k + 1) * 50)
                        .iter()
                        .collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(parts, whole, "{order:?}");
            let counted: u128 = (0..space.steps().div_ceil(50))
                .map(|k| space.clone().window(k * 50, (k + 1) * 50).count())
                .sum();
            assert_eq!(counted, space.count());
        }
        // A window deep into a huge space starts at once (every value of
        // a power-of-two space is in it).
        let huge = Permutation::window(1u128 << 100, 3, 1u128 << 90, (1u128 << 90) + 2);
        assert_eq!(huge.count(), 2);
    }

    #[test]
    fn permutations_visit_every_index_once() {
        for n in [1u128, 2, 3, 7, 8, 9, 1000, 65536, 70001] {
            for seed in [0, 1, 42] {
                let seen: Vec<u128> = Permutation::new(n, seed).collect();
                assert_eq!(seen.len() as u128, n, "n={n} seed={seed}");
                assert_eq!(
                    seen.iter().copied().collect::<HashSet<_>>().len() as u128,
                    n
                );
                assert!(seen.iter().all(|&i| i < n));
            }
        }
    }

    #[test]
    fn seeds_change_the_order_and_the_same_seed_repeats_it() {
        let a: Vec<u128> = Permutation::new(1000, 1).collect();
        let b: Vec<u128> = Permutation::new(1000, 2).collect();
        assert_ne!(a, b);
        assert_eq!(a, Permutation::new(1000, 1).collect::<Vec<_>>());
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn shards_partition_the_space() {
        let ts = targets(&["10.0.0.0/24", "192.0.2.10-20", "2001:db8::/126"]);
        let all: HashSet<IpAddr> = TargetSpace::new(
            ts.clone(),
            Arc::default(),
            Order::Ordered,
            Shard { index: 1, count: 1 },
        )
        .iter()
        .collect();
        assert_eq!(all.len(), 256 + 11 + 4);
        for count in [2u64, 3, 7] {
            let mut union = Vec::new();
            for index in 1..=count {
                let space = TargetSpace::new(
                    ts.clone(),
                    Arc::default(),
                    Order::Shuffled(9),
                    Shard { index, count },
                );
                union.extend(space.iter());
            }
            assert_eq!(union.len(), all.len(), "{count} shards overlap or miss");
            assert_eq!(union.into_iter().collect::<HashSet<_>>(), all);
        }
    }

    #[test]
    fn exclusions_are_skipped() {
        let ex = Exclusions::of(&targets(&["10.0.0.0/25", "10.0.0.200/32"]));
        let space = TargetSpace::new(
            targets(&["10.0.0.0/24"]),
            Arc::new(ex),
            Order::Shuffled(3),
            Shard { index: 1, count: 1 },
        );
        let got: HashSet<IpAddr> = space.iter().collect();
        assert_eq!(got.len(), 127);
        assert!(!got.contains(&"10.0.0.200".parse().unwrap()));
        assert!(!got.contains(&"10.0.0.5".parse().unwrap()));
    }

    #[test]
    fn huge_spaces_start_at_once() {
        let space = TargetSpace::new(
            targets(&["::/0"]),
            Arc::default(),
            Order::Shuffled(1),
            Shard { index: 1, count: 1 },
        );
        // Every IPv6 address but the IPv4-mapped block (2^32 of them).
        assert_eq!(space.total(), u128::MAX - (1u128 << 32) + 1);
        assert_eq!(space.iter().take(3).count(), 3);
    }

    #[test]
    fn counts_match_the_walk_for_every_shard_and_exclusion() {
        let ts = targets(&[
            "10.0.0.0/24",
            "192.0.2.10-20",
            "::ffff:198.51.100.0/126",
            "2001:db8::/120",
        ]);
        let ex = Arc::new(Exclusions::of(&targets(&[
            "10.0.0.3-10.0.0.77",
            "192.0.2.15",
            "198.51.100.2",
            "2001:db8::80/121",
            "172.16.0.0/12",
        ])));
        for count in [1u64, 2, 3, 7] {
            for index in 1..=count {
                for order in [Order::Ordered, Order::Shuffled(5)] {
                    let space =
                        TargetSpace::new(ts.clone(), ex.clone(), order, Shard { index, count });
                    assert_eq!(
                        space.count(),
                        space.iter().count() as u128,
                        "shard {index}/{count} {order:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn count_never_walks_a_huge_block() {
        let ex = Arc::new(Exclusions::of(&targets(&["fd00::/65"])));
        let counts: Vec<u128> = (1..=3)
            .map(|index| {
                let shard = Shard { index, count: 3 };
                TargetSpace::new(
                    targets(&["fd00::/64"]),
                    ex.clone(),
                    Order::Shuffled(1),
                    shard,
                )
                .count()
            })
            .collect();
        // 2^63 addresses left, split three ways.
        assert_eq!(counts.iter().sum::<u128>(), 1u128 << 63);
        assert!(
            counts.iter().all(|&c| c.abs_diff((1u128 << 63) / 3) <= 1),
            "{counts:?}"
        );
        let shard = Shard { index: 1, count: 1 };
        let all = TargetSpace::new(targets(&["::/0"]), Arc::default(), Order::Ordered, shard);
        assert!(all.count() > 1u128 << 127);
    }

    #[test]
    fn shard_specs_parse() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["0/4", "5/4", "1/0", "x", "1-4"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
