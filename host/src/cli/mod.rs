//! The command line: raw flags ([`Cli`]), resolved into the objects that do
//! the work, and the documented exit codes ([`Exit`]).

mod args;

pub use args::{Cli, Command, PluginCommand, PluginListArgs, ScanArgs};

use crate::engine::{Engine, LoadedPlugin};
use crate::output::{Format, JsonlSink, Sink, TableSink};
use crate::scheduler::{self, ScanSpec};
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;

/// Exit codes, as documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the command ran; every unit of the scan completed.
    Success = 0,
    /// 1: the command failed (a plugin would not load, output could not be
    /// written...). What was found before is kept.
    Failure = 1,
    /// 2: bad usage: unknown flag, malformed target, port spec or duration.
    Usage = 2,
    /// 3: the scan finished, but some units failed (a plugin trapped, timed
    /// out or reported an error); they are in the output as error records.
    Partial = 3,
}

/// A usage error found after parsing (an unknown plugin name, a bad
/// `--plugin-arg`): exit code 2, like clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Run a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    raise_fd_limit();
    match cli.command {
        Command::Scan(args) => scan(args).await,
        Command::Plugin(PluginCommand::List(args)) => plugin_list(args).await,
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

async fn load_plugins(
    engine: &Engine,
    files: &[std::path::PathBuf],
) -> anyhow::Result<Vec<LoadedPlugin>> {
    let mut plugins = engine.load_builtins().await?;
    for path in files {
        let plugin = engine.load_file(path).await?;
        if let Some(i) = plugins.iter().position(|p| p.info.name == plugin.info.name) {
            if plugins[i].source == crate::engine::PluginSource::Builtin {
                tracing::info!(
                    "{} replaces the built-in plugin {}",
                    path.display(),
                    plugin.info.name
                );
                plugins[i] = plugin;
                continue;
            }
            bail!(UsageError(format!(
                "two plugins are named {:?}: {} and {}",
                plugin.info.name, plugins[i].source, plugin.source
            )));
        }
        plugins.push(plugin);
    }
    Ok(plugins)
}

async fn scan(args: ScanArgs) -> anyhow::Result<Exit> {
    let engine = Arc::new(
        Engine::new().map_err(|e| anyhow::anyhow!("cannot start the WebAssembly engine: {e:#}"))?,
    );
    let loaded = load_plugins(&engine, &args.plugin).await?;

    let selected: Vec<Arc<LoadedPlugin>> = match &args.plugins {
        None => loaded.into_iter().map(Arc::new).collect(),
        Some(names) => {
            let mut by_name: HashMap<String, LoadedPlugin> = loaded
                .into_iter()
                .map(|p| (p.info.name.clone(), p))
                .collect();
            let available = {
                let mut v: Vec<&String> = by_name.keys().collect();
                v.sort();
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            };
            let mut chosen = Vec::new();
            for name in names {
                match by_name.remove(name) {
                    Some(p) => chosen.push(Arc::new(p)),
                    None if chosen
                        .iter()
                        .any(|p: &Arc<LoadedPlugin>| &p.info.name == name) => {}
                    None => bail!(UsageError(format!(
                        "unknown plugin {name:?} in --plugins; available: {available}"
                    ))),
                }
            }
            chosen
        }
    };

    let mut plugin_args: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for arg in &args.plugin_arg {
        let Some(plugin) = selected.iter().find(|p| p.info.name == arg.plugin) else {
            bail!(UsageError(format!(
                "--plugin-arg {}.{}: no selected plugin is named {:?}",
                arg.plugin, arg.key, arg.plugin
            )));
        };
        if !plugin.info.args.iter().any(|a| a.name == arg.key) {
            let known: Vec<&str> = plugin.info.args.iter().map(|a| a.name.as_str()).collect();
            bail!(UsageError(format!(
                "--plugin-arg {}.{}: plugin {} takes no argument {:?} (it takes: {})",
                arg.plugin,
                arg.key,
                arg.plugin,
                arg.key,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        plugin_args
            .entry(arg.plugin.clone())
            .or_default()
            .push((arg.key.clone(), arg.value.clone()));
    }

    let spec = ScanSpec {
        targets: args.targets.clone(),
        ports: args.ports.clone(),
        timeout: args.timeout.into(),
        plugin_timeout: args.plugin_timeout.into(),
        concurrency: args.concurrency,
        parallel: args.parallel,
        plugin_args,
    };

    let (out, to_terminal): (Box<dyn std::io::Write + Send>, bool) = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create output file {}", path.display()))?;
            (Box::new(std::io::BufWriter::new(file)), false)
        }
        None => (Box::new(std::io::stdout()), std::io::stdout().is_terminal()),
    };
    let format = args.format.unwrap_or(if to_terminal {
        Format::Table
    } else {
        Format::Jsonl
    });
    let mut sink: Box<dyn Sink> = match format {
        Format::Jsonl => Box::new(JsonlSink::new(out)),
        Format::Table => Box::new(TableSink::new(out)),
    };

    let summary = scheduler::run(&spec, engine, selected, sink.as_mut()).await?;
    if !args.quiet {
        eprintln!(
            "wscan: {} unit(s), {} finding(s), {} error(s) in {:.2}s{}",
            summary.units,
            summary.findings,
            summary.errors,
            summary.elapsed.as_secs_f64(),
            if summary.denied + summary.out_of_scope > 0 {
                format!(
                    "; {} out-of-scope operation(s) denied",
                    summary.denied + summary.out_of_scope
                )
            } else {
                String::new()
            }
        );
    }
    Ok(if summary.errors > 0 {
        Exit::Partial
    } else {
        Exit::Success
    })
}

async fn plugin_list(args: PluginListArgs) -> anyhow::Result<Exit> {
    let engine =
        Engine::new().map_err(|e| anyhow::anyhow!("cannot start the WebAssembly engine: {e:#}"))?;
    let plugins = load_plugins(&engine, &args.plugin).await?;
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Jsonl
    });
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    for p in &plugins {
        match format {
            Format::Jsonl => {
                let mut value = serde_json::to_value(&p.info)?;
                value["source"] = serde_json::Value::String(p.source.to_string());
                writeln!(out, "{value}")?;
            }
            Format::Table => {
                let info = &p.info;
                writeln!(out, "{} {} ({})", info.name, info.version, p.source)?;
                writeln!(out, "  {}", info.description)?;
                let kinds: Vec<String> = info
                    .consumes
                    .kinds
                    .iter()
                    .map(|k| format!("{k:?}").to_lowercase())
                    .collect();
                let mut consumes = kinds.join(", ");
                if !info.consumes.ports.is_empty() {
                    let ports: Vec<String> = info
                        .consumes
                        .ports
                        .iter()
                        .map(crate::model::range_text)
                        .collect();
                    consumes.push_str(&format!("; ports {}", ports.join(",")));
                }
                if !info.consumes.services.is_empty() {
                    consumes.push_str(&format!("; services {}", info.consumes.services.join(",")));
                }
                writeln!(out, "  consumes: {consumes}")?;
                let caps: Vec<String> = info
                    .capabilities
                    .iter()
                    .map(|c| format!("{c:?}").to_lowercase())
                    .collect();
                writeln!(
                    out,
                    "  capabilities: {}",
                    if caps.is_empty() {
                        "none".into()
                    } else {
                        caps.join(", ")
                    }
                )?;
                for a in &info.args {
                    let default = a
                        .default
                        .as_deref()
                        .map(|d| format!(" (default: {d})"))
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "  --plugin-arg {}.{}=...  {}{}",
                        info.name, a.name, a.description, default
                    )?;
                }
                writeln!(out)?;
            }
        }
    }
    Ok(Exit::Success)
}
