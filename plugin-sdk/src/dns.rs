//! DNS through the host's resolver: forward and reverse queries.
//!
//! The host owns the resolver and its cache (one per scan, answers kept for
//! their TTL) and checks every name against the scan's scope first.

use crate::ErrorCode;
use crate::bindings::wscan::plugin::dns as raw;
use crate::convert::{from_ip, to_ip};
use crate::wait::ready;
use std::net::IpAddr;

pub use raw::{Caa, Mx, RecordData, RecordType, ResourceRecord, Soa, Srv};

/// Query `name` for records of `kind`. An empty list means the name exists
/// but has no such records. With [`RecordType::A`] or [`RecordType::Aaaa`],
/// the answer also holds the CNAME chain that led to the addresses.
///
/// Errors: `name-not-found` (NXDOMAIN), `server-failure` (SERVFAIL),
/// `query-refused` (REFUSED), `timeout`, `access-denied` (the name is out of
/// scope, or the plugin did not declare `dns`), `invalid-argument`, `other`.
pub async fn lookup(name: &str, kind: RecordType) -> Result<Vec<ResourceRecord>, ErrorCode> {
    let future = raw::lookup(name, kind);
    ready(future.subscribe(), || future.get()).await
}

/// Query the PTR records of `ip` (which must be in scope).
///
/// Errors: as [`lookup`].
pub async fn reverse(ip: IpAddr) -> Result<Vec<ResourceRecord>, ErrorCode> {
    let future = raw::reverse(from_ip(ip));
    ready(future.subscribe(), || future.get()).await
}

impl RecordType {
    /// Every record type, in the contract's order.
    pub const ALL: [RecordType; 10] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::Mx,
        RecordType::Ns,
        RecordType::Txt,
        RecordType::Soa,
        RecordType::Ptr,
        RecordType::Srv,
        RecordType::Caa,
    ];

    /// The type's name as DNS tools print it: `A`, `AAAA`, `MX`...
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Mx => "MX",
            RecordType::Ns => "NS",
            RecordType::Txt => "TXT",
            RecordType::Soa => "SOA",
            RecordType::Ptr => "PTR",
            RecordType::Srv => "SRV",
            RecordType::Caa => "CAA",
        }
    }

    /// Parse a type name, in any case (`a`, `AAAA`, `Mx`).
    pub fn parse(name: &str) -> Option<RecordType> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl RecordData {
    /// The record type this data belongs to.
    pub fn record_type(&self) -> RecordType {
        match self {
            RecordData::A(_) => RecordType::A,
            RecordData::Aaaa(_) => RecordType::Aaaa,
            RecordData::Cname(_) => RecordType::Cname,
            RecordData::Mx(_) => RecordType::Mx,
            RecordData::Ns(_) => RecordType::Ns,
            RecordData::Txt(_) => RecordType::Txt,
            RecordData::Soa(_) => RecordType::Soa,
            RecordData::Ptr(_) => RecordType::Ptr,
            RecordData::Srv(_) => RecordType::Srv,
            RecordData::Caa(_) => RecordType::Caa,
        }
    }

    /// The address of an A or AAAA record.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            RecordData::A(ip) | RecordData::Aaaa(ip) => Some(to_ip(*ip)),
            _ => None,
        }
    }

    /// The data in zone-file presentation form (`10 mail.example.com.`).
    pub fn to_text(&self) -> String {
        match self {
            RecordData::A(ip) | RecordData::Aaaa(ip) => to_ip(*ip).to_string(),
            RecordData::Cname(name) | RecordData::Ns(name) | RecordData::Ptr(name) => name.clone(),
            RecordData::Mx(mx) => format!("{} {}", mx.preference, mx.exchange),
            RecordData::Txt(strings) => strings
                .iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(" "),
            RecordData::Soa(soa) => format!(
                "{} {} {} {} {} {} {}",
                soa.mname, soa.rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum
            ),
            RecordData::Srv(srv) => {
                format!(
                    "{} {} {} {}",
                    srv.priority, srv.weight, srv.port, srv.target
                )
            }
            RecordData::Caa(caa) => format!(
                "{} {} {:?}",
                u8::from(caa.critical) * 128,
                caa.tag,
                caa.value
            ),
        }
    }
}
