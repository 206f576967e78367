//! DNS on hickory-resolver: one resolver (and so one cache) per scan,
//! queries that keep the answers' structure, and errors that say which
//! remote outcome happened. Nothing here knows about wasmtime.

use super::cache::{AnswerCache, SharedAnswers};
use super::direct::{self, Direct};
use super::pool::PooledProvider;
use crate::primitives::gate::{Gate, NetStats, Pass};
use hickory_resolver::Resolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The scan's resolver: hickory's, over pooled UDP sockets.
type ScanResolver = Resolver<PooledProvider>;

/// How the scan's resolver is set up (`--resolver`, `--no-dns-cache`).
#[derive(Debug, Clone, Default)]
pub struct ResolverSettings {
    /// Name servers to ask; empty means the system's configuration
    /// (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// Keep answers for their TTL for the rest of the scan.
    pub cache: bool,
    /// Ask for answers shared beyond this process (`--dns-cache redis`);
    /// what shares them is attached as [`ResolverSettings::shared`].
    pub share: bool,
    /// Where answers are shared, when `share` and the process has such a
    /// store (a worker of a distributed scan).
    pub shared: Option<Arc<dyn SharedAnswers>>,
}

/// The record types the contract knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name.
    Cname,
    /// Mail exchanger.
    Mx,
    /// Name server.
    Ns,
    /// Text.
    Txt,
    /// Start of authority.
    Soa,
    /// Pointer (reverse).
    Ptr,
    /// Service locator.
    Srv,
    /// Certification authority authorization.
    Caa,
}

impl Kind {
    fn record_type(self) -> RecordType {
        match self {
            Kind::A => RecordType::A,
            Kind::Aaaa => RecordType::AAAA,
            Kind::Cname => RecordType::CNAME,
            Kind::Mx => RecordType::MX,
            Kind::Ns => RecordType::NS,
            Kind::Txt => RecordType::TXT,
            Kind::Soa => RecordType::SOA,
            Kind::Ptr => RecordType::PTR,
            Kind::Srv => RecordType::SRV,
            Kind::Caa => RecordType::CAA,
        }
    }
}

/// The data of one record, in the contract's terms. Names are fully
/// qualified and lowercase.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Data {
    /// An A record.
    A(IpAddr),
    /// An AAAA record.
    Aaaa(IpAddr),
    /// A CNAME record.
    Cname(String),
    /// An MX record.
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// The mail server.
        exchange: String,
    },
    /// An NS record.
    Ns(String),
    /// A TXT record's strings, lossily decoded.
    Txt(Vec<String>),
    /// An SOA record.
    Soa {
        /// Primary name server.
        mname: String,
        /// Responsible mailbox.
        rname: String,
        /// Zone serial.
        serial: u32,
        /// Refresh interval, seconds.
        refresh: u32,
        /// Retry interval, seconds.
        retry: u32,
        /// Expiry, seconds.
        expire: u32,
        /// Negative-caching TTL, seconds.
        minimum: u32,
    },
    /// A PTR record.
    Ptr(String),
    /// An SRV record.
    Srv {
        /// Lower is preferred.
        priority: u16,
        /// Share among equal priorities.
        weight: u16,
        /// The service's port.
        port: u16,
        /// The host offering it.
        target: String,
    },
    /// A CAA record.
    Caa {
        /// The issuer-critical flag.
        critical: bool,
        /// `issue`, `issuewild`, `iodef`...
        tag: String,
        /// The value, as text.
        value: String,
    },
}

/// One resource record of an answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The owner name.
    pub name: String,
    /// Seconds left to live, as the cache saw it.
    pub ttl: u32,
    /// The data.
    pub data: Data,
}

