//! The journal writer: a thread with its own SQLite connection that
//! stores what a scan produces, in the order the scheduler hands it over.
//!
//! Writes are batched, one transaction per 50 ms or 10,000 operations:
//! a commit per record would cap a scan at the disk's commit rate. While
//! a batch is open the writer looks at the queue every few milliseconds
//! rather than being woken for each operation. Operations are taken in
//! the order of the channel, so a unit's mark ("done") is committed with
//! its records or after them, never before. Inside a transaction the rows
//! of a table go in 32 at a time, in the order they came (a statement per
//! row cost the writer about 40% more CPU on a scan of 100,000 names). A
//! crash loses at most the last batch: units whose mark was in it are
//! simply run again.

use super::StoreError;
use crate::model::Subject;
use crate::output::Record;
use rusqlite::Connection;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a batch stays open.
const BATCH_TIME: Duration = Duration::from_millis(50);
/// How long the writer sleeps between looks at the queue while a batch
/// is open.
const POLL: Duration = Duration::from_millis(5);
/// Operations per batch at most.
const BATCH_OPS: usize = 10_000;
/// Operations queued for the writer before the scan waits for it: about
/// 200 ms of a fast sweep's, more than a commit takes. The queue's slots
/// are allocated up front (64 bytes each), whatever the scan's size.
const QUEUE: usize = 16_384;

/// One step of a journal, as the writer gets it: a record or an emitted
/// subject of a unit, or the unit's end. A journal made with
/// [`Journal::forward`] hands these to its caller instead of a store.
#[derive(Debug)]
pub enum Op {
    /// A record `unit` wrote.
    Record {
        /// The unit's key.
        unit: Arc<str>,
        /// The record's type: `finding`, `error`, `subject`, `out-of-scope`.
        kind: &'static str,
        /// The record, as JSON Lines has it.
        json: String,
    },
    /// A subject `unit` emitted.
    Emitted {
        /// The unit's key.
        unit: Arc<str>,
        /// Reported as out of scope, not routed on.
        outside: bool,
        /// The subject, as JSON.
        json: String,
    },
    /// `unit` ended; everything it produced came before.
    Done {
        /// The unit's key.
        unit: Arc<str>,
        /// Whether it failed.
        failed: bool,
    },
}

/// The handle the scheduler writes through. Sending never touches the
/// disk; an error means the writer has stopped, and [`Journal::close`]
/// says why.
pub struct Journal {
    tx: Option<SyncSender<Op>>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
}

