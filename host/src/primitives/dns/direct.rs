//! The common query, asked directly: one question, over the pooled UDP
//! sockets, to the scan's own name server (`--resolver`), read straight
//! from the answer.
//!
//! hickory-resolver's lookup path (shared lookups, retry streams, response
//! channels, a task per exchange) costs most of the CPU of a scan of many
//! names: a loop of its lookups against a local server answers about
//! 20,000 names a second on two cores, where the server answers over
//! 250,000. Most answers are plain: the records of the name and type asked
//! for, or a negative answer with the zone's SOA. Those are read here with
//! hickory-proto's message types; anything else (a truncated answer, a
//! CNAME, a server failure, an answer that does not match its question) is
//! left to hickory-resolver, which asks again, so every answer that could
//! differ is still hickory's.

use super::core::{DnsError, Record, contract_records};
use super::pool::PooledProvider;
use hickory_resolver::net::runtime::{DnsUdpSocket, RuntimeProvider};
use hickory_resolver::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::time::Instant;

/// The EDNS payload size asked for, as hickory asks (the DNS Flag Day
/// 2020 size: no fragmentation on common paths).
const EDNS_PAYLOAD: u16 = 1232;

/// The outcome of a direct query.
#[derive(Debug)]
pub enum Direct {
    /// The answer, and for a negative one how long the zone says to
    /// remember it.
    Answer(Result<Vec<Record>, DnsError>, Option<u32>),
    /// Not a plain answer: ask hickory-resolver.
    Ask,
}

