//! The scan's scope: the one policy every outbound operation is checked
//! against before anything is sent.
//!
//! Scope is what the user asked to scan, and what the scan derived from
//! it: the addresses the host's own resolver returned for the host names
//! the user gave (and the names those are aliases of). A plugin that tries
//! to reach anything else gets `access-denied`, and the attempt is counted.
//!
//! Derived entries come only from the host's resolver, never from what a
//! plugin claims, so a plugin cannot widen the scope by emitting subjects;
//! and only from the part of an answer that answers the question (the
//! CNAME chain from the asked name), so a resolver cannot widen it with
//! records for other names.
//!
//! Every address is compared in canonical form: `::ffff:192.0.2.1` is
//! `192.0.2.1` ([`Exclusions`], [`RangeSet`] and [`IpAddr::to_canonical`]).

use crate::targets::{Endpoint, Exclusions, RangeSet, Target, TargetArg};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The set of addresses and names a scan may contact.
#[derive(Debug, Default)]
pub struct Scope {
    /// Every address the user named (address targets and the addresses of
    /// `host:port` targets); grows as `-i` lines are read.
    nets: RwLock<RangeSet>,
    /// The address targets swept with the scan's ports: what a later
    /// address line is deduplicated against. A `host:port` target's
    /// address is in `nets` but not here, since only that port was asked.
    swept: RwLock<RangeSet>,
    exclude: Arc<Exclusions>,
    /// The `host:port` targets given (command line and `-i`), so that one
    /// given twice, in either place, is scanned once.
    ports: RwLock<HashSet<(Endpoint, u16)>>,
    /// Lowercase, without the trailing dot.
    names: RwLock<HashMap<Box<str>, u8>>,
    derived: RwLock<HashSet<IpAddr>>,
    denied: AtomicU64,
}

/// A name as the scope keys it: lowercase, no trailing dot.
fn canonical(name: &str) -> Box<str> {
    name.strip_suffix('.')
        .unwrap_or(name)
        .to_ascii_lowercase()
        .into_boxed_str()
}

/// How a name came into the scope (bits of the `names` map's value): one
/// map holds every name once, for the scope check and for telling a
/// repeated `-i` line.
const ALIAS: u8 = 0;
/// Given as a host name target (scanned with the scan's ports).
const GIVEN_HOST: u8 = 1;
/// Given in a `host:port` target or URL.
const GIVEN_PORT: u8 = 2;

impl Scope {
    /// A scope covering the address targets and host names, less the
    /// exclusions (`--exclude`).
    pub fn new(targets: &[Target], hosts: &[String], exclude: Arc<Exclusions>) -> Self {
        let nets = RangeSet::of(targets);
        Scope {
            nets: RwLock::new(nets.clone()),
            swept: RwLock::new(nets),
            exclude,
            ports: RwLock::default(),
            names: RwLock::new(hosts.iter().map(|h| (canonical(h), GIVEN_HOST)).collect()),
            derived: RwLock::default(),
            denied: AtomicU64::new(0),
        }
    }

    /// Add a target the user gave (a line of `-i` input) and return what
    /// is new in it, to be expanded: the parts of an address target no
    /// earlier address target covered (a block listed twice is swept once;
    /// a `host:port` target does not cover its address, since only one port
    /// of it was asked for), a host name not given before, or a `host:port`
    /// target not given before.
    pub fn add(&self, target: &TargetArg) -> Vec<TargetArg> {
        match target {
            TargetArg::Addresses(t) => {
                let mut swept = self.swept.write().unwrap_or_else(|e| e.into_inner());
                let new = swept.uncovered(t);
                swept.insert(t);
                drop(swept);
                let mut nets = self.nets.write().unwrap_or_else(|e| e.into_inner());
                nets.insert(t);
                new.into_iter().map(TargetArg::Addresses).collect()
            }
            TargetArg::Port {
                host: Endpoint::Ip(ip),
                port,
            } => {
                let mut nets = self.nets.write().unwrap_or_else(|e| e.into_inner());
                nets.insert(&Target::from(*ip));
                drop(nets);
                self.take_port(Endpoint::Ip(*ip), *port, target)
            }
            TargetArg::Host(name) => {
                let fresh = self.mark(name, GIVEN_HOST);
                fresh.then(|| target.clone()).into_iter().collect()
            }
            TargetArg::Port {
                host: Endpoint::Name(name),
                port,
            } => {
                self.mark(name, GIVEN_PORT);
                self.take_port(Endpoint::Name(name.clone()), *port, target)
            }
        }
    }

