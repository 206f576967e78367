//! SARIF 2.1.0, the format code-scanning dashboards (GitHub, GitLab,
//! DefectDojo, Azure DevOps) import: one run, one rule per finding kind,
//! one result per finding. Valid against the OASIS 2.1.0 JSON schema.
//!
//! Results are written as they are found: JSON does not order an
//! object's members, so the run's `results` come first and its `tool`
//! (whose rules are only known at the end) and `invocations` after them,
//! when the scan ends (Ctrl-C and SIGTERM included). A scan killed
//! outright leaves an unfinished document; `wscan scan --resume` or
//! `wscan results show` writes it again, whole.

use super::{Change, ChangeRecord, FindingRecord, Record, RunInfo, Sink, SubjectRecord};
use crate::model::Severity;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{self, Write};

/// The schema a SARIF 2.1.0 log names.
const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The failed units and out-of-scope records listed one by one in the
/// invocation's notifications; past it they are counted in one more.
const MAX_NOTIFICATIONS: usize = 1000;

/// A rule: one per finding kind, in the order first seen.
struct Rule {
    kind: String,
    plugins: Vec<String>,
    /// The highest severity seen for the kind.
    severity: Severity,
}

/// Writes a SARIF log, its results as they come.
pub struct SarifSink<W: Write + Send> {
    out: W,
    run: RunInfo,
    begun: bool,
    results: u64,
    rules: Vec<Rule>,
    index: HashMap<String, usize>,
    notifications: Vec<Value>,
    more: u64,
    errors: u64,
}

impl<W: Write + Send> SarifSink<W> {
    /// A sink writing a SARIF log to `out`; `run` gives its command line
    /// and start time.
    pub fn new(out: W, run: RunInfo) -> Self {
        SarifSink {
            out,
            run,
            begun: false,
            results: 0,
            rules: Vec::new(),
            index: HashMap::new(),
            notifications: Vec::new(),
            more: 0,
            errors: 0,
        }
    }

    fn begin(&mut self) -> io::Result<()> {
        if !self.begun {
            self.begun = true;
            write!(
                self.out,
                "{{\"$schema\":\"{SCHEMA}\",\"version\":\"2.1.0\",\"runs\":[{{\"results\":["
            )?;
        }
        Ok(())
    }

    fn notify(&mut self, level: &str, text: String, subject: &SubjectRecord) {
        if self.notifications.len() >= MAX_NOTIFICATIONS {
            self.more += 1;
            return;
        }
        self.notifications.push(json!({
            "level": level,
            "message": {"text": text},
            "locations": [location(subject)],
        }));
    }

    /// Write one result: a finding, or a diff's change to one (with SARIF's
    /// `baselineState`: `new`, `absent` or `updated`).
    fn result(&mut self, f: &FindingRecord, change: Option<&ChangeRecord>) -> io::Result<()> {
        let index = match self.index.get(&f.kind) {
            Some(&i) => i,
            None => {
                self.rules.push(Rule {
                    kind: f.kind.clone(),
                    plugins: Vec::new(),
                    severity: f.severity,
                });
                self.index.insert(f.kind.clone(), self.rules.len() - 1);
                self.rules.len() - 1
            }
        };
        let rule = &mut self.rules[index];
        if !rule.plugins.contains(&f.plugin.name) {
            rule.plugins.push(f.plugin.name.clone());
        }
        rule.severity = rule.severity.max(f.severity);
        let mut result = json!({
            "ruleId": f.kind,
            "ruleIndex": index,
            "level": level(f.severity),
            "message": {"text": f.title},
            "locations": [location(&f.subject)],
            "properties": {
                "severity": f.severity,
                "time": f.time,
                "plugin": f.plugin,
                "subject": f.subject,
                "data": f.data,
            },
        });
        if let Some(c) = change {
            result["baselineState"] = json!(match c.change {
                Change::Appeared => "new",
                Change::Disappeared => "absent",
                Change::Changed => "updated",
            });
            let properties = &mut result["properties"];
            properties["change"] = json!(c.change);
            if !c.fields.is_empty() {
                properties["fields"] = json!(c.fields);
            }
            if let Some(before) = &c.before {
                properties["before"] = json!(before);
            }
        }
        if self.results > 0 {
            self.out.write_all(b",")?;
        }
        self.results += 1;
        serde_json::to_writer(&mut self.out, &result)?;
        // A line per result: the file can be followed while the scan runs.
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    fn end(&mut self) -> io::Result<()> {
        self.begin()?;
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|rule| {
                json!({
                    "id": rule.kind,
                    "name": rule.kind,
                    "shortDescription": {
                        "text": format!("{} (reported by {})", rule.kind, rule.plugins.join(", "))
                    },
                    "defaultConfiguration": {"level": level(rule.severity)},
                    "properties": {
                        "plugins": rule.plugins,
                        "severity": rule.severity,
                        // GitHub code scanning ranks alerts by this score.
                        "security-severity": security_severity(rule.severity),
                        "tags": ["security", "network"],
                    },
                })
            })
            .collect();
        if self.more > 0 {
            self.notifications.push(json!({
                "level": "note",
                "message": {"text": format!(
                    "{} more failed unit(s) and out-of-scope record(s) are not listed here; wscan's JSON Lines output has them all",
                    self.more
                )},
            }));
        }
        let mut invocation = json!({
            // Every unit completed: nothing failed to be scanned.
            "executionSuccessful": self.errors == 0,
            "commandLine": self.run.args,
            "startTimeUtc": humantime::format_rfc3339_millis(self.run.started).to_string(),
            "endTimeUtc": super::now(),
        });
        if !self.notifications.is_empty() {
            invocation["toolExecutionNotifications"] =
                Value::Array(std::mem::take(&mut self.notifications));
        }
        let tool = json!({
            "driver": {
                "name": "wscan",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "informationUri": env!("CARGO_PKG_REPOSITORY"),
                "rules": rules,
            }
        });
        write!(self.out, "],\"tool\":")?;
        serde_json::to_writer(&mut self.out, &tool)?;
        write!(self.out, ",\"invocations\":[")?;
        serde_json::to_writer(&mut self.out, &invocation)?;
        writeln!(self.out, "]}}]}}")?;
        self.out.flush()
    }
}

