//! Targets and ports: parsing what the user typed, and expanding it lazily.
//!
//! A target list is kept as the user wrote it (a few CIDR blocks) and walked
//! address by address, so a /8 costs no memory.

mod ports;
mod space;
mod top_ports;

pub use ports::{PortSpec, PortSpecError};
pub use space::{Order, Permutation, Shard, TargetSpace};

use ipnet::{IpAddrRange, IpNet, Ipv4AddrRange, Ipv6AddrRange};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

/// Why a target could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Neither an address, a CIDR block nor a range.
    #[error(
        "invalid target {0:?}: expected an IPv4 or IPv6 address (192.0.2.1, 2001:db8::1), a CIDR block (192.0.2.0/24), a range (192.0.2.1-192.0.2.50, 192.0.2.1-50), a host name (www.example.com), HOST:PORT (192.0.2.1:8080, [2001:db8::1]:443) or a URL (https://www.example.com:8443/)"
    )]
    Malformed(String),
    /// A CIDR block with a prefix length too long for its family.
    #[error(
        "invalid target {input:?}: prefix length /{prefix} is too long for an {family} address (at most /{max})"
    )]
    Prefix {
        /// What the user wrote.
        input: String,
        /// The prefix length given.
        prefix: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The family's maximum.
        max: u8,
    },
    /// A `host:port` or URL that is not right.
    #[error(
        "invalid target {input:?}: {why}; expected HOST:PORT (192.0.2.1:8080, [2001:db8::1]:443, www.example.com:8443) or an http(s) URL"
    )]
    Port {
        /// What the user wrote.
        input: String,
        /// What is wrong with it.
        why: String,
    },
    /// A range whose end is before its start, or mixes families.
    #[error(
        "invalid target {0:?}: a range goes from a lower address to a higher one of the same family"
    )]
    Range(String),
}

pub use crate::model::excerpt;

/// One target as given: an address, a CIDR block or a range, kept as the
/// inclusive range of addresses it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    first: IpAddr,
    last: IpAddr,
}

/// An address as a number, for arithmetic on ranges.
fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address `n` of the same family as `like`.
fn from_u128(n: u128, like: IpAddr) -> IpAddr {
    match like {
        // In range by construction: v4 targets only produce v4 offsets.
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(n as u32)),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(n)),
    }
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        let malformed = || TargetError::Malformed(excerpt(input));
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Target::from(ip));
        }
        if let Some((addr, prefix)) = s.split_once('/') {
            let ip: IpAddr = addr.parse().map_err(|_| malformed())?;
            let (family, max) = if ip.is_ipv4() {
                ("IPv4", 32)
            } else {
                ("IPv6", 128)
            };
            let len: u8 = prefix.parse().map_err(|_| malformed())?;
            let net = IpNet::new(ip, len).map_err(|_| TargetError::Prefix {
                input: excerpt(input),
                prefix: prefix.to_string(),
                family,
                max,
            })?;
            // 10.0.0.7/24 means the whole block, as in nmap.
            return Ok(Target::canonical(net.network(), net.broadcast()));
        }
        if let Some((a, b)) = s.split_once('-') {
            let first: IpAddr = a.trim().parse().map_err(|_| malformed())?;
            let b = b.trim();
            let last: IpAddr = match (first, b.parse::<u8>()) {
                // 192.0.2.1-50: the last octet's range, as in nmap.
                (IpAddr::V4(v4), Ok(octet)) => {
                    let [x, y, z, _] = v4.octets();
                    IpAddr::V4(std::net::Ipv4Addr::new(x, y, z, octet))
                }
                _ => b.parse().map_err(|_| malformed())?,
            };
            if first.is_ipv4() != last.is_ipv4() || to_u128(first) > to_u128(last) {
                return Err(TargetError::Range(excerpt(input)));
            }
            return Ok(Target::canonical(first, last));
        }
        Err(malformed())
    }
}

