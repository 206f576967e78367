//! The command line: raw flags ([`Cli`]), resolved into the objects that do
//! the work, and the documented exit codes ([`Exit`]).

mod args;
mod plugin;
mod results;
mod worker;

pub(crate) use results::run_info as results_run_info;
pub use results::stored_args;

pub use args::{
    Cli, Command, PluginCheckArgs, PluginCommand, PluginInfoArgs, PluginListArgs, PluginNewArgs,
    PluginRunArgs, PluginSources, RecordFormat, ResultsCommand, ResultsDiffArgs, ResultsListArgs,
    ResultsPruneArgs, ResultsShowArgs, ScanArgs, ServeArgs, parse,
};

use crate::engine::registry::Registry;
use crate::engine::{Engine, LoadedPlugin};
use crate::model::PluginInfo;
use crate::output::{Format, RunInfo};
use crate::scheduler::input::Start;
use crate::scheduler::spec::{Gathered, SpecError};
use crate::scheduler::{self, ScanSpec};
use crate::targets::TargetArg;
use anyhow::{Context, bail};
use args::OutputFile;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// Exit codes, as documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the command ran; every unit of the scan completed.
    Success = 0,
    /// 1: the command failed (a plugin would not load, output could not be
    /// written...). What was found before is kept. Also `results diff
    /// --exit-code` when the two scans differ.
    Failure = 1,
    /// 2: bad usage: unknown flag, malformed target, port spec or duration.
    Usage = 2,
    /// 3: the scan finished, but some units failed (a plugin trapped, timed
    /// out or reported an error); they are in the output as error records.
    Partial = 3,
    /// 130: the scan was stopped by Ctrl-C (or SIGTERM); what it found is
    /// kept, and `wscan scan --resume SCAN` continues it.
    Interrupted = 130,
}

/// A usage error found after parsing (an unknown plugin name, a bad
/// `--plugin-arg`): exit code 2, like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Run a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    raise_fd_limit();
    let globals = Globals {
        cache_dir: cli.cache_dir.clone(),
        no_cache: cli.no_cache,
        db: cli.db.clone(),
        argv: cli.argv.clone(),
    };
    match cli.command {
        Command::Scan(args) => scan(&globals, args).await,
        Command::Results(ResultsCommand::List(args)) => results::list(&globals, args),
        Command::Results(ResultsCommand::Show(args)) => results::show(&globals, args),
        Command::Results(ResultsCommand::Diff(args)) => results::diff(&globals, args),
        Command::Results(ResultsCommand::Prune(args)) => results::prune(&globals, args),
        Command::Serve(args) => serve(&globals, args).await,
        Command::Token(command) => results::token(&globals, command),
        Command::Plugin(PluginCommand::List(args)) => plugin::list(&globals, args).await,
        Command::Plugin(PluginCommand::Info(args)) => plugin::info(&globals, args).await,
        Command::Plugin(PluginCommand::Check(args)) => plugin::check(&globals, args).await,
        Command::Plugin(PluginCommand::New(args)) => plugin::new(args),
        Command::Plugin(PluginCommand::Dev(args)) => plugin::dev(&globals, *args).await,
        Command::Plugin(PluginCommand::Run(args)) => plugin::run(&globals, *args).await,
        Command::Worker(args) => worker::worker(&globals, args).await,
    }
}

/// Flags every subcommand shares.
struct Globals {
    cache_dir: Option<PathBuf>,
    no_cache: bool,
    /// `--db`.
    db: Option<PathBuf>,
    /// The command line, stored with a scan.
    argv: Vec<String>,
}

/// The user's per-application folders ($XDG_DATA_HOME/wscan...).
fn project_dirs() -> Option<directories_next::ProjectDirs> {
    directories_next::ProjectDirs::from("", "", "wscan")
}

impl Globals {
    /// Start the engine, with the compile cache unless `--no-cache`.
    fn engine(&self) -> anyhow::Result<Engine> {
        let cache = match (&self.cache_dir, self.no_cache) {
            (_, true) => None,
            (Some(dir), false) => Some(dir.clone()),
            (None, false) => project_dirs().map(|d| d.cache_dir().join("components")),
        };
        if let Some(dir) = &cache {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
        }
        Engine::new(cache.as_deref())
            .map_err(|e| anyhow::anyhow!("cannot start the WebAssembly engine: {e:#}"))
    }
}

