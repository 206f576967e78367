//! The result store: an SQLite database (`--db`, by default
//! `$XDG_DATA_HOME/wscan/results.db`) holding every scan's command line,
//! status, times and statistics, every record it wrote, and a journal of
//! the units it completed.
//!
//! The journal is what makes a scan resumable: a unit's records are
//! written as they come, tagged with the unit, and the unit is marked done
//! once all of them are in, in the same or a later transaction. After a
//! crash, the records of units not marked done are discarded and those
//! units run again; the rest are never run twice. See [`journal`].

pub mod journal;
pub mod tokens;

pub use journal::Journal;
pub use tokens::{Role, TokenRow};

use crate::model::{Subject, SubjectKey};
use crate::output::Record;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (the file is not a database, the disk is full...).
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value could not be read back.
    #[error("a stored value is damaged: {0}")]
    Damaged(#[from] serde_json::Error),
    /// The store's folder could not be created.
    #[error("cannot create {path}: {error}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the result store's writer: {0}")]
    Thread(std::io::Error),
    /// The writer thread stopped (its own error is returned by
    /// [`Journal::close`]).
    #[error("the result store's writer stopped")]
    WriterGone,
    /// The database was written by a newer wscan.
    #[error(
        "the database has schema version {0}; this wscan knows version {SCHEMA_VERSION} (use a newer wscan or another --db)"
    )]
    NewerSchema(i64),
    /// A store of an older schema that cannot be written, so cannot be
    /// brought up to date.
    #[error(
        "the database has schema version {0}, older than this wscan's ({SCHEMA_VERSION}), and cannot be written to bring it up to date; copy it somewhere writable, or open it once with write access"
    )]
    OlderReadOnly(i64),
    /// The system's random source failed (creating a token).
    #[error("the system's random source failed")]
    Random,
    /// A token of that name exists.
    #[error("there is already a token named {0:?}; revoke it first, or choose another name")]
    TokenExists(String),
    /// A token's stored role is none this wscan knows.
    #[error("a token has the unknown role {0:?}")]
    BadRole(String),
}

/// The schema this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 5;

