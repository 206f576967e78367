//! The records wscan writes, one per finding or failed unit. Their JSON
//! form is documented in `docs/output.md` and `docs/jsonl-schema.json`.

use crate::model::{Finding, PluginId, Severity, Subject, SubjectKind};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::SystemTime;

/// A plugin's name and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRef {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
}

impl From<&PluginId> for PluginRef {
    fn from(id: &PluginId) -> Self {
        PluginRef {
            name: id.name.clone(),
            version: id.version.clone(),
        }
    }
}

/// A subject, flattened for output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectRecord {
    /// `host`, `address` or `service`.
    pub kind: SubjectKind,
    /// Host name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Address, for addresses and services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Port, for services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Service name guess, for services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// For services known to speak TLS: `true` (absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}

impl From<&Subject> for SubjectRecord {
    fn from(s: &Subject) -> Self {
        let mut r = SubjectRecord {
            kind: s.kind(),
            host: None,
            address: s.ip(),
            port: None,
            service: None,
            tls: false,
        };
        match s {
            Subject::Host(name) => r.host = Some(name.clone()),
            Subject::Address { host, .. } => r.host = host.clone(),
            Subject::Service(svc) => {
                r.host = svc.host.clone();
                r.port = Some(svc.port);
                r.service = svc.name.clone();
                r.tls = svc.tls;
            }
        }
        r
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    /// When it was reported, RFC 3339 UTC.
    pub time: String,
    /// Who reported it.
    pub plugin: PluginRef,
    /// Machine-readable kind.
    pub kind: String,
    /// How bad.
    pub severity: Severity,
    /// One line for people.
    pub title: String,
    /// What it is about.
    pub subject: SubjectRecord,
    /// Plugin-specific detail.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// A unit of work (one plugin on one subject) that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// When it failed, RFC 3339 UTC.
    pub time: String,
    /// The plugin.
    pub plugin: PluginRef,
    /// The subject it was scanning.
    pub subject: SubjectRecord,
    /// What went wrong.
    pub error: String,
}

/// A subject a plugin emitted, as `wscan plugin run` writes it; a scan
/// routes emitted subjects to plugins instead (or reports them in an
/// [`OutOfScopeRecord`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectEmitted {
    /// When it was emitted, RFC 3339 UTC.
    pub time: String,
    /// Who emitted it.
    pub plugin: PluginRef,
    /// The subject.
    pub subject: SubjectRecord,
}

/// The subjects one unit emitted that lie outside the scan's scope:
/// reported, never scanned. One record per unit, so a certificate with
/// 10,000 foreign names makes one record, not 10,000.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "OutOfScopeWire")]
pub struct OutOfScopeRecord {
    /// When the unit that found them ended, RFC 3339 UTC.
    pub time: String,
    /// Who found them.
    pub plugin: PluginRef,
    /// The subject it was scanning when it found them.
    pub subject: SubjectRecord,
    /// The subjects outside the scope, in the order found; each subject is
    /// in one record of a scan only, whoever found it how many times.
    pub outside: Vec<SubjectRecord>,
}

/// [`OutOfScopeRecord`] as stored, including the form of stores written
/// before grouping (one record per subject, the subject in `subject`).
#[derive(Deserialize)]
struct OutOfScopeWire {
    time: String,
    plugin: PluginRef,
    subject: SubjectRecord,
    #[serde(default)]
    outside: Option<Vec<SubjectRecord>>,
}

impl From<OutOfScopeWire> for OutOfScopeRecord {
    fn from(w: OutOfScopeWire) -> Self {
        // The old form named only the outside subject: it stands for both.
        let outside = w.outside.unwrap_or_else(|| vec![w.subject.clone()]);
        OutOfScopeRecord {
            time: w.time,
            plugin: w.plugin,
            subject: w.subject,
            outside,
        }
    }
}

/// How a finding differs between two scans (`wscan results diff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// In the second scan only.
    Appeared,
    /// In the first scan only.
    Disappeared,
    /// In both, with other data.
    Changed,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Change::Appeared => "appeared",
            Change::Disappeared => "disappeared",
            Change::Changed => "changed",
        })
    }
}

/// A finding as one scan of a diff had it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingState {
    /// When it was reported.
    pub time: String,
    /// How bad.
    pub severity: Severity,
    /// One line for people.
    pub title: String,
    /// Plugin-specific detail.
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl From<&FindingRecord> for FindingState {
    fn from(f: &FindingRecord) -> Self {
        FindingState {
            time: f.time.clone(),
            severity: f.severity,
            title: f.title.clone(),
            data: f.data.clone(),
        }
    }
}

/// One difference between two scans: a finding that appeared, disappeared
/// or changed, keyed on its plugin, kind and subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// What happened to it.
    pub change: Change,
    /// Who reported it.
    pub plugin: PluginRef,
    /// Machine-readable kind.
    pub kind: String,
    /// Its severity in the second scan (the first, when it disappeared).
    pub severity: Severity,
    /// Its title in the second scan (the first, when it disappeared).
    pub title: String,
    /// What it is about.
    pub subject: SubjectRecord,
    /// For `changed`: the paths that differ (`severity`, `data.status`,
    /// `data.chain.0.sha256`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// As the first scan had it (absent when it appeared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<FindingState>,
    /// As the second scan has it (absent when it disappeared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<FindingState>,
}

