//! Targets and ports: parsing what the user typed, and expanding it lazily.
//!
//! A target list is kept as the user wrote it (a few CIDR blocks) and walked
//! address by address, so a /8 costs no memory.

mod ports;
mod top_ports;

pub use ports::{PortSpec, PortSpecError};

use ipnet::{IpAddrRange, IpNet, Ipv4AddrRange, Ipv6AddrRange};
use std::net::IpAddr;
use std::str::FromStr;

/// Why a target could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Neither an address nor a CIDR block.
    #[error(
        "invalid target {0:?}: expected an IPv4 or IPv6 address (192.0.2.1, 2001:db8::1) or a CIDR block (192.0.2.0/24)"
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
}

/// One target as given on the command line: an address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target(IpNet);

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let s = input.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Target(IpNet::from(ip)));
        }
        match s.split_once('/') {
            Some((addr, prefix)) => {
                let ip: IpAddr = addr
                    .parse()
                    .map_err(|_| TargetError::Malformed(input.to_string()))?;
                let (family, max) = if ip.is_ipv4() {
                    ("IPv4", 32)
                } else {
                    ("IPv6", 128)
                };
                let len: u8 = prefix
                    .parse()
                    .map_err(|_| TargetError::Malformed(input.to_string()))?;
                let net = IpNet::new(ip, len).map_err(|_| TargetError::Prefix {
                    input: input.to_string(),
                    prefix: prefix.to_string(),
                    family,
                    max,
                })?;
                // 10.0.0.7/24 means the whole block, as in nmap.
                Ok(Target(net.trunc()))
            }
            None => Err(TargetError::Malformed(input.to_string())),
        }
    }
}

impl From<IpAddr> for Target {
    fn from(ip: IpAddr) -> Self {
        Target(IpNet::from(ip))
    }
}

impl Target {
    /// The block this target covers (a /32 or /128 for a single address).
    pub fn net(&self) -> IpNet {
        self.0
    }

    /// Every address of the block, network and broadcast addresses
    /// included (as nmap does), generated on demand.
    pub fn addresses(&self) -> IpAddrRange {
        match self.0 {
            IpNet::V4(n) => IpAddrRange::V4(Ipv4AddrRange::new(n.network(), n.broadcast())),
            IpNet::V6(n) => IpAddrRange::V6(Ipv6AddrRange::new(n.network(), n.broadcast())),
        }
    }

    /// How many addresses the block holds (saturating at `u128::MAX`).
    pub fn len(&self) -> u128 {
        let host_bits = u32::from(self.0.max_prefix_len() - self.0.prefix_len());
        1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
    }

    /// Never true: every target covers at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Parse one subject as a plugin author types it for `wscan plugin run`:
/// `192.0.2.1:443` or `[2001:db8::1]:443` is a service, `192.0.2.1` an
/// address, `www.example.test` a host name.
pub fn parse_subject(input: &str) -> Result<crate::model::Subject, String> {
    use crate::model::{Service, Subject};
    let s = input.trim();
    if let Ok(addr) = s.parse::<std::net::SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("invalid subject {input:?}: port 0"));
        }
        return Ok(Subject::Service(Service {
            ip: addr.ip(),
            port: addr.port(),
            host: None,
            name: None,
            banner: None,
        }));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Subject::Address { ip, host: None });
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.len() <= 253
        && name.split('.').all(label_ok)
        && name.bytes().any(|b| b.is_ascii_alphabetic())
    {
        return Ok(Subject::Host(name.to_ascii_lowercase()));
    }
    Err(format!(
        "invalid subject {input:?}: expected ADDRESS:PORT (a service), an address, or a host name"
    ))
}

/// Walk every address of `targets`, in order, lazily.
pub fn addresses(targets: &[Target]) -> impl Iterator<Item = IpAddr> + Send + '_ {
    targets.iter().flat_map(Target::addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(t: &str) -> Vec<String> {
        let target: Target = t.parse().unwrap();
        target.addresses().map(|a| a.to_string()).collect()
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
        for bad in ["", "1.2.3.4:0", "-bad-.test", "a b", "127.0.0.1:99999"] {
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
