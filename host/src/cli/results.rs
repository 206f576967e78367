//! `wscan results ...`: read the result store, and the store's side of
//! `wscan scan` (opening it, `--resume`).

use super::args::{
    Cli, Command, ListFormat, ResultsDiffArgs, ResultsListArgs, ResultsPruneArgs, ResultsShowArgs,
    ScanArgs,
};
use super::{Exit, Globals, UsageError, project_dirs};
use crate::store::{RecordsError, ScanRow, Status, Store};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::PathBuf;

/// Flags that may come with `--resume`: they change how the scan is shown
/// or where the store is, not what it does.
const RESUME_FLAGS: &[&str] = &["resume", "quiet", "metrics"];

/// The store in effect: `--db`, or the user's data directory's.
pub(super) fn db_path(globals: &Globals) -> anyhow::Result<PathBuf> {
    match (&globals.db, project_dirs()) {
        (Some(path), _) => Ok(path.clone()),
        (None, Some(dirs)) => Ok(dirs.data_dir().join("results.db")),
        (None, None) => bail!(UsageError(
            "no data directory for the result store (HOME is not set); pass --db PATH or --no-db"
                .into()
        )),
    }
}

/// Open the store in effect, for writing.
pub(super) fn open(globals: &Globals) -> anyhow::Result<Store> {
    let path = db_path(globals)?;
    Store::open(&path).with_context(|| {
        format!(
            "cannot open the result store {}; pass --db PATH for another file, or --no-db",
            path.display()
        )
    })
}

/// Open the store in effect for reading: `None` when there is none yet.
fn open_existing(globals: &Globals) -> anyhow::Result<Option<Store>> {
    let path = db_path(globals)?;
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(Store::open_read_only(&path).with_context(|| {
        format!("cannot open the result store {}", path.display())
    })?))
}

/// `--db PATH` when the store is not the default one: for the commands we
/// tell the user to run.
pub(super) fn db_flag(globals: &Globals) -> String {
    match &globals.db {
        Some(path) => format!(" --db {}", path.display()),
        None => String::new(),
    }
}

/// `wscan scan --resume SCAN`: the scan's stored command line, its paths
/// made relative to where it was first run, its seed; with the store and
/// the scan's row.
pub(super) fn load_resume(
    globals: &Globals,
    args: &ScanArgs,
    id: i64,
) -> anyhow::Result<(Store, ScanRow, ScanArgs)> {
    let extra: Vec<String> = args
        .given
        .iter()
        .filter(|id| !RESUME_FLAGS.contains(&id.as_str()))
        .map(|id| match id.as_str() {
            "targets" => "TARGET".to_string(),
            other => format!("--{}", other.replace('_', "-")),
        })
        .collect();
    if !extra.is_empty() {
        bail!(UsageError(format!(
            "--resume continues a scan with the settings it was started with; it takes no targets and no scan flags but -q (got {})",
            extra.join(", ")
        )));
    }
    let store = open(globals)?;
    let Some(row) = store.scan(id)? else {
        bail!(UsageError(format!(
            "there is no scan {id} in {}; `wscan results list{}` shows the scans recorded there",
            store.path().display(),
            db_flag(globals)
        )));
    };
    match row.status {
        Status::Completed => bail!(UsageError(format!(
            "scan {id} is complete: nothing to resume (`wscan results show {id}{}` prints its records)",
            db_flag(globals)
        ))),
        Status::Running => bail!(UsageError(format!(
            "scan {id} is still running (process {}); stop it first",
            row.pid.unwrap_or_default()
        ))),
        Status::Interrupted | Status::Failed => {}
    }
    let mut stored = stored_args(&row)?;
    stored.quiet = args.quiet;
    // Where to serve metrics is this run's business, not the scan's.
    stored.metrics = args.metrics;
    Ok((store, row, stored))
}

/// The flags stored scan `row` was started with, to run it again: its
/// paths made relative to where it was first run, its seed.
pub fn stored_args(row: &ScanRow) -> anyhow::Result<ScanArgs> {
    let id = row.id;
    let argv = std::iter::once("wscan".to_string()).chain(row.argv.iter().cloned());
    let cli = <Cli as clap::Parser>::try_parse_from(argv).map_err(|e| {
        anyhow::anyhow!(
            "the command line of scan {id} no longer parses ({}): {}",
            row.argv.join(" "),
            e.kind()
        )
    })?;
    let Command::Scan(mut stored) = cli.command else {
        bail!("the command line of scan {id} is not a scan");
    };
    if stored
        .input
        .as_deref()
        .is_some_and(|p| p.as_os_str() == "-")
    {
        bail!(UsageError(format!(
            "scan {id} read its targets from standard input, which cannot be read again; start a new scan"
        )));
    }
    stored.rebase(&row.cwd);
    if !stored.ordered {
        stored.seed = stored.seed.or(row.seed);
    }
    Ok(stored)
}