/// Why a query failed: each remote outcome apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// NXDOMAIN.
    #[error("name not found (NXDOMAIN)")]
    NotFound,
    /// SERVFAIL.
    #[error("server failure (SERVFAIL)")]
    ServerFailure,
    /// REFUSED.
    #[error("query refused (REFUSED)")]
    Refused,
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The name is not a valid DNS name.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// Anything else, as the resolver described it.
    #[error("{0}")]
    Other(String),
}

/// What an answer says about the name that was asked: the names on its
/// CNAME chain and the addresses at the chain's end. Records for any other
/// name, and records of another type than the question's, are not part of
/// it, whatever a resolver put in the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chain {
    /// The names the asked name is an alias of, in chain order
    /// (lowercase, no trailing dot).
    pub aliases: Vec<String>,
    /// The addresses of the asked type owned by a name on the chain.
    pub addresses: Vec<IpAddr>,
}

/// A DNS name compared as DNS compares it: case-insensitively, with or
/// without the trailing dot.
fn same_name(a: &str, b: &str) -> bool {
    a.strip_suffix('.')
        .unwrap_or(a)
        .eq_ignore_ascii_case(b.strip_suffix('.').unwrap_or(b))
}

impl Chain {
    /// Follow the CNAME chain from `asked` through `records` (an answer to
    /// a query of `kind`), taking the addresses its names own when `kind`
    /// is A or AAAA. A chain is at most as long as the answer, so a
    /// looping chain ends.
    pub fn of(asked: &str, kind: Kind, records: &[Record]) -> Chain {
        let mut chain = Chain::default();
        let on_chain = |name: &str, aliases: &[String]| {
            same_name(name, asked) || aliases.iter().any(|a| same_name(a, name))
        };
        // Each pass extends the chain by at least one name, or stops.
        for _ in 0..records.len() {
            let next = records.iter().find_map(|r| match &r.data {
                Data::Cname(target)
                    if on_chain(&r.name, &chain.aliases) && !on_chain(target, &chain.aliases) =>
                {
                    Some(
                        target
                            .strip_suffix('.')
                            .unwrap_or(target)
                            .to_ascii_lowercase(),
                    )
                }
                _ => None,
            });
            match next {
                Some(alias) => chain.aliases.push(alias),
                None => break,
            }
        }
        for record in records {
            let ip = match (&record.data, kind) {
                (Data::A(ip), Kind::A) | (Data::Aaaa(ip), Kind::Aaaa) => ip.to_canonical(),
                _ => continue,
            };
            if on_chain(&record.name, &chain.aliases) && !chain.addresses.contains(&ip) {
                chain.addresses.push(ip);
            }
        }
        chain
    }
}

/// The scan's resolver. Cheap to clone: clones share connections and cache.
#[derive(Clone)]
pub struct DnsCore {
    resolver: Result<ScanResolver, Arc<str>>,
    /// The one name server of `--resolver`, asked directly for plain
    /// answers (see [`direct`]).
    direct: Option<Directly>,
    /// Answers kept for the scan, unless `--no-dns-cache`.
    cache: Option<Arc<AnswerCache>>,
    /// Answers shared with other processes, asked after `cache`.
    shared: Option<Arc<dyn SharedAnswers>>,
    /// Queries count against the scan's concurrency and rate.
    gate: Arc<Gate>,
}

/// How to ask the scan's one name server directly.
#[derive(Clone)]
struct Directly {
    provider: PooledProvider,
    server: SocketAddr,
    timeout: Duration,
    attempts: usize,
}

impl std::fmt::Debug for DnsCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsCore")
            .field("ready", &self.resolver.is_ok())
            .finish()
    }
}

