//! An in-process authoritative DNS server for the DNS tests.
//!
//! It answers from a fixed in-memory table through a custom
//! `RequestHandler` (no `Catalog`, no zone file), so the tests control every
//! record, every error code and every dropped query. The test crate is
//! synchronous, so the server runs on its own tokio runtime in a background
//! thread and [`DnsServer`] only exposes blocking accessors.
//!
//! Contents (TTL 300 unless noted):
//! - `wscan.test.`: SOA, NS `ns1`, MX 10 `mail`, TXT "v=spf1 -all", CAA 0 issue "letsencrypt.org"
//! - `www`: A 127.0.0.1, AAAA ::1; `alias`: CNAME `www`; `two`: A 127.0.0.2 and 127.0.0.3 (TTL 60)
//! - `ns1`, `mail`: A 127.0.0.1; `_http._tcp`: SRV 10 5 8080 `www`
//! - `big`: TXT of 30 strings of 100 characters (string `i` is `{i:02}` then
//!   98 `x`), too big for UDP: the UDP answer is truncated (TC set) and only
//!   TCP gets it whole
//! - `1.0.0.127.in-addr.arpa.` and `1.2.0.192.in-addr.arpa.`: PTR `www.wscan.test.`;
//!   the server is authoritative for `127.in-addr.arpa.` and `2.0.192.in-addr.arpa.`,
//!   so other PTRs there get NXDOMAIN. hickory-resolver answers every
//!   `127.in-addr.arpa.` PTR itself ("localhost.", RFC 6761) without sending
//!   a query, so resolver-based tests need the 192.0.2.1 (TEST-NET-1) one
//! - `servfail` → SERVFAIL, `refused` → REFUSED, `silent` → no reply at all
//! - hostile answers, records the question did not ask for appended: `inject`
//!   A 127.0.0.61, whose A answer also holds `unrelated` A 127.0.0.62;
//!   `injectmx` MX 10 `mail`, whose MX answer also holds `unrelated` A
//!   127.0.0.63 and `injectmx` A 127.0.0.64
//! - a name with records but none of the asked type → NOERROR, no answers, SOA
//!   in authority; any other name in the zones → NXDOMAIN; names outside → REFUSED

use std::collections::HashMap;
use std::future::Future;
use std::iter;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::{runtime::Time, xfer::Protocol};
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::proto::serialize::binary::BinEncodable;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::sync::oneshot;

/// The zone every DNS test uses: `wscan.test.`
pub const ZONE: &str = "wscan.test.";

/// Every zone served: reverse lookups there get authoritative answers (a PTR
/// or NXDOMAIN) rather than REFUSED.
const ZONES: [&str; 3] = [ZONE, "127.in-addr.arpa.", "2.0.192.in-addr.arpa."];

/// What the tests can observe; written by the server thread, read by the test.
#[derive(Default)]
struct Stats {
    udp: AtomicUsize,
    tcp: AtomicUsize,
    queries: Mutex<Vec<(String, String)>>,
}