/// A connect scan holds one descriptor per connect in flight; lift the soft
/// limit to the hard one, as nmap and RustScan do.
fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("file descriptor limit: {n}"),
        Err(e) => tracing::warn!("could not raise the file descriptor limit: {e}"),
    }
}

/// The plugin folder in effect: `--plugin-dir`, or the user's data
/// directory's when it exists.
fn plugin_dir(sources: &PluginSources) -> anyhow::Result<Option<PathBuf>> {
    Ok(match &sources.plugin_dir {
        Some(dir) if !dir.is_dir() => {
            bail!(
                "the plugin folder {} does not exist or is not a folder",
                dir.display()
            )
        }
        Some(dir) => Some(dir.clone()),
        None => project_dirs()
            .map(|d| d.data_dir().join("plugins"))
            .filter(|d| d.is_dir()),
    })
}

/// Load the built-in plugins, the plugin folder's and `--plugin` files into
/// a registry (see [`Registry`] for which takes whose place).
async fn load_plugins(engine: &Engine, sources: &PluginSources) -> anyhow::Result<Registry> {
    let builtins = engine.load_builtins().await?;
    let mut dir_plugins = Vec::new();
    if let Some(dir) = plugin_dir(sources)? {
        let (loaded, errors) = engine.load_dir(&dir).await;
        for e in errors {
            tracing::warn!("skipped: {e}");
        }
        for plugin in loaded {
            let twin = dir_plugins
                .iter()
                .find(|p: &&LoadedPlugin| p.info.name == plugin.info.name);
            if let Some(twin) = twin {
                tracing::warn!(
                    "{} and {} are both named {:?}; the first in name order is shadowed",
                    twin.source,
                    plugin.source,
                    plugin.info.name
                );
            }
            dir_plugins.push(plugin);
        }
    }
    let mut files: Vec<LoadedPlugin> = Vec::new();
    for path in &sources.plugin {
        let plugin = engine.load_file(path).await?;
        if files.iter().any(|p| p.info.name == plugin.info.name) {
            bail!(UsageError(format!(
                "two --plugin files are named {:?}",
                plugin.info.name
            )));
        }
        files.push(plugin);
    }
    let registry = Registry::new(builtins, dir_plugins, files);
    engine.metrics().watch_plugins(registry.stats.clone());
    Ok(registry)
}

