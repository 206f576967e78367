//! Conversions between the shared types of the bindings (`types.wit`) and
//! the host's own (`model`). Each interface's own conversions (its error
//! cases, its results) sit with its glue in `engine::host`.

use super::bindings::wscan::plugin::types as wit;
use crate::model::{
    ArgInfo, ArgKind, ArgValue, Capability, PluginInfo, Service, Severity, Subject, SubjectFilter,
    SubjectKind,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A WIT address as a `std` one, in canonical form: an IPv4-mapped IPv6
/// address from a plugin (`::ffff:192.0.2.1`) is the IPv4 address, so the
/// scope, the exclusions and the deduplication of subjects see one form.
pub fn to_ip(address: wit::IpAddress) -> IpAddr {
    match address {
        wit::IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)).to_canonical()
        }
    }
}

/// A `std` address as a WIT one.
pub fn from_ip(ip: IpAddr) -> wit::IpAddress {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            wit::IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            wit::IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

impl From<wit::Severity> for Severity {
    fn from(s: wit::Severity) -> Self {
        match s {
            wit::Severity::Info => Severity::Info,
            wit::Severity::Low => Severity::Low,
            wit::Severity::Medium => Severity::Medium,
            wit::Severity::High => Severity::High,
            wit::Severity::Critical => Severity::Critical,
        }
    }
}

impl From<wit::SubjectKind> for SubjectKind {
    fn from(k: wit::SubjectKind) -> Self {
        match k {
            wit::SubjectKind::Host => SubjectKind::Host,
            wit::SubjectKind::Address => SubjectKind::Address,
            wit::SubjectKind::Service => SubjectKind::Service,
        }
    }
}

impl From<wit::Capability> for Capability {
    fn from(c: wit::Capability) -> Self {
        match c {
            wit::Capability::Dns => Capability::Dns,
            wit::Capability::Tcp => Capability::Tcp,
            wit::Capability::Tls => Capability::Tls,
            wit::Capability::Http => Capability::Http,
        }
    }
}

impl From<wit::Subject> for Subject {
    fn from(s: wit::Subject) -> Self {
        match s {
            wit::Subject::Host(name) => Subject::Host(name),
            wit::Subject::Address(a) => Subject::Address {
                ip: to_ip(a.address),
                host: a.host,
            },
            wit::Subject::Service(s) => Subject::Service(Service {
                ip: to_ip(s.address),
                port: s.port,
                host: s.host,
                name: s.name,
                banner: s.banner,
                tls: s.tls,
            }),
        }
    }
}

impl From<&Subject> for wit::Subject {
    fn from(s: &Subject) -> Self {
        match s {
            Subject::Host(name) => wit::Subject::Host(name.clone()),
            Subject::Address { ip, host } => wit::Subject::Address(wit::AddressSubject {
                address: from_ip(*ip),
                host: host.clone(),
            }),
            Subject::Service(s) => wit::Subject::Service(wit::Service {
                address: from_ip(s.ip),
                port: s.port,
                host: s.host.clone(),
                name: s.name.clone(),
                banner: s.banner.clone(),
                tls: s.tls,
            }),
        }
    }
}

impl From<wit::PluginInfo> for PluginInfo {
    fn from(p: wit::PluginInfo) -> Self {
        PluginInfo {
            name: p.name,
            version: p.version,
            description: p.description,
            consumes: SubjectFilter {
                kinds: p.consumes.kinds.into_iter().map(Into::into).collect(),
                ports: p.consumes.ports.iter().map(|r| (r.first, r.last)).collect(),
                services: p.consumes.services,
            },
            capabilities: p.capabilities.into_iter().map(Into::into).collect(),
            args: p
                .args
                .into_iter()
                .map(|a| ArgInfo {
                    name: a.name,
                    description: a.description,
                    kind: a.kind.into(),
                    default: a.default,
                })
                .collect(),
        }
    }
}

impl From<wit::ArgKind> for ArgKind {
    fn from(k: wit::ArgKind) -> Self {
        match k {
            wit::ArgKind::Boolean => ArgKind::Boolean,
            wit::ArgKind::Integer(r) => ArgKind::Integer {
                min: r.min,
                max: r.max,
            },
            wit::ArgKind::Duration(r) => ArgKind::Duration {
                min_ms: r.min,
                max_ms: r.max,
            },
            wit::ArgKind::Text => ArgKind::Text,
            wit::ArgKind::TextList => ArgKind::TextList,
            wit::ArgKind::Choice(choices) => ArgKind::Choice { choices },
            wit::ArgKind::ChoiceList(choices) => ArgKind::ChoiceList { choices },
        }
    }
}

impl From<ArgValue> for wit::ArgValue {
    fn from(v: ArgValue) -> Self {
        match v {
            ArgValue::Boolean(b) => wit::ArgValue::Boolean(b),
            ArgValue::Integer(n) => wit::ArgValue::Integer(n),
            ArgValue::Duration(ms) => wit::ArgValue::Duration(ms),
            ArgValue::Text(s) => wit::ArgValue::Text(s),
            ArgValue::TextList(v) => wit::ArgValue::TextList(v),
            ArgValue::Choice(s) => wit::ArgValue::Choice(s),
            ArgValue::ChoiceList(v) => wit::ArgValue::ChoiceList(v),
        }
    }
}