impl From<IpAddr> for Target {
    fn from(ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        Target {
            first: ip,
            last: ip,
        }
    }
}

/// The IPv4-mapped block, `::ffff:0.0.0.0/96`, as numbers.
const MAPPED_FIRST: u128 = 0xffff << 32;
const MAPPED_LAST: u128 = MAPPED_FIRST | 0xffff_ffff;

impl Target {
    /// The range `first..=last` (same family, in order) in canonical form:
    /// a range of IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) is the
    /// IPv4 range it carries, so that a target, an exclusion and an
    /// address a plugin names compare equal however they were written.
    /// A range that only partly covers the mapped block keeps its IPv6
    /// form (see [`Target::canonical_pieces`]).
    fn canonical(first: IpAddr, last: IpAddr) -> Self {
        let (a, b) = (first.to_canonical(), last.to_canonical());
        if a.is_ipv4() == b.is_ipv4() {
            Target { first: a, last: b }
        } else {
            Target { first, last }
        }
    }

    /// This target split so that each piece is in canonical form. An IPv6
    /// range wholly inside `::ffff:0:0/96` is the IPv4 range it maps. An
    /// IPv6 range that only partly covers that block (`::/80`, `::/0`)
    /// means its IPv6 addresses: the mapped part is left out, so that an
    /// IPv6 block never stands for the IPv4 Internet, as a target or as an
    /// exclusion. Most targets are one piece.
    pub fn canonical_pieces(&self) -> impl Iterator<Item = Target> + use<> {
        let (a, b) = (to_u128(self.first), to_u128(self.last));
        let v6 = |x: u128, y: u128| Target {
            first: IpAddr::V6(x.into()),
            last: IpAddr::V6(y.into()),
        };
        let v4 = |x: u128, y: u128| Target {
            first: IpAddr::V4((x as u32).into()),
            last: IpAddr::V4((y as u32).into()),
        };
        let pieces: [Option<Target>; 3] = if self.first.is_ipv4() {
            [Some(*self), None, None]
        } else {
            [
                (a < MAPPED_FIRST).then(|| v6(a, b.min(MAPPED_FIRST - 1))),
                (a >= MAPPED_FIRST && b <= MAPPED_LAST)
                    .then(|| v4(a - MAPPED_FIRST, b - MAPPED_FIRST)),
                (b > MAPPED_LAST).then(|| v6(a.max(MAPPED_LAST + 1), b)),
            ]
        };
        pieces.into_iter().flatten()
    }

    /// The CIDR blocks that exactly cover this target.
    pub fn nets(&self) -> Vec<IpNet> {
        match (self.first, self.last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                ipnet::Ipv4Subnets::new(a, b, 0).map(IpNet::V4).collect()
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                ipnet::Ipv6Subnets::new(a, b, 0).map(IpNet::V6).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Every address, in order, generated on demand.
    pub fn addresses(&self) -> IpAddrRange {
        match (self.first, self.last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => IpAddrRange::V4(Ipv4AddrRange::new(a, b)),
            (IpAddr::V6(a), IpAddr::V6(b)) => IpAddrRange::V6(Ipv6AddrRange::new(a, b)),
            _ => IpAddrRange::V4(Ipv4AddrRange::new(1.into(), 0.into())),
        }
    }

    /// The first address covered.
    pub fn first(&self) -> IpAddr {
        self.first
    }

    /// The last address covered.
    pub fn last(&self) -> IpAddr {
        self.last
    }

    /// How many addresses (saturating at `u128::MAX` for `::/0`).
    pub fn len(&self) -> u128 {
        (to_u128(self.last) - to_u128(self.first)).saturating_add(1)
    }

    /// Never true: every target covers at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `i`th address (`i < len()`).
    pub fn nth(&self, i: u128) -> IpAddr {
        from_u128(to_u128(self.first) + i, self.first)
    }
}

/// A host name as a scan takes it: lowercase, without the trailing dot;
/// `None` when `input` is not a valid DNS name. A name must contain a
/// letter, so that a mistyped address (`10.0.0`) is not taken for one.
pub fn host_name(input: &str) -> Option<String> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            // Underscores appear in real names (`_dmarc`, SRV owners).
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let s = input.trim();
    let name = s.strip_suffix('.').unwrap_or(s);
    (name.len() <= 253
        && name.split('.').all(label_ok)
        && name.bytes().any(|b| b.is_ascii_alphabetic()))
    .then(|| name.to_ascii_lowercase())
}

/// Where a `host:port` or URL target points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// An address.
    Ip(IpAddr),
    /// A DNS name, lowercase, without the trailing dot.
    Name(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Ip(ip) => write!(f, "{ip}"),
            Endpoint::Name(name) => f.write_str(name),
        }
    }
}