/// What brings a store of version N-1 (the index) to version N. `SCHEMA`
/// creates the latest tables in an empty store; a store made by an older
/// wscan is brought up to date step by step.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the first schema (an empty store).
    "",
    // 1 -> 2: the start time of a scan's process, to tell a reused pid.
    "ALTER TABLE scans ADD COLUMN pid_start INTEGER;",
    // 2 -> 3: the service's API tokens (`SCHEMA` creates the table).
    "",
    // 3 -> 4: record numbers are never reused (AUTOINCREMENT). A resume
    // deletes the records of units cut short; when those were the last,
    // new records took their numbers, and a client that had read up to
    // one of them (an event stream's Last-Event-ID, a page's `after`)
    // skipped the new ones. `SCHEMA` then recreates the indexes.
    "CREATE TABLE records_v4 (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        scan      INTEGER NOT NULL,
        unit      TEXT NOT NULL,
        type      TEXT NOT NULL,
        record    TEXT NOT NULL
    );
    INSERT INTO records_v4 (id, scan, unit, type, record)
        SELECT id, scan, unit, type, record FROM records;
    DROP TABLE records;
    ALTER TABLE records_v4 RENAME TO records;",
    // 4 -> 5: records and emitted subjects are looked up by their scan
    // alone (a resume's clean-up, `results show`, the API's pages). The
    // indexes by scan and unit served only that: each cost a random insert
    // of the unit's key per row, and a page of records was sorted out of
    // all the scan's. `SCHEMA` creates the indexes by scan, in the order
    // rows are stored (appended to, and read in order).
    "DROP INDEX IF EXISTS records_by_unit;
    DROP INDEX IF EXISTS emitted_by_unit;",
];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scans (
    id        INTEGER PRIMARY KEY,
    started   TEXT NOT NULL,
    finished  TEXT,
    status    TEXT NOT NULL,
    pid       INTEGER,
    pid_start INTEGER,
    runs      INTEGER NOT NULL DEFAULT 1,
    cwd       TEXT NOT NULL,
    argv      TEXT NOT NULL,
    seed      INTEGER,
    stats     TEXT
);
CREATE TABLE IF NOT EXISTS units (
    scan      INTEGER NOT NULL,
    unit      TEXT NOT NULL,
    failed    INTEGER NOT NULL,
    PRIMARY KEY (scan, unit)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    scan      INTEGER NOT NULL,
    unit      TEXT NOT NULL,
    type      TEXT NOT NULL,
    record    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_scan ON records (scan);
CREATE INDEX IF NOT EXISTS records_by_type ON records (scan, type);
CREATE TABLE IF NOT EXISTS emitted (
    scan      INTEGER NOT NULL,
    unit      TEXT NOT NULL,
    outside   INTEGER NOT NULL,
    subject   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS emitted_by_scan ON emitted (scan);
CREATE TABLE IF NOT EXISTS tokens (
    name      TEXT PRIMARY KEY,
    role      TEXT NOT NULL,
    hash      TEXT NOT NULL,
    created   TEXT NOT NULL
);
";

/// Where a scan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// A process is running it (or was, and died without a word: see
    /// [`ScanRow::status`]).
    Running,
    /// Every unit ran.
    Completed,
    /// Stopped early (Ctrl-C, or a process that is gone): resumable.
    Interrupted,
    /// Stopped by an error (output that could not be written...): resumable.
    Failed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Status {
        match text {
            "completed" => Status::Completed,
            "interrupted" => Status::Interrupted,
            "failed" => Status::Failed,
            _ => Status::Running,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scan, as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ScanRow {
    /// Its number, for `results show` and `--resume`.
    pub id: i64,
    /// When it started (its first run), RFC 3339.
    pub started: String,
    /// When its last run ended, if it did.
    pub finished: Option<String>,
    /// Where it stands; a `running` scan whose process is gone is shown as
    /// `interrupted`.
    pub status: Status,
    /// The process of its last run.
    #[serde(skip)]
    pub pid: Option<u32>,
    /// When that process started (clock ticks after boot): a process with
    /// the same number but another start is not it.
    #[serde(skip)]
    pub pid_start: Option<u64>,
    /// How many times it was started (1, plus one per resume).
    pub runs: u32,
    /// The folder it was started in (relative paths of its command line
    /// are relative to it).
    pub cwd: PathBuf,
    /// Its command line, without the program name.
    pub argv: Vec<String>,
    /// The address order's seed it used.
    pub seed: Option<u64>,
    /// Findings stored.
    pub findings: u64,
    /// Failed units stored.
    pub errors: u64,
    /// The statistics of its last run (`--stats`' JSON).
    pub stats: Option<serde_json::Value>,
    /// Its process died while running it (killed, crashed) without
    /// recording how it ended; it is shown as `interrupted`.
    #[serde(skip)]
    pub killed: bool,
}

impl ScanRow {
    /// Whether the process of its last run is alive: the same number and
    /// the same start time (Linux: `/proc/PID/stat`), so a new process that
    /// got the number of a dead one (as in a fresh container) is not taken
    /// for it.
    pub fn alive(&self) -> bool {
        self.status == Status::Running
            && match (self.pid, self.pid_start) {
                (Some(pid), Some(start)) => process_start(pid) == Some(start),
                _ => false,
            }
    }
}

/// The state letter in a `/proc/PID/stat` line (field 3: R, S, D, Z...).
fn process_state(stat: &str) -> Option<char> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// This process's number and start time, as a scan records them.
fn this_process() -> (u32, Option<i64>) {
    let pid = std::process::id();
    (pid, process_start(pid).map(|t| t as i64))
}

/// When process `pid` started, in clock ticks after boot (field 22 of
/// `/proc/PID/stat`); `None` when there is no such process (or no /proc),
/// or when it has ended: a zombie (state Z, killed but not yet reaped by
/// its parent) or a dying one (X) runs nothing.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    if matches!(process_state(&stat), Some('Z' | 'X')) {
        return None;
    }
    // The command name (field 2) may hold spaces and parentheses: count
    // from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The units earlier runs of a scan completed, looked up in the store one
/// key at a time rather than loaded: resuming a /8 needs no memory for its
/// millions of completed units (loading them cost about 180 bytes each).
/// A distributed scan's worker holds those of one work item in memory
/// instead ([`DoneUnits::of`]).
#[derive(Debug, Default)]
pub struct DoneUnits {
    /// A connection of its own (`None`: a new scan, nothing done).
    conn: Option<Connection>,
    scan: i64,
    count: u64,
    /// Keys known from elsewhere, in place of the store: the units an
    /// earlier run of a distributed scan's work item sent.
    keys: Option<std::collections::BTreeSet<String>>,
}

impl DoneUnits {
    /// The units `keys`, held in memory (a work item's, a few thousand).
    pub fn of(keys: std::collections::BTreeSet<String>) -> DoneUnits {
        DoneUnits {
            count: keys.len() as u64,
            keys: Some(keys),
            ..DoneUnits::default()
        }
    }

    /// How many units earlier runs completed.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no unit was completed before.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether an earlier run completed the unit `key`. A store that
    /// cannot be read answers `false`: the unit runs again, which costs
    /// time, never a finding.
    pub fn contains(&self, key: &str) -> bool {
        if let Some(keys) = &self.keys {
            return keys.contains(key);
        }
        let Some(conn) = self.conn.as_ref().filter(|_| self.count > 0) else {
            return false;
        };
        conn.prepare_cached("SELECT 1 FROM units WHERE scan = ?1 AND unit = ?2")
            .and_then(|mut stmt| stmt.exists(params![self.scan, key]))
            .unwrap_or_else(|e| {
                tracing::warn!("cannot look up unit {key:?} in the result store: {e}");
                false
            })
    }

    /// The completed units whose key is `key` followed by `sep` and more:
    /// that more, for each. (A range of the primary key: no scan of the
    /// table.) A store that cannot be read answers none, as
    /// [`DoneUnits::contains`] does.
    pub fn extensions(&self, key: &str, sep: &str) -> Vec<String> {
        let from = format!("{key}{sep}");
        // Every key that starts with `from` sorts below `from` + U+10FFFF.
        let to = format!("{from}\u{10FFFF}");
        if let Some(keys) = &self.keys {
            return keys
                .range(from.clone()..to)
                .filter_map(|k| k.strip_prefix(&from).map(String::from))
                .collect();
        }
        let Some(conn) = self.conn.as_ref().filter(|_| self.count > 0) else {
            return Vec::new();
        };
        conn.prepare_cached("SELECT unit FROM units WHERE scan = ?1 AND unit >= ?2 AND unit < ?3")
            .and_then(|mut stmt| {
                stmt.query_map(params![self.scan, from, to], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map(|keys| {
                keys.into_iter()
                    .filter_map(|k| k.strip_prefix(&from).map(String::from))
                    .collect()
            })
            .unwrap_or_else(|e| {
                tracing::warn!("cannot look up units {from:?}... in the result store: {e}");
                Vec::new()
            })
    }
}

/// What a resumed scan starts from.
#[derive(Debug, Default)]
pub struct Resumed {
    /// The units done.
    pub done: DoneUnits,
    /// In-scope subjects those units emitted, to be routed again.
    pub emitted: Vec<Subject>,
    /// Out-of-scope subjects already reported.
    pub outside: Vec<SubjectKey>,
    /// Findings stored.
    pub findings: u64,
    /// Failed units stored.
    pub errors: u64,
    /// Records thrown away: those of units cut short.
    pub discarded: u64,
    /// The ids in Redis of the earlier runs of a distributed scan (journal
    /// keys `cluster run ID`), whose leftover work a resumed run withdraws.
    pub cluster_runs: Vec<String>,
}

impl Resumed {
    /// Take a subject a done unit emitted: an in-scope one is routed again,
    /// an out-of-scope one (`outside`) is not reported again.
    pub fn add_emitted(&mut self, outside: bool, subject: Subject) {
        match outside {
            true => self.outside.push(subject.key()),
            false => self.emitted.push(subject),
        }
    }
}

/// The journal key prefix under which a distributed scan's coordinator
/// records each run's scan id in Redis (`cluster run ID`), so a resumed
/// run can withdraw what a killed one left out ([`Resumed::cluster_runs`]).
pub const CLUSTER_RUN: &str = "cluster run ";

/// Which records [`Store::records_page`] gives: `None` takes any.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct RecordFilter {
    /// The record's type: `finding`, `error`, `out-of-scope`.
    #[serde(rename = "type")]
    pub kind_of_record: Option<String>,
    /// A finding's kind.
    pub kind: Option<String>,
    /// A finding's severity.
    pub severity: Option<String>,
    /// The plugin's name.
    pub plugin: Option<String>,
}

/// An open result store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// The columns of `scans` a [`ScanRow`] is read from ([`raw_row`]).
const SCAN_COLUMNS: &str =
    "id, started, finished, status, pid, pid_start, runs, cwd, argv, seed, stats";

/// Open `path` with the settings every connection uses: WAL (readers do
/// not block the writer), `synchronous = NORMAL` (a commit survives the
/// process being killed; only a power cut may lose the last ones), and a
/// wait, not an error, when another wscan holds the write lock.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_WAIT)?;
    // Turning a new store to WAL takes an exclusive lock, and SQLite does
    // not always call the busy handler for it: two wscans creating one
    // store at once would see "database is locked". Wait it out here.
    retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// How long a connection waits for another wscan's lock.
const BUSY_WAIT: Duration = Duration::from_secs(30);

/// Run `op` again while the store is busy or locked, up to [`BUSY_WAIT`].
fn retry_busy<T>(mut op: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_WAIT;
    loop {
        match op() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5 + fastrand::u64(0..20)));
            }
            other => return other,
        }
    }
}

impl Store {
    /// Open (creating it and its folder if need be) the store at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| StoreError::Folder {
                path: dir.to_path_buf(),
                error,
            })?;
        }
        let mut conn = connect(path)?;
        // A store already up to date is opened without the write lock:
        // every API request opens the store, and must not queue behind a
        // running scan's journal for a check that finds nothing to do.
        let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if current == SCHEMA_VERSION {
            return Ok(Store {
                conn,
                path: path.to_path_buf(),
            });
        }
        // One writer creates or migrates the schema; another wscan opening
        // the store at the same moment waits, then finds it up to date.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(version));
        }
        if version < SCHEMA_VERSION {
            if version > 0 {
                for step in &MIGRATIONS[version as usize..] {
                    tx.execute_batch(step)?;
                }
            }
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Open the store at `path` for reading only (`results list/show`):
    /// nothing is created or written, so a store on a read-only mount, or
    /// one this user may not write, can be read. A store of an older schema
    /// that cannot be brought up to date is an error that says so.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        // A store that can be written is opened as usual: it may need its
        // schema brought up to date first.
        match Store::open(path) {
            Ok(store) => return Ok(store),
            Err(e) => tracing::debug!("{}: {e}; reading it read-only", path.display()),
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let plain = Connection::open_with_flags(path, flags).and_then(|conn| {
            conn.busy_timeout(BUSY_WAIT)?;
            // Reading a WAL store needs its -shm file, which SQLite
            // cannot create on a read-only mount: tell which.
            conn.query_row("SELECT count(*) FROM scans", [], |_| Ok(()))?;
            Ok(conn)
        });
        let conn = match plain {
            Ok(conn) => conn,
            // Nothing can write a store on a read-only mount, so it may be
            // read as immutable (no locks, no -shm).
            Err(e) => {
                tracing::debug!("{}: {e}; reading it as immutable", path.display());
                let uri = url::Url::from_file_path(std::path::absolute(path).map_err(|error| {
                    StoreError::Folder {
                        path: path.to_path_buf(),
                        error,
                    }
                })?)
                .map(|mut u| {
                    u.set_query(Some("immutable=1"));
                    u.to_string()
                })
                .map_err(|()| StoreError::Folder {
                    path: path.to_path_buf(),
                    error: std::io::Error::other("not a file path"),
                })?;
                Connection::open_with_flags(uri, flags)?
            }
        };
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema(version));
        }
        if version < SCHEMA_VERSION {
            return Err(StoreError::OlderReadOnly(version));
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Record a new scan, running in this process; its number.
    pub fn begin(&self, argv: &[String], cwd: &Path, seed: Option<u64>) -> Result<i64, StoreError> {
        let (pid, pid_start) = this_process();
        self.conn.execute(
            "INSERT INTO scans (started, status, pid, pid_start, cwd, argv, seed) VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6)",
            params![
                crate::output::now(),
                pid,
                pid_start,
                cwd.to_string_lossy(),
                serde_json::to_string(argv)?,
                seed.map(|s| s as i64),
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Take scan `id` over for a new run in this process: its records of
    /// units cut short are discarded, and what the run starts from is
    /// returned.
    pub fn resume(&mut self, id: i64) -> Result<Resumed, StoreError> {
        let (pid, pid_start) = this_process();
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE scans SET status = 'running', pid = ?2, pid_start = ?3, runs = runs + 1, finished = NULL WHERE id = ?1",
            params![id, pid, pid_start],
        )?;
        let mut resumed = Resumed {
            discarded: tx.execute(
                "DELETE FROM records WHERE scan = ?1 AND unit NOT IN (SELECT unit FROM units WHERE scan = ?1)",
                [id],
            )? as u64,
            ..Resumed::default()
        };
        tx.execute(
            "DELETE FROM emitted WHERE scan = ?1 AND unit NOT IN (SELECT unit FROM units WHERE scan = ?1)",
            [id],
        )?;
        let count: i64 = tx.query_row("SELECT count(*) FROM units WHERE scan = ?1", [id], |r| {
            r.get(0)
        })?;
        resumed.done = DoneUnits {
            conn: Some(connect(&self.path)?),
            scan: id,
            count: count as u64,
            keys: None,
        };
        {
            let mut emitted =
                tx.prepare("SELECT outside, subject FROM emitted WHERE scan = ?1 ORDER BY rowid")?;
            let rows =
                emitted.query_map([id], |r| Ok((r.get::<_, bool>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (outside, json) = row?;
                resumed.add_emitted(outside, serde_json::from_str(&json)?);
            }
        }
        {
            let prefix = CLUSTER_RUN;
            let mut runs =
                tx.prepare("SELECT substr(unit, ?2) FROM units WHERE scan = ?1 AND unit LIKE ?3")?;
            let rows = runs.query_map(
                params![id, prefix.len() as i64 + 1, format!("{prefix}%")],
                |r| r.get::<_, String>(0),
            )?;
            for row in rows {
                resumed.cluster_runs.push(row?);
            }
        }
        (resumed.findings, resumed.errors) = counts(&tx, id)?;
        tx.commit()?;
        Ok(resumed)
    }

    /// Record how a run of scan `id` ended.
    pub fn end(
        &self,
        id: i64,
        status: Status,
        stats: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE scans SET status = ?2, finished = ?3, stats = ?4 WHERE id = ?1",
            params![id, status.as_str(), crate::output::now(), stats.to_string()],
        )?;
        Ok(())
    }

    /// Scan `id`, if there is one.
    pub fn scan(&self, id: i64) -> Result<Option<ScanRow>, StoreError> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {SCAN_COLUMNS} FROM scans WHERE id = ?1"),
                [id],
                raw_row,
            )
            .optional()?;
        row.map(|raw| self.row(raw)).transpose()
    }

    /// Scan `id`'s status, as [`Store::scan`] gives it (a scan whose
    /// process died is interrupted), without counting its records: what a
    /// request that only needs the status reads.
    pub fn scan_status(&self, id: i64) -> Result<Option<Status>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT status, pid, pid_start FROM scans WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<u32>>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                    ))
                },
            )
            .optional()?;
        Ok(
            row.map(|(status, pid, start)| match Status::parse(&status) {
                Status::Running => {
                    let alive = match (pid, start) {
                        (Some(pid), Some(start)) => process_start(pid) == Some(start as u64),
                        _ => false,
                    };
                    if alive {
                        Status::Running
                    } else {
                        Status::Interrupted
                    }
                }
                other => other,
            }),
        )
    }

    /// Every scan, oldest first.
    pub fn scans(&self) -> Result<Vec<ScanRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {SCAN_COLUMNS} FROM scans ORDER BY id"))?;
        let raws = stmt
            .query_map([], raw_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(|raw| self.row(raw)).collect()
    }

    fn row(&self, raw: RawRow) -> Result<ScanRow, StoreError> {
        let (findings, errors) = counts(&self.conn, raw.id)?;
        let mut row = ScanRow {
            id: raw.id,
            started: raw.started,
            finished: raw.finished,
            status: Status::parse(&raw.status),
            pid: raw.pid,
            pid_start: raw.pid_start.map(|t| t as u64),
            runs: raw.runs,
            cwd: PathBuf::from(raw.cwd),
            argv: serde_json::from_str(&raw.argv)?,
            seed: raw.seed.map(|s| s as u64),
            findings,
            errors,
            stats: raw.stats.map(|s| serde_json::from_str(&s)).transpose()?,
            killed: false,
        };
        if row.status == Status::Running && !row.alive() {
            row.status = Status::Interrupted;
            row.killed = true;
        }
        Ok(row)
    }

    /// Every record of scan `id`, in the order they were stored.
    pub fn records(
        &self,
        id: i64,
        mut each: impl FnMut(Record) -> std::io::Result<()>,
    ) -> Result<(), RecordsError> {
        let mut stmt = self
            .conn
            .prepare("SELECT record FROM records WHERE scan = ?1 ORDER BY id")
            .map_err(StoreError::from)?;
        let mut rows = stmt.query([id]).map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            let json: String = row.get(0).map_err(StoreError::from)?;
            let record: Record = serde_json::from_str(&json).map_err(StoreError::from)?;
            each(record).map_err(RecordsError::Output)?;
        }
        Ok(())
    }

    /// Up to `limit` records of scan `id` stored after record `after` (0
    /// for the first), with their numbers, optionally only those whose
    /// `type`, `kind`, `severity` or plugin name is the one given. Each is
    /// its JSON object as stored (JSON Lines' form), not parsed: the API
    /// sends it on as it is.
    pub fn records_page(
        &self,
        id: i64,
        after: i64,
        limit: usize,
        filter: &RecordFilter,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, record FROM records WHERE scan = ?1 AND id > ?2
               AND (?3 IS NULL OR type = ?3)
               AND (?4 IS NULL OR json_extract(record, '$.kind') = ?4)
               AND (?5 IS NULL OR json_extract(record, '$.severity') = ?5)
               AND (?6 IS NULL OR json_extract(record, '$.plugin.name') = ?6)
             ORDER BY id LIMIT ?7",
        )?;
        let rows = stmt.query_map(
            params![
                id,
                after,
                filter.kind_of_record,
                filter.kind,
                filter.severity,
                filter.plugin,
                limit as i64
            ],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Delete scans `ids` with everything stored of them; the number of
    /// records deleted.
    /// `compact` runs VACUUM after (it rewrites the whole file: for a
    /// prune, not for one scan deleted through the API).
    pub fn delete(&mut self, ids: &[i64], compact: bool) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let tx = self.conn.transaction()?;
        let mut records = 0;
        for id in ids {
            records += tx.execute("DELETE FROM records WHERE scan = ?1", [id])? as u64;
            tx.execute("DELETE FROM units WHERE scan = ?1", [id])?;
            tx.execute("DELETE FROM emitted WHERE scan = ?1", [id])?;
            tx.execute("DELETE FROM scans WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        // Deleted rows only free pages inside the file; VACUUM shrinks it.
        if compact {
            self.conn.execute_batch("VACUUM")?;
        }
        Ok(records)
    }

    /// A writer of scan `id`'s journal, on a thread and a connection of its
    /// own.
    pub fn journal(&self, id: i64) -> Result<Journal, StoreError> {
        Journal::start(connect(&self.path)?, id)
    }
}

/// Why [`Store::records`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing a record out failed.
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
}