/// `--dry-run`: the units the scan would start from its targets, and
/// nothing sent. (Units derived later, such as services found open, depend
/// on what the scan finds, so they cannot be listed.)
fn dry_run(
    spec: &ScanSpec,
    selected: &[Arc<LoadedPlugin>],
    count_only: bool,
    output: Option<&std::path::Path>,
) -> anyhow::Result<Exit> {
    use std::io::Write;
    let consumers = |kind: crate::model::SubjectKind| -> Vec<&str> {
        selected
            .iter()
            .filter(|p| p.info.consumes.kinds.contains(&kind))
            .map(|p| p.info.name.as_str())
            .collect()
    };
    let host_consumers = consumers(crate::model::SubjectKind::Host);
    let consumers = consumers(crate::model::SubjectKind::Address);
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut units: u128 = 0;
    // Addresses counted without building their subjects.
    let mut counted: u128 = 0;
    let mut write = |start: &Start, out: &mut dyn Write| -> std::io::Result<()> {
        let names = match start.subject {
            crate::model::Subject::Host(_) => &host_consumers,
            _ => &consumers,
        };
        units = units.saturating_add(names.len() as u128);
        if !count_only {
            for plugin in names {
                match (&start.subject, &start.ports, start.pin) {
                    (subject, Some(ports), _) => {
                        writeln!(out, "{plugin} {subject} port {}", ports[0].0)?
                    }
                    (subject, None, Some(port)) => writeln!(out, "{plugin} {subject} port {port}")?,
                    (subject, None, None) => writeln!(out, "{plugin} {subject}")?,
                }
            }
        }
        Ok(())
    };
    let (singles, space) = spec.starts();
    for start in &singles {
        write(start, &mut out)?;
    }
    // Counting only: blocks are counted arithmetically, never walked, so
    // `fd00::/64 --count` answers at once.
    if count_only {
        // Saturating: `::/0` times two plugins does not fit a u128.
        counted = counted.saturating_add(space.count().saturating_mul(consumers.len() as u128));
    } else {
        for ip in space.iter() {
            write(
                &Start::new(crate::model::Subject::Address { ip, host: None }),
                &mut out,
            )?;
        }
    }
    let mut bad_lines = Vec::new();
    if let Some(source) = &spec.input {
        let mut reader = source
            .open()
            .with_context(|| format!("cannot read targets from {source}"))?;
        let mut failed = None;
        // A scope of its own, as a scan has: a line already covered by the
        // targets or an earlier line is counted once.
        let scope = spec.scope();
        let mut expander = spec.expander();
        scheduler::input::for_each_target(&mut reader, Some(&scope), |item| {
            match item {
                Ok(TargetArg::Addresses(t)) if count_only => {
                    let n = expander.count(&TargetArg::Addresses(t));
                    counted = counted.saturating_add(n.saturating_mul(consumers.len() as u128));
                }
                Ok(target) => {
                    let mut result = Ok(());
                    expander.expand(&target, |start| {
                        result = write(&start, &mut out);
                        result.is_ok()
                    });
                    if let Err(e) = result {
                        failed = Some(e);
                        return false;
                    }
                }
                Err(e) => {
                    eprintln!("wscan: input {e}");
                    bad_lines.push(e);
                }
            }
            true
        })
        .with_context(|| format!("cannot read targets from {source}"))?;
        if let Some(e) = failed {
            return Err(e.into());
        }
    }
    if count_only {
        writeln!(out, "{}", units.saturating_add(counted))?;
    }
    out.flush()?;
    if !bad_lines.is_empty() {
        eprintln!(
            "wscan: {} line(s) of {} are not targets; fix or remove them",
            bad_lines.len(),
            spec.input
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        return Ok(Exit::Usage);
    }
    Ok(Exit::Success)
}

impl RecordFormat {
    /// A sink writing records to `out` in the chosen format (the default
    /// for a terminal when `terminal`); `--fields` with another format
    /// than CSV is a usage error.
    pub fn sink(
        &self,
        out: impl std::io::Write + Send + 'static,
        terminal: bool,
        run: &RunInfo,
    ) -> anyhow::Result<Box<dyn crate::output::Sink>> {
        self.check(&[])?;
        Ok(Format::or_default(self.format, terminal).sink(out, self.fields.clone(), run))
    }

    /// `--fields` goes with CSV only (CSV is never a default): --format
    /// csv, or one of the `-o` files written as CSV.
    pub fn check(&self, files: &[OutputFile]) -> anyhow::Result<()> {
        let csv = self.format == Some(Format::Csv)
            || files
                .iter()
                .any(|f| f.format(self.format, false) == Format::Csv);
        if self.fields.is_some() && !csv {
            bail!(UsageError(
                "--fields chooses the columns of CSV; add --format csv (or -o FILE.csv)".into()
            ));
        }
        Ok(())
    }

    /// [`RecordFormat::sink`] for standard output.
    pub fn stdout_sink(&self, run: &RunInfo) -> anyhow::Result<Box<dyn crate::output::Sink>> {
        self.sink(std::io::stdout(), std::io::stdout().is_terminal(), run)
    }

    /// Sinks for the `-o` files (created now, so a path that cannot be
    /// written fails before anything is scanned), or for standard output
    /// when there are none; and whether any of them is a terminal.
    pub fn sinks(
        &self,
        files: &[OutputFile],
        run: &RunInfo,
    ) -> anyhow::Result<(Box<dyn crate::output::Sink>, bool)> {
        self.check(files)?;
        let stdout = [OutputFile {
            format: None,
            path: "-".into(),
        }];
        let files = if files.is_empty() { &stdout[..] } else { files };
        let mut sinks = Vec::with_capacity(files.len());
        let mut to_terminal = false;
        for file in files {
            let (out, terminal): (Box<dyn std::io::Write + Send>, bool) = if file.is_stdout() {
                let terminal = std::io::stdout().is_terminal();
                (Box::new(std::io::stdout()), terminal)
            } else {
                let created = std::fs::File::create(&file.path).with_context(|| {
                    format!("cannot create output file {}", file.path.display())
                })?;
                (Box::new(std::io::BufWriter::new(created)), false)
            };
            to_terminal |= terminal;
            let format = file.format(self.format, terminal);
            sinks.push(format.sink(out, self.fields.clone(), run));
        }
        let sink = match sinks.len() {
            1 => sinks.pop().expect("one sink"),
            _ => Box::new(crate::output::Tee::new(sinks)),
        };
        Ok((sink, to_terminal))
    }
}

/// `wscan serve`: the HTTP API, until Ctrl-C or SIGTERM; then running
/// scans are stopped (resumable) before it exits.
async fn serve(globals: &Globals, args: ServeArgs) -> anyhow::Result<Exit> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            crate::serve::tls::server_config(cert, key).map_err(|e| UsageError(e.to_string()))?,
        ),
        // clap makes each need the other.
        _ => None,
    };
    let db = results::db_path(globals)?;
    // Created now, so a store that cannot be written fails at start.
    let store = results::open(globals)?;
    let public = !args.listen.ip().is_loopback();
    if public && !store.has_tokens()? {
        bail!(UsageError(format!(
            "--listen {}: beyond loopback, anyone who reaches the port could scan from this machine; create a token first (`wscan token create NAME --role admin`)",
            args.listen
        )));
    }
    if public && tls.is_none() {
        bail!(UsageError(format!(
            "--listen {}: beyond loopback, tokens would cross the network in clear; serve HTTPS with --tls-cert FILE --tls-key FILE",
            args.listen
        )));
    }
    drop(store);
    let engine = Arc::new(globals.engine()?);
    let registry = Arc::new(load_plugins(&engine, &args.sources).await?);
    let plugin_dir = plugin_dir(&args.sources)?;
    // The plugin folder is watched: files dropped there are swapped in as
    // uploads are.
    let _watch = match &plugin_dir {
        Some(dir) => Some(
            crate::engine::watch::watch(engine.clone(), registry.clone(), dir)
                .with_context(|| format!("cannot watch the plugin folder {}", dir.display()))?,
        ),
        None => None,
    };
    let uploads = plugin_dir
        .clone()
        .or_else(|| project_dirs().map(|d| d.data_dir().join("plugins")));
    let publish = match &args.redis {
        Some(url) => {
            let redis = args.redis_tls.endpoint(url)?;
            // A wrong URL or password stops the daemon at once, not its
            // first scan.
            crate::cluster::connect(&redis).await?;
            Some(crate::cluster::coordinator::Publish {
                redis,
                item_size: u128::from(args.item_size),
                max_deliveries: args.max_deliveries,
            })
        }
        None => None,
    };
    let settings = crate::serve::Settings {
        db: db.clone(),
        plugin_dir,
        uploads,
        public,
        budget: crate::primitives::gate::Budget::new(args.concurrency),
        max_scans: args.max_scans,
        publish,
    };
    let service = crate::serve::Service::new(engine, registry, settings);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    if args.resume_killed {
        for (id, outcome) in service.resume_killed().await {
            match outcome {
                Ok(()) => {
                    eprintln!("wscan: scan {id} was left running by a process that died; resumed")
                }
                Err(e) => eprintln!(
                    "wscan: scan {id} was left running by a process that died; not resumed: {e}"
                ),
            }
        }
    }
    eprintln!(
        "wscan: serving the API on {}://{addr} (GET /v1/openapi.json describes it); scans are stored in {}",
        if tls.is_some() { "https" } else { "http" },
        db.display()
    );
    match tls {
        Some(config) => {
            let listener = crate::serve::tls::TlsListener::new(listener, config)?;
            axum::serve(listener, service.router())
                .with_graceful_shutdown(stop_signal())
                .await
        }
        None => {
            axum::serve(listener, service.router())
                .with_graceful_shutdown(stop_signal())
                .await
        }
    }
    .context("the HTTP server failed")?;
    eprintln!("wscan: stopping; running scans are recorded as interrupted (resumable)");
    service.drain().await;
    Ok(Exit::Success)
}

