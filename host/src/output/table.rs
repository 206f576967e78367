//! A table for people: one row per record, printed as it arrives (a scan
//! can run for hours; nothing waits for the end).

use super::{Record, Sink, SubjectRecord};
use std::io::{self, Write};

/// Writes records as aligned rows.
pub struct TableSink<W: Write + Send> {
    out: W,
    header_done: bool,
}

impl<W: Write + Send> TableSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        TableSink {
            out,
            header_done: false,
        }
    }
}

/// The subjects of an out-of-scope record, the first few by name: a
/// certificate with thousands of names stays one row.
fn outside_text(outside: &[SubjectRecord]) -> String {
    const SHOWN: usize = 5;
    let names: Vec<String> = outside.iter().take(SHOWN).map(subject_text).collect();
    let more = outside.len().saturating_sub(SHOWN);
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "outside the scan's scope, not scanned: {}{tail}",
        names.join(", ")
    )
}

fn subject_text(s: &SubjectRecord) -> String {
    let addr = match (s.address, s.port) {
        (Some(std::net::IpAddr::V6(ip)), Some(port)) => format!("[{ip}]:{port}"),
        (Some(ip), Some(port)) => format!("{ip}:{port}"),
        (Some(ip), None) => ip.to_string(),
        (None, _) => String::new(),
    };
    match (&s.host, addr.is_empty()) {
        (Some(h), true) => h.clone(),
        (Some(h), false) => format!("{addr} ({h})"),
        (None, _) => addr,
    }
}

/// Keep a cell on one line: banners may hold control characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl<W: Write + Send> Sink for TableSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        if !self.header_done {
            writeln!(
                self.out,
                "{:<8} {:<12} {:<16} {:<28} TITLE",
                "SEVERITY", "PLUGIN", "KIND", "SUBJECT"
            )?;
            self.header_done = true;
        }
        match record {
            Record::Finding(f) => {
                let mut title = one_line(&f.title);
                if let Some(banner) = f.data.get("banner").and_then(|b| b.as_str()) {
                    title.push_str(&format!("  \"{}\"", one_line(banner)));
                }
                writeln!(
                    self.out,
                    "{:<8} {:<12} {:<16} {:<28} {}",
                    f.severity.to_string(),
                    f.plugin.name,
                    f.kind,
                    subject_text(&f.subject),
                    title
                )?;
            }
            Record::Subject(e) => writeln!(
                self.out,
                "{:<8} {:<12} {:<16} {:<28} new subject",
                "-",
                e.plugin.name,
                "subject",
                subject_text(&e.subject)
            )?,
            Record::OutOfScope(e) => writeln!(
                self.out,
                "{:<8} {:<12} {:<16} {:<28} {}",
                "-",
                e.plugin.name,
                "out-of-scope",
                subject_text(&e.subject),
                outside_text(&e.outside)
            )?,
            Record::Error(e) => writeln!(
                self.out,
                "{:<8} {:<12} {:<16} {:<28} {}",
                "ERROR",
                e.plugin.name,
                "-",
                subject_text(&e.subject),
                one_line(&e.error)
            )?,
        }
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