/// What a scan never touches (`--exclude`, `--exclude-file`): the one rule
/// every check applies, whether the scope judges an operation, the address
/// sweep walks or counts its targets, or a `-i` line is expanded. An
/// interval set, looked up in logarithmic time however many entries it
/// has; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4
/// address it maps, both in the set and when looked up.
#[derive(Debug, Default, Clone)]
pub struct Exclusions(RangeSet);

impl Exclusions {
    /// Exclusions of `targets`.
    pub fn of<'a>(targets: impl IntoIterator<Item = &'a Target>) -> Self {
        Exclusions(RangeSet::of(targets))
    }

    /// Exclude `target` too.
    pub fn insert(&mut self, target: &Target) {
        self.0.insert(target);
    }

    /// Whether `ip` is excluded.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// The excluded runs of `target` (one canonical piece), as inclusive
    /// offsets from its first address (see [`RangeSet::overlaps`]).
    pub(crate) fn overlaps(&self, target: &Target) -> impl Iterator<Item = (u128, u128)> + '_ {
        self.0.overlaps(target)
    }
}

/// Disjoint inclusive address ranges, merged as they are added: the user's
/// targets or exclusions, one entry per run of adjacent addresses, looked
/// up in logarithmic time however many lines a target file had.
///
/// Addresses are kept in canonical form ([`Target::canonical_pieces`]):
/// `::ffff:192.0.2.1` is `192.0.2.1`, on the way in and when looked up.
#[derive(Debug, Default, Clone)]
pub struct RangeSet {
    /// IPv4 and IPv6 apart: first address -> last address.
    v4: BTreeMap<u128, u128>,
    v6: BTreeMap<u128, u128>,
}

fn key(ip: IpAddr) -> (bool, u128) {
    (ip.is_ipv4(), to_u128(ip))
}

