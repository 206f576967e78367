//! What changed between two scans (`wscan results diff A B`): findings
//! that appeared, disappeared or changed, keyed on plugin, kind and
//! subject, with the fields that move on their own (times, TTLs, days
//! left) ignored.

use crate::output::{Change, ChangeRecord, FindingRecord, FindingState, SubjectRecord};
use serde_json::Value;
use std::collections::BTreeMap;

/// Fields of a finding's data that differ between two scans of an
/// unchanged world, ignored wherever they are in `data`: the DNS answer's
/// remaining TTL, an HTTP request's timing, a certificate's days left.
pub const VOLATILE: &[&str] = &["ttl", "elapsed_ms", "days_left"];

/// The most changed paths named in one change record.
const MAX_FIELDS: usize = 20;

/// What identifies a finding across scans: its subject (address, host
/// name and port; not the service's name guess, which is a finding's
/// content), plugin and kind; in that order, so changes sort by subject.
type Key = (
    Option<std::net::IpAddr>,
    Option<String>,
    Option<u16>,
    String,
    String,
);

fn key(f: &FindingRecord) -> Key {
    let s: &SubjectRecord = &f.subject;
    (
        s.address,
        s.host.clone(),
        s.port,
        f.plugin.name.clone(),
        f.kind.clone(),
    )
}

/// A finding's content as compared: severity and data, the ignored fields
/// taken out (at any depth). Two findings are the same when these are.
fn content(f: &FindingRecord, ignore: &[String]) -> Value {
    let mut data = Value::Object(f.data.clone());
    strip(&mut data, ignore);
    serde_json::json!({"severity": f.severity, "data": data})
}

fn strip(value: &mut Value, ignore: &[String]) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !ignore.iter().any(|i| i == k));
            map.values_mut().for_each(|v| strip(v, ignore));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip(v, ignore)),
        _ => {}
    }
}

/// The paths (`severity`, `data.chain.0.sha256`) where `a` and `b` differ.
fn changed_paths(a: &Value, b: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    if out.len() >= MAX_FIELDS || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                path.push(k.clone());
                changed_paths(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    path,
                    out,
                );
                path.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                path.push(i.to_string());
                changed_paths(p, q, path, out);
                path.pop();
            }
        }
        _ => out.push(path.join(".")),
    }
}

/// The differences from `before` to `after` (the findings of two scans),
/// ignoring the data fields named in `ignore`; in the order of their
/// subjects (address, host name, port), then plugin and kind.
///
/// Findings with the same key are matched by content first; what is left
/// on both sides is paired as changed (in order of content), and the rest
/// appeared or disappeared. So a name whose A record moved to a new
/// address is one change, and a second MX record is one appearance.
pub fn diff(
    before: Vec<FindingRecord>,
    after: Vec<FindingRecord>,
    ignore: &[String],
) -> Vec<ChangeRecord> {
    type Side = Vec<(Value, FindingRecord)>;
    let mut groups: BTreeMap<Key, (Side, Side)> = BTreeMap::new();
    for f in before {
        let c = content(&f, ignore);
        groups.entry(key(&f)).or_default().0.push((c, f));
    }
    for f in after {
        let c = content(&f, ignore);
        groups.entry(key(&f)).or_default().1.push((c, f));
    }
    let mut changes = Vec::new();
    for (mut old, mut new) in groups.into_values() {
        // Drop what both sides have (as many times as both have it).
        old.retain(|(c, _)| match new.iter().position(|(d, _)| d == c) {
            Some(i) => {
                new.remove(i);
                false
            }
            None => true,
        });
        let order = |a: &(Value, FindingRecord), b: &(Value, FindingRecord)| {
            a.0.to_string().cmp(&b.0.to_string())
        };
        old.sort_by(order);
        new.sort_by(order);
        let mut old = old.into_iter();
        let mut new = new.into_iter();
        loop {
            match (old.next(), new.next()) {
                (Some((a, was)), Some((b, is))) => {
                    let mut fields = Vec::new();
                    changed_paths(&a, &b, &mut Vec::new(), &mut fields);
                    changes.push(ChangeRecord {
                        change: Change::Changed,
                        plugin: is.plugin.clone(),
                        kind: is.kind.clone(),
                        severity: is.severity,
                        title: is.title.clone(),
                        subject: is.subject.clone(),
                        fields,
                        before: Some((&was).into()),
                        after: Some((&is).into()),
                    });
                }
                (Some((_, was)), None) => changes.push(one_sided(Change::Disappeared, &was)),
                (None, Some((_, is))) => changes.push(one_sided(Change::Appeared, &is)),
                (None, None) => break,
            }
        }
    }
    changes
}