/// SARIF's level for a severity.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Info | Severity::Low => "note",
        Severity::Medium => "warning",
        Severity::High | Severity::Critical => "error",
    }
}

/// The CVSS-like score GitHub reads from a rule's `security-severity`.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "0.0",
        Severity::Low => "3.0",
        Severity::Medium => "5.5",
        Severity::High => "8.0",
        Severity::Critical => "9.5",
    }
}

/// A subject as a URI: `tcp://ADDRESS:PORT` for a service, `tcp://ADDRESS`
/// for an address, `dns:NAME` (RFC 4501) for a host name.
fn uri(s: &SubjectRecord) -> String {
    let address = s.address.map(|ip| match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    });
    match (address, s.port, &s.host) {
        (Some(address), Some(port), _) => format!("tcp://{address}:{port}"),
        (Some(address), None, _) => format!("tcp://{address}"),
        (None, _, Some(name)) => format!("dns:{name}"),
        (None, _, None) => "tcp://unknown".into(),
    }
}

/// Where a result is: the subject's URI, and the subject by name (the host
/// name it was reached through, when there is one).
fn location(s: &SubjectRecord) -> Value {
    let uri = uri(s);
    let mut name = match (&s.host, s.address, s.port) {
        (Some(host), Some(ip), _) => format!("{host} ({ip})"),
        (Some(host), None, _) => host.clone(),
        (None, Some(ip), _) => ip.to_string(),
        (None, None, _) => "-".into(),
    };
    if let Some(port) = s.port {
        name.push_str(&format!(" port {port}"));
    }
    json!({
        "physicalLocation": {"artifactLocation": {"uri": uri}},
        "logicalLocations": [{"name": name, "fullyQualifiedName": uri, "kind": "resource"}],
    })
}

impl<W: Write + Send> Sink for SarifSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.begin()?;
        match record {
            Record::Finding(f) => self.result(f, None)?,
            Record::Change(c) => self.result(&c.finding(), Some(c))?,
            Record::Error(e) => {
                self.errors += 1;
                let text = format!("{} did not complete: {}", e.plugin.name, e.error);
                self.notify("error", text, &e.subject);
            }
            Record::OutOfScope(o) => {
                let outside: Vec<String> = o.outside.iter().map(uri).collect();
                let text = format!(
                    "{} found subjects outside the scan's scope (not scanned): {}",
                    o.plugin.name,
                    outside.join(", ")
                );
                self.notify("note", text, &o.subject);
            }
            Record::Subject(_) => {}
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, PluginId, Service, Subject};

    #[test]
    fn results_stream_and_rules_follow_one_per_kind() {
        let plugin = PluginId {
            name: "tls".into(),
            version: "1".into(),
        };
        let service = Subject::Service(Service {
            ip: "::1".parse().unwrap(),
            port: 443,
            host: None,
            name: None,
            banner: None,
            tls: false,
        });
        let finding = |kind: &str, severity| {
            Record::finding(
                &plugin,
                Finding {
                    kind: kind.into(),
                    severity,
                    title: format!("{kind} \"quoted\""),
                    subject: service.clone(),
                    data: serde_json::Map::new(),
                },
            )
        };
        let mut out = Vec::new();
        let mut sink = SarifSink::new(
            &mut out,
            RunInfo {
                args: "wscan scan ::1".into(),
                started: std::time::SystemTime::now(),
            },
        );
        sink.write(&finding("tls-certificate", Severity::Info))
            .unwrap();
        sink.write(&finding("tls-expired", Severity::High)).unwrap();
        sink.write(&finding("tls-certificate", Severity::Info))
            .unwrap();
        sink.write(&Record::error(&plugin, &service, "timed out".into()))
            .unwrap();
        sink.finish().unwrap();
        drop(sink);
        let log: Value = serde_json::from_slice(&out).unwrap();
        let run = &log["runs"][0];
        assert_eq!(log["version"], "2.1.0");
        assert_eq!(run["results"].as_array().unwrap().len(), 3);
        assert_eq!(run["results"][1]["ruleIndex"], 1);
        assert_eq!(run["results"][1]["level"], "error");
        assert_eq!(
            run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "tcp://[::1]:443"
        );
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1]["id"], "tls-expired");
        assert_eq!(rules[1]["properties"]["security-severity"], "8.0");
        let invocation = &run["invocations"][0];
        assert_eq!(invocation["executionSuccessful"], false);
        assert_eq!(
            invocation["toolExecutionNotifications"][0]["message"]["text"],
            "tls did not complete: timed out"
        );
    }
}