/// A spec error as the CLI reports it: a usage error (exit 2) when the
/// request is wrong, a failure otherwise.
pub(crate) fn usage(e: SpecError) -> anyhow::Error {
    match e {
        SpecError::Usage(message) => UsageError(message).into(),
        other => other.into(),
    }
}

async fn scan(globals: &Globals, mut args: ScanArgs) -> anyhow::Result<Exit> {
    // --resume: the scan's own command line and the store it is in.
    let mut resuming = None;
    if let Some(id) = args.resume {
        let (store, row, stored) = results::load_resume(globals, &args, id)?;
        args = stored;
        resuming = Some((store, row));
    }
    if args.call.dns.dns_cache == args::DnsCache::Redis && args.redis.is_none() {
        bail!(UsageError(
            "--dns-cache redis shares answers among the workers of a distributed scan: give --redis URL too, or use --dns-cache local".into()
        ));
    }
    // What workers parse: the scan's own command line, not `--resume N`.
    let scan_argv = match &resuming {
        Some((_, row)) => row.argv.clone(),
        None => globals.argv.clone(),
    };
    let engine = Arc::new(globals.engine()?);
    let registry = Arc::new(load_plugins(&engine, &args.sources).await?);
    let active = registry.active();
    let available: Vec<&PluginInfo> = active.iter().map(|a| &a.plugin.info).collect();
    let request = args.request();
    let gathered = Gathered::gather(&request).map_err(usage)?;
    let spec = ScanSpec::resolve(&request, &available, gathered).map_err(usage)?;
    args.output_format.check(&args.output)?;
    if let (None, Some(seed)) = (args.seed, spec.seed()) {
        tracing::info!("address order seed {seed} (repeat it with --seed {seed})");
    }
    if args.dry_run {
        let selected: Vec<Arc<LoadedPlugin>> = active
            .iter()
            .filter(|a| {
                spec.plugins
                    .as_ref()
                    .is_none_or(|names| names.contains(&a.plugin.info.name))
            })
            .map(|a| a.plugin.clone())
            .collect();
        let output = match args.output.as_slice() {
            [] => None,
            [one] if one.is_stdout() => None,
            [one] => Some(one.path.as_path()),
            _ => bail!(UsageError(
                "--dry-run writes one list of units; give at most one -o".into()
            )),
        };
        return dry_run(&spec, &selected, args.count, output);
    }
    if args.redis.is_some() {
        crate::cluster::coordinator::items(&spec, u128::from(args.item_size))
            .map_err(|e| UsageError(e.to_string()))?;
        // -i lines travel as chunks, each read on its own: a shard of a
        // chunk is not the shard of the file.
        if args.shard.is_some() && args.input.is_some() {
            bail!(UsageError(
                "--shard does not go with -i and --redis: the workers split the input among themselves; drop --shard".into()
            ));
        }
    }
    let seed = spec.seed();
    let _metrics = match args.metrics {
        Some(addr) => Some(serve_metrics(addr, &engine, args.quiet).await?),
        None => None,
    };

    let (store, scan_id, resumed) = open_store(globals, &args, resuming, seed)?;
    let earlier = (resumed.findings, resumed.errors);

    let (mut sink, to_terminal) = output_sink(globals, &args, store.as_ref().zip(scan_id))?;
    // With --watch, the plugin folder is watched while the scan runs.
    let _watch = match (args.watch, plugin_dir(&args.sources)?) {
        (false, _) => None,
        (true, None) => bail!(UsageError(
            "--watch needs a plugin folder: create $XDG_DATA_HOME/wscan/plugins or pass --plugin-dir".into()
        )),
        (true, Some(dir)) => Some(
            crate::engine::watch::watch(engine.clone(), registry.clone(), &dir)
                .with_context(|| format!("cannot watch the plugin folder {}", dir.display()))?,
        ),
    };
    // Created now, so a path that cannot be written fails before the scan.
    let stats_file = match &args.stats {
        Some(path) => Some(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the statistics file {}", path.display()))?,
        ),
        None => None,
    };
    let progress = progress_bar(args.quiet);
    if to_terminal {
        sink = Box::new(crate::output::Suspended::new(sink, progress.clone()));
    }
    let durable = match (&store, scan_id) {
        (Some(store), Some(id)) => Some(scheduler::Durable {
            journal: store.journal(id)?,
            resumed,
        }),
        _ => None,
    };
    let outcome = match &args.redis {
        Some(url) => {
            let plan = worker::plan(
                scan_argv,
                &args,
                &spec,
                &request,
                url,
                engine.metrics().clone(),
            )?;
            crate::cluster::coordinator::run(
                &spec,
                &registry,
                plan,
                sink.as_mut(),
                &progress,
                durable,
                stop_signal(),
            )
            .await
            .map_err(anyhow::Error::from)
        }
        None => scheduler::run(
            &spec,
            engine,
            registry.clone(),
            sink.as_mut(),
            &progress,
            durable,
            stop_signal(),
        )
        .await
        .map_err(anyhow::Error::from),
    };
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => {
            if let (Some(store), Some(id)) = (&store, scan_id) {
                if let Err(end) =
                    store.end(id, crate::store::Status::Failed, &serde_json::Value::Null)
                {
                    tracing::warn!("cannot record the scan's failure in the result store: {end}");
                }
                eprintln!(
                    "wscan: scan {id} stopped; what it found is stored, and `wscan scan --resume {id}{}` continues it",
                    results::db_flag(globals)
                );
            }
            return Err(e);
        }
    };
    if let (Some(store), Some(id)) = (&store, scan_id) {
        let status = match summary.interrupted {
            true => crate::store::Status::Interrupted,
            false => crate::store::Status::Completed,
        };
        store
            .end(id, status, &serde_json::to_value(&summary)?)
            .context("cannot record the scan's end in the result store")?;
    }
    if let (Some(path), Some(mut file)) = (&args.stats, stats_file) {
        use std::io::Write;
        serde_json::to_writer_pretty(&mut file, &summary)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(file))
            .with_context(|| format!("cannot write the statistics to {}", path.display()))?;
    }
    Ok(report(
        globals, &args, &summary, scan_id, earlier, &registry,
    ))
}

