//! A report for people to read and share: the scan's records grouped by
//! host, as Markdown. Grouping needs every record, so the report is
//! written when the scan ends (Ctrl-C included); `--format jsonl` is the
//! format that streams.

use super::{Record, Sink, SubjectRecord};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Collects records and writes them, grouped by host, at the end.
pub struct MarkdownSink<W: Write + Send> {
    out: W,
    /// Table rows by host: severity, plugin, kind, port, title.
    hosts: BTreeMap<String, Vec<[String; 5]>>,
    /// Units that failed: plugin, subject, error.
    errors: Vec<[String; 3]>,
    /// What plugins found outside the scope: plugin, subject, what.
    outside: Vec<[String; 3]>,
    findings: usize,
    /// Rows that are a diff's changes rather than findings.
    changes: usize,
}

impl<W: Write + Send> MarkdownSink<W> {
    /// A sink writing the report to `out` when it is finished.
    pub fn new(out: W) -> Self {
        MarkdownSink {
            out,
            hosts: BTreeMap::new(),
            errors: Vec::new(),
            outside: Vec::new(),
            findings: 0,
            changes: 0,
        }
    }
}

/// A cell of a Markdown table: one line, with `|` escaped.
fn cell(text: &str) -> String {
    super::table::one_line(text).replace('|', "\\|")
}

/// The host a subject belongs to: its address, with its name when it has
/// one, or the name alone.
fn host(s: &SubjectRecord) -> String {
    match (&s.address, &s.host) {
        (Some(ip), Some(name)) => format!("{ip} ({name})"),
        (Some(ip), None) => ip.to_string(),
        (None, Some(name)) => name.clone(),
        (None, None) => "-".into(),
    }
}

fn subject(s: &SubjectRecord) -> String {
    match s.port {
        Some(port) => format!("{} port {port}", host(s)),
        None => host(s),
    }
}

impl<W: Write + Send> Sink for MarkdownSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        match record {
            Record::Finding(f) => {
                self.findings += 1;
                let port = f.subject.port.map(|p| p.to_string()).unwrap_or_default();
                self.hosts.entry(host(&f.subject)).or_default().push([
                    f.severity.to_string(),
                    f.plugin.name.clone(),
                    f.kind.clone(),
                    port,
                    f.title.clone(),
                ]);
            }
            Record::Error(e) => {
                self.errors
                    .push([e.plugin.name.clone(), subject(&e.subject), e.error.clone()])
            }
            Record::OutOfScope(o) => {
                let what: Vec<String> = o.outside.iter().map(subject).collect();
                self.outside
                    .push([o.plugin.name.clone(), subject(&o.subject), what.join(", ")]);
            }
            Record::Change(c) => {
                self.changes += 1;
                let port = c.subject.port.map(|p| p.to_string()).unwrap_or_default();
                self.hosts.entry(host(&c.subject)).or_default().push([
                    c.severity.to_string(),
                    c.plugin.name.clone(),
                    c.kind.clone(),
                    port,
                    super::table::change_text(c),
                ]);
            }
            // Subjects handed on (`plugin run` only) are not findings.
            Record::Subject(_) => {}
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let out = &mut self.out;
        writeln!(out, "# wscan report\n")?;
        if self.changes > 0 {
            writeln!(
                out,
                "{} change(s) between the two scans on {} host(s).",
                self.changes,
                self.hosts.len()
            )?;
        }
        writeln!(
            out,
            "{} finding(s) on {} host(s), {} failed unit(s), {} out-of-scope record(s).",
            self.findings,
            self.hosts.len(),
            self.errors.len(),
            self.outside.len()
        )?;
        for (name, rows) in &self.hosts {
            writeln!(out, "\n## {}\n", cell(name))?;
            writeln!(out, "| severity | plugin | kind | port | title |")?;
            writeln!(out, "|---|---|---|---|---|")?;
            for row in rows {
                let row: Vec<String> = row.iter().map(|c| cell(c)).collect();
                writeln!(out, "| {} |", row.join(" | "))?;
            }
        }
        if !self.errors.is_empty() {
            writeln!(out, "\n## Failed units\n")?;
            writeln!(out, "| plugin | subject | error |")?;
            writeln!(out, "|---|---|---|")?;
            for row in &self.errors {
                let row: Vec<String> = row.iter().map(|c| cell(c)).collect();
                writeln!(out, "| {} |", row.join(" | "))?;
            }
        }
        if !self.outside.is_empty() {
            writeln!(out, "\n## Found outside the scope (not scanned)\n")?;
            writeln!(out, "| plugin | on | found |")?;
            writeln!(out, "|---|---|---|")?;
            for row in &self.outside {
                let row: Vec<String> = row.iter().map(|c| cell(c)).collect();
                writeln!(out, "| {} |", row.join(" | "))?;
            }
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, PluginId, Severity, Subject};

    #[test]
    fn findings_are_grouped_by_host_with_cells_escaped() {
        let plugin = PluginId {
            name: "port".into(),
            version: "1".into(),
        };
        let finding = |ip: &str, title: &str| {
            Record::finding(
                &plugin,
                Finding {
                    kind: "open-port".into(),
                    severity: Severity::Info,
                    title: title.into(),
                    subject: Subject::Address {
                        ip: ip.parse().unwrap(),
                        host: None,
                    },
                    data: serde_json::Map::new(),
                },
            )
        };
        let mut out = Vec::new();
        let mut sink = MarkdownSink::new(&mut out);
        sink.write(&finding("127.0.0.2", "a | b\nc")).unwrap();
        sink.write(&finding("127.0.0.1", "one")).unwrap();
        sink.write(&Record::error(
            &plugin,
            &Subject::Host("www.test".into()),
            "timed out".into(),
        ))
        .unwrap();
        sink.finish().unwrap();
        drop(sink);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("# wscan report\n\n2 finding(s) on 2 host(s), 1 failed unit(s)"));
        let first = text.find("## 127.0.0.1").unwrap();
        let second = text.find("## 127.0.0.2").unwrap();
        assert!(first < second, "{text}");
        assert!(
            text.contains("| info | port | open-port |  | a \\| b c |"),
            "{text}"
        );
        assert!(text.contains("## Failed units"), "{text}");
        assert!(text.contains("| port | www.test | timed out |"), "{text}");
    }
}
