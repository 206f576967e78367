//! Raw command-line flags (clap). Values are parsed here, so a malformed
//! target, port spec or duration is a one-line usage error (exit code 2).

use crate::output::{Field, Format};
use crate::scheduler::spec::{CallRequest, ScanRequest};
use crate::targets::{PortSpec, Target, TargetArg};
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// wscan: a network scanner whose scan types are WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "wscan", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More diagnostics on standard error (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/wscan/components].
    #[arg(long, value_name = "DIR", global = true)]
    pub cache_dir: Option<PathBuf>,

    /// Compile every plugin at start, without the on-disk cache.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// The result store, an SQLite file every scan is recorded in
    /// [default: $XDG_DATA_HOME/wscan/results.db].
    #[arg(long, value_name = "PATH", global = true)]
    pub db: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// The command line as given, without the program name (stored with
    /// the scan, so `--resume` can run it again).
    #[arg(skip)]
    pub argv: Vec<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Scan targets with plugins.
    Scan(ScanArgs),
    /// Inspect plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Read the result store: the scans recorded and their records.
    #[command(subcommand)]
    Results(ResultsCommand),
    /// Run the scan service: an HTTP API to start scans and read their
    /// records (docs/api.md).
    Serve(ServeArgs),
    /// The scan service's API tokens, kept in the result store.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run work items of distributed scans (`wscan scan --redis URL`)
    /// taken from Redis, until stopped (docs/distributed.md).
    Worker(WorkerArgs),
}

/// How to trust a `rediss://` Redis and be known to it; the same flags
/// for a coordinator and a worker.
#[derive(Debug, Clone, Args)]
pub struct RedisTlsArgs {
    /// With a rediss:// URL: the PEM certificates that sign the server's,
    /// in place of the public roots (a Redis with a certificate of your
    /// own CA).
    #[arg(long, value_name = "FILE", env = "WSCAN_REDIS_CA")]
    pub redis_ca: Option<PathBuf>,

    /// With a rediss:// URL: a client certificate (PEM), for a Redis that
    /// asks for one (tls-auth-clients); with --redis-key.
    #[arg(
        long,
        value_name = "FILE",
        env = "WSCAN_REDIS_CERT",
        requires = "redis_key"
    )]
    pub redis_cert: Option<PathBuf>,

    /// The key of --redis-cert (PEM).
    #[arg(
        long,
        value_name = "FILE",
        env = "WSCAN_REDIS_KEY",
        requires = "redis_cert"
    )]
    pub redis_key: Option<PathBuf>,
}

impl RedisTlsArgs {
    /// The endpoint of `url` with these files read; a file that cannot
    /// be read or does not fit the URL is a usage error (exit 2).
    pub fn endpoint(&self, url: &str) -> Result<crate::cluster::Endpoint, super::UsageError> {
        crate::cluster::Endpoint::load(
            url,
            self.redis_ca.as_deref(),
            self.redis_cert.as_deref(),
            self.redis_key.as_deref(),
        )
        .map_err(|e| super::UsageError(e.to_string()))
    }
}

/// Flags of `wscan worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The Redis the coordinators publish to:
    /// redis://[:PASSWORD@]HOST[:PORT][/DB], or rediss:// for TLS. From
    /// the environment, a password stays out of the process list.
    #[arg(
        long,
        value_name = "URL",
        env = "WSCAN_REDIS_URL",
        hide_env_values = true
    )]
    pub redis: String,

    /// How to trust a rediss:// Redis (--redis-ca...).
    #[command(flatten)]
    pub redis_tls: RedisTlsArgs,

    /// This worker's name in the group; unique per worker [default:
    /// HOSTNAME-PID].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// How long an item may go without this worker's heartbeat (one a
    /// second) before another worker takes it over: how soon a killed
    /// worker's item runs again. At least 3s.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_lease)]
    pub lease: Duration,

    /// Operations in flight on this worker [default: the scan's
    /// --concurrency].
    #[arg(long, value_name = "N", value_parser = parse_concurrency)]
    pub concurrency: Option<usize>,

    /// Operations in flight against one address [default: the scan's].
    #[arg(long, value_name = "N", value_parser = parse_concurrency)]
    pub host_concurrency: Option<usize>,

    /// New connections and queries per second on this worker [default:
    /// the scan's --rate].
    #[arg(long, value_name = "PER-SECOND", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Plugin instances at once on this worker [default: the scan's].
    #[arg(long, value_name = "N", value_parser = parse_parallel)]
    pub parallel: Option<usize>,
}

/// `wscan token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (it is stored hashed: it cannot be shown
    /// again).
    Create(TokenCreateArgs),
    /// List the tokens: names, roles, creation times (never the tokens).
    List(TokenListArgs),
    /// Delete a token; requests bearing it are refused from then on.
    Revoke(TokenRevokeArgs),
}