/// A running test DNS server on 127.0.0.1; dropping it stops the server and
/// releases the port.
pub struct DnsServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Start on 127.0.0.1, UDP and TCP on the same ephemeral port.
    ///
    /// The sockets are bound before this returns, so queries sent right away
    /// wait in the kernel buffers instead of racing the server thread.
    pub fn start() -> DnsServer {
        let (udp, tcp) = bind_same_port();
        let addr = udp.local_addr().expect("DNS server UDP address");
        let stats = Arc::new(Stats::default());
        let handler = Handler {
            zone: zone_table(),
            injected: injected(),
            stats: stats.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name(format!("dns-server-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("DNS server runtime");
                rt.block_on(async move {
                    // from_std needs the runtime context, hence here and not in start().
                    let udp = tokio::net::UdpSocket::from_std(udp).expect("tokio UDP socket");
                    let tcp = tokio::net::TcpListener::from_std(tcp).expect("tokio TCP listener");
                    let mut server = Server::new(handler);
                    server.register_socket(udp);
                    server.register_listener(tcp, Duration::from_secs(10), 64);
                    // An error only means the sender is gone: stop all the same.
                    let _ = stopped.await;
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), server.shutdown_gracefully())
                            .await;
                });
                // Dropping the runtime here drops any task still holding a socket.
            })
            .expect("spawn DNS server thread");
        DnsServer {
            addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// "127.0.0.1:PORT": the one address for both UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many queries arrived over UDP so far (including dropped ones).
    pub fn udp_queries(&self) -> usize {
        self.stats.udp.load(Ordering::SeqCst)
    }

    /// How many queries arrived over TCP so far (including dropped ones).
    pub fn tcp_queries(&self) -> usize {
        self.stats.tcp.load(Ordering::SeqCst)
    }

    /// Every query name received (lowercased, fully qualified, with trailing
    /// dot), in order, with its record type as text ("A", "AAAA", "PTR"...).
    pub fn queries(&self) -> Vec<(String, String)> {
        self.stats
            .queries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for DnsServer {
    /// Stop the runtime and wait for its thread, so the port is free afterwards.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Bind UDP on an ephemeral port, then TCP on that same port; retry when
/// another process already holds the TCP side.
fn bind_same_port() -> (UdpSocket, TcpListener) {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind DNS UDP socket");
        let port = udp.local_addr().expect("UDP address").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            // tokio's from_std requires non-blocking sockets.
            udp.set_nonblocking(true).expect("non-blocking UDP");
            tcp.set_nonblocking(true).expect("non-blocking TCP");
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// The records, keyed by lowercased owner name (`LowerName` makes lookups
/// case-insensitive).
#[rustfmt::skip] // One record per line reads best as a table.
fn zone_table() -> HashMap<LowerName, Vec<Record>> {
    let n = |s: &str| Name::from_ascii(s).expect("valid DNS name");
    let (www, ns1, hm) = (n("www.wscan.test."), n("ns1.wscan.test."), n("hostmaster.wscan.test."));
    let soa = SOA::new(ns1.clone(), hm, 2026112601, 3600, 600, 86400, 60);
    let big = (0..30).map(|i| format!("{i:02}") + &"x".repeat(98)).collect();
    let records = [
        (ZONE, 300, RData::SOA(soa.clone())),
        (ZONES[1], 300, RData::SOA(soa.clone())),
        (ZONES[2], 300, RData::SOA(soa)),
        (ZONE, 300, RData::NS(NS(ns1))),
        (ZONE, 300, RData::MX(MX::new(10, n("mail.wscan.test.")))),
        (ZONE, 300, RData::TXT(TXT::new(vec!["v=spf1 -all".to_owned()]))),
        // Not fully qualified on purpose: the CAA value is the bare "letsencrypt.org".
        (ZONE, 300, RData::CAA(CAA::new_issue(false, Some(n("letsencrypt.org")), vec![]))),
        ("www.wscan.test.", 300, RData::A(A(Ipv4Addr::LOCALHOST))),
        ("www.wscan.test.", 300, RData::AAAA(AAAA(Ipv6Addr::LOCALHOST))),
        ("alias.wscan.test.", 300, RData::CNAME(CNAME(www.clone()))),
        ("two.wscan.test.", 60, RData::A(A::new(127, 0, 0, 2))),
        ("two.wscan.test.", 60, RData::A(A::new(127, 0, 0, 3))),
        ("ns1.wscan.test.", 300, RData::A(A(Ipv4Addr::LOCALHOST))),
        ("mail.wscan.test.", 300, RData::A(A(Ipv4Addr::LOCALHOST))),
        ("_http._tcp.wscan.test.", 300, RData::SRV(SRV::new(10, 5, 8080, www.clone()))),
        ("big.wscan.test.", 300, RData::TXT(TXT::new(big))),
        // 192.0.2.1 is a documentation address: tests only ever resolve it
        // (its PTR queries go to this server), never connect to it.
        ("doc.wscan.test.", 300, RData::A(A::new(192, 0, 2, 1))),
        ("doc2.wscan.test.", 300, RData::A(A::new(192, 0, 2, 1))),
        ("inject.wscan.test.", 300, RData::A(A::new(127, 0, 0, 61))),
        ("injectmx.wscan.test.", 300, RData::MX(MX::new(10, n("mail.wscan.test.")))),
        ("1.0.0.127.in-addr.arpa.", 300, RData::PTR(PTR(www.clone()))),
        ("1.2.0.192.in-addr.arpa.", 300, RData::PTR(PTR(www))),
    ];
    let mut zone: HashMap<LowerName, Vec<Record>> = HashMap::new();
    for (owner, ttl, data) in records {
        let record = Record::from_rdata(n(owner), ttl, data);
        zone.entry(LowerName::from(&record.name)).or_default().push(record);
    }
    zone
}

/// Records a hostile resolver appends to the answer for (name, type):
/// records the question did not ask for.
fn injected() -> HashMap<(String, RecordType), Vec<Record>> {
    let n = |s: &str| Name::from_ascii(s).expect("valid DNS name");
    let a = |owner: &str, last: u8| {
        Record::from_rdata(n(owner), 300, RData::A(A::new(127, 0, 0, last)))
    };
    HashMap::from([
        (
            ("inject.wscan.test.".to_string(), RecordType::A),
            vec![a("unrelated.wscan.test.", 62)],
        ),
        (
            ("injectmx.wscan.test.".to_string(), RecordType::MX),
            vec![
                a("unrelated.wscan.test.", 63),
                a("injectmx.wscan.test.", 64),
            ],
        ),
    ])
}

/// Answers queries from the in-memory table and records what it saw.
struct Handler {
    zone: HashMap<LowerName, Vec<Record>>,
    injected: HashMap<(String, RecordType), Vec<Record>>,
    stats: Arc<Stats>,
}

/// Response code, answer section and authority (SOA) section of a reply.
type Reply<'a> = (ResponseCode, Vec<&'a Record>, Vec<&'a Record>);

impl Handler {
    /// Decide the reply to `qname`/`qtype`; `None` means send nothing.
    fn answer(&self, qname: &LowerName, text: &str, qtype: RecordType) -> Option<Reply<'_>> {
        let apex = ZONES.map(|z| LowerName::from(Name::from_ascii(z).expect("zone name")));
        let Some(apex) = apex.into_iter().find(|z| z.zone_of(qname)) else {
            return Some((ResponseCode::Refused, vec![], vec![]));
        };
        match text {
            "servfail.wscan.test." => return Some((ResponseCode::ServFail, vec![], vec![])),
            "refused.wscan.test." => return Some((ResponseCode::Refused, vec![], vec![])),
            "silent.wscan.test." => return None,
            _ => {}
        }
        let soa = self.zone[&apex]
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .collect();
        if !self.zone.contains_key(qname) {
            return Some((ResponseCode::NXDomain, vec![], soa));
        }
        // Follow CNAMEs inside the table, as an authoritative server does for
        // its own zone: the answer holds the CNAME then the target's records.
        let (mut name, mut answers) = (qname.clone(), Vec::new());
        for _ in 0..8 {
            let Some(node) = self.zone.get(&name) else {
                break;
            };
            let hits: Vec<&Record> = node
                .iter()
                .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
                .collect();
            let cname = node.iter().find_map(|r| match &r.data {
                RData::CNAME(target) if hits.is_empty() => Some((r, target)),
                _ => None,
            });
            let Some((record, target)) = cname else {
                answers.extend(hits);
                break;
            };
            answers.push(record);
            name = LowerName::from(&target.0);
        }
        if let Some(extra) = self.injected.get(&(text.to_string(), qtype)) {
            answers.extend(extra);
        }
        // NODATA: the name exists, the type does not; the SOA gives the negative TTL.
        let authority = if answers.is_empty() { soa } else { vec![] };
        Some((ResponseCode::NoError, answers, authority))
    }
}

// Written out by hand because `RequestHandler` is an `#[async_trait]` trait and
// the test crate has no `async-trait` dependency: this is its expansion.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        mut response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            match request.protocol() {
                Protocol::Udp => self.stats.udp.fetch_add(1, Ordering::SeqCst),
                _ => self.stats.tcp.fetch_add(1, Ordering::SeqCst),
            };
            let mut metadata = Metadata::response_from_request(&request.metadata);
            // Returned when nothing is sent; the server only logs it.
            let nothing = ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            });
            let Ok(info) = request.request_info() else {
                // Not exactly one question.
                let reply = MessageResponseBuilder::new(&request.queries, None)
                    .error_msg(&request.metadata, ResponseCode::FormErr);
                return response_handle
                    .send_response(reply)
                    .await
                    .unwrap_or(nothing);
            };
            let (qname, qtype) = (info.query.name(), info.query.query_type());
            let text = Name::from(qname).to_ascii();
            self.stats
                .queries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((text.clone(), qtype.to_string()));
            let Some((code, mut answers, mut authority)) = self.answer(qname, &text, qtype) else {
                return nothing;
            };
            metadata.response_code = code;
            metadata.authoritative = code != ResponseCode::Refused;
            // Truncate over UDP ourselves: hickory would set TC too, but it
            // sends the bytes of the records it dropped after the message.
            // Uncompressed sizes over-estimate, which errs on the TC side.
            let size = |r: &&Record| r.to_bytes().map_or(0, |b| b.len());
            let needed = 12 + request.queries.as_bytes().len() + 11 /* OPT */
                + answers.iter().chain(&authority).map(size).sum::<usize>();
            if request.protocol() == Protocol::Udp && needed > usize::from(request.max_payload()) {
                metadata.truncation = true;
                (answers, authority) = (vec![], vec![]);
            }
            // Echo EDNS when the client used it (RFC 6891), with its payload size.
            let edns = request.edns.as_ref().map(|theirs| {
                let mut ours = Edns::new();
                ours.set_max_payload(theirs.max_payload().max(512));
                ours
            });
            let mut builder = MessageResponseBuilder::new(&request.queries, None);
            if let Some(edns) = &edns {
                builder.edns(edns);
            }
            let reply = builder.build(metadata, answers, iter::empty(), authority, iter::empty());
            response_handle
                .send_response(reply)
                .await
                .unwrap_or(nothing)
        })
    }
}
