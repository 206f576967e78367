//! The scan's scope: the one policy every outbound operation is checked
//! against before anything is sent.
//!
//! Scope is what the user asked to scan, and what the scan derived from
//! it: the addresses the host's own resolver returned for the host names
//! the user gave (and the names those are aliases of). A plugin that tries
//! to reach anything else gets `access-denied`, and the attempt is counted.
//!
//! Derived entries come only from the host's resolver, never from what a
//! plugin claims, so a plugin cannot widen the scope by emitting subjects.

use crate::primitives::dns::{Data, Record};
use crate::targets::{Endpoint, RangeSet, Target, TargetArg};
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The set of addresses and names a scan may contact.
#[derive(Debug, Default)]
pub struct Scope {
    /// The user's address targets; grows as `-i` lines are read.
    nets: RwLock<RangeSet>,
    exclude: Vec<IpNet>,
    /// Lowercase, without the trailing dot.
    names: RwLock<HashSet<String>>,
    derived: RwLock<HashSet<IpAddr>>,
    denied: AtomicU64,
}

/// A name as the scope keys it: lowercase, no trailing dot.
fn canonical(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// IPv4-mapped IPv6 addresses are the IPv4 address for scope purposes, so
/// ::ffff:10.0.0.1 cannot be used to slip past a v4-only scope.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Scope {
    /// A scope covering exactly the given address targets.
    pub fn from_targets(targets: &[Target]) -> Self {
        Self::new(targets, &[], &[])
    }

    /// A scope covering the address targets and host names, less the
    /// exclusions (`--exclude`).
    pub fn new(targets: &[Target], hosts: &[String], exclude: &[IpNet]) -> Self {
        let mut nets = RangeSet::default();
        for target in targets {
            nets.insert(target);
        }
        Scope {
            nets: RwLock::new(nets),
            exclude: IpNet::aggregate(&exclude.to_vec()),
            names: RwLock::new(hosts.iter().map(|h| canonical(h)).collect()),
            derived: RwLock::default(),
            denied: AtomicU64::new(0),
        }
    }

    /// Add a target the user gave (a line of `-i` input): its addresses,
    /// or its name. For addresses, returns the parts that were not in the
    /// scope yet, so a target listed twice is scanned once.
    pub fn add(&self, target: &TargetArg) -> Vec<Target> {
        match target {
            TargetArg::Addresses(t) => self.add_addresses(t),
            TargetArg::Port {
                host: Endpoint::Ip(ip),
                ..
            } => self.add_addresses(&Target::from(*ip)),
            TargetArg::Host(name)
            | TargetArg::Port {
                host: Endpoint::Name(name),
                ..
            } => {
                let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
                names.insert(canonical(name));
                Vec::new()
            }
        }
    }

    fn add_addresses(&self, target: &Target) -> Vec<Target> {
        let mut nets = self.nets.write().unwrap_or_else(|e| e.into_inner());
        let new = nets.uncovered(target);
        nets.insert(target);
        new
    }

    fn in_targets(&self, ip: IpAddr) -> bool {
        let nets = self.nets.read().unwrap_or_else(|e| e.into_inner());
        nets.contains(ip)
    }

    /// Whether `name` may be queried and scanned. A `false` answer is
    /// counted, like [`Scope::check`].
    pub fn check_name(&self, name: &str) -> bool {
        let ok = self.contains_name(name);
        if !ok {
            self.denied.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Whether `name` is in scope, without counting.
    pub fn contains_name(&self, name: &str) -> bool {
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        names.contains(&canonical(name))
    }

    /// Take in what the host's resolver answered for `asked`: when the name
    /// is in scope, the addresses it resolves to and the names it is an
    /// alias of become part of the scope (exclusions still apply).
    pub fn learn(&self, asked: &str, records: &[Record]) {
        if !self.contains_name(asked) {
            return;
        }
        for record in records {
            match &record.data {
                Data::A(ip) | Data::Aaaa(ip) => {
                    let mut derived = self.derived.write().unwrap_or_else(|e| e.into_inner());
                    derived.insert(*ip);
                }
                // The answer's chain starts at the asked name; each alias
                // target is the same host under another name.
                Data::Cname(target) => {
                    let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
                    names.insert(canonical(target));
                }
                _ => {}
            }
        }
    }

    /// Whether `ip` may be contacted. A `false` answer is counted: the
    /// caller is about to deny an operation.
    pub fn check(&self, ip: IpAddr) -> bool {
        let ok = self.contains(ip);
        if !ok {
            self.denied.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Whether `ip` is in scope, without counting.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        if self.exclude.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.in_targets(ip) || {
            let derived = self.derived.read().unwrap_or_else(|e| e.into_inner());
            derived.contains(&ip)
        }
    }

    /// Whether `ip` is one of the user's address targets (not excluded),
    /// as opposed to an address derived from a name.
    pub fn is_target(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        !self.exclude.iter().any(|n| n.contains(&ip)) && self.in_targets(ip)
    }

    /// How many operations were denied so far.
    pub fn denied(&self) -> u64 {
        self.denied.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(targets: &[&str]) -> Scope {
        Scope::from_targets(
            &targets
                .iter()
                .map(|t| t.parse().unwrap())
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn only_targets_are_in_scope() {
        let s = scope(&["127.0.0.1", "10.1.0.0/16", "::1"]);
        assert!(s.check("127.0.0.1".parse().unwrap()));
        assert!(s.check("10.1.200.3".parse().unwrap()));
        assert!(s.check("::1".parse().unwrap()));
        assert!(!s.check("127.0.0.2".parse().unwrap()));
        assert!(!s.check("10.2.0.1".parse().unwrap()));
        assert_eq!(s.denied(), 2);
    }

    #[test]
    fn ranges_and_exclusions() {
        let targets: Vec<Target> = ["10.0.0.1-10.0.0.20"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let s = Scope::new(&targets, &[], &["10.0.0.8/30".parse().unwrap()]);
        assert!(s.contains("10.0.0.1".parse().unwrap()));
        assert!(s.contains("10.0.0.20".parse().unwrap()));
        assert!(!s.contains("10.0.0.21".parse().unwrap()));
        assert!(!s.contains("10.0.0.9".parse().unwrap()));
    }

    fn record(name: &str, data: Data) -> Record {
        Record {
            name: name.into(),
            ttl: 60,
            data,
        }
    }

    #[test]
    fn names_and_what_the_resolver_derived_from_them() {
        let s = Scope::new(
            &[],
            &["WWW.wscan.test.".into()],
            &["127.0.0.9/32".parse().unwrap()],
        );
        assert!(s.contains_name("www.wscan.test"));
        assert!(!s.contains_name("other.wscan.test"));
        assert!(!s.contains("127.0.0.1".parse().unwrap()));
        s.learn(
            "www.wscan.test.",
            &[
                record("www.wscan.test.", Data::Cname("edge.wscan.test.".into())),
                record("edge.wscan.test.", Data::A("127.0.0.1".parse().unwrap())),
                record("edge.wscan.test.", Data::A("127.0.0.9".parse().unwrap())),
            ],
        );
        assert!(s.contains("127.0.0.1".parse().unwrap()));
        assert!(s.contains_name("edge.wscan.test"));
        // Excluded stays excluded, whatever the resolver says.
        assert!(!s.contains("127.0.0.9".parse().unwrap()));
        // Answers for names outside the scope teach it nothing.
        s.learn(
            "evil.test",
            &[record("evil.test.", Data::A("127.0.0.5".parse().unwrap()))],
        );
        assert!(!s.contains("127.0.0.5".parse().unwrap()));
        assert!(!s.check_name("evil.test"));
        assert_eq!(s.denied(), 1);
    }

    #[test]
    fn added_lines_merge_into_ranges() {
        let s = scope(&[]);
        for line in [
            "10.0.0.5",
            "10.0.0.1-4",
            "10.0.0.7-9",
            "10.0.0.6",
            "::1",
            "www.a.test:80",
        ] {
            s.add(&line.parse().unwrap());
        }
        {
            let nets = s.nets.read().unwrap();
            assert_eq!(nets.ranges(), 2, "{nets:?}");
        }
        for inside in ["10.0.0.1", "10.0.0.6", "10.0.0.9", "::1"] {
            assert!(s.contains(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["10.0.0.0", "10.0.0.10", "::2", "0.0.0.1"] {
            assert!(!s.contains(outside.parse().unwrap()), "{outside}");
        }
        assert!(s.contains_name("www.a.test"));
        s.add(&"0.0.0.0/0".parse().unwrap());
        assert_eq!(s.nets.read().unwrap().ranges(), 2);
        assert!(s.contains("203.0.113.1".parse().unwrap()));
    }

    #[test]
    fn mapped_ipv6_does_not_escape_scope() {
        let s = scope(&["127.0.0.1"]);
        assert!(s.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!s.contains("::ffff:127.0.0.2".parse().unwrap()));
    }
}
