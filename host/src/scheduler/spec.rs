//! What a scan is: its targets, ports, limits and plugins, resolved and
//! checked ([`ScanSpec`]), and what follows from it (the scope, the order
//! of addresses, each call's options).

use super::input::{Expander, InputSource, Start};
use crate::engine::{CallOptions, ScanContext};
use crate::model::{PluginInfo, Subject, SubjectKind};
use crate::primitives::NetSettings;
use crate::primitives::dns::ResolverSettings;
use crate::primitives::gate::{Budget, Limits, NetStats};
use crate::primitives::tls::TlsCore;
use crate::scope::Scope;
use crate::targets::{
    Endpoint, Exclusions, Order, PortSpec, Shard, Target, TargetArg, TargetSpace,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything a scan needs, resolved and checked ([`ScanSpec::resolve`]).
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
    pub exclude: Arc<Exclusions>,
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
    /// Plugin instances running at once (each scans a batch of subjects).
    pub parallel: usize,
    /// The most subjects one instance scans at once (`--batch-size`).
    pub batch: usize,
    /// Arguments per plugin name.
    pub plugin_args: HashMap<String, Vec<(String, String)>>,
    /// The plugins to run, by name (`--plugins`); `None` runs every plugin
    /// in use, including plugins hot-loaded during the scan.
    pub plugins: Option<Vec<String>>,
    /// Operations in flight shared fairly with the other scans of the
    /// process (set by `wscan serve`; not a request setting).
    pub shared: Option<Arc<Budget>>,
    /// Where its network counters go, read while it runs (set by `wscan
    /// serve` for its progress events; not a request setting).
    pub counters: Option<Arc<NetStats>>,
    /// The part of the scan this run does: a worker's work item in a
    /// distributed scan (`None`: the whole scan, this shard's share).
    pub part: Option<Part>,
}

/// One work item of a distributed scan: a window of the steps of the
/// address walk ([`TargetSpace::window`]), and whether it also takes the
/// command line's names and `host:port` targets. The scope stays the whole
/// scan's: a part only decides where the scan starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Part {
    /// The first step of the walk.
    pub from: u128,
    /// The step after the last.
    pub to: u128,
    /// Whether the names and `host:port` targets are this part's.
    pub singles: bool,
}

impl ScanSpec {
    /// The scope (targets less exclusions) and the shared context of the
    /// scan's calls.
    pub(super) fn context(&self) -> (Arc<Scope>, Arc<ScanContext>) {
        self.context_with(None)
    }