impl ChangeRecord {
    /// The finding as it stands: the second scan's, or the first's when it
    /// disappeared.
    pub fn finding(&self) -> FindingRecord {
        let state = self
            .after
            .as_ref()
            .or(self.before.as_ref())
            .expect("a change has a side");
        FindingRecord {
            time: state.time.clone(),
            plugin: self.plugin.clone(),
            kind: self.kind.clone(),
            severity: self.severity,
            title: self.title.clone(),
            subject: self.subject.clone(),
            data: state.data.clone(),
        }
    }
}

/// Anything written to the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// A finding.
    Finding(FindingRecord),
    /// A failed unit.
    Error(ErrorRecord),
    /// An emitted subject (`wscan plugin run`).
    Subject(SubjectEmitted),
    /// Subjects a unit found outside the scan's scope, not scanned.
    #[serde(rename = "out-of-scope")]
    OutOfScope(OutOfScopeRecord),
    /// A difference between two scans (`wscan results diff`).
    Change(ChangeRecord),
}

/// The current time, RFC 3339 with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

impl Record {
    /// A finding record stamped now.
    pub fn finding(plugin: &PluginId, finding: Finding) -> Self {
        Record::Finding(FindingRecord {
            time: now(),
            plugin: plugin.into(),
            kind: finding.kind,
            severity: finding.severity,
            title: finding.title,
            subject: (&finding.subject).into(),
            data: finding.data,
        })
    }

    /// An emitted-subject record stamped now.
    pub fn subject(plugin: &PluginId, subject: &Subject) -> Self {
        Record::Subject(SubjectEmitted {
            time: now(),
            plugin: plugin.into(),
            subject: subject.into(),
        })
    }

    /// An out-of-scope record stamped now: what the unit of `plugin` on
    /// `subject` found outside the scope.
    pub fn out_of_scope(plugin: &PluginId, subject: &Subject, outside: &[Subject]) -> Self {
        Record::OutOfScope(OutOfScopeRecord {
            time: now(),
            plugin: plugin.into(),
            subject: subject.into(),
            outside: outside.iter().map(Into::into).collect(),
        })
    }

    /// An error record stamped now.
    pub fn error(plugin: &PluginId, subject: &Subject, error: String) -> Self {
        Record::Error(ErrorRecord {
            time: now(),
            plugin: plugin.into(),
            subject: subject.into(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Service;

    #[test]
    fn finding_json_shape() {
        let id = PluginId {
            name: "port".into(),
            version: "0.1.0".into(),
        };
        let subject = Subject::Service(Service {
            ip: "127.0.0.1".parse().unwrap(),
            port: 22,
            host: None,
            name: Some("ssh".into()),
            banner: Some("SSH-2.0-x".into()),
            tls: false,
        });
        let mut data = serde_json::Map::new();
        data.insert("banner".into(), "SSH-2.0-x".into());
        let finding = Finding {
            kind: "open-port".into(),
            severity: Severity::Info,
            title: "t".into(),
            subject,
            data,
        };
        let mut json = serde_json::to_value(Record::finding(&id, finding)).unwrap();
        assert!(json["time"].as_str().unwrap().ends_with('Z'));
        json.as_object_mut().unwrap().remove("time");
        assert_eq!(
            json,
            serde_json::json!({
                "type": "finding",
                "plugin": {"name": "port", "version": "0.1.0"},
                "kind": "open-port",
                "severity": "info",
                "title": "t",
                "subject": {"kind": "service", "address": "127.0.0.1", "port": 22, "service": "ssh"},
                "data": {"banner": "SSH-2.0-x"}
            })
        );
    }

    #[test]
    fn out_of_scope_groups_a_unit_and_reads_the_old_form() {
        let id = PluginId {
            name: "tls".into(),
            version: "0.2.0".into(),
        };
        let service = Subject::Service(Service {
            ip: "127.0.0.1".parse().unwrap(),
            port: 443,
            host: None,
            name: None,
            banner: None,
            tls: false,
        });
        let outside = [
            Subject::Host("a.test".into()),
            Subject::Address {
                ip: "192.0.2.1".parse().unwrap(),
                host: None,
            },
        ];
        let record = Record::out_of_scope(&id, &service, &outside);
        let mut json = serde_json::to_value(&record).unwrap();
        json.as_object_mut().unwrap().remove("time");
        assert_eq!(
            json,
            serde_json::json!({
                "type": "out-of-scope",
                "plugin": {"name": "tls", "version": "0.2.0"},
                "subject": {"kind": "service", "address": "127.0.0.1", "port": 443},
                "outside": [
                    {"kind": "host", "host": "a.test"},
                    {"kind": "address", "address": "192.0.2.1"}
                ]
            })
        );
        let back: Record = serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
        assert_eq!(back, record);

        // A store written before grouping: one subject per record.
        let old = r#"{"type":"out-of-scope","time":"2026-11-27T03:10:02.118Z","plugin":{"name":"tls","version":"0.1.0"},"subject":{"kind":"host","host":"a.test"}}"#;
        let Record::OutOfScope(old) = serde_json::from_str(old).unwrap() else {
            panic!("not out-of-scope")
        };
        assert_eq!(old.outside, std::slice::from_ref(&old.subject));
    }
}