/// Flags of `wscan token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// A name for people (`ci`, `dashboard`); unique.
    #[arg(value_name = "NAME", value_parser = parse_token_name)]
    pub name: String,

    /// What it may do: read (GET), scan (also start and cancel scans),
    /// admin (also delete scans).
    #[arg(long, value_enum)]
    pub role: crate::store::Role,
}

/// Flags of `wscan token list`.
#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<ListFormat>,
}

/// Flags of `wscan token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's name.
    #[arg(value_name = "NAME")]
    pub name: String,
}

fn parse_token_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    match ok {
        true => Ok(s.to_string()),
        false => Err(format!(
            "{s:?}: a token name is 1 to 64 letters, digits, '-', '_' or '.'"
        )),
    }
}

/// Flags of `wscan serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on. Port 0 takes a free one, printed at
    /// start. An address other than loopback needs tokens in the store
    /// (`wscan token create`) and HTTPS (--tls-cert, --tls-key).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8470")]
    pub listen: SocketAddr,

    /// Serve HTTPS with this certificate (PEM: the certificate, then its
    /// chain).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Network operations in flight across all the daemon's scans, shared
    /// fairly: with K scans running, each may hold 1/K of them (and no
    /// more than its own `concurrency`).
    #[arg(long, value_name = "N", default_value = "5000", value_parser = parse_concurrency)]
    pub concurrency: usize,

    /// The most scans running at once (1 to 64); a scan started beyond it
    /// is refused with 429. A scan's `parallel` is at most 1036 / (2 x N).
    #[arg(long, value_name = "N", default_value = "8", value_parser = parse_max_scans)]
    pub max_scans: usize,

    /// Plugins besides the built-in ones, for every scan of the service.
    #[command(flatten)]
    pub sources: PluginSources,

    /// At start, resume every scan of the store whose process died while
    /// running it (a daemon killed or crashed), as `POST
    /// /v1/scans/ID/resume` would.
    #[arg(long)]
    pub resume_killed: bool,

    /// Run every scan of the service on workers (`wscan worker --redis
    /// URL`) through this Redis, as `wscan scan --redis` does: the daemon
    /// publishes work items and plugins, and stores what the workers find
    /// (docs/distributed.md).
    #[arg(
        long,
        value_name = "URL",
        env = "WSCAN_REDIS_URL",
        hide_env_values = true
    )]
    pub redis: Option<String>,

    /// With --redis: addresses of a scan's walk per work item, and lines of
    /// -i per item (16,384 at most).
    #[arg(long, value_name = "N", default_value = "4096", requires = "redis", value_parser = parse_item_size)]
    pub item_size: u64,

    /// With --redis: deliveries of a work item before it goes to the dead
    /// letters (wscan:dead) and ends as an error record.
    #[arg(long, value_name = "N", default_value = "3", requires = "redis", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_deliveries: u32,

    /// How to trust a rediss:// Redis (--redis-ca...).
    #[command(flatten)]
    pub redis_tls: RedisTlsArgs,
}

/// `wscan results ...`
#[derive(Debug, Subcommand)]
pub enum ResultsCommand {
    /// List the scans recorded, oldest first, with their status.
    List(ResultsListArgs),
    /// Print the records of one scan, in the order they were found, in any
    /// format (`export` is the same command).
    #[command(visible_alias = "export")]
    Show(ResultsShowArgs),
    /// What changed from scan A to scan B: findings that appeared,
    /// disappeared or changed, keyed on subject, plugin and kind.
    Diff(ResultsDiffArgs),
    /// Delete the scans older than a given age, with their records.
    Prune(ResultsPruneArgs),
}

/// Flags of `wscan results diff`.
#[derive(Debug, Args)]
pub struct ResultsDiffArgs {
    /// The earlier scan's number.
    #[arg(value_name = "A")]
    pub before: i64,

    /// The later scan's number.
    #[arg(value_name = "B")]
    pub after: i64,

    /// Data fields to ignore as well, wherever they are in a finding's data
    /// (ttl, elapsed_ms and days_left always are).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub ignore: Vec<String>,

    /// Exit with 1 when anything changed (0 when nothing did), for CI and
    /// cron.
    #[arg(long)]
    pub exit_code: bool,

    /// Write to FILE (repeatable; format from FORMAT:FILE or the extension,
    /// as for `scan -o`).
    #[arg(short, long, value_name = "[FORMAT:]FILE", value_parser = parse_output)]
    pub output: Vec<OutputFile>,

    /// Output format, and CSV's columns [CSV's default here:
    /// change,severity,plugin,kind,address,port,host,title,fields].
    #[command(flatten)]
    pub output_format: RecordFormat,
}

/// Flags of `wscan results prune`.
#[derive(Debug, Args)]
pub struct ResultsPruneArgs {
    /// Delete the scans that started longer ago than this: 30d, 12h, 2w.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: std::time::Duration,