    /// [`ScanSpec::context`], its network calls recorded to or replayed
    /// from `tape`.
    pub(super) fn context_with(
        &self,
        tape: Option<Arc<crate::engine::tape::Tape>>,
    ) -> (Arc<Scope>, Arc<ScanContext>) {
        let scope = Arc::new(self.scope());
        let settings = NetSettings {
            timeout: self.timeout,
            limits: self.limits,
            resolver: self.resolver.clone(),
            tls: self.tls.clone(),
            budget: self.shared.clone(),
            counters: self.counters.clone(),
        };
        let mut context = ScanContext::new(scope.clone(), settings);
        context.tape = tape;
        (scope, Arc::new(context))
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
    pub(super) fn call_options(&self, plugin: &str, ports: Option<&[(u16, u16)]>) -> CallOptions {
        CallOptions {
            ports: ports.unwrap_or(self.ports.ranges()).to_vec(),
            timeout: self.timeout,
            args: self.plugin_args.get(plugin).cloned().unwrap_or_default(),
            deadline: self.plugin_timeout,
            memory: self.plugin_memory,
        }
    }

    /// How much work may be in flight at once, in [`route::Unit`] weight
    /// (an address's ports, or 1 a subject): `--concurrency`, the network
    /// operations that may be in flight, since most subjects spend their
    /// time on one (more would only wait at the gate, holding memory), and
    /// one unit for each instance at least.
    ///
    /// [`route::Unit`]: super::route::Unit
    pub(super) fn budget(&self) -> usize {
        self.limits.concurrency.max(self.parallel.max(1))
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
        let singles_here = self.part.is_none_or(|part| part.singles);
        for target in names.chain(ports).filter(|_| singles_here) {
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
        let space = TargetSpace::new(
            self.targets.clone(),
            self.exclude.clone(),
            self.order,
            self.shard,
        );
        match self.part {
            Some(part) => space.window(part.from, part.to),
            None => space,
        }
    }
}

/// What every plugin call gets, asked for the same way by a scan and by
/// `wscan plugin run` (the flags they share).
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The ports handed to plugins.
    pub ports: PortSpec,
    /// Plugin arguments as given: plugin, key, value.
    pub plugin_args: Vec<(String, String, String)>,
    /// Per-operation timeout.
    pub timeout: Duration,
    /// Wall-clock limit of one plugin call.
    pub plugin_timeout: Duration,
    /// Linear memory one plugin call may grow to, in bytes.
    pub plugin_memory: usize,
    /// Name servers and DNS cache.
    pub resolver: ResolverSettings,
    /// PEM files of CA certificates trusted beside the webpki roots.
    pub ca_files: Vec<PathBuf>,
}

/// A scan as asked for (the flags of `wscan scan`, or a request to the
/// service), before it is checked: [`ScanSpec::resolve`] turns it into a
/// [`ScanSpec`].
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// Targets as given, in order.
    pub targets: Vec<TargetArg>,
    /// A file of more targets, one a line (`-` for standard input).
    pub input: Option<PathBuf>,
    /// Addresses never to scan.
    pub exclude: Vec<Target>,
    /// A file of addresses never to scan, one a line.
    pub exclude_file: Option<PathBuf>,
    /// The seed of the address order; `None` draws one.
    pub seed: Option<u64>,
    /// Addresses in the order given.
    pub ordered: bool,
    /// This run's share of the addresses.
    pub shard: Option<Shard>,
    /// The plugins to run, by name; `None` for every plugin in use.
    pub plugins: Option<Vec<String>>,
    /// Concurrency, per-host cap, rate and retries.
    pub limits: Limits,
    /// Plugin instances at once.
    pub parallel: usize,
    /// The most subjects one instance scans at once.
    pub batch: usize,
    /// What every call gets.
    pub call: CallRequest,
}

/// What a request names outside itself, read (files) or drawn (a seed)
/// beforehand by [`Gathered::gather`], so that resolving the request is a
/// pure function of the request, the plugins and this.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The text of the exclude file, if the request names one.
    pub exclude_file: Option<String>,
    /// TLS trust, the CA files read.
    pub tls: TlsCore,
    /// The seed used when the request gives none.
    pub seed: u64,
}

/// Why a request is not a scan.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The request is wrong: the user's to fix (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A file it names cannot be read.
    #[error("cannot read the exclude file {path}: {error}")]
    ExcludeFile {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
}

impl Gathered {
    /// Read the files `request` names and draw a seed: everything
    /// resolving needs from outside. A target file is opened (not read) so
    /// that one that cannot be read fails before anything is sent.
    pub fn gather(request: &ScanRequest) -> Result<Gathered, SpecError> {
        if let Some(path) = request.input.as_ref().filter(|p| p.as_os_str() != "-") {
            std::fs::File::open(path).map_err(|e| {
                SpecError::Usage(format!("cannot read targets from {}: {e}", path.display()))
            })?;
        }
        let exclude_file = match &request.exclude_file {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|error| SpecError::ExcludeFile {
                        path: path.clone(),
                        error,
                    })?,
                )
            }
            None => None,
        };
        Ok(Gathered {
            exclude_file,
            tls: tls_core(&request.call)?,
            seed: random_seed(),
        })
    }
}

/// TLS trust for `call`: the webpki roots and its CA files.
pub fn tls_core(call: &CallRequest) -> Result<TlsCore, SpecError> {
    TlsCore::new(&call.ca_files).map_err(|e| SpecError::Usage(e.to_string()))
}

/// A seed for the address order when the user gives none.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

