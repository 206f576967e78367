//! `wscan worker`, and what `wscan scan --redis` hands the coordinator:
//! the glue between the command line and [`crate::cluster`].

use super::args::{Cli, Command, ScanArgs, WorkerArgs};
use super::{Exit, Globals, UsageError, project_dirs, stop_signal};
use crate::cluster::coordinator::{Plan, Publish};
use crate::cluster::worker::{Options, Overrides};
use crate::model::PluginInfo;
use crate::scheduler::ScanSpec;
use crate::scheduler::spec::{Gathered, ScanRequest};
use std::sync::Arc;

/// What the coordinator publishes for `args`: the scan's command line
/// (`argv`, the first run's when resuming) and the text of the files it
/// names, which workers cannot read.
pub(super) fn plan(
    argv: Vec<String>,
    args: &ScanArgs,
    spec: &ScanSpec,
    request: &ScanRequest,
    url: &str,
    metrics: Arc<crate::metrics::Metrics>,
) -> anyhow::Result<Plan> {
    let publish = Publish {
        redis: args.redis_tls.endpoint(url)?,
        item_size: u128::from(args.item_size),
        max_deliveries: args.max_deliveries,
    };
    Ok(Plan::new(argv, spec, request, publish, metrics)?)
}

/// `wscan worker --redis URL`: run items until Ctrl-C or SIGTERM.
pub(super) async fn worker(globals: &Globals, args: WorkerArgs) -> anyhow::Result<Exit> {
    let engine = Arc::new(globals.engine()?);
    let dir = match &globals.cache_dir {
        Some(dir) => dir.join("shipped"),
        None => project_dirs()
            .map(|d| d.cache_dir().join("shipped"))
            .ok_or_else(|| UsageError("no cache folder: pass --cache-dir".into()))?,
    };
    let name = args.name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    });
    let options = Options {
        redis: args.redis_tls.endpoint(&args.redis)?,
        name,
        lease: args.lease.into(),
        dir,
        limits: Overrides {
            concurrency: args.concurrency,
            host_concurrency: args.host_concurrency,
            rate: args.rate,
            parallel: args.parallel,
        },
    };
    crate::cluster::worker::run(options, engine, &resolve, stop_signal()).await?;
    Ok(Exit::Success)
}

/// A scan's command line resolved as `wscan scan` resolves it, with the
/// files and seed the coordinator gathered.
fn resolve(
    argv: &[String],
    available: &[&PluginInfo],
    gathered: Gathered,
) -> Result<ScanSpec, String> {
    use clap::Parser;
    let cli = Cli::try_parse_from(std::iter::once("wscan".to_string()).chain(argv.iter().cloned()))
        .map_err(|e| format!("the scan's command line does not parse on this worker (another wscan version?): {e}"))?;
    let Command::Scan(args) = cli.command else {
        return Err("the scan's command line is not a `wscan scan`".into());
    };
    let request = args.request();
    ScanSpec::resolve(&request, available, gathered).map_err(|e| e.to_string())
}
