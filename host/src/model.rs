//! The host's own vocabulary for what scans produce: subjects, findings,
//! plugin descriptions. Free of wasmtime types; the engine converts the
//! generated bindings to and from these (`engine::convert` for the shared
//! types, `engine::host` for each interface's own).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

mod args;

pub use args::{ArgError, ArgInfo, ArgKind, ArgValue, check_declared};

/// Whether `name` is a valid plugin or argument name: 1-64 lowercase
/// letters, digits and `-`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `input` as an error quotes it: whole when short, else its first 60
/// characters and its length, so a 10 MB line makes a one-line message.
pub fn excerpt(input: &str) -> String {
    const KEEP: usize = 60;
    match input.char_indices().nth(KEEP) {
        None => input.to_string(),
        Some((end, _)) => format!("{}... ({} bytes)", &input[..end], input.len()),
    }
}

/// A network service: an open port on an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Service {
    /// Where the service listens.
    pub ip: IpAddr,
    /// The TCP port.
    pub port: u16,
    /// The host name the address was reached through, when known.
    pub host: Option<String>,
    /// A service-name guess (`http`, `ssh`...), when one was made.
    pub name: Option<String>,
    /// The first bytes the service sent, as text.
    pub banner: Option<String>,
    /// Known to speak TLS (the port plugin's identification says so).
    /// Stores written before it read back as `false`.
    #[serde(default)]
    pub tls: bool,
}

/// What a plugin scans. (Its serde form is the result store's, not the
/// output's: records flatten subjects through `output::SubjectRecord`.)
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Subject {
    /// A DNS name.
    Host(String),
    /// An address, with the name it came from when known.
    Address {
        /// The address.
        ip: IpAddr,
        /// The host name it was resolved from, if any.
        host: Option<String>,
    },
    /// An open port.
    Service(Service),
}

/// The kind of a [`Subject`], for filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// [`Subject::Host`]
    Host,
    /// [`Subject::Address`]
    Address,
    /// [`Subject::Service`]
    Service,
}

impl Subject {
    /// This subject's kind.
    pub fn kind(&self) -> SubjectKind {
        match self {
            Subject::Host(_) => SubjectKind::Host,
            Subject::Address { .. } => SubjectKind::Address,
            Subject::Service(_) => SubjectKind::Service,
        }
    }

    /// The address, for subjects that have one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Subject::Host(_) => None,
            Subject::Address { ip, .. } => Some(*ip),
            Subject::Service(s) => Some(s.ip),
        }
    }

    /// The identity used to deduplicate subjects: what a plugin would scan,
    /// without what was learned along the way (banner, service name).
    pub fn key(&self) -> SubjectKey {
        match self {
            Subject::Host(name) => SubjectKey::Host(name.to_ascii_lowercase()),
            Subject::Address { ip, .. } => SubjectKey::Address(*ip),
            Subject::Service(s) => SubjectKey::Service(s.ip, s.port),
        }
    }
}

/// See [`Subject::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectKey {
    /// A lowercased host name.
    Host(String),
    /// An address.
    Address(IpAddr),
    /// An address and port.
    Service(IpAddr, u16),
}

impl fmt::Display for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectKey::Host(name) => f.write_str(name),
            SubjectKey::Address(ip) => write!(f, "{ip}"),
            SubjectKey::Service(ip, port) => write!(f, "{}", std::net::SocketAddr::new(*ip, *port)),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Host(name) => f.write_str(name),
            Subject::Address { ip, host: Some(h) } => write!(f, "{ip} ({h})"),
            Subject::Address { ip, host: None } => write!(f, "{ip}"),
            Subject::Service(s) => match s.ip {
                IpAddr::V4(ip) => write!(f, "{ip}:{}", s.port),
                IpAddr::V6(ip) => write!(f, "[{ip}]:{}", s.port),
            },
        }
    }
}

/// How bad a finding is, from `info` to `critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// One result, as a plugin reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Machine-readable kind, such as `open-port`.
    pub kind: String,
    /// How bad it is.
    pub severity: Severity,
    /// One line for people.
    pub title: String,
    /// What it is about.
    pub subject: Subject,
    /// Plugin-specific detail; always a JSON object.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// A host capability a plugin declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// DNS queries.
    Dns,
    /// TCP connects and probes.
    Tcp,
    /// TLS handshakes.
    Tls,
    /// HTTP requests.
    Http,
}

/// Which subjects a plugin consumes (see `types.subject-filter` in the WIT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubjectFilter {
    /// Subject kinds accepted.
    pub kinds: Vec<SubjectKind>,
    /// For services: ports accepted (inclusive ranges); empty means any.
    /// Written as text in JSON: `"80"`, `"8000-8100"`.
    #[serde(serialize_with = "ranges_as_text")]
    pub ports: Vec<(u16, u16)>,
    /// For services: service names accepted; empty means any.
    pub services: Vec<String>,
}