fn one_sided(change: Change, f: &FindingRecord) -> ChangeRecord {
    let state: FindingState = f.into();
    let (before, after) = match change {
        Change::Disappeared => (Some(state), None),
        _ => (None, Some(state)),
    };
    ChangeRecord {
        change,
        plugin: f.plugin.clone(),
        kind: f.kind.clone(),
        severity: f.severity,
        title: f.title.clone(),
        subject: f.subject.clone(),
        fields: Vec::new(),
        before,
        after,
    }
}

/// The ignored fields: [`VOLATILE`] and the user's.
pub fn ignored(extra: &[String]) -> Vec<String> {
    VOLATILE
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Finding, PluginId, Service, Severity, Subject};
    use crate::output::Record;
    use serde_json::json;

    fn finding(plugin: &str, kind: &str, port: u16, data: Value) -> FindingRecord {
        let subject = Subject::Service(Service {
            ip: "127.0.0.1".parse().unwrap(),
            port,
            host: None,
            name: None,
            banner: None,
            tls: false,
        });
        let Record::Finding(f) = Record::finding(
            &PluginId {
                name: plugin.into(),
                version: "1".into(),
            },
            Finding {
                kind: kind.into(),
                severity: Severity::Info,
                title: format!("{kind} on {port}"),
                subject,
                data: data.as_object().unwrap().clone(),
            },
        ) else {
            unreachable!()
        };
        f
    }

    #[test]
    fn opened_closed_and_changed_are_told_apart_and_volatile_fields_ignored() {
        let before = vec![
            finding("port", "open-port", 22, json!({})),
            finding("port", "open-port", 80, json!({})),
            finding(
                "tls",
                "tls-certificate",
                443,
                json!({"chain": [{"sha256": "aa"}], "days_left": 30}),
            ),
            finding(
                "dns",
                "dns-record",
                53,
                json!({"type": "A", "value": "1.1.1.1", "ttl": 300}),
            ),
            finding(
                "dns",
                "dns-record",
                53,
                json!({"type": "MX", "value": "10 mx.", "ttl": 300}),
            ),
        ];
        let after = vec![
            finding("port", "open-port", 80, json!({})),
            finding("port", "open-port", 8080, json!({})),
            finding(
                "tls",
                "tls-certificate",
                443,
                json!({"chain": [{"sha256": "bb"}], "days_left": 29}),
            ),
            finding(
                "dns",
                "dns-record",
                53,
                json!({"type": "MX", "value": "10 mx.", "ttl": 12}),
            ),
            finding(
                "dns",
                "dns-record",
                53,
                json!({"type": "A", "value": "1.1.1.1", "ttl": 1}),
            ),
        ];
        let changes = diff(before, after, &ignored(&[]));
        let summary: Vec<(Change, &str, Option<u16>, Vec<String>)> = changes
            .iter()
            .map(|c| (c.change, c.kind.as_str(), c.subject.port, c.fields.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (Change::Disappeared, "open-port", Some(22), vec![]),
                (
                    Change::Changed,
                    "tls-certificate",
                    Some(443),
                    vec!["data.chain.0.sha256".to_string()]
                ),
                (Change::Appeared, "open-port", Some(8080), vec![]),
            ]
        );
        // Ignoring the fingerprint too, the certificate is unchanged.
        let again = diff(
            vec![finding(
                "tls",
                "tls-certificate",
                443,
                json!({"sha256": "aa"}),
            )],
            vec![finding(
                "tls",
                "tls-certificate",
                443,
                json!({"sha256": "bb"}),
            )],
            &ignored(&["sha256".into()]),
        );
        assert!(again.is_empty(), "{again:?}");
    }
}