/// Stops the `--metrics` server when dropped.
struct MetricsServer(tokio::task::JoinHandle<()>);

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `--metrics ADDR`: serve the engine's metrics while the scan runs.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    engine: &Engine,
    quiet: bool,
) -> anyhow::Result<MetricsServer> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        UsageError(format!(
            "--metrics {addr}: cannot listen there ({e}); give a free address and port, or port 0 for any free one"
        ))
    })?;
    let addr = listener.local_addr()?;
    if !quiet {
        eprintln!("wscan: metrics at http://{addr}/metrics");
    }
    let router = crate::serve::metrics_router(engine.metrics().clone());
    Ok(MetricsServer(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!("the metrics server stopped: {e}");
        }
    })))
}

/// The result store, opened before anything is sent: a new scan is
/// recorded, a resumed one taken over (with what its earlier runs did).
/// `--no-db`: none.
fn open_store(
    globals: &Globals,
    args: &ScanArgs,
    resuming: Option<(crate::store::Store, crate::store::ScanRow)>,
    seed: Option<u64>,
) -> anyhow::Result<(
    Option<crate::store::Store>,
    Option<i64>,
    crate::store::Resumed,
)> {
    Ok(match resuming {
        Some((mut store, row)) => {
            let resumed = store.resume(row.id)?;
            if !args.quiet {
                eprintln!(
                    "wscan: resuming scan {}: {} unit(s) done by earlier runs are skipped; {} record(s) of units cut short are discarded and those units run again",
                    row.id,
                    resumed.done.len(),
                    resumed.discarded
                );
            }
            (Some(store), Some(row.id), resumed)
        }
        None if args.no_db => (None, None, crate::store::Resumed::default()),
        None => {
            let store = results::open(globals)?;
            let cwd = std::env::current_dir().context("cannot read the current folder")?;
            let id = store.begin(&globals.argv, &cwd, seed)?;
            if !args.quiet {
                eprintln!(
                    "wscan: scan {id}, recorded in {} (`wscan results show {id}`; `wscan scan --resume {id}` if it stops)",
                    store.path().display()
                );
            }
            (Some(store), Some(id), crate::store::Resumed::default())
        }
    })
}