/// `wscan results list`
pub(super) fn list(globals: &Globals, args: ResultsListArgs) -> anyhow::Result<Exit> {
    let Some(store) = open_existing(globals)? else {
        eprintln!(
            "wscan: no scans recorded yet ({} does not exist)",
            db_path(globals)?.display()
        );
        return Ok(Exit::Success);
    };
    let scans = store.scans()?;
    let mut out = std::io::stdout().lock();
    match ListFormat::for_stdout(args.format) {
        ListFormat::Jsonl => {
            for scan in &scans {
                serde_json::to_writer(&mut out, scan)?;
                writeln!(out)?;
            }
        }
        ListFormat::Table => {
            writeln!(
                out,
                "{:>5} {:<11} {:<24} {:>4} {:>8} {:>6}  COMMAND",
                "SCAN", "STATUS", "STARTED", "RUNS", "FINDINGS", "ERRORS"
            )?;
            for scan in &scans {
                writeln!(
                    out,
                    "{:>5} {:<11} {:<24} {:>4} {:>8} {:>6}  wscan {}",
                    scan.id,
                    scan.status.to_string(),
                    scan.started,
                    scan.runs,
                    scan.findings,
                    scan.errors,
                    scan.argv.join(" ")
                )?;
            }
        }
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// `wscan results show SCAN`
pub(super) fn show(globals: &Globals, args: ResultsShowArgs) -> anyhow::Result<Exit> {
    let missing = || no_scan(globals, args.scan);
    let Some(store) = open_existing(globals)? else {
        bail!(missing());
    };
    let Some(row) = store.scan(args.scan)? else {
        bail!(missing());
    };
    let (mut sink, _) = args.output_format.sinks(&args.output, &run_info(&row))?;
    match store.records(args.scan, |record| sink.write(&record)) {
        Ok(()) => {}
        Err(RecordsError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(Exit::Success);
        }
        Err(e) => return Err(e.into()),
    }
    sink.finish()?;
    Ok(Exit::Success)
}

/// A stored scan as the formats that describe a run (nmap's XML, SARIF)
/// name it: its command line and when its first run started.
pub(crate) fn run_info(row: &crate::store::ScanRow) -> crate::output::RunInfo {
    crate::output::RunInfo {
        args: crate::output::command_line(&row.argv),
        started: humantime::parse_rfc3339_weak(&row.started)
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH),
    }
}

/// The error for a scan number the store does not have.
fn no_scan(globals: &Globals, id: i64) -> UsageError {
    UsageError(format!(
        "there is no scan {id} in {}; `wscan results list{}` shows the scans recorded there",
        db_path(globals)
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        db_flag(globals)
    ))
}

/// `wscan results diff A B`
pub(super) fn diff(globals: &Globals, args: ResultsDiffArgs) -> anyhow::Result<Exit> {
    let Some(store) = open_existing(globals)? else {
        bail!(no_scan(globals, args.before));
    };
    let mut rows = Vec::new();
    let mut findings = Vec::new();
    for id in [args.before, args.after] {
        let Some(row) = store.scan(id)? else {
            bail!(no_scan(globals, id));
        };
        let mut found = Vec::new();
        store
            .records(id, |record| {
                if let crate::output::Record::Finding(f) = record {
                    found.push(f);
                }
                Ok(())
            })
            .with_context(|| format!("cannot read scan {id}"))?;
        rows.push(row);
        findings.push(found);
    }
    for row in &rows {
        if row.status != Status::Completed {
            eprintln!(
                "wscan: warning: scan {} is {}: what it did not reach shows as disappeared or appeared",
                row.id, row.status
            );
        }
    }
    let after = findings.pop().expect("two scans");
    let before = findings.pop().expect("two scans");
    let changes = crate::diff::diff(before, after, &crate::diff::ignored(&args.ignore));

    // CSV's columns for changes, unless the user chose them.
    let mut format = args.output_format.clone();
    let csv = format.format == Some(crate::output::Format::Csv)
        || args
            .output
            .iter()
            .any(|f| f.format(format.format, false) == crate::output::Format::Csv);
    if csv && format.fields.is_none() {
        format.fields = Some(
            crate::output::csv::parse_fields(crate::output::csv::DIFF_FIELDS)
                .expect("valid diff fields"),
        );
    }
    let run = crate::output::RunInfo::now(&globals.argv);
    let (mut sink, _) = format.sinks(&args.output, &run)?;
    let mut counts = [0usize; 3];
    for change in changes {
        counts[change.change as usize] += 1;
        match sink.write(&crate::output::Record::Change(change)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(Exit::Success),
            Err(e) => return Err(e).context("cannot write the diff"),
        }
    }
    sink.finish().context("cannot write the diff")?;
    let [appeared, disappeared, changed] = counts;
    eprintln!(
        "wscan: scan {} -> scan {}: {appeared} appeared, {disappeared} disappeared, {changed} changed",
        args.before, args.after
    );
    Ok(match (args.exit_code, appeared + disappeared + changed) {
        (true, n) if n > 0 => Exit::Failure,
        _ => Exit::Success,
    })
}

/// `wscan results prune --older-than AGE`
pub(super) fn prune(globals: &Globals, args: ResultsPruneArgs) -> anyhow::Result<Exit> {
    let Some(path) = db_path(globals).ok().filter(|p| p.exists()) else {
        eprintln!("wscan: no result store yet; nothing to prune");
        return Ok(Exit::Success);
    };
    let mut store = Store::open(&path)
        .with_context(|| format!("cannot open the result store {}", path.display()))?;
    let cutoff = std::time::SystemTime::now()
        .checked_sub(args.older_than)
        .unwrap_or(std::time::UNIX_EPOCH);
    let old: Vec<ScanRow> = store
        .scans()?
        .into_iter()
        .filter(|row| {
            humantime::parse_rfc3339_weak(&row.started).is_ok_and(|started| started < cutoff)
        })
        .collect();
    // A scan still running keeps its records, however old it is.
    let (running, old): (Vec<ScanRow>, Vec<ScanRow>) = old
        .into_iter()
        .partition(|row| row.status == Status::Running);
    for row in &running {
        eprintln!("wscan: scan {} is still running; it is kept", row.id);
    }
    let ids: Vec<i64> = old.iter().map(|row| row.id).collect();
    let listed = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if args.dry_run {
        eprintln!(
            "wscan: would delete {} scan(s) started before {}{}{listed}",
            ids.len(),
            humantime::format_rfc3339_seconds(cutoff),
            if ids.is_empty() { "" } else { ": " }
        );
        return Ok(Exit::Success);
    }
    let records = store.delete(&ids, true)?;
    eprintln!(
        "wscan: deleted {} scan(s) started before {} ({records} record(s)){}{listed}",
        ids.len(),
        humantime::format_rfc3339_seconds(cutoff),
        if ids.is_empty() { "" } else { ": " }
    );
    Ok(Exit::Success)
}

/// `wscan token create|list|revoke`
pub(super) fn token(globals: &Globals, command: super::args::TokenCommand) -> anyhow::Result<Exit> {
    use super::args::TokenCommand;
    let store = open(globals)?;
    match command {
        TokenCommand::Create(args) => {
            let token = store
                .create_token(&args.name, args.role)
                .map_err(|e| match e {
                    crate::store::StoreError::TokenExists(_) => UsageError(e.to_string()).into(),
                    other => anyhow::Error::from(other),
                })?;
            println!("{token}");
            eprintln!(
                "wscan: token {:?} ({}) created in {}; it is shown only now. Send it as `Authorization: Bearer TOKEN`.",
                args.name,
                args.role,
                store.path().display()
            );
        }
        TokenCommand::List(args) => {
            let tokens = store.tokens()?;
            let mut out = std::io::stdout().lock();
            match ListFormat::for_stdout(args.format) {
                ListFormat::Jsonl => {
                    for token in &tokens {
                        serde_json::to_writer(&mut out, token)?;
                        writeln!(out)?;
                    }
                }
                ListFormat::Table => {
                    writeln!(out, "{:<24} {:<6} CREATED", "NAME", "ROLE")?;
                    for token in &tokens {
                        writeln!(
                            out,
                            "{:<24} {:<6} {}",
                            token.name,
                            token.role.to_string(),
                            token.created
                        )?;
                    }
                }
            }
        }
        TokenCommand::Revoke(args) => {
            if !store.revoke_token(&args.name)? {
                bail!(UsageError(format!(
                    "there is no token named {:?}; `wscan token list` shows them",
                    args.name
                )));
            }
            eprintln!("wscan: token {:?} revoked", args.name);
        }
    }
    Ok(Exit::Success)
}