    /// Say which scans would be deleted, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?}: {e}; write it like 30d, 12h or 2w"))
}

/// Flags of `wscan results list`.
#[derive(Debug, Args)]
pub struct ResultsListArgs {
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<ListFormat>,
}

/// Flags of `wscan results show`.
#[derive(Debug, Args)]
pub struct ResultsShowArgs {
    /// The scan's number (see `wscan results list`).
    #[arg(value_name = "SCAN")]
    pub scan: i64,

    /// Write to FILE instead of standard output (repeatable; format from
    /// FORMAT:FILE or the extension, as for `scan -o`).
    #[arg(short, long, value_name = "[FORMAT:]FILE", value_parser = parse_output)]
    pub output: Vec<OutputFile>,

    /// Output format, and CSV's columns.
    #[command(flatten)]
    pub output_format: RecordFormat,
}

/// `wscan plugin ...`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List every built-in and loaded plugin with what describe() says.
    List(PluginListArgs),
    /// Show one loaded plugin (built-in, plugin folder or --plugin).
    Info(PluginInfoArgs),
    /// Validate a component file and show what describe() says.
    Check(PluginCheckArgs),
    /// Create a new plugin crate that builds out of tree.
    New(PluginNewArgs),
    /// Run one plugin on one subject and print what it reports.
    // Boxed: its flags make it several times the size of the others.
    Run(Box<PluginRunArgs>),
    /// Build a plugin crate, run it on a subject, and again on every save.
    Dev(Box<PluginDevArgs>),
}

/// Flags of `wscan plugin dev`.
#[derive(Debug, Args)]
pub struct PluginDevArgs {
    /// The plugin's folder: a Rust crate (its Cargo.toml) or a Python
    /// plugin (its app.py and wit/), as `wscan plugin new` makes them.
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,

    /// What to run it on, as `plugin run --subject` takes it (with
    /// --replay, the recording's subject unless given).
    #[arg(long, value_name = "SUBJECT", required_unless_present = "replay")]
    pub subject: Option<String>,

    /// Answer its network calls from a recording (`plugin run --record`)
    /// instead of the network; the recording is watched too.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    /// Ports, plugin arguments and limits, timeouts, DNS and TLS.
    #[command(flatten)]
    pub call: CallArgs,

    /// Output format, and CSV's columns.
    #[command(flatten)]
    pub output_format: RecordFormat,
}

/// Flags of `wscan plugin run`.
#[derive(Debug, Args)]
pub struct PluginRunArgs {
    /// A component file, or the name of a loaded plugin.
    #[arg(value_name = "FILE|NAME")]
    pub plugin_ref: String,

    /// What to scan: ADDRESS:PORT (a service), ADDRESS, a host name, or
    /// NAME@ADDRESS[:PORT] (reached through NAME: Host header and SNI;
    /// NAME is not resolved). It
    /// is also the scope: the plugin may contact nothing else. With
    /// --replay, the recording's subject unless given.
    #[arg(long, value_name = "SUBJECT", required_unless_present = "replay")]
    pub subject: Option<String>,

    /// Save every network call the plugin makes, and its result, to FILE
    /// (JSON Lines), for --replay.
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub record: Option<PathBuf>,

    /// Answer the plugin's network calls from a recording made with
    /// --record: nothing is sent. A call the recording lacks, or one that
    /// sends other bytes, fails and is reported (exit 1).
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    /// Plugins besides the built-in ones (to run one by name).
    #[command(flatten)]
    pub sources: PluginSources,

    /// Ports, plugin arguments and limits, timeouts, DNS and TLS.
    #[command(flatten)]
    pub call: CallArgs,

    /// Output format, and CSV's columns.
    #[command(flatten)]
    pub output_format: RecordFormat,
}

/// How records are written: `--format`, and `--fields` for CSV.
#[derive(Debug, Clone, Args)]
pub struct RecordFormat {
    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// With --format csv: the columns, comma-separated: time, type,
    /// severity, plugin, version, kind, title, error, address, port, host,
    /// service, outside, or a path into the record such as data.banner or
    /// data.chain.0.sha256 [default:
    /// time,type,severity,plugin,kind,address,port,host,title,error].
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_field)]
    pub fields: Option<Vec<Field>>,
}

fn parse_field(s: &str) -> Result<Field, String> {
    s.parse()
}

/// One `-o`: a file, or `-` for standard output, and the format asked for
/// it with a `FORMAT:` prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// The format written before the path, if any.
    pub format: Option<Format>,
    /// The file; `-` is standard output.
    pub path: PathBuf,
}

impl OutputFile {
    /// Standard output rather than a file.
    pub fn is_stdout(&self) -> bool {
        self.path.as_os_str() == "-"
    }

    /// The format it is written in: its prefix, else its extension, else
    /// `default` (--format), else JSON Lines (a table for a terminal).
    pub fn format(&self, default: Option<Format>, terminal: bool) -> Format {
        self.format
            .or_else(|| Format::from_extension(&self.path))
            .or(default)
            .unwrap_or(if terminal {
                Format::Table
            } else {
                Format::Jsonl
            })
    }
}