impl RangeSet {
    /// A set holding `targets`.
    pub fn of<'a>(targets: impl IntoIterator<Item = &'a Target>) -> Self {
        let mut set = RangeSet::default();
        for target in targets {
            set.insert(target);
        }
        set
    }

    /// The parts of `target` not in the set yet, in address order (the
    /// IPv4-mapped part of an IPv6 range comes back as IPv4).
    pub fn uncovered(&self, target: &Target) -> Vec<Target> {
        let mut pieces = Vec::new();
        for piece in target.canonical_pieces() {
            self.uncovered_piece(&piece, &mut pieces);
        }
        pieces
    }

    fn uncovered_piece(&self, target: &Target, pieces: &mut Vec<Target>) {
        let ((v4, first), (_, last)) = (key(target.first), key(target.last));
        let map = if v4 { &self.v4 } else { &self.v6 };
        let piece = |a: u128, b: u128| Target {
            first: from_u128(a, target.first),
            last: from_u128(b, target.first),
        };
        let mut next = first;
        // Ranges that start before `first` may still cover its beginning.
        let before = map.range(..first).next_back().map(|(&s, &e)| (s, e));
        for (start, end) in before
            .into_iter()
            .chain(map.range(first..=last).map(|(&s, &e)| (s, e)))
        {
            if end < next {
                continue;
            }
            if start > next {
                pieces.push(piece(next, start - 1));
            }
            if end >= last {
                return;
            }
            next = end + 1;
        }
        pieces.push(piece(next, last));
    }

    fn family(&mut self, v4: bool) -> &mut BTreeMap<u128, u128> {
        if v4 { &mut self.v4 } else { &mut self.v6 }
    }

    /// Add `target`'s addresses.
    pub fn insert(&mut self, target: &Target) {
        for piece in target.canonical_pieces() {
            self.insert_piece(&piece);
        }
    }

    fn insert_piece(&mut self, target: &Target) {
        let ((v4, mut first), (_, mut last)) = (key(target.first), key(target.last));
        let map = self.family(v4);
        // Swallow every range that overlaps or touches [first, last].
        if let Some((&start, &end)) = map.range(..=first).next_back()
            && end.saturating_add(1) >= first
        {
            first = start;
            last = last.max(end);
        }
        let touching: Vec<u128> = map
            .range(first..=last.saturating_add(1))
            .map(|(&s, _)| s)
            .collect();
        for start in touching {
            if let Some(end) = map.remove(&start) {
                last = last.max(end);
            }
        }
        map.insert(first, last);
    }

    /// How many disjoint ranges the set holds (its memory, in effect).
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.ranges() == 0
    }

    /// Whether `ip` is in the set.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v4, n) = key(ip.to_canonical());
        let map = if v4 { &self.v4 } else { &self.v6 };
        map.range(..=n)
            .next_back()
            .is_some_and(|(_, &end)| n <= end)
    }

    /// The runs of `target`'s addresses (one canonical piece) the set
    /// holds, as inclusive offsets from its first address: found from the
    /// ranges that overlap it, never by walking its addresses.
    pub(crate) fn overlaps(&self, target: &Target) -> impl Iterator<Item = (u128, u128)> + '_ {
        let ((v4, first), (_, last)) = (key(target.first), key(target.last));
        let map = if v4 { &self.v4 } else { &self.v6 };
        let before = map.range(..first).next_back().map(|(&s, &e)| (s, e));
        before
            .into_iter()
            .chain(map.range(first..=last).map(|(&s, &e)| (s, e)))
            .filter(move |&(_, end)| end >= first)
            .map(move |(start, end)| (start.max(first) - first, end.min(last) - first))
    }
}

/// Split `targets` into disjoint pieces, each target less what earlier ones
/// cover, in the order given: overlapping targets are scanned once.
pub fn disjoint(targets: &[Target]) -> Vec<Target> {
    let mut seen = RangeSet::default();
    let mut pieces = Vec::new();
    for target in targets {
        pieces.extend(seen.uncovered(target));
        seen.insert(target);
    }
    pieces
}

/// A scan target as the user wrote it: addresses, a host name that the
/// scan resolves (through a plugin that consumes host names, such as dns),
/// or one port of a host (`host:port`, or a URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetArg {
    /// An address, a CIDR block or a range.
    Addresses(Target),
    /// A DNS name, lowercase, without the trailing dot.
    Host(String),
    /// `host:port`, `[v6]:port` or `http(s)://host[:port][/path]`: that
    /// port only (a URL's path is not kept: the http plugin asks for
    /// `http.path`).
    Port {
        /// The address or name.
        host: Endpoint,
        /// The port.
        port: u16,
    },
}

/// The error for a malformed `host:port` or URL.
fn bad_port_target(input: &str, why: &str) -> TargetError {
    TargetError::Port {
        input: excerpt(input),
        why: why.to_string(),
    }
}