impl CallRequest {
    /// The plugin arguments grouped by plugin, each checked against what
    /// the `selected` plugins declare (a bad key or value is a usage error
    /// before anything is sent).
    pub fn plugin_args(
        &self,
        selected: &[&PluginInfo],
    ) -> Result<HashMap<String, Vec<(String, String)>>, SpecError> {
        let mut grouped: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (plugin, key, value) in &self.plugin_args {
            if !selected.iter().any(|p| &p.name == plugin) {
                return Err(SpecError::Usage(format!(
                    "--plugin-arg {plugin}.{key}: no selected plugin is named {plugin:?}"
                )));
            }
            grouped
                .entry(plugin.clone())
                .or_default()
                .push((key.clone(), value.clone()));
        }
        for plugin in selected {
            let given = grouped.get(&plugin.name).map_or(&[][..], Vec::as_slice);
            if let Err(e) = plugin.resolve_args(given) {
                return Err(SpecError::Usage(format!("--plugin-arg {e}")));
            }
        }
        Ok(grouped)
    }
}

impl ScanSpec {
    /// Check `request` against the plugins in use (`available`) and
    /// resolve it: the one way a scan is made, from the command line, for
    /// `--dry-run`, or from a request to the service. Pure: what it needs
    /// from files or chance is in `gathered`.
    pub fn resolve(
        request: &ScanRequest,
        available: &[&PluginInfo],
        gathered: Gathered,
    ) -> Result<ScanSpec, SpecError> {
        let selected = select(request.plugins.as_deref(), available)?;
        let plugin_args = request.call.plugin_args(&selected)?;
        let exclude = exclusions(request, gathered.exclude_file.as_deref())?;
        if request.shard.is_some() && request.seed.is_none() && !request.ordered {
            return Err(SpecError::Usage(
                "--shard needs --seed (or --ordered), so that every shard walks the same order"
                    .into(),
            ));
        }
        let order = match (request.ordered, request.seed) {
            (true, _) => Order::Ordered,
            (false, Some(seed)) => Order::Shuffled(seed),
            (false, None) => Order::Shuffled(gathered.seed),
        };
        let (mut targets, mut hosts, mut one_port) = (Vec::new(), Vec::new(), Vec::new());
        for target in &request.targets {
            match target {
                TargetArg::Addresses(t) => targets.push(*t),
                TargetArg::Host(name) if !hosts.contains(name) => hosts.push(name.clone()),
                TargetArg::Port { host, port } if !one_port.contains(&(host.clone(), *port)) => {
                    one_port.push((host.clone(), *port))
                }
                TargetArg::Host(_) | TargetArg::Port { .. } => {}
            }
        }
        let first_name = hosts.first().cloned().or_else(|| {
            one_port.iter().find_map(|(host, port)| match host {
                Endpoint::Name(name) => Some(format!("{name}:{port}")),
                Endpoint::Ip(_) => None,
            })
        });
        if let Some(name) = first_name
            && !selected
                .iter()
                .any(|p| p.consumes.kinds.contains(&SubjectKind::Host))
        {
            return Err(SpecError::Usage(format!(
                "{name} is a host name, but no selected plugin resolves host names; add the dns plugin to --plugins"
            )));
        }
        let call = &request.call;
        Ok(ScanSpec {
            // Overlapping targets are visited once.
            targets: crate::targets::disjoint(&targets),
            hosts,
            one_port,
            input: request
                .input
                .as_ref()
                .map(|path| match path.as_os_str() == "-" {
                    true => InputSource::Stdin,
                    false => InputSource::File(path.clone()),
                }),
            exclude,
            order,
            shard: request.shard.unwrap_or(Shard { index: 1, count: 1 }),
            ports: call.ports.clone(),
            timeout: call.timeout,
            plugin_timeout: call.plugin_timeout,
            plugin_memory: call.plugin_memory,
            limits: request.limits,
            resolver: call.resolver.clone(),
            tls: gathered.tls,
            parallel: request.parallel,
            batch: request.batch,
            plugin_args,
            plugins: request.plugins.clone(),
            shared: None,
            counters: None,
            part: None,
        })
    }

