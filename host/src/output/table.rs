//! A table for people: one row per record, printed as it arrives (a scan
//! can run for hours; nothing waits for the end).

use super::{Record, Sink, SubjectRecord};
use std::io::{self, Write};

/// Writes records as aligned rows. Rows are printed as they arrive, so a
/// column cannot be sized for values not seen yet: each column is at least
/// as wide as its header and grows to the longest value seen so far (a
/// long plugin name widens the column from its row on), and the header is
/// printed again when a column grows, so the rows under it line up.
pub struct TableSink<W: Write + Send> {
    out: W,
    /// Widths of the PLUGIN, KIND and SUBJECT columns; `None` before the
    /// header is printed.
    widths: Option<[usize; 3]>,
}

/// The narrowest each of the PLUGIN, KIND and SUBJECT columns gets.
const MIN_WIDTHS: [usize; 3] = [12, 16, 28];

impl<W: Write + Send> TableSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        TableSink { out, widths: None }
    }

    /// Write one row: the header first when there is none yet, or when a
    /// cell is wider than its column (the column grows to fit).
    fn row(&mut self, severity: &str, cells: [&str; 3], rest: &str) -> io::Result<()> {
        let old = self.widths.unwrap_or(MIN_WIDTHS);
        let mut new = old;
        for (width, cell) in new.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
        if self.widths != Some(new) {
            self.widths = Some(new);
            writeln!(
                self.out,
                "{:<8} {:<w0$} {:<w1$} {:<w2$} TITLE",
                "SEVERITY",
                "PLUGIN",
                "KIND",
                "SUBJECT",
                w0 = new[0],
                w1 = new[1],
                w2 = new[2]
            )?;
        }
        writeln!(
            self.out,
            "{severity:<8} {:<w0$} {:<w1$} {:<w2$} {rest}",
            cells[0],
            cells[1],
            cells[2],
            w0 = new[0],
            w1 = new[1],
            w2 = new[2]
        )
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

/// A change's title: `+` appeared, `-` disappeared, `~` changed (with
/// what changed).
pub(super) fn change_text(c: &super::ChangeRecord) -> String {
    let title = one_line(&c.title);
    match c.change {
        super::Change::Appeared => format!("+ {title}"),
        super::Change::Disappeared => format!("- {title}"),
        super::Change::Changed => format!("~ {title} (changed: {})", c.fields.join(", ")),
    }
}

/// Keep a cell on one line: banners may hold control characters.
pub(super) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl<W: Write + Send> Sink for TableSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Finding(f) => {
                let mut title = one_line(&f.title);
                if let Some(banner) = f.data.get("banner").and_then(|b| b.as_str()) {
                    title.push_str(&format!("  \"{}\"", one_line(banner)));
                }
                let cells = [&*f.plugin.name, &*f.kind, &subject_text(&f.subject)];
                self.row(&f.severity.to_string(), cells, &title)?;
            }
            Record::Subject(e) => {
                let cells = [&*e.plugin.name, "subject", &subject_text(&e.subject)];
                self.row("-", cells, "new subject")?;
            }
            Record::OutOfScope(e) => {
                let cells = [&*e.plugin.name, "out-of-scope", &subject_text(&e.subject)];
                self.row("-", cells, &outside_text(&e.outside))?;
            }
            Record::Error(e) => {
                let cells = [&*e.plugin.name, "-", &subject_text(&e.subject)];
                self.row("ERROR", cells, &one_line(&e.error))?;
            }
            Record::Change(c) => {
                let cells = [&*c.plugin.name, &*c.kind, &subject_text(&c.subject)];
                self.row(&c.severity.to_string(), cells, &change_text(c))?;
            }
        }
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, PluginId, Severity, Subject};

    fn finding(plugin: &str) -> Record {
        let id = PluginId {
            name: plugin.into(),
            version: "1".into(),
        };
        Record::finding(
            &id,
            Finding {
                kind: "open-port".into(),
                severity: Severity::Info,
                title: "open".into(),
                subject: Subject::Address {
                    ip: "127.0.0.1".parse().unwrap(),
                    host: None,
                },
                data: serde_json::Map::new(),
            },
        )
    }

    /// A plugin name longer than the column widens it, with the header
    /// printed again above the rows it lines up with.
    #[test]
    fn a_long_plugin_name_widens_its_column() {
        let mut out = Vec::new();
        let mut sink = TableSink::new(&mut out);
        sink.write(&finding("port")).unwrap();
        sink.write(&finding("a-very-long-plugin-name")).unwrap();
        sink.write(&finding("port")).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("SEVERITY PLUGIN       KIND"), "{text}");
        assert!(lines[2].starts_with("SEVERITY PLUGIN "), "{text}");
        // Below the second header, every column starts where its header does.
        let kind_at = lines[2].find("KIND").unwrap();
        for row in &lines[3..] {
            assert_eq!(row.find("open-port"), Some(kind_at), "{text}");
        }
    }
}