fn parse_output(s: &str) -> Result<OutputFile, String> {
    use clap::ValueEnum;
    if s.is_empty() {
        return Err("expected a file name, `-` or FORMAT:FILE".into());
    }
    // A prefix is a format only when it names one: `./a:b.jsonl` is a file.
    if let Some((prefix, path)) = s.split_once(':')
        && let Ok(format) = <Format as ValueEnum>::from_str(prefix, true)
    {
        if path.is_empty() {
            return Err(format!("{s:?}: the file is missing after {prefix}:"));
        }
        return Ok(OutputFile {
            format: Some(format),
            path: path.into(),
        });
    }
    if let Some((prefix, _)) = s.split_once(':')
        && !prefix.contains(['/', '.'])
        && !std::path::Path::new(s).exists()
    {
        let names: Vec<String> = Format::value_variants()
            .iter()
            .filter_map(|f| f.to_possible_value().map(|v| v.get_name().to_string()))
            .collect();
        return Err(format!(
            "{prefix:?} is not a format; write FORMAT:FILE with FORMAT one of {} (or ./{s} for a file of that name)",
            names.join(", ")
        ));
    }
    Ok(OutputFile {
        format: None,
        path: s.into(),
    })
}

/// Formats of the commands that list scans or plugins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// One JSON object per line.
    Jsonl,
    /// Aligned columns for people.
    Table,
}

impl ListFormat {
    /// The format asked for, or the default for standard output: a table
    /// for a terminal, JSON Lines otherwise.
    pub fn for_stdout(format: Option<ListFormat>) -> ListFormat {
        format.unwrap_or(if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            ListFormat::Table
        } else {
            ListFormat::Jsonl
        })
    }
}

/// What every plugin call gets: the flags `scan` and `plugin run` share.
#[derive(Debug, Clone, Args)]
pub struct CallArgs {
    /// Ports handed to plugins (the port plugin sweeps them): 22,80,8000-8100
    /// | top-100 | top-1000 | all (or -).
    #[arg(short, long, value_name = "SPEC", default_value = "top-1000", value_parser = parse_ports)]
    pub ports: PortSpec,

    /// Pass an argument to a plugin: NAME.KEY=VALUE (repeatable).
    #[arg(long, value_name = "NAME.KEY=VALUE")]
    pub plugin_arg: Vec<PluginArg>,

    /// Timeout of one network operation (connect, read).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub timeout: Duration,

    /// Wall-clock limit of one plugin call; a plugin past it is stopped and
    /// its unit recorded as an error.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub plugin_timeout: Duration,

    /// Linear memory one plugin call may grow to (64M, 1G...; at most 4G);
    /// a plugin past it is stopped and its unit recorded as an error.
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_plugin_memory)]
    pub plugin_memory: usize,

    /// How names are resolved.
    #[command(flatten)]
    pub dns: DnsArgs,

    /// How certificates are judged.
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl CallArgs {
    /// What these flags ask of every call.
    pub fn request(&self) -> CallRequest {
        CallRequest {
            ports: self.ports.clone(),
            plugin_args: self
                .plugin_arg
                .iter()
                .map(|a| (a.plugin.clone(), a.key.clone(), a.value.clone()))
                .collect(),
            timeout: self.timeout.into(),
            plugin_timeout: self.plugin_timeout.into(),
            plugin_memory: self.plugin_memory,
            resolver: self.dns.settings(),
            ca_files: self.tls.ca_file.clone(),
        }
    }
}

/// How TLS certificates are judged.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Also trust the CA certificates in this PEM file (repeatable), beside
    /// the webpki (Mozilla) roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Vec<PathBuf>,
}

/// How the scan's resolver is set up.
#[derive(Debug, Clone, Args)]
pub struct DnsArgs {
    /// Ask this name server, IP[:PORT] (repeatable; port 53 by default)
    /// [default: the system's configuration, /etc/resolv.conf].
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_resolver)]
    pub resolver: Vec<SocketAddr>,

    /// Where DNS answers are kept, each for its TTL: local (in this
    /// process, for the whole scan), redis (with --redis: also shared by
    /// every worker of the scan through its Redis, so a name is asked once
    /// across machines), off.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = DnsCache::Local)]
    pub dns_cache: DnsCache,

    /// Do not cache DNS answers: --dns-cache off.
    #[arg(long, conflicts_with = "dns_cache")]
    pub no_dns_cache: bool,
}

/// Values of `--dns-cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DnsCache {
    /// In this process.
    Local,
    /// In this process, and shared through the scan's Redis.
    Redis,
    /// None.
    Off,
}