    /// The spec of `wscan plugin run`: one call of `plugin` on `subject`,
    /// which is the whole scope. The name of `NAME@ADDRESS[:PORT]` names
    /// the address (Host header, SNI) but is not resolved, so the plugin
    /// reaches that address only, whatever the name's real ones.
    pub fn for_subject(
        subject: &Subject,
        call: &CallRequest,
        plugin: &PluginInfo,
        tls: TlsCore,
    ) -> Result<ScanSpec, SpecError> {
        Ok(ScanSpec {
            targets: subject
                .ip()
                .map(|ip| vec![Target::from(ip)])
                .unwrap_or_default(),
            hosts: match subject {
                Subject::Host(name) => vec![name.clone()],
                _ => Vec::new(),
            },
            one_port: Vec::new(),
            input: None,
            exclude: Arc::default(),
            order: Order::Ordered,
            shard: Shard { index: 1, count: 1 },
            ports: call.ports.clone(),
            timeout: call.timeout,
            plugin_timeout: call.plugin_timeout,
            plugin_memory: call.plugin_memory,
            limits: Limits::default(),
            resolver: call.resolver.clone(),
            tls,
            parallel: 1,
            batch: 1,
            plugin_args: call.plugin_args(&[plugin])?,
            plugins: None,
            shared: None,
            counters: None,
            part: None,
        })
    }

    /// The seed of the address order, if it is shuffled.
    pub fn seed(&self) -> Option<u64> {
        match self.order {
            Order::Shuffled(seed) => Some(seed),
            Order::Ordered => None,
        }
    }
}

/// The plugins `names` selects among `available` (all of them for `None`);
/// an unknown name is a usage error that lists the available ones.
fn select<'p>(
    names: Option<&[String]>,
    available: &[&'p PluginInfo],
) -> Result<Vec<&'p PluginInfo>, SpecError> {
    let Some(names) = names else {
        return Ok(available.to_vec());
    };
    if let Some(unknown) = names
        .iter()
        .find(|n| !available.iter().any(|p| &p.name == *n))
    {
        let mut known: Vec<&str> = available.iter().map(|p| p.name.as_str()).collect();
        known.sort_unstable();
        return Err(SpecError::Usage(format!(
            "unknown plugin {unknown:?} in --plugins; available: {}",
            known.join(", ")
        )));
    }
    Ok(available
        .iter()
        .copied()
        .filter(|p| names.contains(&p.name))
        .collect())
}

