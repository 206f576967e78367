//! Glue: the generated `dns` host traits over [`crate::primitives::dns`].

use super::pending::{Pending, take};
use crate::engine::bindings::ErrorCode;
use crate::engine::bindings::wscan::plugin::dns as wit;
use crate::engine::bindings::wscan::plugin::types::IpAddress;
use crate::engine::convert::{from_ip, to_ip};
use crate::engine::state::HostState;
use crate::engine::tape;
use crate::model::Capability;
use crate::primitives::dns::core::{Chain, Data, DnsError, Kind, Record};
use futures::FutureExt;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::{DynPollable, subscribe};

/// The `future-records` resource.
pub type FutureRecords = Pending<Result<Vec<Record>, ErrorCode>>;

impl From<DnsError> for ErrorCode {
    fn from(e: DnsError) -> Self {
        match e {
            DnsError::NotFound => ErrorCode::NameNotFound,
            DnsError::ServerFailure => ErrorCode::ServerFailure,
            DnsError::Refused => ErrorCode::QueryRefused,
            DnsError::Timeout => ErrorCode::Timeout,
            DnsError::InvalidName(why) => ErrorCode::InvalidArgument(why),
            DnsError::Other(why) => ErrorCode::Other(why),
        }
    }
}

impl From<wit::RecordType> for Kind {
    fn from(kind: wit::RecordType) -> Self {
        match kind {
            wit::RecordType::A => Kind::A,
            wit::RecordType::Aaaa => Kind::Aaaa,
            wit::RecordType::Cname => Kind::Cname,
            wit::RecordType::Mx => Kind::Mx,
            wit::RecordType::Ns => Kind::Ns,
            wit::RecordType::Txt => Kind::Txt,
            wit::RecordType::Soa => Kind::Soa,
            wit::RecordType::Ptr => Kind::Ptr,
            wit::RecordType::Srv => Kind::Srv,
            wit::RecordType::Caa => Kind::Caa,
        }
    }
}

fn to_wit(record: Record) -> wit::ResourceRecord {
    let data = match record.data {
        Data::A(ip) => wit::RecordData::A(from_ip(ip)),
        Data::Aaaa(ip) => wit::RecordData::Aaaa(from_ip(ip)),
        Data::Cname(name) => wit::RecordData::Cname(name),
        Data::Mx {
            preference,
            exchange,
        } => wit::RecordData::Mx(wit::Mx {
            preference,
            exchange,
        }),
        Data::Ns(name) => wit::RecordData::Ns(name),
        Data::Txt(strings) => wit::RecordData::Txt(strings),
        Data::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => wit::RecordData::Soa(wit::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        }),
        Data::Ptr(name) => wit::RecordData::Ptr(name),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => wit::RecordData::Srv(wit::Srv {
            priority,
            weight,
            port,
            target,
        }),
        Data::Caa {
            critical,
            tag,
            value,
        } => wit::RecordData::Caa(wit::Caa {
            critical,
            tag,
            value,
        }),
    };
    wit::ResourceRecord {
        name: record.name,
        ttl: record.ttl,
        data,
    }
}

impl wit::Host for HostState {
    async fn lookup(
        &mut self,
        name: String,
        kind: wit::RecordType,
    ) -> wasmtime::Result<Resource<FutureRecords>> {
        let pending = match self.call.authorize_name(Capability::Dns, &name) {
            Err(code) => Pending::ready(Err(code)),
            Ok(scan) => {
                let (dns, scope) = (scan.dns.clone(), scan.scope.clone());
                let kind: Kind = kind.into();
                let asked = name.clone();
                let lookup = tape::wrap(
                    scan.tape.as_ref(),
                    || format!("dns.lookup {name} {kind:?}"),
                    None,
                    async move { Ok(dns.lookup(&asked, kind).await?) },
                );
                // A combinator, not an `async` block: awaited there,
                // `lookup` would be held twice (captured, then awaited).
                Pending::spawn(lookup.map(move |records| {
                    let records = records?;
                    // What the resolver says an in-scope name is becomes
                    // part of the scope, before the plugin sees it; only
                    // the chain from the asked name, never other records.
                    let chain = Chain::of(&name, kind, &records);
                    scope.learn(&name, &chain.aliases, &chain.addresses);
                    Ok(records)
                }))
            }
        };
        self.push(pending)
    }

    async fn reverse(&mut self, address: IpAddress) -> wasmtime::Result<Resource<FutureRecords>> {
        let ip = to_ip(address);
        let pending = match self.call.authorize(Capability::Dns, ip) {
            Err(code) => Pending::ready(Err(code)),
            Ok(scan) => {
                let dns = scan.dns.clone();
                Pending::spawn(tape::wrap(
                    scan.tape.as_ref(),
                    || format!("dns.reverse {ip}"),
                    None,
                    async move { Ok(dns.reverse(ip).await?) },
                ))
            }
        };
        self.push(pending)
    }
}

impl wit::HostFutureRecords for HostState {
    async fn subscribe(
        &mut self,
        this: Resource<FutureRecords>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        subscribe(&mut self.table, this)
    }

    async fn get(
        &mut self,
        this: Resource<FutureRecords>,
    ) -> wasmtime::Result<Option<Result<Vec<wit::ResourceRecord>, ErrorCode>>> {
        Ok(take(self.table.get_mut(&this)?)
            .map(|r| r.map(|rs| rs.into_iter().map(to_wit).collect())))
    }

    async fn drop(&mut self, this: Resource<FutureRecords>) -> wasmtime::Result<()> {
        self.delete(this)?;
        Ok(())
    }
}