impl DnsArgs {
    /// The resolver settings these flags ask for.
    pub fn settings(&self) -> crate::primitives::dns::ResolverSettings {
        crate::primitives::dns::ResolverSettings {
            servers: self.resolver.clone(),
            cache: !self.no_dns_cache && self.dns_cache != DnsCache::Off,
            share: self.dns_cache == DnsCache::Redis,
            shared: None,
        }
    }
}

fn parse_resolver(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    match s.parse::<SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Ok(addr),
        _ => Err(format!(
            "{s:?}: expected a name server address, IP or IP:PORT (127.0.0.1, 127.0.0.1:5353, [::1]:5353)"
        )),
    }
}

/// Where plugins come from, besides the built-in ones.
#[derive(Debug, Clone, Args)]
pub struct PluginSources {
    /// Also load the plugin component at PATH (repeatable); it takes the
    /// place of a plugin with the same name.
    #[arg(long, value_name = "PATH")]
    pub plugin: Vec<PathBuf>,

    /// The plugin folder: every *.wasm in it is loaded, and takes the place
    /// of a built-in plugin with the same name [default: $XDG_DATA_HOME/wscan/plugins].
    #[arg(long, value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
}

/// Flags of `wscan plugin list`.
#[derive(Debug, Args)]
pub struct PluginListArgs {
    /// Plugins besides the built-in ones.
    #[command(flatten)]
    pub sources: PluginSources,

    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<ListFormat>,
}

/// Flags of `wscan plugin info`.
#[derive(Debug, Args)]
pub struct PluginInfoArgs {
    /// The plugin's name.
    pub name: String,

    /// Plugins besides the built-in ones.
    #[command(flatten)]
    pub sources: PluginSources,

    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<ListFormat>,
}

/// Flags of `wscan plugin check`.
#[derive(Debug, Args)]
pub struct PluginCheckArgs {
    /// The component file.
    pub file: PathBuf,

    /// Output format (default: table on a terminal, jsonl otherwise).
    #[arg(long, value_enum)]
    pub format: Option<ListFormat>,
}

/// Flags of `wscan plugin new`.
#[derive(Debug, Args)]
pub struct PluginNewArgs {
    /// The plugin's name: lowercase letters, digits and '-'.
    #[arg(value_parser = parse_new_plugin_name)]
    pub name: String,

    /// Where to create the crate [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// What the plugin starts as: a working check of one kind, to edit.
    #[arg(long, value_enum, default_value_t = Template::TcpBanner)]
    pub template: Template,

    /// The language to write it in: a Rust crate on wscan-sdk, or a
    /// Python folder on the Python SDK (built with componentize-py).
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
}

/// The languages `wscan plugin new --lang` writes plugins in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A crate on wscan-sdk, built with cargo for wasm32-wasip2.
    Rust,
    /// A folder with app.py on the Python SDK, built with componentize-py.
    Python,
}

/// The plugins `wscan plugin new --template` writes; each works as
/// generated and has a unit test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// Reads the first line each open port sends.
    TcpBanner,
    /// Sends a request and reads fields of the reply (Redis INFO).
    TcpExchange,
    /// Asks web servers for paths that should not be public.
    HttpPaths,
    /// Reports how long each TLS certificate stays valid.
    TlsCheck,
    /// Reports a name's TXT and MX records, and a missing SPF policy.
    DnsRecords,
}

fn parse_new_plugin_name(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_lowercase();
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?}: a plugin name is 1-64 lowercase letters, digits and '-', starting with a letter"
        ))
    }
}

/// `--plugin-arg NAME.KEY=VALUE`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginArg {
    /// Plugin name.
    pub plugin: String,
    /// Argument name.
    pub key: String,
    /// Value.
    pub value: String,
}

impl FromStr for PluginArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected PLUGIN.KEY=VALUE, such as port.banner=false; got {s:?}");
        let (name, value) = s.split_once('=').ok_or_else(bad)?;
        let (plugin, key) = name.split_once('.').ok_or_else(bad)?;
        if plugin.is_empty() || key.is_empty() {
            return Err(bad());
        }
        Ok(PluginArg {
            plugin: plugin.into(),
            key: key.into(),
            value: value.into(),
        })
    }
}

/// A duration with a unit: `500ms`, `2s`, `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

impl FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} has no unit; write it like 500ms, 2s or 5m"));
        }
        match humantime::parse_duration(s) {
            Ok(d) if d < MIN_DURATION => Err(format!("{s:?}: must be at least 1ms")),
            Ok(d) if d > MAX_DURATION => Err(format!(
                "{s:?}: must be at most 7 days (a longer wait is a mistake, and would overflow the clock)"
            )),
            Ok(d) => Ok(Duration(d)),
            Err(e) => Err(format!("{s:?}: {e}; write it like 500ms, 2s or 5m")),
        }
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

fn parse_target_arg(s: &str) -> Result<TargetArg, String> {
    s.parse()
        .map_err(|e: crate::targets::TargetError| e.to_string())
}

