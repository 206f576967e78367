//! Output: the [`Sink`] trait the scheduler writes records to, and its
//! writers. Scanning code never prints.

pub mod csv;
mod jsonl;
mod markdown;
mod nmap_xml;
mod record;
mod sarif;
mod table;

pub use csv::{CsvSink, Field};
pub use jsonl::JsonlSink;
pub use markdown::MarkdownSink;
pub use nmap_xml::NmapXmlSink;
pub use record::{
    Change, ChangeRecord, ErrorRecord, FindingRecord, FindingState, OutOfScopeRecord, PluginRef,
    Record, SubjectEmitted, SubjectRecord, now,
};
pub use sarif::SarifSink;
pub use table::TableSink;

/// What the formats that describe a whole run (nmap's XML, SARIF) say of
/// it: its command line and when it started.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The command line, as one string.
    pub args: String,
    /// When the scan started (its first run, for a resumed scan).
    pub started: std::time::SystemTime,
}

impl RunInfo {
    /// A run started now with these arguments (without the program name).
    pub fn now(argv: &[String]) -> Self {
        RunInfo {
            args: command_line(argv),
            started: std::time::SystemTime::now(),
        }
    }
}

/// `wscan` and its arguments as one line, each quoted only when it must be.
pub fn command_line(argv: &[String]) -> String {
    let mut line = String::from("wscan");
    for arg in argv {
        line.push(' ');
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:,=@%+[]".contains(c));
        if plain {
            line.push_str(arg);
        } else {
            line.push('\'');
            line.push_str(&arg.replace('\'', "'\\''"));
            line.push('\'');
        }
    }
    line
}

/// Writes nothing: for scans whose records only the result store keeps
/// (those the service runs).
pub struct Discard;

impl Sink for Discard {
    fn write(&mut self, _: &Record) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes each record to several sinks (`-o a.jsonl -o b.xml`).
pub struct Tee {
    sinks: Vec<Box<dyn Sink>>,
}

impl Tee {
    /// A sink writing to every one of `sinks`, in order.
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        Tee { sinks }
    }
}

impl Sink for Tee {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.sinks.iter_mut().try_for_each(|s| s.write(record))
    }

    fn write_json(&mut self, record: &Record, json: &str) -> io::Result<()> {
        self.sinks
            .iter_mut()
            .try_for_each(|s| s.write_json(record, json))
    }

    fn finish(&mut self) -> io::Result<()> {
        // Every output is finished, even when one fails: one full disk must
        // not leave the other files unclosed.
        let mut first = Ok(());
        for sink in &mut self.sinks {
            if let Err(e) = sink.finish()
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }
}

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

    fn write_json(&mut self, record: &Record, json: &str) -> io::Result<()> {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.write_json(record, json))
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

    /// Write one record whose JSON Lines text (one line, no newline) is
    /// `json`. The scan serializes each record once, for the result store
    /// and every output that writes this text; other formats write
    /// `record` as [`Sink::write`] does.
    fn write_json(&mut self, record: &Record, json: &str) -> io::Result<()> {
        let _ = json;
        self.write(record)
    }

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
    /// nmap's XML (-oX), written when the scan ends.
    NmapXml,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
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

    /// The format a file's name implies: `.jsonl` (`.ndjson`), `.csv`,
    /// `.md`, `.xml` (nmap's), `.sarif` (`.sarif.json`); `None` for any
    /// other name.
    pub fn from_extension(path: &std::path::Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let ends = |ext: &str| name.ends_with(ext);
        Some(if ends(".jsonl") || ends(".ndjson") {
            Format::Jsonl
        } else if ends(".csv") {
            Format::Csv
        } else if ends(".md") || ends(".markdown") {
            Format::Markdown
        } else if ends(".xml") {
            Format::NmapXml
        } else if ends(".sarif") || ends(".sarif.json") {
            Format::Sarif
        } else {
            return None;
        })
    }

    /// A sink writing records in this format to `out`; `fields` are the
    /// columns of CSV (its default columns when `None`), `run` what the
    /// formats that describe the run say of it.
    pub fn sink(
        self,
        out: impl io::Write + Send + 'static,
        fields: Option<Vec<Field>>,
        run: &RunInfo,
    ) -> Box<dyn Sink> {
        match self {
            Format::Jsonl => Box::new(JsonlSink::new(out)),
            Format::Table => Box::new(TableSink::new(out)),
            Format::Markdown => Box::new(MarkdownSink::new(out)),
            Format::NmapXml => Box::new(NmapXmlSink::new(out, run.clone())),
            Format::Sarif => Box::new(SarifSink::new(out, run.clone())),
            Format::Csv => Box::new(CsvSink::new(
                out,
                fields.unwrap_or_else(|| {
                    csv::parse_fields(csv::DEFAULT_FIELDS).expect("valid default fields")
                }),
            )),
        }
    }
}