struct RawRow {
    id: i64,
    started: String,
    finished: Option<String>,
    status: String,
    pid: Option<u32>,
    pid_start: Option<i64>,
    runs: u32,
    cwd: String,
    argv: String,
    seed: Option<i64>,
    stats: Option<String>,
}

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        id: r.get(0)?,
        started: r.get(1)?,
        finished: r.get(2)?,
        status: r.get(3)?,
        pid: r.get(4)?,
        pid_start: r.get(5)?,
        runs: r.get(6)?,
        cwd: r.get(7)?,
        argv: r.get(8)?,
        seed: r.get(9)?,
        stats: r.get(10)?,
    })
}

/// Findings and errors stored for scan `id`.
fn counts(conn: &Connection, id: i64) -> Result<(u64, u64), StoreError> {
    let count = |kind: &str| -> Result<u64, StoreError> {
        Ok(conn.query_row(
            "SELECT count(*) FROM records WHERE scan = ?1 AND type = ?2",
            params![id, kind],
            |r| r.get::<_, i64>(0),
        )? as u64)
    };
    Ok((count("finding")?, count("error")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PluginId;
    use crate::model::{Finding, Severity};

    #[test]
    fn units_held_in_memory_answer_as_the_store_does() {
        let keys = [
            "port 10.0.0.1 ports 443",
            "port 10.0.0.1 ports 80",
            "port 10.0.0.10",
            "http x",
        ];
        let done = DoneUnits::of(keys.iter().map(|k| k.to_string()).collect());
        assert_eq!(done.len(), 4);
        assert!(done.contains("http x") && !done.contains("http y"));
        assert_eq!(done.extensions("port 10.0.0.1", " ports "), ["443", "80"]);
        assert!(done.extensions("port 10.0.0.10", " ports ").is_empty());
        assert!(DoneUnits::of(Default::default()).is_empty());
    }

    fn finding(ip: &str) -> Record {
        let plugin = PluginId {
            name: "port".into(),
            version: "1".into(),
        };
        let subject = Subject::Address {
            ip: ip.parse().unwrap(),
            host: None,
        };
        Record::finding(
            &plugin,
            Finding {
                kind: "open-port".into(),
                severity: Severity::Info,
                title: ip.into(),
                subject,
                data: serde_json::Map::new(),
            },
        )
    }

    fn titles(store: &Store, id: i64) -> Vec<String> {
        let mut titles = Vec::new();
        store
            .records(id, |r| {
                if let Record::Finding(f) = r {
                    titles.push(f.title);
                }
                Ok(())
            })
            .unwrap();
        titles
    }

    /// The journal's promise: after a crash, the records of units that
    /// were not marked done are gone, the rest stay, and the subjects the
    /// done units emitted come back to be routed again.
    #[test]
    fn resuming_keeps_done_units_and_drops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("sub/results.db")).unwrap();
        let id = store
            .begin(&["scan".into(), "127.0.0.1".into()], dir.path(), Some(7))
            .unwrap();
        let journal = store.journal(id).unwrap();
        let (a, b): (std::sync::Arc<str>, std::sync::Arc<str>) =
            ("port 127.0.0.1".into(), "port 127.0.0.2".into());
        let service = Subject::Address {
            ip: "127.0.0.9".parse().unwrap(),
            host: Some("www.test".into()),
        };
        journal.record(&a, &finding("127.0.0.1")).unwrap();
        journal.emitted(&a, &service, false).unwrap();
        journal
            .emitted(&a, &Subject::Host("outside.test".into()), true)
            .unwrap();
        journal.done(&a, false).unwrap();
        // Units of the same subjects on ports of their own.
        for key in ["port 127.0.0.1 ports 80,443", "port 127.0.0.10 ports 22"] {
            journal.done(&key.into(), false).unwrap();
        }
        // b is cut short: a record, no mark.
        journal.record(&b, &finding("127.0.0.2")).unwrap();
        journal.emitted(&b, &service, false).unwrap();
        journal.close().unwrap();

        let row = store.scan(id).unwrap().unwrap();
        assert_eq!(row.status, Status::Running, "this process is alive");
        assert_eq!(store.scan_status(id).unwrap(), Some(Status::Running));
        // A process that is not this scan's own: seen dead, interrupted.
        store
            .conn
            .execute(
                "UPDATE scans SET pid_start = pid_start + 1 WHERE id = ?1",
                [id],
            )
            .unwrap();
        assert_eq!(store.scan_status(id).unwrap(), Some(Status::Interrupted));
        assert_eq!(store.scan(id).unwrap().unwrap().status, Status::Interrupted);
        store
            .conn
            .execute(
                "UPDATE scans SET pid_start = pid_start - 1 WHERE id = ?1",
                [id],
            )
            .unwrap();
        assert_eq!(store.scan_status(id + 1).unwrap(), None);
        assert_eq!(row.seed, Some(7));
        assert_eq!(row.findings, 2);
        assert_eq!(titles(&store, id), ["127.0.0.1", "127.0.0.2"]);

        let resumed = store.resume(id).unwrap();
        assert_eq!(resumed.done.len(), 3);
        assert!(resumed.done.contains("port 127.0.0.1"));
        assert_eq!(
            resumed.done.extensions("port 127.0.0.1", " ports "),
            ["80,443"]
        );
        assert!(
            resumed
                .done
                .extensions("port 127.0.0.2", " ports ")
                .is_empty()
        );
        assert!(!resumed.done.contains("port 127.0.0.2"));
        assert!(!crate::store::DoneUnits::default().contains("port 127.0.0.1"));
        assert_eq!(resumed.emitted, [service]);
        assert_eq!(resumed.outside, [SubjectKey::Host("outside.test".into())]);
        assert_eq!((resumed.findings, resumed.discarded), (1, 1));
        assert_eq!(titles(&store, id), ["127.0.0.1"]);
        // The dropped record's number is not given again: a reader that
        // had read up to it misses nothing the resumed run writes.
        let journal = store.journal(id).unwrap();
        journal.record(&b, &finding("127.0.0.2")).unwrap();
        journal.close().unwrap();
        let numbers: Vec<i64> = store
            .records_page(id, 0, 10, &RecordFilter::default())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(numbers, [1, 3]);

        store
            .end(id, Status::Completed, &serde_json::json!({"units": 2}))
            .unwrap();
        let row = store.scan(id).unwrap().unwrap();
        assert_eq!((row.status, row.runs), (Status::Completed, 2));
        assert_eq!(row.stats.unwrap()["units"], 2);
        assert_eq!(store.scans().unwrap().len(), 1);
    }

    #[test]
    fn a_process_is_known_by_its_number_and_start() {
        let me = std::process::id();
        let start = process_start(me).expect("/proc");
        let row = |pid, pid_start| ScanRow {
            id: 1,
            started: String::new(),
            finished: None,
            status: Status::Running,
            pid: Some(pid),
            pid_start: Some(pid_start),
            runs: 1,
            cwd: PathBuf::new(),
            argv: Vec::new(),
            seed: None,
            findings: 0,
            errors: 0,
            stats: None,
            killed: false,
        };
        assert!(row(me, start).alive());
        // The same number, another start: a process that reused it.
        assert!(!row(me, start + 1).alive());
        assert!(!row(u32::MAX - 1, start).alive());
    }

    /// A store written by the first release of the store (schema 1, no
    /// process start time) opens, keeps its scans and takes new ones.
    #[test]
    fn an_older_store_is_brought_up_to_date() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            &SCHEMA
                .replace("    pid_start INTEGER,\n", "")
                .replace(" AUTOINCREMENT", "")
                .replace(
                    "CREATE INDEX IF NOT EXISTS records_by_scan ON records (scan);",
                    "CREATE INDEX records_by_unit ON records (scan, unit);",
                )
                .replace(
                    "CREATE INDEX IF NOT EXISTS emitted_by_scan ON emitted (scan);",
                    "CREATE INDEX emitted_by_unit ON emitted (scan, unit);",
                ),
        )
        .unwrap();
        old.execute(
            "INSERT INTO records (scan, unit, type, record) VALUES (1, 'u', 'finding', '{}')",
            [],
        )
        .unwrap();
        old.execute(
            "INSERT INTO scans (started, status, pid, cwd, argv) VALUES ('t', 'completed', 1, '/', '[\"scan\"]')",
            [],
        )
        .unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        drop(old);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.scan(1).unwrap().unwrap().status, Status::Completed);
        // Its records are kept, in the table that never reuses a number.
        let page = store
            .records_page(1, 0, 10, &RecordFilter::default())
            .unwrap();
        assert_eq!(page, [(1, "{}".to_string())]);
        let sql: String = store
            .conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'records'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(sql.contains("AUTOINCREMENT"), "{sql}");
        // Its indexes are this version's.
        let indexes: Vec<String> = store
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            indexes,
            ["emitted_by_scan", "records_by_scan", "records_by_type"]
        );
        let id = store.begin(&["scan".into()], dir.path(), None).unwrap();
        assert!(store.scan(id).unwrap().unwrap().alive());
        // Opening again changes nothing.
        drop(store);
        assert_eq!(Store::open(&path).unwrap().scans().unwrap().len(), 2);
    }

    /// Issue 12, item 10: processes creating one new store at once each
    /// open it (no "database is locked"), and each scan is recorded. Many
    /// openers released together by a barrier, many times: a race of two
    /// process starts hits the window too seldom to test.
    #[test]
    fn many_openers_of_a_new_store_at_once_all_succeed() {
        const OPENERS: usize = 8;
        for trial in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("new/results.db");
            let barrier = std::sync::Barrier::new(OPENERS);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..OPENERS)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            let store = Store::open(&path)?;
                            store.begin(&["scan".into()], dir.path(), None)
                        })
                    })
                    .collect();
                for handle in handles {
                    if let Err(e) = handle.join().unwrap() {
                        panic!("trial {trial}: {e}");
                    }
                }
            });
            let store = Store::open(&path).unwrap();
            assert_eq!(store.scans().unwrap().len(), OPENERS, "trial {trial}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.db");
        std::fs::write(
            &path,
            "not a database, just text that is long enough to have a header",
        )
        .unwrap();
        assert!(Store::open(&path).is_err());
    }
}
