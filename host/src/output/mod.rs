//! Output: the [`Sink`] trait the scheduler writes records to, and its
//! writers. Scanning code never prints.

mod jsonl;
mod record;
mod table;

pub use jsonl::JsonlSink;
pub use record::{
    ErrorRecord, FindingRecord, PluginRef, Record, SubjectEmitted, SubjectRecord, now,
};
pub use table::TableSink;

/// A sink that lifts a progress bar while it writes, so records printed to
/// the terminal the bar is drawn on do not mix with it.
pub struct Suspended {
    inner: Box<dyn Sink>,
    bar: indicatif::ProgressBar,
}

impl Suspended {
    /// Write to `inner`, lifting `bar` around each record.
    pub fn new(inner: Box<dyn Sink>, bar: indicatif::ProgressBar) -> Self {
        Suspended { inner, bar }
    }
}

impl Sink for Suspended {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.write(record))
    }

    fn finish(&mut self) -> io::Result<()> {
        self.inner.finish()
    }
}

use std::io;

/// Where records go as they are produced.
pub trait Sink: Send {
    /// Write one record. An error stops the scan: output that cannot be
    /// written is output lost.
    fn write(&mut self, record: &Record) -> io::Result<()>;

    /// Flush whatever is buffered; called once at the end.
    fn finish(&mut self) -> io::Result<()>;
}

/// Output formats (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line; see docs/jsonl-schema.json.
    Jsonl,
    /// Aligned columns for people.
    Table,
}