/// Ask `server` for the records of `kind` at `name`: `attempts` tries, each
/// waiting up to `timeout` for its answer.
pub async fn query(
    provider: &PooledProvider,
    server: SocketAddr,
    name: &Name,
    kind: RecordType,
    timeout: Duration,
    attempts: usize,
) -> Direct {
    let local = match server.ip() {
        IpAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        IpAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    // The answer's names come back fully qualified, and a name compares
    // equal only to one as qualified: asked otherwise, no answer would
    // ever match its question.
    let mut name = name.clone();
    name.set_fqdn(true);
    let name = &name;
    let mut buf = vec![0; usize::from(EDNS_PAYLOAD)];
    for _ in 0..attempts.max(1) {
        // A new id each attempt, as hickory does: a late answer to the
        // last one is not taken for this one.
        let mut message = Message::query();
        message.metadata.recursion_desired = true;
        message.add_query(Query::query(name.clone(), kind));
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        message.edns = Some(edns);
        let Ok(bytes) = message.to_vec() else {
            return Direct::Ask;
        };
        let Ok(socket) = provider.bind_udp(local, server).await else {
            return Direct::Ask;
        };
        if socket.send_to(&bytes, server).await.is_err() {
            return Direct::Ask;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let read = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
            let len = match read {
                Err(_) => break, // this attempt timed out
                Ok(Err(_)) => return Direct::Ask,
                // Larger than the payload asked for: cut here, so hickory's.
                Ok(Ok((len, _))) if len >= buf.len() => return Direct::Ask,
                Ok(Ok((len, _))) => len,
            };
            // The pool hands over only datagrams from the server with this
            // id; one that is not an answer to this question is ignored,
            // as hickory ignores it.
            let Ok(answer) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            if answer.metadata.message_type != MessageType::Response
                || answer.queries.len() != 1
                || answer.queries[0].name() != name
                || answer.queries[0].query_type() != kind
            {
                continue;
            }
            return judge(&answer, name, kind);
        }
    }
    Direct::Answer(Err(DnsError::Timeout), None)
}

/// Read a plain answer, or leave it to hickory-resolver.
fn judge(answer: &Message, name: &Name, kind: RecordType) -> Direct {
    if answer.metadata.truncation {
        return Direct::Ask;
    }
    // Only the records of the name and type asked for: a CNAME chain is
    // hickory's to follow and keep.
    if answer
        .answers
        .iter()
        .any(|r| r.record_type() != kind || &r.name != name)
    {
        return Direct::Ask;
    }
    let negative_ttl = || {
        answer.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        })
    };
    match answer.metadata.response_code {
        ResponseCode::NoError if answer.answers.is_empty() => {
            Direct::Answer(Ok(Vec::new()), negative_ttl())
        }
        ResponseCode::NoError => Direct::Answer(Ok(contract_records(&answer.answers)), None),
        ResponseCode::NXDomain if answer.answers.is_empty() => {
            Direct::Answer(Err(DnsError::NotFound), negative_ttl())
        }
        _ => Direct::Ask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::dns::Data;
    use hickory_resolver::proto::rr::Record as Rr;
    use hickory_resolver::proto::rr::rdata::{A, CNAME, SOA};

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn response(code: ResponseCode, answers: Vec<Rr>, soa: bool) -> Message {
        let mut m = Message::response(7, hickory_resolver::proto::op::OpCode::Query);
        m.metadata.response_code = code;
        m.add_query(Query::query(name("www.test."), RecordType::A));
        m.answers = answers;
        if soa {
            let soa = SOA::new(name("test."), name("admin.test."), 1, 3600, 600, 86400, 60);
            m.authorities
                .push(Rr::from_rdata(name("test."), 300, RData::SOA(soa)));
        }
        m
    }

    fn a(owner: &str, ip: [u8; 4]) -> Rr {
        Rr::from_rdata(name(owner), 30, RData::A(A::from(Ipv4Addr::from(ip))))
    }

    /// A name server on loopback that answers each query first with an
    /// answer to another question, then with `answer` (given the query);
    /// or never, when `answer` is `None`.
    async fn server(answer: Option<fn(&Message) -> Message>) -> SocketAddr {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0; 1500];
            loop {
                let (len, from) = socket.recv_from(&mut buf).await.unwrap();
                let Some(answer) = answer else { continue };
                let query = Message::from_vec(&buf[..len]).unwrap();
                let mut other = response(ResponseCode::NoError, vec![], false);
                other.metadata.id = query.metadata.id;
                other.queries = vec![Query::query(name("other.test."), RecordType::A)];
                socket
                    .send_to(&other.to_vec().unwrap(), from)
                    .await
                    .unwrap();
                let mut reply = answer(&query);
                reply.metadata.id = query.metadata.id;
                socket
                    .send_to(&reply.to_vec().unwrap(), from)
                    .await
                    .unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_query_gets_its_own_answer_and_a_silent_server_times_out() {
        let provider = PooledProvider::default();
        let wait = Duration::from_millis(200);
        let answering = server(Some(|_| {
            // The server writes the name in its own case, as some do.
            let mut m = response(
                ResponseCode::NoError,
                vec![a("WWW.test.", [192, 0, 2, 7])],
                false,
            );
            m.queries = vec![Query::query(name("WWW.Test."), RecordType::A)];
            m
        }))
        .await;
        // Asked without the final dot, as a caller may.
        let asked = name("www.test");
        let Direct::Answer(Ok(records), None) =
            query(&provider, answering, &asked, RecordType::A, wait, 2).await
        else {
            panic!("the answer to the question is read, the other one ignored");
        };
        assert_eq!(records.len(), 1);
        assert!(matches!(records[0].data, Data::A(ip) if ip == Ipv4Addr::new(192, 0, 2, 7)));
        let silent = server(None).await;
        assert!(matches!(
            query(&provider, silent, &asked, RecordType::A, wait, 2).await,
            Direct::Answer(Err(DnsError::Timeout), None)
        ));
    }

    #[test]
    fn plain_answers_are_read_and_the_rest_left_to_hickory() {
        let asked = name("www.test.");
        let plain = response(
            ResponseCode::NoError,
            vec![a("www.test.", [192, 0, 2, 1])],
            false,
        );
        let Direct::Answer(Ok(records), None) = judge(&plain, &asked, RecordType::A) else {
            panic!("a plain answer is read");
        };
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].name, "www.test.");
        assert_eq!(records[0].ttl, 30);
        assert!(matches!(records[0].data, Data::A(ip) if ip == Ipv4Addr::new(192, 0, 2, 1)));
        // No records of the type: empty, remembered for min(SOA TTL, minimum).
        let nodata = response(ResponseCode::NoError, vec![], true);
        assert!(matches!(
            judge(&nodata, &asked, RecordType::A),
            Direct::Answer(Ok(ref r), Some(60)) if r.is_empty()
        ));
        let nx = response(ResponseCode::NXDomain, vec![], true);
        assert!(matches!(
            judge(&nx, &asked, RecordType::A),
            Direct::Answer(Err(DnsError::NotFound), Some(60))
        ));
        // A CNAME, a failure, a truncated answer: hickory's.
        let cname = Rr::from_rdata(
            name("www.test."),
            30,
            RData::CNAME(CNAME(name("web.test."))),
        );
        let chain = response(
            ResponseCode::NoError,
            vec![cname, a("web.test.", [192, 0, 2, 2])],
            false,
        );
        assert!(matches!(judge(&chain, &asked, RecordType::A), Direct::Ask));
        let failed = response(ResponseCode::ServFail, vec![], false);
        assert!(matches!(judge(&failed, &asked, RecordType::A), Direct::Ask));
        let mut cut = response(
            ResponseCode::NoError,
            vec![a("www.test.", [192, 0, 2, 1])],
            false,
        );
        cut.metadata.truncation = true;
        assert!(matches!(judge(&cut, &asked, RecordType::A), Direct::Ask));
    }
}