/// `--exclude` and the exclude file's lines (`#` starts a comment), merged
/// into one set of ranges (looked up in logarithmic time, however many
/// lines the file has).
fn exclusions(request: &ScanRequest, file: Option<&str>) -> Result<Arc<Exclusions>, SpecError> {
    let mut nets = Exclusions::of(&request.exclude);
    if let (Some(path), Some(text)) = (&request.exclude_file, file) {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let target: Target = line
                .parse()
                .map_err(|e| SpecError::Usage(format!("{}:{}: {e}", path.display(), n + 1)))?;
            nets.insert(&target);
        }
    }
    Ok(Arc::new(nets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArgInfo, ArgKind, SubjectFilter};

    fn plugin(name: &str, kind: SubjectKind) -> PluginInfo {
        PluginInfo {
            name: name.into(),
            version: "1".into(),
            description: String::new(),
            consumes: SubjectFilter {
                kinds: vec![kind],
                ports: Vec::new(),
                services: Vec::new(),
            },
            capabilities: Vec::new(),
            args: vec![ArgInfo {
                name: "banner".into(),
                description: String::new(),
                kind: ArgKind::Boolean,
                default: Some("true".into()),
            }],
        }
    }

    fn request(targets: &[&str]) -> ScanRequest {
        ScanRequest {
            targets: targets.iter().map(|t| t.parse().unwrap()).collect(),
            input: None,
            exclude: Vec::new(),
            exclude_file: None,
            seed: None,
            ordered: false,
            shard: None,
            plugins: None,
            limits: Limits::default(),
            parallel: 8,
            batch: 256,
            call: CallRequest {
                ports: "22,80".parse().unwrap(),
                plugin_args: Vec::new(),
                timeout: Duration::from_secs(1),
                plugin_timeout: Duration::from_secs(60),
                plugin_memory: 64 << 20,
                resolver: ResolverSettings::default(),
                ca_files: Vec::new(),
            },
        }
    }

    fn gathered(exclude_file: Option<&str>) -> Gathered {
        Gathered {
            exclude_file: exclude_file.map(String::from),
            tls: TlsCore::new(&[]).unwrap(),
            seed: 42,
        }
    }

    fn usage(result: Result<ScanSpec, SpecError>) -> String {
        match result {
            Err(SpecError::Usage(message)) => message,
            other => panic!("not a usage error: {other:?}"),
        }
    }

    /// One request, resolved the same way whatever asks: targets split and
    /// deduplicated, the drawn seed used only when none is given, plugin
    /// arguments grouped.
    #[test]
    fn a_request_resolves_into_a_spec() {
        let (port, dns) = (
            plugin("port", SubjectKind::Address),
            plugin("dns", SubjectKind::Host),
        );
        let available = [&port, &dns];
        let mut req = request(&[
            "127.0.0.1",
            "www.test",
            "WWW.test",
            "www.test:443",
            "www.test:443",
            "127.0.0.0/31",
        ]);
        req.call.plugin_args = vec![("port".into(), "banner".into(), "false".into())];
        let spec = ScanSpec::resolve(&req, &available, gathered(None)).unwrap();
        assert_eq!(spec.hosts, ["www.test"]);
        assert_eq!(spec.one_port.len(), 1);
        assert_eq!(spec.space().count(), 2, "127.0.0.1 lies in 127.0.0.0/31");
        assert_eq!(spec.seed(), Some(42));
        assert_eq!(
            spec.plugin_args["port"],
            [("banner".to_string(), "false".to_string())]
        );
        assert_eq!(spec.ports.ranges(), [(22, 22), (80, 80)]);

        req.seed = Some(7);
        let spec = ScanSpec::resolve(&req, &available, gathered(None)).unwrap();
        assert_eq!(spec.seed(), Some(7));
        req.ordered = true;
        let spec = ScanSpec::resolve(&req, &available, gathered(None)).unwrap();
        assert_eq!(spec.seed(), None);
    }

    #[test]
    fn a_wrong_request_is_a_usage_error_that_says_what_to_do() {
        let (port, dns) = (
            plugin("port", SubjectKind::Address),
            plugin("dns", SubjectKind::Host),
        );
        let mut req = request(&["www.test"]);
        req.plugins = Some(vec!["port".into()]);
        assert!(
            usage(ScanSpec::resolve(&req, &[&port, &dns], gathered(None)))
                .contains("add the dns plugin to --plugins")
        );
        req.plugins = Some(vec!["nope".into()]);
        assert_eq!(
            usage(ScanSpec::resolve(&req, &[&port, &dns], gathered(None))),
            "unknown plugin \"nope\" in --plugins; available: dns, port"
        );
        let mut req = request(&["127.0.0.1"]);
        req.shard = Some("1/2".parse().unwrap());
        assert!(usage(ScanSpec::resolve(&req, &[&port], gathered(None))).contains("--seed"));
        let mut req = request(&["127.0.0.1"]);
        req.call.plugin_args = vec![("port".into(), "banner".into(), "maybe".into())];
        assert!(
            usage(ScanSpec::resolve(&req, &[&port], gathered(None)))
                .starts_with("--plugin-arg port.banner=maybe: expected a boolean")
        );
        req.call.plugin_args = vec![("http".into(), "path".into(), "/".into())];
        assert!(
            usage(ScanSpec::resolve(&req, &[&port], gathered(None)))
                .contains("no selected plugin is named \"http\"")
        );
        let mut req = request(&["127.0.0.1"]);
        req.exclude_file = Some("ex.txt".into());
        assert!(
            usage(ScanSpec::resolve(
                &req,
                &[&port],
                gathered(Some("# fine\n10.0.0.1\nnot-an-address/99\n"))
            ))
            .starts_with("ex.txt:3: invalid target \"not-an-address/99\"")
        );
    }

    #[test]
    fn exclusions_come_from_the_flag_and_the_file() {
        let port = plugin("port", SubjectKind::Address);
        let mut req = request(&["127.0.0.0/30"]);
        req.exclude = vec!["127.0.0.1".parse().unwrap()];
        req.exclude_file = Some("ex.txt".into());
        let spec =
            ScanSpec::resolve(&req, &[&port], gathered(Some("127.0.0.2 # a comment\n"))).unwrap();
        let mut visited: Vec<_> = spec.space().iter().map(|ip| ip.to_string()).collect();
        visited.sort();
        assert_eq!(visited, ["127.0.0.0", "127.0.0.3"]);
    }
}
