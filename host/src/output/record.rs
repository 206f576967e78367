//! The records wscan writes, one per finding or failed unit. Their JSON
//! form is documented in `docs/output.md` and `docs/jsonl-schema.json`.

use crate::engine::PluginId;
use crate::model::{Finding, Severity, Subject, SubjectKind};
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
}

impl From<&Subject> for SubjectRecord {
    fn from(s: &Subject) -> Self {
        let mut r = SubjectRecord {
            kind: s.kind(),
            host: None,
            address: s.ip(),
            port: None,
            service: None,
        };
        match s {
            Subject::Host(name) => r.host = Some(name.clone()),
            Subject::Address { host, .. } => r.host = host.clone(),
            Subject::Service(svc) => {
                r.host = svc.host.clone();
                r.port = Some(svc.port);
                r.service = svc.name.clone();
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

/// A subject a plugin emitted: written by `wscan plugin run` (as
/// `subject`), and by a scan for a subject outside its scope (as
/// `out-of-scope`: reported, never scanned); a scan routes the others to
/// plugins instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectEmitted {
    /// When it was emitted, RFC 3339 UTC.
    pub time: String,
    /// Who emitted it.
    pub plugin: PluginRef,
    /// The subject.
    pub subject: SubjectRecord,
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
    /// A subject a plugin found outside the scan's scope, not scanned.
    #[serde(rename = "out-of-scope")]
    OutOfScope(SubjectEmitted),
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

    /// An out-of-scope record stamped now.
    pub fn out_of_scope(plugin: &PluginId, subject: &Subject) -> Self {
        Record::OutOfScope(SubjectEmitted {
            time: now(),
            plugin: plugin.into(),
            subject: subject.into(),
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
}