fn parse_target(s: &str) -> Result<Target, String> {
    s.parse()
        .map_err(|e: crate::targets::TargetError| e.to_string())
}

fn parse_ports(s: &str) -> Result<PortSpec, String> {
    s.parse()
        .map_err(|e: crate::targets::PortSpecError| e.to_string())
}

fn parse_plugin_name(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("empty plugin name; expected comma-separated names, such as port,greeter".into()),
        name => Ok(name.to_string()),
    }
}

/// The shortest and longest durations a flag takes.
const MIN_DURATION: std::time::Duration = std::time::Duration::from_millis(1);
const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// `--rate` bounds: one operation per 1,000 s at the slowest (a smaller
/// rate would space operations out by more than a clock can hold), and
/// far beyond any network's speed at the fastest.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 100_000_000.0;

/// `--concurrency` and `--host-concurrency` at most: each operation in
/// flight holds a socket, and the semaphore has a ceiling.
const MAX_CONCURRENCY: usize = 1_000_000;

/// `--retries` at most.
const MAX_RETRIES: u32 = 100;

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (MIN_RATE..=MAX_RATE).contains(&r) => Ok(r),
        _ => Err(format!(
            "{s:?}: expected operations per second between {MIN_RATE} and {MAX_RATE}, such as 500 or 0.5"
        )),
    }
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match positive(s)? {
        n if n <= MAX_CONCURRENCY => Ok(n),
        _ => Err(format!(
            "{s:?}: at most {MAX_CONCURRENCY} operations in flight (each holds a socket)"
        )),
    }
}

fn parse_retries(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n <= MAX_RETRIES => Ok(n),
        _ => Err(format!(
            "{s:?}: expected a whole number of retries from 0 to {MAX_RETRIES}"
        )),
    }
}

fn parse_item_size(s: &str) -> Result<u64, String> {
    match positive(s)? {
        n if n <= 1 << 32 => Ok(n as u64),
        _ => Err(format!("{s:?}: at most 4294967296 addresses per work item")),
    }
}

fn parse_lease(s: &str) -> Result<Duration, String> {
    let d: Duration = s.parse()?;
    match d.0 >= std::time::Duration::from_secs(3) {
        true => Ok(d),
        false => Err(format!(
            "{s:?}: a lease is at least 3s (heartbeats come every second)"
        )),
    }
}

fn parse_batch(s: &str) -> Result<usize, String> {
    let max = crate::scheduler::MAX_BATCH;
    match positive(s)? {
        n if n <= max => Ok(n),
        _ => Err(format!(
            "{s:?}: a plugin instance scans at most {max} subjects at once"
        )),
    }
}

fn parse_max_scans(s: &str) -> Result<usize, String> {
    match positive(s)? {
        n if n <= 64 => Ok(n),
        _ => Err(format!(
            "{s:?}: at most 64 scans at once (they share one pool of plugin instances)"
        )),
    }
}

fn parse_parallel(s: &str) -> Result<usize, String> {
    let max = crate::engine::limits::MAX_PARALLEL;
    match positive(s)? {
        n if n <= max => Ok(n),
        _ => Err(format!(
            "{s:?}: at most {max} plugin instances run at once (each holds an instance slot)"
        )),
    }
}

fn parse_plugin_memory(s: &str) -> Result<usize, String> {
    use crate::engine::limits::{MAX_PLUGIN_MEMORY, MIN_PLUGIN_MEMORY, parse_size, size};
    match parse_size(s)? {
        n if (MIN_PLUGIN_MEMORY..=MAX_PLUGIN_MEMORY).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?}: a plugin's memory limit is between {} and {} (all a 32-bit WebAssembly memory can address)",
            size(MIN_PLUGIN_MEMORY),
            size(MAX_PLUGIN_MEMORY)
        )),
    }
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{s:?}: expected a whole number above zero")),
    }
}