    /// `[target]` the first time a `host:port` target is given, else none.
    fn take_port(&self, host: Endpoint, port: u16, target: &TargetArg) -> Vec<TargetArg> {
        let mut ports = self.ports.write().unwrap_or_else(|e| e.into_inner());
        if ports.insert((host, port)) {
            vec![target.clone()]
        } else {
            Vec::new()
        }
    }

    /// Put `name` in the scope as `how`; whether it was not given that way
    /// before.
    fn mark(&self, name: &str, how: u8) -> bool {
        let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
        let bits = names.entry(canonical(name)).or_insert(ALIAS);
        let fresh = *bits & how == 0;
        *bits |= how;
        fresh
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

    /// Whether `name` was given as a bare host name target (so the scan's
    /// ports apply to its addresses), not only in `host:port` targets.
    pub fn given_bare(&self, name: &str) -> bool {
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        names
            .get(&canonical(name))
            .is_some_and(|bits| bits & GIVEN_HOST != 0)
    }

    /// Whether `name` was given as a target, bare or in a `host:port`
    /// target or URL.
    pub fn is_given_name(&self, name: &str) -> bool {
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        names
            .get(&canonical(name))
            .is_some_and(|bits| bits & (GIVEN_HOST | GIVEN_PORT) != 0)
    }

    /// Whether `name` is in scope, without counting.
    pub fn contains_name(&self, name: &str) -> bool {
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        names.contains_key(&canonical(name))
    }

    /// Take in what the host's resolver answered for `asked`: when the name
    /// is in scope, the names it is an alias of and the addresses at the
    /// end of its CNAME chain become part of the scope (exclusions still
    /// apply). The caller passes only the chain ([`crate::primitives::dns::Chain`]),
    /// never the whole answer.
    pub fn learn(&self, asked: &str, aliases: &[String], addresses: &[IpAddr]) {
        if !self.contains_name(asked) {
            return;
        }
        self.derive(aliases, addresses);
    }

    /// Put names and addresses derived from the user's targets in scope.
    fn derive(&self, aliases: &[impl AsRef<str>], addresses: &[IpAddr]) {
        if !aliases.is_empty() {
            let mut names = self.names.write().unwrap_or_else(|e| e.into_inner());
            for alias in aliases {
                names.entry(canonical(alias.as_ref())).or_insert(ALIAS);
            }
        }
        if !addresses.is_empty() {
            let mut derived = self.derived.write().unwrap_or_else(|e| e.into_inner());
            derived.extend(addresses.iter().map(|ip| ip.to_canonical()));
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
        let ip = ip.to_canonical();
        if self.exclude.contains(ip) {
            return false;
        }
        self.in_targets(ip) || {
            let derived = self.derived.read().unwrap_or_else(|e| e.into_inner());
            derived.contains(&ip)
        }
    }

    /// Whether `ip` is swept with the scan's ports: in one of the user's
    /// address targets (not excluded), as opposed to an address derived
    /// from a name or named only by a `host:port` target.
    pub fn is_target(&self, ip: IpAddr) -> bool {
        let swept = self.swept.read().unwrap_or_else(|e| e.into_inner());
        !self.exclude.contains(ip) && swept.contains(ip)
    }

    /// Take back into the scope what an earlier run of the scan derived:
    /// an in-scope subject it emitted (checked against the scope then, and
    /// journaled as in scope), replayed by `--resume`. Without it, the
    /// addresses a completed dns unit found would be refused to the units
    /// that run again, since that dns unit does not run again.
    pub fn restore(&self, subject: &crate::model::Subject) {
        use crate::model::Subject;
        let (ip, name) = match subject {
            Subject::Host(name) => (None, Some(name)),
            Subject::Address { ip, host } => (Some(*ip), host.as_ref()),
            Subject::Service(s) => (Some(s.ip), s.host.as_ref()),
        };
        let names: Vec<&str> = name.map(String::as_str).into_iter().collect();
        let addresses: Vec<IpAddr> = ip.into_iter().collect();
        self.derive(&names, &addresses);
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
        Scope::new(
            &targets
                .iter()
                .map(|t| t.parse().unwrap())
                .collect::<Vec<_>>(),
            &[],
            Arc::default(),
        )
    }

    #[test]
    fn given_names_are_told_from_aliases() {
        let s = Scope::new(&[], &["www.example.test".into()], Arc::default());
        s.add(&"api.example.test:8443".parse().unwrap());
        s.learn("www.example.test", &["cdn.example.test".into()], &[]);
        assert!(s.is_given_name("WWW.example.test."));
        assert!(s.is_given_name("api.example.test"));
        // An alias is in scope, but no target: a plugin that finds it
        // starts it.
        assert!(s.contains_name("cdn.example.test"));
        assert!(!s.is_given_name("cdn.example.test"));
        assert!(!s.is_given_name("other.example.test"));
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
        let exclude = Exclusions::of(&["10.0.0.8/30".parse().unwrap()]);
        let s = Scope::new(&targets, &[], Arc::new(exclude));
        assert!(s.contains("10.0.0.1".parse().unwrap()));
        assert!(s.contains("10.0.0.20".parse().unwrap()));
        assert!(!s.contains("10.0.0.21".parse().unwrap()));
        assert!(!s.contains("10.0.0.9".parse().unwrap()));
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_and_what_the_resolver_derived_from_them() {
        let s = Scope::new(
            &[],
            &["WWW.wscan.test.".into()],
            Arc::new(Exclusions::of(&["127.0.0.9".parse().unwrap()])),
        );
        assert!(s.contains_name("www.wscan.test"));
        assert!(!s.contains_name("other.wscan.test"));
        assert!(!s.contains(ip("127.0.0.1")));
        s.learn(
            "www.wscan.test.",
            &["edge.wscan.test.".into()],
            &[ip("127.0.0.1"), ip("127.0.0.9")],
        );
        assert!(s.contains(ip("127.0.0.1")));
        assert!(s.contains_name("edge.wscan.test"));
        // Excluded stays excluded, whatever the resolver says.
        assert!(!s.contains(ip("127.0.0.9")));
        // Answers for names outside the scope teach it nothing.
        s.learn("evil.test", &[], &[ip("127.0.0.5")]);
        assert!(!s.contains(ip("127.0.0.5")));
        assert!(!s.check_name("evil.test"));
        assert_eq!(s.denied(), 1);
    }

    #[test]
    fn an_address_line_after_a_host_port_line_is_still_swept() {
        let s = scope(&[]);
        let port: TargetArg = "127.0.0.5:8080".parse().unwrap();
        assert_eq!(s.add(&port), std::slice::from_ref(&port));
        assert!(s.contains(ip("127.0.0.5")));
        let block: TargetArg = "127.0.0.0/29".parse().unwrap();
        assert_eq!(s.add(&block), [block]);
        assert!(s.add(&"127.0.0.5".parse().unwrap()).is_empty());
        // A subject a plugin emits for a host:port target's address is not
        // "already swept" when only that port was.
        let other = scope(&[]);
        other.add(&"127.0.0.7:8080".parse().unwrap());
        assert!(other.contains(ip("127.0.0.7")) && !other.is_target(ip("127.0.0.7")));
    }

    #[test]
    fn a_repeated_name_is_new_once_and_an_alias_or_port_target_does_not_hide_it() {
        let s = Scope::new(&[], &["a.test".into()], Arc::default());
        let name = |n: &str| n.parse::<TargetArg>().unwrap();
        assert!(
            s.add(&name("A.test.")).is_empty(),
            "given on the command line"
        );
        s.learn("a.test", &["alias.test".into()], &[]);
        assert!(s.contains_name("alias.test"));
        assert_eq!(s.add(&name("alias.test")).len(), 1);
        assert!(s.add(&name("alias.test")).is_empty());
        assert_eq!(s.add(&name("b.test:443")).len(), 1);
        assert!(s.add(&name("B.test:443")).is_empty(), "given before");
        assert_eq!(s.add(&name("b.test:8443")).len(), 1);
        assert_eq!(s.add(&name("b.test")).len(), 1);
        assert!(s.add(&name("b.test")).is_empty());
    }

    #[test]
    fn mapped_exclusions_and_targets_are_their_ipv4_addresses() {
        let targets: Vec<Target> = ["::ffff:127.0.0.0/120", "10.0.0.1"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let exclude = Exclusions::of(&["::ffff:127.0.0.1".parse().unwrap()]);
        let s = Scope::new(&targets, &[], Arc::new(exclude));
        assert!(!s.contains(ip("127.0.0.1")));
        assert!(!s.contains(ip("::ffff:127.0.0.1")));
        assert!(s.contains(ip("127.0.0.2")));
        assert!(s.contains(ip("::ffff:127.0.0.2")));
        assert!(s.contains(ip("::ffff:10.0.0.1")));
        assert!(s.is_target(ip("127.0.0.200")));
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