impl DnsCore {
    /// A resolver per `settings`, each query attempt bounded by `timeout`.
    ///
    /// A machine without a usable system configuration still gets a
    /// `DnsCore`: its queries fail with the reason, so scans that do not
    /// use DNS are not stopped by it.
    pub fn new(settings: &ResolverSettings, timeout: Duration, gate: Arc<Gate>) -> Self {
        // hickory retries a query that timed out by itself: at least one
        // retry (UDP loses packets), more with `--retries`.
        let attempts = (gate.limits().retries as usize + 1).max(2);
        // Queries share a few UDP sockets (see `pool`), hickory's and the
        // direct ones alike.
        let provider = PooledProvider::default();
        // Several servers are hickory's to choose between and fall back on.
        let direct = match settings.servers[..] {
            [server] => Some(Directly {
                provider: provider.clone(),
                server,
                timeout,
                attempts,
            }),
            _ => None,
        };
        DnsCore {
            resolver: build(settings, provider, timeout, attempts)
                .map_err(|e| Arc::from(e.to_string())),
            direct,
            cache: settings.cache.then(Arc::default),
            shared: settings.shared.clone().filter(|_| settings.share),
            gate,
        }
    }

    /// Wait for the gate, and count the query.
    async fn enter(&self) -> Pass {
        let pass = self.gate.enter(None).await;
        NetStats::bump(&self.gate.stats().dns_queries);
        pass
    }

    /// Query `name` for records of `kind`. The name is taken as fully
    /// qualified: a scanner asks for exactly what it was given, never for
    /// the name plus a local search domain.
    pub async fn lookup(&self, name: &str, kind: Kind) -> Result<Vec<Record>, DnsError> {
        let mut fqdn = Name::from_ascii(name).map_err(|e| DnsError::InvalidName(e.to_string()))?;
        fqdn.set_fqdn(true);
        self.query(fqdn, kind).await
    }

    /// Query the PTR records of `ip`.
    pub async fn reverse(&self, ip: IpAddr) -> Result<Vec<Record>, DnsError> {
        self.query(Name::from(ip), Kind::Ptr).await
    }

    /// Ask the cache, then the resolver (through the gate), and keep what
    /// it answers.
    async fn query(&self, name: Name, kind: Kind) -> Result<Vec<Record>, DnsError> {
        let resolver = self.resolver()?;
        // The caches' key, only when there is a cache (`--no-dns-cache`
        // scans skip the name's text).
        let key = (self.cache.is_some() || self.shared.is_some()).then(|| name_text(&name));
        if let (Some(cache), Some(key)) = (&self.cache, &key)
            && let Some(answer) = cache.get(key, kind)
        {
            return answer;
        }
        if let (Some(shared), Some(key)) = (&self.shared, &key)
            && let Some((answer, left)) = shared.get(key, kind).await
        {
            if let Some(cache) = &self.cache {
                cache.put(key, kind, &answer, Some(left));
            }
            NetStats::bump(&self.gate.stats().dns_shared_hits);
            return answer;
        }
        let _pass = self.enter().await;
        let asked = match &self.direct {
            Some(d) => {
                let (provider, kind) = (&d.provider, kind.record_type());
                direct::query(provider, d.server, &name, kind, d.timeout, d.attempts).await
            }
            None => Direct::Ask,
        };
        let (answer, negative_ttl) = match asked {
            Direct::Answer(answer, negative_ttl) => (answer, negative_ttl),
            // Boxed: hickory's lookup future is a few kilobytes, and every
            // query's future (moved as its task is spawned) would carry it.
            Direct::Ask => {
                // hickory asks again: a query of its own in the statistics.
                if self.direct.is_some() {
                    NetStats::bump(&self.gate.stats().dns_queries);
                }
                records(Box::pin(resolver.lookup(name, kind.record_type())).await)
            }
        };
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            cache.put(key, kind, &answer, negative_ttl);
        }
        if let (Some(shared), Some(key)) = (&self.shared, &key)
            && let Some(ttl) = super::cache::keep_for(&answer, negative_ttl)
        {
            shared.put(key, kind, &answer, ttl);
        }
        answer
    }

    fn resolver(&self) -> Result<&ScanResolver, DnsError> {
        self.resolver
            .as_ref()
            .map_err(|e| DnsError::Other(format!("no DNS resolver: {e}")))
    }
}