/// Flags of `wscan scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Targets: IPv4 or IPv6 addresses, CIDR blocks, ranges, host names,
    /// HOST:PORT and http(s) URLs (192.0.2.1, 10.0.0.0/24, ::1,
    /// 10.0.0.1-10.0.0.50, 10.0.0.1-50, www.example.com, 192.0.2.1:8080,
    /// https://www.example.com:8443/).
    #[arg(required_unless_present_any = ["input", "resume"], value_name = "TARGET", value_parser = parse_target_arg)]
    pub targets: Vec<TargetArg>,

    /// Continue scan SCAN (see `wscan results list`), stopped by Ctrl-C or
    /// killed, with its own settings: units it completed are not run
    /// again, its -o file is rewritten from the store and continued. Takes
    /// no other scan flags but -q.
    #[arg(long, value_name = "SCAN", conflicts_with = "no_db")]
    pub resume: Option<i64>,

    /// Do not record this scan in the result store (it cannot be resumed).
    #[arg(long)]
    pub no_db: bool,

    /// Also read targets from FILE, one per line (`#` starts a comment), or
    /// from standard input with `-i -`. Lines are read as the scan goes, in
    /// order; a line that is not a target is reported and skipped (exit
    /// code 2 at the end).
    #[arg(short = 'i', long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Never scan these: comma-separated addresses, CIDR blocks or ranges.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_target)]
    pub exclude: Vec<Target>,

    /// Never scan the targets listed in FILE, one per line (# starts a comment).
    #[arg(long, value_name = "FILE")]
    pub exclude_file: Option<PathBuf>,

    /// Seed of the pseudo-random order addresses are visited in [default: random, logged with -v].
    #[arg(long, value_name = "N", conflicts_with = "ordered")]
    pub seed: Option<u64>,

    /// Visit addresses in the order given instead of a pseudo-random one.
    #[arg(long)]
    pub ordered: bool,

    /// Take shard I of N (1-based): N runs with the same --seed cover every
    /// address exactly once.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::targets::Shard>,

    /// Print the units the scan would run (plugin and address), after
    /// exclusions and sharding, and send nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: print only how many units.
    #[arg(long, requires = "dry_run")]
    pub count: bool,

    /// Plugins to run, comma-separated (default: every plugin in use: built-in, plugin folder, --plugin).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_plugin_name)]
    pub plugins: Option<Vec<String>>,

    /// Plugins besides the built-in ones.
    #[command(flatten)]
    pub sources: PluginSources,

    /// Ports, plugin arguments and limits, timeouts, DNS and TLS.
    #[command(flatten)]
    pub call: CallArgs,

    /// Network operations in flight across the whole scan.
    #[arg(long, value_name = "N", default_value = "1000", value_parser = parse_concurrency)]
    pub concurrency: usize,

    /// Network operations in flight against one address [default: no cap
    /// beyond --concurrency].
    #[arg(long, value_name = "N", value_parser = parse_concurrency)]
    pub host_concurrency: Option<usize>,

    /// New connections and DNS queries per second, across the scan
    /// [default: no limit beyond --concurrency].
    #[arg(long, value_name = "PER-SECOND", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Try a connect that timed out again, up to N more times, waiting
    /// 100 ms, 200 ms, 400 ms... (with jitter) in between.
    #[arg(long, value_name = "N", default_value = "0", value_parser = parse_retries)]
    pub retries: u32,

    /// Write the scan's statistics to FILE as JSON at the end (the summary
    /// lines' numbers, per plugin too).
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,

    /// Serve the scan's metrics at http://ADDR:PORT/metrics while it runs,
    /// for Prometheus to scrape (OpenMetrics text; docs/api.md lists
    /// them). Port 0 takes a free one, printed at start.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,

    /// Plugin instances running at once, each scanning a batch of
    /// subjects concurrently (at most 1000).
    #[arg(long, value_name = "N", default_value = "64", value_parser = parse_parallel)]
    pub parallel: usize,

    /// The most subjects one plugin instance scans at once (1 to 256):
    /// batches grow with the work waiting, up to this. 1 gives every
    /// subject an instance of its own.
    #[arg(long, value_name = "N", default_value = "256", value_parser = parse_batch)]
    pub batch_size: usize,

    /// Write records to FILE instead of standard output; give it several
    /// times for several files. The format is FORMAT: when written
    /// FORMAT:FILE (jsonl:scan.out), else the file's extension (.jsonl,
    /// .csv, .md, .xml for nmap's XML, .sarif), else --format, else jsonl.
    /// `-` is standard output (`-o - -o scan.xml` prints and saves).
    #[arg(short, long, value_name = "[FORMAT:]FILE", value_parser = parse_output)]
    pub output: Vec<OutputFile>,

    /// Output format, and CSV's columns.
    #[command(flatten)]
    pub output_format: RecordFormat,

    /// No summary and no progress bar on standard error.
    #[arg(short, long)]
    pub quiet: bool,

    /// Watch the plugin folder while the scan runs: new, changed and removed
    /// .wasm files take effect for the units that start afterwards.
    #[arg(long)]
    pub watch: bool,

    /// Run the scan on workers (`wscan worker --redis URL`) through this
    /// Redis: redis://[:PASSWORD@]HOST[:PORT][/DB], or rediss:// for TLS.
    /// This process publishes work items and collects, stores and prints
    /// the results (docs/distributed.md).
    #[arg(long, value_name = "URL", conflicts_with = "dry_run")]
    pub redis: Option<String>,

    /// With --redis: addresses of the scan's walk per work item (the walk
    /// of a shuffled scan has up to twice as many steps as addresses), and
    /// lines of -i per item (16,384 at most).
    #[arg(long, value_name = "N", default_value = "4096", requires = "redis", value_parser = parse_item_size)]
    pub item_size: u64,

    /// With --redis: deliveries of a work item before it goes to the
    /// dead letters (wscan:dead) and ends as an error record.
    #[arg(long, value_name = "N", default_value = "3", requires = "redis", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_deliveries: u32,

    /// How to trust a rediss:// Redis (--redis-ca...).
    #[command(flatten)]
    pub redis_tls: RedisTlsArgs,

    /// The ids of the flags given on the command line (not defaults), so
    /// `--resume` can refuse settings it would ignore.
    #[arg(skip)]
    pub given: Vec<String>,
}

