//! What a scan is: its targets, ports, limits and plugins, resolved and
//! checked ([`ScanSpec`]), and what follows from it (the scope, the order
//! of addresses, each call's options).

use super::input::{Expander, InputSource, Start};
use crate::engine::{CallOptions, ScanContext};
use crate::primitives::NetSettings;
use crate::primitives::dns::ResolverSettings;
use crate::primitives::gate::Limits;
use crate::primitives::tls::TlsCore;
use crate::scope::Scope;
use crate::targets::{Endpoint, Order, PortSpec, RangeSet, Shard, Target, TargetArg, TargetSpace};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Everything a scan needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct ScanSpec {
    /// Addresses to scan.
    pub targets: Vec<Target>,
    /// Host names to scan (lowercase, no trailing dot).
    pub hosts: Vec<String>,
    /// `host:port` and URL targets: that port only.
    pub one_port: Vec<(Endpoint, u16)>,
    /// Where more targets are read from, line by line (`-i`).
    pub input: Option<InputSource>,
    /// What not to scan, ever (`--exclude`).
    pub exclude: Arc<RangeSet>,
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
    /// Linear memory one plugin call may grow to, in bytes.
    pub plugin_memory: usize,
    /// Concurrency, per-host cap, rate and retries of network operations.
    pub limits: Limits,
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
    pub(super) fn context(&self) -> (Arc<Scope>, Arc<ScanContext>) {
        let scope = Arc::new(self.scope());
        let settings = NetSettings {
            timeout: self.timeout,
            limits: self.limits,
            resolver: self.resolver.clone(),
            tls: self.tls.clone(),
        };
        (scope.clone(), Arc::new(ScanContext::new(scope, settings)))
    }

    /// The scope of the command line's targets, less exclusions: what
    /// `-i` lines are added to (and deduplicated against), for the scan as
    /// for `--dry-run`.
    pub fn scope(&self) -> Scope {
        let scope = Scope::new(&self.targets, &self.hosts, self.exclude.clone());
        for (host, port) in &self.one_port {
            scope.add(&TargetArg::Port {
                host: host.clone(),
                port: *port,
            });
        }
        scope
    }

    /// What one call of `plugin` gets: the scan's ports, or those of the
    /// target that named its own.
    pub(super) fn call_options(
        &self,
        plugin: &str,
        ports: Option<&[(u16, u16)]>,
        unit: u64,
    ) -> CallOptions {
        CallOptions {
            unit,
            ports: ports.unwrap_or(self.ports.ranges()).to_vec(),
            timeout: self.timeout,
            args: self.plugin_args.get(plugin).cloned().unwrap_or_default(),
            deadline: self.plugin_timeout,
            memory: self.plugin_memory,
        }
    }

    /// The names and `host:port` targets this run starts from, this
    /// shard's share by position (so N shards split them with no overlap),
    /// then the addresses: the starts of the command line's targets.
    pub fn starts(&self) -> (Vec<Start>, TargetSpace) {
        let mut expander = self.expander();
        let mut singles = Vec::new();
        let names = self.hosts.iter().map(|h| TargetArg::Host(h.clone()));
        let ports = self.one_port.iter().map(|(host, port)| TargetArg::Port {
            host: host.clone(),
            port: *port,
        });
        for target in names.chain(ports) {
            expander.expand(&target, |start| {
                singles.push(start);
                true
            });
        }
        (singles, self.space())
    }

    /// Expands `-i` lines the way this scan splits and orders work.
    pub fn expander(&self) -> Expander {
        Expander::new(self.exclude.clone(), self.order, self.shard)
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