fn build(
    settings: &ResolverSettings,
    provider: PooledProvider,
    timeout: Duration,
    attempts: usize,
) -> Result<ScanResolver, NetError> {
    let mut builder = if settings.servers.is_empty() {
        Resolver::builder(provider)?
    } else {
        let servers = settings
            .servers
            .iter()
            .map(|addr| {
                // UDP first; TCP when an answer comes back truncated.
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                server
            })
            .collect();
        Resolver::builder_with_config(ResolverConfig::from_name_servers(servers), provider)
    };
    let options = builder.options_mut();
    options.timeout = timeout;
    options.attempts = attempts;
    // wscan keeps its own cache (see `cache`): hickory's costs more than
    // it saves on a scan of many names.
    options.cache_size = 0;
    // Keep the CNAME chain in answers: it is part of what a scan reports.
    options.preserve_intermediates = true;
    if !settings.servers.is_empty() {
        // Explicit name servers mean "ask them", not the local hosts file.
        options.use_hosts_file = ResolveHosts::Never;
    }
    builder.build()
}

/// The contract's answer, and for a negative one (no such name, or none
/// of this type) how long the zone says to remember it.
fn records(
    answer: Result<hickory_resolver::lookup::Lookup, NetError>,
) -> (Result<Vec<Record>, DnsError>, Option<u32>) {
    let negative_ttl = match &answer {
        Err(NetError::Dns(HickoryDnsError::NoRecordsFound(no))) => no.negative_ttl,
        _ => None,
    };
    let answer = match answer {
        Ok(lookup) => Ok(contract_records(lookup.answers())),
        Err(e) => match classify(&e) {
            // The name exists but has no records of this type: an empty
            // answer, not a failure.
            None => Ok(Vec::new()),
            Some(error) => Err(error),
        },
    };
    (answer, negative_ttl)
}

/// hickory's records as the contract's, leaving out the types it does
/// not know.
pub(super) fn contract_records(records: &[hickory_resolver::proto::rr::Record]) -> Vec<Record> {
    records
        .iter()
        .filter_map(|r| {
            Some(Record {
                name: name_text(&r.name),
                ttl: r.ttl,
                data: data(&r.data)?,
            })
        })
        .collect()
}

/// The remote outcome behind a resolver error; `None` for "no records of
/// that type" (NOERROR with an empty answer).
fn classify(e: &NetError) -> Option<DnsError> {
    let code = match e {
        NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => no.response_code,
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => *code,
        NetError::Timeout => return Some(DnsError::Timeout),
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            return Some(DnsError::Timeout);
        }
        other => return Some(DnsError::Other(other.to_string())),
    };
    match code {
        ResponseCode::NoError => None,
        ResponseCode::NXDomain => Some(DnsError::NotFound),
        ResponseCode::ServFail => Some(DnsError::ServerFailure),
        ResponseCode::Refused => Some(DnsError::Refused),
        other => Some(DnsError::Other(format!("server answered {other}"))),
    }
}

fn name_text(name: &Name) -> String {
    let mut name = name.clone();
    name.set_fqdn(true);
    name.to_ascii().to_ascii_lowercase()
}

