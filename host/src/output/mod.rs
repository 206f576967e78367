//! Output: the [`Sink`] trait the scheduler writes records to, and its
//! writers. Scanning code never prints.

pub mod csv;
mod jsonl;
mod markdown;
mod record;
mod table;

pub use csv::{CsvSink, Field};
pub use jsonl::JsonlSink;
pub use markdown::MarkdownSink;
pub use record::{
    ErrorRecord, FindingRecord, OutOfScopeRecord, PluginRef, Record, SubjectEmitted, SubjectRecord,
    now,
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
        // A format that writes at the end (markdown) writes it all here.
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.finish())
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
    /// Comma-separated values, the columns chosen with --fields.
    Csv,
    /// A report grouped by host, written when the scan ends.
    Markdown,
}

impl Format {
    /// The format asked for, or the default for where it goes: a table
    /// for a terminal, JSON Lines otherwise.
    pub fn or_default(format: Option<Format>, terminal: bool) -> Format {
        format.unwrap_or(if terminal {
            Format::Table
        } else {
            Format::Jsonl
        })
    }

    /// [`Format::or_default`] for standard output.
    pub fn for_stdout(format: Option<Format>) -> Format {
        Format::or_default(format, std::io::IsTerminal::is_terminal(&std::io::stdout()))
    }

    /// A sink writing records in this format to `out`; `fields` are the
    /// columns of CSV (its default columns when `None`).
    pub fn sink(
        self,
        out: impl io::Write + Send + 'static,
        fields: Option<Vec<Field>>,
    ) -> Box<dyn Sink> {
        match self {
            Format::Jsonl => Box::new(JsonlSink::new(out)),
            Format::Table => Box::new(TableSink::new(out)),
            Format::Markdown => Box::new(MarkdownSink::new(out)),
            Format::Csv => Box::new(CsvSink::new(
                out,
                fields.unwrap_or_else(|| {
                    csv::parse_fields(csv::DEFAULT_FIELDS).expect("valid default fields")
                }),
            )),
        }
    }
}