/// Parse `host:port`, `[v6]:port` or an http/https URL; `None` when
/// `input` has neither shape.
fn parse_port_target(input: &str) -> Option<Result<TargetArg, TargetError>> {
    let s = input.trim();
    let endpoint = |host: &str| -> Result<Endpoint, TargetError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Endpoint::Ip(ip.to_canonical()));
        }
        host_name(host)
            .map(Endpoint::Name)
            .ok_or_else(|| bad_port_target(input, "not an address or host name"))
    };
    if s.contains("://") {
        let parsed = (|| {
            let url = url::Url::parse(s).map_err(|e| bad_port_target(input, &e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(bad_port_target(
                    input,
                    "only http and https URLs are targets",
                ));
            }
            let host = url
                .host_str()
                .ok_or_else(|| bad_port_target(input, "the URL has no host"))?;
            let port = url
                .port_or_known_default()
                .ok_or_else(|| bad_port_target(input, "no port"))?;
            Ok(TargetArg::Port {
                host: endpoint(host)?,
                port,
            })
        })();
        return Some(parsed);
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        (host, port)
    } else {
        let (host, port) = s.rsplit_once(':')?;
        // A bare IPv6 address has colons too: it is not host:port.
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Some(Err(bad_port_target(input, "the port must be 1-65535"))),
    };
    Some(endpoint(host).map(|host| TargetArg::Port { host, port }))
}

impl FromStr for TargetArg {
    type Err = TargetError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if let Some(parsed) = parse_port_target(input) {
            return parsed;
        }
        match input.parse::<Target>() {
            Ok(target) => Ok(TargetArg::Addresses(target)),
            // Only input that is not address-shaped at all may be a name:
            // a bad prefix or a backwards range keeps its own error.
            Err(TargetError::Malformed(_)) => host_name(input)
                .map(TargetArg::Host)
                .ok_or_else(|| TargetError::Malformed(excerpt(input))),
            Err(e) => Err(e),
        }
    }
}

