//! Conversions between the contract's types and `std`, and builders that make
//! the generated records pleasant to fill in.

use crate::bindings::wscan::plugin::types::{
    AddressSubject, ArgInfo, Capability, ErrorCode, Finding, IpAddress, PluginInfo, PortRange,
    ScanOptions, Service, Severity, Subject, SubjectFilter, SubjectKind,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Convert a contract address to a `std` one.
pub fn to_ip(address: IpAddress) -> IpAddr {
    match address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

/// Convert a `std` address to the contract's.
pub fn from_ip(address: IpAddr) -> IpAddress {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    }
}

impl PortRange {
    /// Every port in the range.
    pub fn iter(&self) -> std::ops::RangeInclusive<u16> {
        self.first..=self.last
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl SubjectFilter {
    /// A filter that matches subjects of the given kinds, any port or service.
    pub fn kinds(kinds: &[SubjectKind]) -> Self {
        SubjectFilter {
            kinds: kinds.to_vec(),
            ports: Vec::new(),
            services: Vec::new(),
        }
    }

    /// Match every host name (the names the user gave, and those plugins
    /// derive).
    pub fn hosts() -> Self {
        Self::kinds(&[SubjectKind::Host])
    }

    /// Match every IP address.
    pub fn addresses() -> Self {
        Self::kinds(&[SubjectKind::Address])
    }

    /// Match every service (narrow it with [`SubjectFilter::ports`] and
    /// [`SubjectFilter::service_names`]).
    pub fn services() -> Self {
        Self::kinds(&[SubjectKind::Service])
    }

    /// Match services on these ports (or on the names given to
    /// [`SubjectFilter::service_names`]).
    pub fn ports(mut self, ports: &[u16]) -> Self {
        self.ports
            .extend(ports.iter().map(|&p| PortRange { first: p, last: p }));
        self
    }

    /// Match services with these names (or on the ports given to
    /// [`SubjectFilter::ports`]).
    pub fn service_names(mut self, names: &[&str]) -> Self {
        self.services.extend(names.iter().map(|n| n.to_string()));
        self
    }
}

impl PluginInfo {
    /// Start describing a plugin that consumes nothing and needs nothing.
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
            consumes: SubjectFilter::kinds(&[]),
            capabilities: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Set what the plugin consumes.
    pub fn consumes(mut self, filter: SubjectFilter) -> Self {
        self.consumes = filter;
        self
    }

    /// Declare a host capability the plugin uses.
    pub fn capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Declare an argument (`--plugin-arg NAME.KEY=VALUE`), built with
    /// [`ArgInfo::boolean`], [`ArgInfo::integer`] and the like. The host
    /// checks every value the user gives against it before a scan starts.
    pub fn arg(mut self, arg: ArgInfo) -> Self {
        self.args.push(arg);
        self
    }
}

impl ScanOptions {
    /// The scan's per-operation timeout.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.timeout_ms))
    }

    /// Every port the user asked for, in order.
    pub fn port_list(&self) -> impl Iterator<Item = u16> + '_ {
        self.ports.iter().flat_map(PortRange::iter)
    }
}

impl Subject {
    /// The subject's address, when it has one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Subject::Host(_) => None,
            Subject::Address(a) => Some(to_ip(a.address)),
            Subject::Service(s) => Some(to_ip(s.address)),
        }
    }

    /// An address subject.
    pub fn address(ip: IpAddr, host: Option<String>) -> Self {
        Subject::Address(AddressSubject {
            address: from_ip(ip),
            host,
        })
    }
}

impl Service {
    /// The service's address.
    pub fn ip(&self) -> IpAddr {
        to_ip(self.address)
    }

    /// A service on `ip`:`port`, with nothing else known yet.
    pub fn new(ip: IpAddr, port: u16) -> Self {
        Service {
            address: from_ip(ip),
            port,
            host: None,
            name: None,
            banner: None,
            tls: false,
        }
    }

    /// The URL of this service's root, `base_url() + path`: `https` when
    /// it is known to speak TLS (or is named `https`/`ssl`, or listens on
    /// 443/8443), `http` otherwise; the host name it was reached through,
    /// else the address (IPv6 in brackets); the port left out when it is
    /// the scheme's default.
    pub fn url(&self, path: &str) -> String {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        format!("{}{path}", self.base_url())
    }

    /// `scheme://host[:port]`, as [`Service::url`] builds it, without a path.
    pub fn base_url(&self) -> String {
        let tls = self.speaks_tls();
        let scheme = if tls { "https" } else { "http" };
        let host = match (&self.host, to_ip(self.address)) {
            (Some(name), _) => name.clone(),
            (None, IpAddr::V6(ip)) => format!("[{ip}]"),
            (None, ip) => ip.to_string(),
        };
        let default = if tls { 443 } else { 80 };
        if self.port == default {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", self.port)
        }
    }