fn data(rdata: &RData) -> Option<Data> {
    Some(match rdata {
        RData::A(a) => Data::A(IpAddr::V4(a.0)),
        RData::AAAA(aaaa) => Data::Aaaa(IpAddr::V6(aaaa.0)),
        RData::CNAME(c) => Data::Cname(name_text(&c.0)),
        RData::MX(mx) => Data::Mx {
            preference: mx.preference,
            exchange: name_text(&mx.exchange),
        },
        RData::NS(ns) => Data::Ns(name_text(&ns.0)),
        RData::TXT(txt) => Data::Txt(
            txt.txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect(),
        ),
        RData::SOA(soa) => Data::Soa {
            mname: name_text(&soa.mname),
            rname: name_text(&soa.rname),
            serial: soa.serial,
            // Signed in hickory only for historical reasons; RFC 1035 says
            // unsigned 32-bit.
            refresh: soa.refresh as u32,
            retry: soa.retry as u32,
            expire: soa.expire as u32,
            minimum: soa.minimum,
        },
        RData::PTR(ptr) => Data::Ptr(name_text(&ptr.0)),
        RData::SRV(srv) => Data::Srv {
            priority: srv.priority,
            weight: srv.weight,
            port: srv.port,
            target: name_text(&srv.target),
        },
        RData::CAA(caa) => Data::Caa {
            critical: caa.issuer_critical,
            tag: caa.tag.clone(),
            value: String::from_utf8_lossy(&caa.value).into_owned(),
        },
        // Types the contract does not carry (DNSSEC, OPT...) are dropped.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, data: Data) -> Record {
        Record {
            name: name.into(),
            ttl: 60,
            data,
        }
    }

    fn a(name: &str, ip: &str) -> Record {
        record(name, Data::A(ip.parse().unwrap()))
    }

    fn cname(name: &str, target: &str) -> Record {
        record(name, Data::Cname(target.into()))
    }

    #[test]
    fn only_the_chain_from_the_asked_name_counts() {
        let answer = [
            // Out of order, as a server may send them.
            a("EDGE.wscan.test.", "127.0.0.1"),
            cname("www.wscan.test.", "mid.wscan.test."),
            cname("mid.wscan.test.", "edge.wscan.test."),
            // Injected: another name, and a chain that does not start here.
            a("unrelated.wscan.test.", "10.66.0.2"),
            cname("other.wscan.test.", "far.wscan.test."),
            a("far.wscan.test.", "10.66.0.3"),
            // Another type than the question's.
            record("www.wscan.test.", Data::Aaaa("::1".parse().unwrap())),
        ];
        let chain = Chain::of("WWW.wscan.test", Kind::A, &answer);
        assert_eq!(chain.aliases, ["mid.wscan.test", "edge.wscan.test"]);
        assert_eq!(chain.addresses, ["127.0.0.1".parse::<IpAddr>().unwrap()]);
        // An A record inside an MX answer is not an answer to the question.
        let mx = [
            a("www.wscan.test.", "10.66.0.4"),
            a("unrelated.wscan.test.", "10.66.0.5"),
        ];
        assert_eq!(Chain::of("www.wscan.test", Kind::Mx, &mx), Chain::default());
    }

    #[test]
    fn a_looping_chain_ends_and_mapped_addresses_are_canonical() {
        let answer = [
            cname("a.test.", "b.test."),
            cname("b.test.", "a.test."),
            record("b.test.", Data::Aaaa("::ffff:127.0.0.7".parse().unwrap())),
        ];
        let chain = Chain::of("a.test", Kind::Aaaa, &answer);
        assert_eq!(chain.aliases, ["b.test"]);
        assert_eq!(chain.addresses, ["127.0.0.7".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn response_codes_are_told_apart() {
        let code = |c| classify(&NetError::Dns(HickoryDnsError::ResponseCode(c)));
        assert_eq!(code(ResponseCode::ServFail), Some(DnsError::ServerFailure));
        assert_eq!(code(ResponseCode::Refused), Some(DnsError::Refused));
        assert_eq!(classify(&NetError::Timeout), Some(DnsError::Timeout));
    }

    #[tokio::test]
    async fn invalid_names_are_refused_before_any_query() {
        let dns = DnsCore::new(
            &ResolverSettings {
                servers: vec!["127.0.0.1:9".parse().unwrap()],
                ..Default::default()
            },
            Duration::from_millis(100),
            crate::primitives::gate::Gate::new(Default::default()),
        );
        let e = dns.lookup("bad..name", Kind::A).await.unwrap_err();
        assert!(matches!(e, DnsError::InvalidName(_)), "{e:?}");
    }
}