/// Where the scan's records go (the `-o` files or standard output, each
/// in its format), and whether one is a terminal. A resumed scan's output
/// files are written again from the store first: the records of completed
/// units, without those of units cut short (they run again and write
/// theirs anew). A new scan has none yet.
fn output_sink(
    globals: &Globals,
    args: &ScanArgs,
    stored: Option<(&crate::store::Store, i64)>,
) -> anyhow::Result<(Box<dyn crate::output::Sink>, bool)> {
    let mut run = RunInfo::now(&globals.argv);
    if let Some((store, id)) = stored
        && let Some(row) = store.scan(id)?
    {
        // A resumed scan is described by its first run.
        run = results::run_info(&row);
    }
    let (mut sink, to_terminal) = args.output_format.sinks(&args.output, &run)?;
    if let Some((store, id)) = stored
        && args.output.iter().any(|o| !o.is_stdout())
    {
        store
            .records(id, |record| sink.write(&record))
            .context("cannot write the stored records to the output files")?;
    }
    Ok((sink, to_terminal))
}

/// A progress bar on standard error when it is a terminal; indicatif
/// draws nothing otherwise. Records for the terminal are written with the
/// bar lifted, so they do not mix with it.
fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4)).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} units, {per_sec}, ETA {eta}  {msg}",
            )
            .expect("valid template"),
        )
    }
}

