//! CSV for spreadsheets: one row per record, the columns the user chose
//! (`--fields`), written as records arrive.

use super::{Record, Sink};
use serde_json::Value;
use std::io::{self, Write};

/// The columns written when `--fields` is not given.
pub const DEFAULT_FIELDS: &str = "time,type,severity,plugin,kind,address,port,host,title,error";

/// Short names for the fields most asked for, and the paths into a JSON
/// Lines record (docs/output.md) they stand for.
const ALIASES: &[(&str, &str)] = &[
    ("plugin", "plugin.name"),
    ("version", "plugin.version"),
    ("address", "subject.address"),
    ("port", "subject.port"),
    ("host", "subject.host"),
    ("service", "subject.service"),
];

/// The top-level fields of a record, beside the aliases and dotted paths
/// under `data`, `subject` and `plugin`.
const TOP: &[&str] = &[
    "type", "time", "severity", "kind", "title", "error", "outside", "data", "subject", "change",
    "fields",
];

/// The columns of a diff (`wscan results diff`) when `--fields` is not
/// given.
pub const DIFF_FIELDS: &str = "change,severity,plugin,kind,address,port,host,title,fields";

/// One column: its name as given, and the path into the record it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    name: String,
    path: Vec<String>,
}

impl std::str::FromStr for Field {
    type Err = String;

    /// A field name: an alias, a top-level field, or a dotted path under
    /// `data.`, `subject.` or `plugin.` (`data.banner`, `data.chain.0.sha256`),
    /// or, in a diff, `before.` and `after.` (`after.data.status`).
    fn from_str(name: &str) -> Result<Field, String> {
        let name = name.trim();
        let path = ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, path)| *path);
        let parts: Vec<String> = path.split('.').map(String::from).collect();
        let known = match parts.as_slice() {
            [one] => TOP.contains(&one.as_str()),
            [first, rest @ ..] => {
                ["data", "subject", "plugin", "before", "after"].contains(&first.as_str())
                    && rest.iter().all(|p| !p.is_empty())
            }
            [] => false,
        };
        if !known {
            let aliases: Vec<&str> = ALIASES.iter().map(|(a, _)| *a).collect();
            return Err(format!(
                "unknown field {name:?}; use {}, {}, or a path such as data.banner or subject.port",
                TOP.join(", "),
                aliases.join(", ")
            ));
        }
        Ok(Field {
            name: name.to_string(),
            path: parts,
        })
    }
}

/// The fields of `list` (comma-separated).
pub fn parse_fields(list: &str) -> Result<Vec<Field>, String> {
    list.split(',').map(str::parse).collect()
}

/// Writes records as CSV rows (RFC 4180 quoting, by the `csv` crate).
pub struct CsvSink<W: Write + Send> {
    out: csv::Writer<W>,
    fields: Vec<Field>,
    header_done: bool,
}

impl<W: Write + Send> CsvSink<W> {
    /// A sink writing `fields` of each record to `out`.
    pub fn new(out: W, fields: Vec<Field>) -> Self {
        CsvSink {
            out: csv::Writer::from_writer(out),
            fields,
            header_done: false,
        }
    }
}

/// A cell: text as it is, numbers and booleans written out, nothing for a
/// field the record lacks, and compact JSON for objects and lists.
fn cell(record: &Value, path: &[String]) -> String {
    let mut at = record;
    for part in path {
        at = match at {
            Value::Object(map) => map.get(part).unwrap_or(&Value::Null),
            Value::Array(items) => part
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .unwrap_or(&Value::Null),
            _ => &Value::Null,
        };
    }
    match at {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl<W: Write + Send> Sink for CsvSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        if !self.header_done {
            self.out
                .write_record(self.fields.iter().map(|f| f.name.as_str()))?;
            self.header_done = true;
        }
        let value = serde_json::to_value(record)?;
        self.out
            .write_record(self.fields.iter().map(|f| cell(&value, &f.path)))?;
        // A scan can run for hours: each row is out as soon as it is found.
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

    #[test]
    fn fields_are_aliases_top_level_names_or_paths() {
        let f: Field = "port".parse().unwrap();
        assert_eq!(f.path, ["subject", "port"]);
        let f: Field = "data.chain.0.sha256".parse().unwrap();
        assert_eq!(f.path, ["data", "chain", "0", "sha256"]);
        assert!(
            "bogus"
                .parse::<Field>()
                .unwrap_err()
                .contains("unknown field \"bogus\"")
        );
        assert!("data.".parse::<Field>().is_err());
        assert_eq!(parse_fields(DEFAULT_FIELDS).unwrap().len(), 10);
    }

    #[test]
    fn rows_hold_the_chosen_fields_quoted_as_csv() {
        let plugin = PluginId {
            name: "port".into(),
            version: "1".into(),
        };
        let mut data = serde_json::Map::new();
        data.insert("banner".into(), "SSH-2.0, \"quoted\"".into());
        data.insert("ports".into(), serde_json::json!([22, 80]));
        let record = Record::finding(
            &plugin,
            Finding {
                kind: "service".into(),
                severity: Severity::Info,
                title: "22/tcp is ssh".into(),
                subject: Subject::Address {
                    ip: "::1".parse().unwrap(),
                    host: None,
                },
                data,
            },
        );
        let mut out = Vec::new();
        let mut sink = CsvSink::new(
            &mut out,
            parse_fields("plugin,address,host,data.banner,data.ports,data.ports.1").unwrap(),
        );
        sink.write(&record).unwrap();
        sink.finish().unwrap();
        drop(sink);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plugin,address,host,data.banner,data.ports,data.ports.1\nport,::1,,\"SSH-2.0, \"\"quoted\"\"\",\"[22,80]\",80\n"
        );
    }
}