/// A port range as people write it: `80`, `8000-8100`.
pub fn range_text(&(first, last): &(u16, u16)) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

fn ranges_as_text<S: serde::Serializer>(ranges: &[(u16, u16)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ranges.iter().map(range_text))
}

impl SubjectFilter {
    /// Why `subject` does not pass this filter, in words; `None` when it
    /// does.
    pub fn mismatch(&self, subject: &Subject) -> Option<String> {
        if self.matches(subject) {
            return None;
        }
        let kind = |k: &SubjectKind| format!("{k:?}").to_lowercase();
        if !self.kinds.contains(&subject.kind()) {
            let kinds: Vec<String> = self.kinds.iter().map(kind).collect();
            return Some(format!(
                "it consumes {}, and {subject} is {} {}",
                if kinds.is_empty() {
                    "nothing".to_string()
                } else {
                    kinds.join(" and ")
                },
                if subject.kind() == SubjectKind::Address {
                    "an"
                } else {
                    "a"
                },
                kind(&subject.kind())
            ));
        }
        let mut wants = Vec::new();
        if !self.ports.is_empty() {
            let ports: Vec<String> = self.ports.iter().map(range_text).collect();
            wants.push(format!("on ports {}", ports.join(",")));
        }
        if !self.services.is_empty() {
            wants.push(format!("named {}", self.services.join(",")));
        }
        Some(format!(
            "it consumes services {}, and {subject} is neither (a service name comes from the port plugin's identification)",
            wants.join(" or ")
        ))
    }

    /// Whether `subject` passes this filter.
    pub fn matches(&self, subject: &Subject) -> bool {
        if !self.kinds.contains(&subject.kind()) {
            return false;
        }
        let Subject::Service(service) = subject else {
            return true;
        };
        if self.ports.is_empty() && self.services.is_empty() {
            return true;
        }
        let port_ok = self
            .ports
            .iter()
            .any(|&(a, b)| (a..=b).contains(&service.port));
        let name_ok = service
            .name
            .as_deref()
            .is_some_and(|n| self.services.iter().any(|s| s.eq_ignore_ascii_case(n)));
        port_ok || name_ok
    }
}

/// A plugin's name and version, as stamped on its findings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginId {
    /// From `describe()`.
    pub name: String,
    /// From `describe()`.
    pub version: String,
}

/// What a plugin's `describe()` returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    /// Unique name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line on what it does.
    pub description: String,
    /// What it scans.
    pub consumes: SubjectFilter,
    /// Host capabilities it may use.
    pub capabilities: Vec<Capability>,
    /// Arguments it accepts.
    pub args: Vec<ArgInfo>,
}

impl PluginInfo {
    /// Check the user's `(key, text)` arguments for this plugin and give
    /// every declared argument that has a value (the user's, else its
    /// default), parsed. A key given twice takes the later value.
    pub fn resolve_args(
        &self,
        given: &[(String, String)],
    ) -> Result<Vec<(String, ArgValue)>, ArgError> {
        args::resolve(&self.name, &self.args, given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(port: u16, name: Option<&str>) -> Subject {
        Subject::Service(Service {
            ip: "127.0.0.1".parse().unwrap(),
            port,
            host: None,
            name: name.map(str::to_string),
            banner: None,
            tls: false,
        })
    }

    #[test]
    fn filter_by_kind_port_or_service_name() {
        let filter = SubjectFilter {
            kinds: vec![SubjectKind::Service],
            ports: vec![(80, 80), (8000, 8100)],
            services: vec!["http".into()],
        };
        assert!(filter.matches(&service(80, None)));
        assert!(filter.matches(&service(8050, None)));
        assert!(filter.matches(&service(9999, Some("HTTP"))));
        assert!(!filter.matches(&service(22, Some("ssh"))));
        let address = Subject::Address {
            ip: "127.0.0.1".parse().unwrap(),
            host: None,
        };
        assert!(!filter.matches(&address));
    }

    #[test]
    fn empty_port_and_name_lists_match_every_service() {
        let filter = SubjectFilter {
            kinds: vec![SubjectKind::Service],
            ..Default::default()
        };
        assert!(filter.matches(&service(1, None)));
    }

    #[test]
    fn service_key_ignores_what_was_learned() {
        assert_eq!(service(22, Some("ssh")).key(), service(22, None).key());
        assert_ne!(service(22, None).key(), service(23, None).key());
    }
}