/// Parse one subject as a plugin author types it for `wscan plugin run`:
/// `192.0.2.1:443` or `[2001:db8::1]:443` is a service, `192.0.2.1` an
/// address, `www.example.test` a host name.
pub fn parse_subject(input: &str) -> Result<crate::model::Subject, String> {
    use crate::model::{Service, Subject};
    let s = input.trim();
    // NAME@ADDRESS[:PORT]: the address reached through a host name (the
    // Host header and SNI of the http and tls plugins).
    if let Some((name, rest)) = s.split_once('@') {
        if rest.contains('@') {
            return Err(format!("invalid subject {input:?}: one '@' at most"));
        }
        let name = host_name(name).ok_or_else(|| {
            format!("invalid subject {input:?}: {name:?} before '@' is not a host name")
        })?;
        return match parse_subject(rest) {
            Ok(Subject::Service(service)) => Ok(Subject::Service(Service {
                host: Some(name),
                ..service
            })),
            Ok(Subject::Address { ip, .. }) => Ok(Subject::Address {
                ip,
                host: Some(name),
            }),
            _ => Err(format!(
                "invalid subject {input:?}: after '@' comes an address or ADDRESS:PORT"
            )),
        };
    }
    if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("invalid subject {input:?}: port 0"));
        }
        return Ok(Subject::Service(Service {
            ip: addr.ip().to_canonical(),
            port: addr.port(),
            host: None,
            name: None,
            banner: None,
            tls: false,
        }));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Subject::Address {
            ip: ip.to_canonical(),
            host: None,
        });
    }
    host_name(s).map(Subject::Host).ok_or_else(|| {
        format!("invalid subject {input:?}: expected ADDRESS:PORT (a service), an address, a host name, or NAME@ADDRESS[:PORT] (reached through a name)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(t: &str) -> Vec<String> {
        let target: Target = t.parse().unwrap();
        target.addresses().map(|a| a.to_string()).collect()
    }

    #[test]
    fn host_names_are_targets_but_bad_addresses_are_not() {
        let arg = |s: &str| s.parse::<TargetArg>();
        assert_eq!(
            arg("WWW.Example.test."),
            Ok(TargetArg::Host("www.example.test".into()))
        );
        assert_eq!(arg("localhost"), Ok(TargetArg::Host("localhost".into())));
        assert!(matches!(arg("10.0.0.0/8"), Ok(TargetArg::Addresses(_))));
        for bad in [
            "10.0.0",
            "10.0.0.256",
            "-bad.test",
            "a..b",
            "bad name",
            "10.0.0.0/40",
        ] {
            assert!(arg(bad).is_err(), "{bad} accepted");
        }
        assert!(matches!(
            arg("10.0.0.0/40"),
            Err(TargetError::Prefix { .. })
        ));
    }

    #[test]
    fn host_port_and_urls_are_one_port_targets() {
        let port = |s: &str| match s.parse::<TargetArg>() {
            Ok(TargetArg::Port { host, port }) => (host.to_string(), port),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(port("127.0.0.1:8080"), ("127.0.0.1".into(), 8080));
        assert_eq!(port("[::1]:443"), ("::1".into(), 443));
        assert_eq!(
            port("WWW.Example.test:8443"),
            ("www.example.test".into(), 8443)
        );
        assert_eq!(
            port("http://www.example.test"),
            ("www.example.test".into(), 80)
        );
        assert_eq!(
            port("https://www.example.test/a?b"),
            ("www.example.test".into(), 443)
        );
        assert_eq!(port("https://127.0.0.1:9443/"), ("127.0.0.1".into(), 9443));
        assert_eq!(port("http://[::1]:8080/x"), ("::1".into(), 8080));
        // A bare IPv6 address is an address, not host:port.
        assert!(matches!(
            "::1".parse::<TargetArg>(),
            Ok(TargetArg::Addresses(_))
        ));
        assert!(matches!(
            "2001:db8::1".parse::<TargetArg>(),
            Ok(TargetArg::Addresses(_))
        ));
        for bad in [
            "127.0.0.1:0",
            "127.0.0.1:70000",
            "127.0.0.1:http",
            "ftp://www.example.test/",
            "http://",
            "bad name:80",
            "[::1]:x",
        ] {
            let e = bad.parse::<TargetArg>().unwrap_err();
            assert!(e.to_string().contains("HOST:PORT"), "{bad}: {e}");
        }
    }

    #[test]
    fn overlapping_targets_are_split_into_disjoint_pieces() {
        let t = |s: &str| s.parse::<Target>().unwrap();
        let text = |ts: Vec<Target>| -> Vec<String> {
            ts.iter()
                .map(|t| format!("{}-{}", t.first, t.last))
                .collect()
        };
        assert_eq!(
            text(disjoint(&[
                t("10.0.0.4-8"),
                t("10.0.0.0/28"),
                t("10.0.0.5"),
                t("::1")
            ])),
            [
                "10.0.0.4-10.0.0.8",
                "10.0.0.0-10.0.0.3",
                "10.0.0.9-10.0.0.15",
                "::1-::1"
            ]
        );
        let mut set = RangeSet::default();
        set.insert(&t("10.0.0.2-3"));
        set.insert(&t("10.0.0.6-7"));
        assert_eq!(
            text(set.uncovered(&t("10.0.0.0-10.0.0.9"))),
            [
                "10.0.0.0-10.0.0.1",
                "10.0.0.4-10.0.0.5",
                "10.0.0.8-10.0.0.9"
            ]
        );
        assert!(set.uncovered(&t("10.0.0.6")).is_empty());
        assert_eq!(text(set.uncovered(&t("10.0.0.3-4"))), ["10.0.0.4-10.0.0.4"]);
        let all = t("0.0.0.0/0");
        set.insert(&all);
        assert!(set.uncovered(&t("255.255.255.255")).is_empty());
        assert_eq!(text(set.uncovered(&t("::/128"))), ["::-::"]);
    }

    #[test]
    fn an_ipv6_block_never_stands_for_the_ipv4_internet() {
        let t = |s: &str| s.parse::<Target>().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Wholly mapped: the IPv4 addresses it carries.
        assert_eq!(t("::ffff:10.0.0.0/120"), t("10.0.0.0/24"));
        assert_eq!(t("::ffff:10.0.0.1"), t("10.0.0.1"));
        // Partly: its IPv6 addresses only, as a target or an exclusion.
        for block in ["::/80", "::/0", "::fffe:0:0-::1:0:0:0"] {
            let set = RangeSet::of(&[t(block)]);
            assert!(!set.contains(ip("10.0.0.1")), "{block}");
            assert!(!set.contains(ip("::ffff:10.0.0.1")), "{block}");
            assert!(set.contains(ip("::fffe:0:1")), "{block}");
            let pieces: Vec<Target> = t(block).canonical_pieces().collect();
            assert!(
                pieces.iter().all(|p| p.first.is_ipv6()),
                "{block}: {pieces:?}"
            );
        }
        assert_eq!(t("::/80").canonical_pieces().count(), 1);
        assert_eq!(t("::/0").canonical_pieces().count(), 2);
    }

    #[test]
    fn single_addresses_v4_and_v6() {
        assert_eq!(ips("127.0.0.1"), ["127.0.0.1"]);
        assert_eq!(ips("::1"), ["::1"]);
    }

    #[test]
    fn cidr_covers_network_and_broadcast() {
        let all = ips("192.0.2.0/30");
        assert_eq!(all, ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"]);
        assert_eq!(ips("2001:db8::/127"), ["2001:db8::", "2001:db8::1"]);
    }

    #[test]
    fn host_bits_in_cidr_are_ignored() {
        assert_eq!(ips("192.0.2.7/31"), ["192.0.2.6", "192.0.2.7"]);
    }

    #[test]
    fn huge_blocks_are_lazy_and_counted() {
        let t: Target = "10.0.0.0/8".parse().unwrap();
        assert_eq!(t.len(), 1 << 24);
        assert_eq!(t.addresses().nth(1).unwrap().to_string(), "10.0.0.1");
        let v6: Target = "::/0".parse().unwrap();
        assert_eq!(v6.len(), u128::MAX);
    }

    #[test]
    fn ranges_full_and_last_octet() {
        assert_eq!(
            ips("192.0.2.1-192.0.2.3"),
            ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        );
        assert_eq!(ips("192.0.2.254-255"), ["192.0.2.254", "192.0.2.255"]);
        assert_eq!(
            ips("2001:db8::1-2001:db8::2"),
            ["2001:db8::1", "2001:db8::2"]
        );
        let t: Target = "10.0.0.1-10.0.1.0".parse().unwrap();
        assert_eq!(t.len(), 256);
        assert_eq!(t.nets().len(), 9, "{:?}", t.nets());
        for bad in [
            "10.0.0.5-10.0.0.1",
            "10.0.0.5-1",
            "10.0.0.1-::1",
            "10.0.0.1-300",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_parse_by_shape() {
        use crate::model::Subject;
        assert!(
            matches!(parse_subject("127.0.0.1:8080"), Ok(Subject::Service(s)) if s.port == 8080)
        );
        assert!(matches!(parse_subject("[::1]:443"), Ok(Subject::Service(s)) if s.ip.is_ipv6()));
        assert!(matches!(parse_subject("::1"), Ok(Subject::Address { .. })));
        assert_eq!(
            parse_subject("WWW.Example.test.").unwrap(),
            Subject::Host("www.example.test".into())
        );
        assert_eq!(
            parse_subject("WWW.wscan.test@127.0.0.1:8443").unwrap(),
            Subject::Service(crate::model::Service {
                ip: "127.0.0.1".parse().unwrap(),
                port: 8443,
                host: Some("www.wscan.test".into()),
                name: None,
                banner: None,
                tls: false,
            })
        );
        assert_eq!(
            parse_subject("a.test@::ffff:10.0.0.1").unwrap(),
            Subject::Address {
                ip: "10.0.0.1".parse().unwrap(),
                host: Some("a.test".into())
            }
        );
        for bad in [
            "",
            "1.2.3.4:0",
            "-bad-.test",
            "a b",
            "127.0.0.1:99999",
            "a.test@b.test",
            "@127.0.0.1",
            "a.test@",
            "a.test@b.test@127.0.0.1",
        ] {
            assert!(parse_subject(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_targets_say_what_was_expected() {
        for bad in ["", "300.1.1.1", "1.2.3", "example", "10.0.0.0/x", "::1/"] {
            let err = bad.parse::<Target>().unwrap_err();
            assert!(matches!(err, TargetError::Malformed(_)), "{bad}: {err}");
            assert!(err.to_string().contains("CIDR"), "{err}");
        }
        let err = "10.0.0.0/33".parse::<Target>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid target \"10.0.0.0/33\": prefix length /33 is too long for an IPv4 address (at most /32)"
        );
    }
}

/// Property tests: no input makes the target or port parsers panic, and
/// what they accept means what it says.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_text_is_a_target_or_an_error(s in "\\PC{0,80}") {
            let _ = s.parse::<TargetArg>();
            let _ = s.parse::<Target>();
            let _ = parse_subject(&s);
        }

        #[test]
        fn target_shaped_text_never_panics(
            s in "[0-9a-fA-F:.\\-/\\[\\]]{0,60}(:[0-9]{0,7})?",
        ) {
            if let Ok(TargetArg::Addresses(t)) = s.parse::<TargetArg>() {
                prop_assert_eq!(t.addresses().next(), Some(t.first()));
                prop_assert!(to_u128(t.first()) <= to_u128(t.last()));
            }
        }

        #[test]
        fn any_text_is_a_port_spec_or_an_error(s in "\\PC{0,80}") {
            let _ = s.parse::<PortSpec>();
        }

        #[test]
        fn port_spec_shaped_text_never_panics(s in "(top-|all|-|[0-9]{0,6}|,|-){0,12}") {
            if let Ok(spec) = s.parse::<PortSpec>() {
                prop_assert!(spec.ranges().iter().all(|&(a, b)| a >= 1 && a <= b));
            }
        }

        #[test]
        fn a_block_holds_two_to_the_host_bits(a in any::<u32>(), prefix in 0u8..=32) {
            let ip = std::net::Ipv4Addr::from(a);
            let t: Target = format!("{ip}/{prefix}").parse().unwrap();
            prop_assert_eq!(t.len(), 1u128 << (32 - prefix));
            let net = IpNet::new(IpAddr::V4(ip), prefix).unwrap().trunc();
            prop_assert_eq!(t.first(), net.network());
            prop_assert_eq!(t.last(), net.broadcast());
        }

        #[test]
        fn disjoint_pieces_cover_the_union_once(
            ranges in proptest::collection::vec((0u32..200, 0u32..40), 1..12),
        ) {
            let targets: Vec<Target> = ranges
                .iter()
                .map(|&(start, len)| {
                    format!("10.0.{}.{}-10.0.{}.{}", start / 256, start % 256,
                        (start + len) / 256, (start + len) % 256).parse().unwrap()
                })
                .collect();
            let mut want = std::collections::BTreeSet::new();
            for t in &targets {
                want.extend(t.addresses());
            }
            let mut got = Vec::new();
            for piece in disjoint(&targets) {
                got.extend(piece.addresses());
            }
            prop_assert_eq!(got.len(), want.len());
            prop_assert_eq!(got.into_iter().collect::<std::collections::BTreeSet<_>>(), want);
        }
    }
}