/// Say how the scan went on standard error (the summary unless `-q`;
/// an interruption and bad input always) and choose the exit code.
fn report(
    globals: &Globals,
    args: &ScanArgs,
    summary: &scheduler::Summary,
    scan_id: Option<i64>,
    earlier: (u64, u64),
    registry: &Registry,
) -> Exit {
    if !args.quiet && args.watch {
        let r = &registry.stats;
        let n = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "wscan: plugin folder: {} loaded, {} swapped, {} rejected, {} removed",
            n(&r.loaded),
            n(&r.swapped),
            n(&r.rejected),
            n(&r.removed)
        );
    }
    if !args.quiet {
        for line in summary.lines() {
            eprintln!("{line}");
        }
        if summary.skipped > 0 {
            eprintln!(
                "wscan: {} unit(s) were done by earlier runs of this scan ({} finding(s), {} error(s) stored)",
                summary.skipped, earlier.0, earlier.1
            );
        }
    }
    // Said even with --quiet: the user stopped it and will want it back.
    if summary.interrupted {
        let from_stdin = args.input.as_deref().is_some_and(|p| p.as_os_str() == "-");
        match scan_id {
            Some(id) if from_stdin => eprintln!(
                "wscan: interrupted; what was found is kept in scan {id} (it read standard input, so it cannot be resumed)"
            ),
            Some(id) => eprintln!(
                "wscan: interrupted; what was found is kept. Resume with: wscan scan --resume {id}{}",
                results::db_flag(globals)
            ),
            None => eprintln!(
                "wscan: interrupted; what was found is kept (--no-db: it cannot be resumed)"
            ),
        }
        return Exit::Interrupted;
    }
    // Bad input lines are the user's to fix: said even with --quiet.
    if let Some(failure) = &summary.input_failure {
        eprintln!("wscan: {failure}");
        return Exit::Failure;
    }
    if summary.bad_lines > 0 {
        eprintln!(
            "wscan: {} input line(s) were not targets and were skipped (the first: {}); fix or remove them",
            summary.bad_lines,
            summary.input_errors.first().map_or("", String::as_str)
        );
        return Exit::Usage;
    }
    // Errors of earlier runs count: the exit code is the whole scan's.
    if summary.errors + earlier.1 > 0 {
        Exit::Partial
    } else {
        Exit::Success
    }
}

/// Completes on Ctrl-C or SIGTERM: the scan stops cleanly, records its
/// state, and says how to resume.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if result.is_err() {
                std::future::pending::<()>().await;
            }
        }
        () = terminate => {}
    }
}