impl ScanArgs {
    /// The scan these flags ask for.
    pub fn request(&self) -> ScanRequest {
        ScanRequest {
            targets: self.targets.clone(),
            input: self.input.clone(),
            exclude: self.exclude.clone(),
            exclude_file: self.exclude_file.clone(),
            seed: self.seed,
            ordered: self.ordered,
            shard: self.shard,
            plugins: self.plugins.clone(),
            limits: crate::primitives::gate::Limits {
                concurrency: self.concurrency,
                host_concurrency: self.host_concurrency,
                rate: self.rate,
                retries: self.retries,
            },
            parallel: self.parallel,
            batch: self.batch_size,
            call: self.call.request(),
        }
    }

    /// Make the relative paths of a stored command line relative to `cwd`,
    /// the folder it was first run in.
    pub fn rebase(&mut self, cwd: &std::path::Path) {
        let at = |path: &mut PathBuf| {
            if path.is_relative() && path.as_os_str() != "-" {
                *path = cwd.join(&*path);
            }
        };
        for path in [
            self.input.as_mut(),
            self.exclude_file.as_mut(),
            self.stats.as_mut(),
            self.sources.plugin_dir.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            at(path);
        }
        self.output.iter_mut().for_each(|o| at(&mut o.path));
        self.call.tls.ca_file.iter_mut().for_each(at);
        self.sources.plugin.iter_mut().for_each(at);
    }
}

/// Parse the process's command line (exiting on a usage error, as clap
/// does), keeping the raw arguments and which scan flags were given.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let command = Cli::command();
    let scan_args: Vec<String> = command
        .find_subcommand("scan")
        .map(|c| c.get_arguments().map(|a| a.get_id().to_string()).collect())
        .unwrap_or_default();
    let matches = command.get_matches_from(&argv);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli.argv = argv.into_iter().skip(1).collect();
    if let (Command::Scan(args), Some(("scan", sub))) = (&mut cli.command, matches.subcommand()) {
        args.given = scan_args
            .into_iter()
            .filter(|id| sub.value_source(id) == Some(ValueSource::CommandLine))
            .collect();
    }
    cli
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(
            "500ms".parse::<Duration>().unwrap().0,
            std::time::Duration::from_millis(500)
        );
        assert_eq!(
            "2s".parse::<Duration>().unwrap().0,
            std::time::Duration::from_secs(2)
        );
        assert!("5".parse::<Duration>().unwrap_err().contains("no unit"));
        assert!("0s".parse::<Duration>().is_err());
        assert!("fast".parse::<Duration>().is_err());
    }

    #[test]
    fn plugin_args_parse() {
        let a: PluginArg = "port.banner=false".parse().unwrap();
        assert_eq!(
            (a.plugin.as_str(), a.key.as_str(), a.value.as_str()),
            ("port", "banner", "false")
        );
        let b: PluginArg = "http.header=X-A=b".parse().unwrap();
        assert_eq!(b.value, "X-A=b");
        assert!("portbanner=1".parse::<PluginArg>().is_err());
        assert!("port.banner".parse::<PluginArg>().is_err());
    }

    #[test]
    fn scan_flags_parse() {
        let cli = Cli::try_parse_from([
            "wscan",
            "scan",
            "127.0.0.1",
            "::1/127",
            "-p",
            "22,80",
            "--timeout",
            "500ms",
        ])
        .unwrap();
        let Command::Scan(args) = cli.command else {
            panic!("not scan")
        };
        assert_eq!(args.targets.len(), 2);
        assert_eq!(args.call.ports.len(), 2);
        assert!(Cli::try_parse_from(["wscan", "scan", "300.0.0.1"]).is_err());
        assert!(Cli::try_parse_from(["wscan", "scan", "127.0.0.1", "-p", "0"]).is_err());
        assert!(Cli::try_parse_from(["wscan", "scan", "127.0.0.1", "--bogus"]).is_err());
        assert!(Cli::try_parse_from(["wscan", "scan"]).is_err());
        let cli = Cli::try_parse_from(["wscan", "scan", "127.0.0.1", "--plugins", "port,greeter"])
            .unwrap();
        let Command::Scan(args) = cli.command else {
            panic!("not scan")
        };
        assert_eq!(args.plugins.unwrap(), ["port", "greeter"]);
        assert!(
            Cli::try_parse_from(["wscan", "scan", "127.0.0.1", "--plugins", "port,,x"]).is_err()
        );
    }
}
