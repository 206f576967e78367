//! Output: the [`Sink`] trait the scheduler writes records to, and its
//! writers. Scanning code never prints.

mod jsonl;
mod record;
mod table;

pub use jsonl::JsonlSink;
pub use record::{ErrorRecord, FindingRecord, PluginRef, Record, SubjectEmitted, SubjectRecord};
pub use table::TableSink;

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
