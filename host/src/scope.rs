//! The scan's scope: the one policy every outbound operation is checked
//! against before anything is sent.
//!
//! Scope is what the user asked to scan. A plugin that tries to connect
//! anywhere else gets `access-denied`, and the attempt is counted.

use crate::targets::Target;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The set of addresses a scan may contact.
#[derive(Debug, Default)]
pub struct Scope {
    nets: Vec<IpNet>,
    exclude: Vec<IpNet>,
    denied: AtomicU64,
}

impl Scope {
    /// A scope covering exactly the given targets.
    pub fn from_targets(targets: &[Target]) -> Self {
        Self::new(targets, &[])
    }

    /// A scope covering the targets less the exclusions (`--exclude`).
    pub fn new(targets: &[Target], exclude: &[IpNet]) -> Self {
        let nets = IpNet::aggregate(&targets.iter().flat_map(Target::nets).collect::<Vec<_>>());
        Scope {
            nets,
            exclude: IpNet::aggregate(&exclude.to_vec()),
            denied: AtomicU64::new(0),
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
        // IPv4-mapped IPv6 addresses are the IPv4 address for scope purposes,
        // so ::ffff:10.0.0.1 cannot be used to slip past a v4-only scope.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip)) && !self.exclude.iter().any(|n| n.contains(&ip))
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
        let s = Scope::new(&targets, &["10.0.0.8/30".parse().unwrap()]);
        assert!(s.contains("10.0.0.1".parse().unwrap()));
        assert!(s.contains("10.0.0.20".parse().unwrap()));
        assert!(!s.contains("10.0.0.21".parse().unwrap()));
        assert!(!s.contains("10.0.0.9".parse().unwrap()));
    }

    #[test]
    fn mapped_ipv6_does_not_escape_scope() {
        let s = scope(&["127.0.0.1"]);
        assert!(s.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!s.contains("::ffff:127.0.0.2".parse().unwrap()));
    }
}