    /// Whether to talk TLS to it: known to (`tls`), named so by the port
    /// plugin (`https`, `ssl`...), or, with no name, on a port that
    /// usually does (443, 8443).
    pub fn speaks_tls(&self) -> bool {
        const TLS_NAMES: [&str; 7] = [
            "https",
            "https-alt",
            "ssl",
            "imaps",
            "pop3s",
            "smtps",
            "ldaps",
        ];
        self.tls
            || match self.name.as_deref() {
                Some(name) => TLS_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name)),
                None => matches!(self.port, 443 | 8443),
            }
    }
}

impl Finding {
    /// A finding with an empty `data` object; add detail with [`Finding::data`].
    pub fn new(kind: &str, severity: Severity, title: impl Into<String>, subject: Subject) -> Self {
        Finding {
            kind: kind.to_string(),
            severity,
            title: title.into(),
            subject,
            data: "{}".to_string(),
        }
    }

    /// Attach plugin-specific detail. It should be a JSON object; anything
    /// else is rejected by the host when the finding is reported.
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data.to_string();
        self
    }
}

impl ErrorCode {
    /// The error in words, for messages and findings (`connection refused`,
    /// `name not found (NXDOMAIN)`). The generated `Display` prints the
    /// Rust form instead (`ErrorCode::ConnectionRefused`).
    pub fn message(&self) -> String {
        match self {
            ErrorCode::ConnectionRefused => "connection refused".into(),
            ErrorCode::Timeout => "timed out".into(),
            ErrorCode::Unreachable => "unreachable".into(),
            ErrorCode::ConnectionReset => "connection reset".into(),
            ErrorCode::Closed => "connection closed".into(),
            ErrorCode::AccessDenied(why) => format!("access denied: {why}"),
            ErrorCode::LimitExceeded => "a per-call limit was reached".into(),
            ErrorCode::InvalidState => "result already taken".into(),
            ErrorCode::InvalidArgument(why) => format!("invalid argument: {why}"),
            ErrorCode::NameNotFound => "name not found (NXDOMAIN)".into(),
            ErrorCode::ServerFailure => "server failure (SERVFAIL)".into(),
            ErrorCode::QueryRefused => "query refused (REFUSED)".into(),
            ErrorCode::TlsFailure(why) => format!("TLS failure: {why}"),
            ErrorCode::HttpProtocol(why) => format!("HTTP protocol error: {why}"),
            ErrorCode::Unsupported => "not supported by this host".into(),
            ErrorCode::Other(why) => why.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for text in [
            "127.0.0.1",
            "0.0.0.0",
            "::1",
            "2001:db8::ff00:42:8329",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(to_ip(from_ip(ip)), ip, "{text}");
        }
    }

    #[test]
    fn filters_are_built_as_described() {
        let f = SubjectFilter::services()
            .ports(&[80, 443])
            .service_names(&["http"]);
        assert_eq!(f.kinds, [SubjectKind::Service]);
        assert_eq!(f.ports.len(), 2);
        assert_eq!((f.ports[1].first, f.ports[1].last), (443, 443));
        assert_eq!(f.services, ["http"]);
    }

    #[test]
    fn options_give_ports_and_timeout() {
        let options = ScanOptions {
            ports: vec![
                PortRange {
                    first: 20,
                    last: 22,
                },
                PortRange {
                    first: 80,
                    last: 80,
                },
            ],
            timeout_ms: 1500,
            args: Vec::new(),
        };
        assert_eq!(options.port_list().collect::<Vec<_>>(), [20, 21, 22, 80]);
        assert_eq!(options.timeout(), std::time::Duration::from_millis(1500));
        assert!(options.ports[0].contains(21) && !options.ports[0].contains(23));
    }

    #[test]
    fn findings_carry_json_data() {
        let subject = Subject::address("127.0.0.1".parse().unwrap(), None);
        let f = Finding::new("k", Severity::Low, "t", subject.clone())
            .data(serde_json::json!({"a": 1}));
        assert_eq!(f.data, r#"{"a":1}"#);
        assert_eq!(Finding::new("k", Severity::Low, "t", subject).data, "{}");
    }

    #[test]
    fn service_urls_know_scheme_name_brackets_and_default_ports() {
        let v4 = Service::new("127.0.0.1".parse().unwrap(), 8080);
        assert_eq!(v4.url("/admin"), "http://127.0.0.1:8080/admin");
        let v6 = Service::new("::1".parse().unwrap(), 443);
        assert_eq!(v6.base_url(), "https://[::1]");
        let named = Service {
            host: Some("www.example.test".into()),
            tls: true,
            ..Service::new("127.0.0.1".parse().unwrap(), 9443)
        };
        assert_eq!(named.url("x"), "https://www.example.test:9443/x");
        let plain = Service {
            name: Some("http".into()),
            ..Service::new("127.0.0.1".parse().unwrap(), 443)
        };
        assert_eq!(plain.base_url(), "http://127.0.0.1:443");
    }
}