impl Journal {
    pub(super) fn start(conn: Connection, scan: i64) -> Result<Journal, StoreError> {
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("wscan-store".into())
            .spawn(move || write(conn, scan, rx))
            .map_err(StoreError::Thread)?;
        Ok(Journal {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// A journal whose steps go to the receiver, in order, instead of to a
    /// store: a distributed scan's worker sends each unit on when it ends.
    /// The scan waits when `capacity` steps are queued.
    pub fn forward(capacity: usize) -> (Journal, Receiver<Op>) {
        let (tx, rx) = sync_channel(capacity);
        let journal = Journal {
            tx: Some(tx),
            thread: None,
        };
        (journal, rx)
    }

    fn send(&self, op: Op) -> Result<(), StoreError> {
        self.tx
            .as_ref()
            .ok_or(StoreError::WriterGone)?
            .send(op)
            .map_err(|_| StoreError::WriterGone)
    }

    /// Store a record written by `unit`.
    pub fn record(&self, unit: &Arc<str>, record: &Record) -> Result<(), StoreError> {
        self.record_json(unit, record, serde_json::to_string(record)?)
    }

    /// Store a record written by `unit`, already serialized as `json`
    /// (its JSON Lines text).
    pub fn record_json(
        &self,
        unit: &Arc<str>,
        record: &Record,
        json: String,
    ) -> Result<(), StoreError> {
        let kind = match record {
            Record::Finding(_) => "finding",
            Record::Error(_) => "error",
            Record::Subject(_) => "subject",
            Record::OutOfScope(_) => "out-of-scope",
            Record::Change(_) => "change",
        };
        self.send(Op::Record {
            unit: unit.clone(),
            kind,
            json,
        })
    }

    /// Store a subject `unit` emitted: routed on (`outside` false) or
    /// reported as out of scope.
    pub fn emitted(
        &self,
        unit: &Arc<str>,
        subject: &Subject,
        outside: bool,
    ) -> Result<(), StoreError> {
        self.send(Op::Emitted {
            unit: unit.clone(),
            outside,
            json: serde_json::to_string(subject)?,
        })
    }

    /// Mark `unit` done: everything it produced was handed over before.
    pub fn done(&self, unit: &Arc<str>, failed: bool) -> Result<(), StoreError> {
        self.send(Op::Done {
            unit: unit.clone(),
            failed,
        })
    }

    /// Commit what is queued and stop the writer; its error, if it had one.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.shut()
    }

    fn shut(&mut self) -> Result<(), StoreError> {
        drop(self.tx.take());
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(StoreError::WriterGone),
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(e) = self.shut() {
            tracing::error!("result store: {e}");
        }
    }
}

fn write(mut conn: Connection, scan: i64, rx: Receiver<Op>) -> Result<(), StoreError> {
    let mut rows = Rows::default();
    while let Ok(first) = rx.recv() {
        let tx = conn.transaction()?;
        rows.add(&tx, scan, first)?;
        let until = Instant::now() + BATCH_TIME;
        let mut ops = 1;
        let mut closed = false;
        'batch: loop {
            loop {
                match rx.try_recv() {
                    Ok(op) => {
                        rows.add(&tx, scan, op)?;
                        ops += 1;
                        if ops >= BATCH_OPS {
                            break 'batch;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break 'batch;
                    }
                }
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            // Sleep instead of waiting on the channel: a scan sends its
            // operations one at a time, tens of thousands a second, and
            // a wait would be woken for each (measured on a /16 sweep:
            // about 5,000 context switches, and the CPU they take from
            // the sweep on two cores).
            std::thread::sleep(left.min(POLL));
        }
        rows.flush(&tx, scan)?;
        tx.commit()?;
        if closed {
            break;
        }
    }
    Ok(())
}

/// Rows per `INSERT` statement: a statement's own cost (binding, stepping,
/// resetting) is then shared by that many rows.
const ROWS_PER_INSERT: usize = 32;

/// The rows of the open transaction not yet inserted, by table, each
/// table's in the order they came. A transaction commits whole, so which
/// table is written first does not matter (a unit's mark and its records
/// commit together); within a table the order is kept: records are
/// numbered, and emitted subjects routed again, in it.
struct Rows {
    records: Table<(Arc<str>, &'static str, String)>,
    emitted: Table<(Arc<str>, bool, String)>,
    done: Table<(Arc<str>, bool)>,
}

impl Default for Rows {
    fn default() -> Self {
        Rows {
            records: Table::new(
                "INSERT INTO records (scan, unit, type, record) VALUES ",
                "(?, ?, ?, ?)",
                |stmt, at, scan, (unit, kind, json)| {
                    stmt.raw_bind_parameter(at, scan)?;
                    stmt.raw_bind_parameter(at + 1, &*unit)?;
                    stmt.raw_bind_parameter(at + 2, kind)?;
                    stmt.raw_bind_parameter(at + 3, json)
                },
            ),
            emitted: Table::new(
                "INSERT INTO emitted (scan, unit, outside, subject) VALUES ",
                "(?, ?, ?, ?)",
                |stmt, at, scan, (unit, outside, json)| {
                    stmt.raw_bind_parameter(at, scan)?;
                    stmt.raw_bind_parameter(at + 1, &*unit)?;
                    stmt.raw_bind_parameter(at + 2, outside)?;
                    stmt.raw_bind_parameter(at + 3, json)
                },
            ),
            done: Table::new(
                "INSERT OR REPLACE INTO units (scan, unit, failed) VALUES ",
                "(?, ?, ?)",
                |stmt, at, scan, (unit, failed)| {
                    stmt.raw_bind_parameter(at, scan)?;
                    stmt.raw_bind_parameter(at + 1, &*unit)?;
                    stmt.raw_bind_parameter(at + 2, failed)
                },
            ),
        }
    }
}

impl Rows {
    /// Take in `op`, in `tx`.
    fn add(&mut self, tx: &rusqlite::Transaction<'_>, scan: i64, op: Op) -> Result<(), StoreError> {
        match op {
            Op::Record { unit, kind, json } => self.records.push(tx, scan, (unit, kind, json)),
            Op::Emitted {
                unit,
                outside,
                json,
            } => self.emitted.push(tx, scan, (unit, outside, json)),
            Op::Done { unit, failed } => self.done.push(tx, scan, (unit, failed)),
        }
    }

    /// Insert every row waiting, in `tx`.
    fn flush(&mut self, tx: &rusqlite::Transaction<'_>, scan: i64) -> Result<(), StoreError> {
        self.records.flush(tx, scan)?;
        self.emitted.flush(tx, scan)?;
        self.done.flush(tx, scan)
    }
}

/// Binds a row's values to a statement's parameters from the one given on
/// (the scan, then the row's).
type Bind<T> = fn(&mut rusqlite::Statement<'_>, usize, i64, T) -> rusqlite::Result<()>;

/// The rows of one table waiting for their `INSERT`.
struct Table<T> {
    rows: Vec<T>,
    /// The statement of [`ROWS_PER_INSERT`] rows, and of one.
    many: String,
    one: String,
    /// Parameters per row.
    width: usize,
    bind: Bind<T>,
}

impl<T> Table<T> {
    /// `head` followed by `row` (its placeholders), once per row, is the
    /// table's statement.
    fn new(head: &str, row: &str, bind: Bind<T>) -> Self {
        Table {
            rows: Vec::with_capacity(ROWS_PER_INSERT),
            many: format!("{head}{}", vec![row; ROWS_PER_INSERT].join(", ")),
            one: format!("{head}{row}"),
            width: row.matches('?').count(),
            bind,
        }
    }

    /// Add a row; a statement's worth is inserted at once, so what waits
    /// stays small.
    fn push(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        scan: i64,
        row: T,
    ) -> Result<(), StoreError> {
        self.rows.push(row);
        if self.rows.len() < ROWS_PER_INSERT {
            return Ok(());
        }
        let mut stmt = tx.prepare_cached(&self.many)?;
        for (i, row) in self.rows.drain(..).enumerate() {
            (self.bind)(&mut stmt, 1 + i * self.width, scan, row)?;
        }
        stmt.raw_execute()?;
        Ok(())
    }

    /// Insert the rows waiting, one statement each.
    fn flush(&mut self, tx: &rusqlite::Transaction<'_>, scan: i64) -> Result<(), StoreError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut stmt = tx.prepare_cached(&self.one)?;
        for row in self.rows.drain(..) {
            (self.bind)(&mut stmt, 1, scan, row)?;
            stmt.raw_execute()?;
        }
        Ok(())
    }
}
