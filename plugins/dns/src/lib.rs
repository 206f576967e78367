//! wscan's built-in `dns` plugin: resolves each host name through the
//! host's resolver, reports a `dns-record` finding per record, and emits
//! each address (with the name it came from) for the plugins downstream.

use std::collections::HashSet;
use std::net::IpAddr;
use wscan_sdk::dns::{RecordData, RecordType, ResourceRecord};
use wscan_sdk::futures::future::join_all;
use wscan_sdk::prelude::*;
use wscan_sdk::serde_json::{Value, json};

struct Dns;

/// Record types asked for when the user names none.
const DEFAULT_TYPES: &str = "A,AAAA,CNAME";
/// What the `types` argument accepts: the host refuses any other word.
const TYPE_CHOICES: [&str; 11] = [
    "A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "PTR", "SRV", "CAA", "all",
];

impl Plugin for Dns {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "dns",
            env!("CARGO_PKG_VERSION"),
            "Resolves host names: a dns-record finding per record, and each address for the next plugins",
        )
        .consumes(SubjectFilter::kinds(&[SubjectKind::Host]))
        .capability(Capability::Dns)
        .arg(
            ArgInfo::choice_list(
                "types",
                "record types to query, comma-separated (all: every one)",
                &TYPE_CHOICES,
            )
            .default(DEFAULT_TYPES),
        )
        .arg(
            ArgInfo::boolean("ptr", "also look up the PTR record of every address found")
                .default(false),
        )
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        let Subject::Host(name) = subject else {
            return Err("the dns plugin consumes host names only".into());
        };
        let types = match options.list("types") {
            [] => record_types(DEFAULT_TYPES.split(',')),
            given => record_types(given.iter().map(String::as_str)),
        };
        let ptr = options.boolean("ptr").unwrap_or(false);

        // Every type at once: the host runs the queries concurrently.
        let answers = join_all(types.iter().map(|&kind| dns::lookup(&name, kind))).await;

        let mut reported: HashSet<(String, String, String)> = HashSet::new();
        let mut addresses: Vec<IpAddr> = Vec::new();
        // (what failed, why): grouped by reason in the unit's error.
        let mut failures: Vec<(String, String)> = Vec::new();
        for (kind, answer) in types.iter().zip(answers) {
            let records = match answer {
                Ok(records) => records,
                Err(e) => {
                    failures.push((kind.as_str().to_string(), e.message()));
                    continue;
                }
            };
            for record in &records {
                report_record(
                    &name,
                    *kind,
                    record,
                    Subject::Host(name.clone()),
                    &mut reported,
                )?;
                if let Some(ip) = record.data.ip()
                    && !addresses.contains(&ip)
                {
                    addresses.push(ip);
                    report::subject(Subject::Address(AddressSubject {
                        address: wscan_sdk::from_ip(ip),
                        host: Some(name.clone()),
                    }))
                    .context(format_args!("emit {ip}"))?;
                }
            }
        }

        if ptr {
            let reverses = join_all(addresses.iter().map(|&ip| dns::reverse(ip))).await;
            for (ip, answer) in addresses.iter().zip(reverses) {
                let on = Subject::Address(AddressSubject {
                    address: wscan_sdk::from_ip(*ip),
                    host: Some(name.clone()),
                });
                match answer {
                    Ok(records) => {
                        for record in &records {
                            report_record(
                                &name,
                                RecordType::Ptr,
                                record,
                                on.clone(),
                                &mut reported,
                            )?;
                        }
                    }
                    // No reverse zone for an address is common, not a fault.
                    Err(ErrorCode::NameNotFound) => {}
                    Err(e) => failures.push((format!("PTR {ip}"), e.message())),
                }
            }
        }

        if failures.is_empty() {
            return Ok(());
        }
        // What was found is reported already; the unit records the rest,
        // one clause per reason: "www.example.test: timed out (A, AAAA)".
        let mut reasons: Vec<(String, Vec<String>)> = Vec::new();
        for (what, why) in failures {
            match reasons.iter_mut().find(|(r, _)| *r == why) {
                Some((_, whats)) => whats.push(what),
                None => reasons.push((why, vec![what])),
            }
        }
        let clauses: Vec<String> = reasons
            .into_iter()
            .map(|(why, whats)| format!("{why} ({})", whats.join(", ")))
            .collect();
        Err(format!("{name}: {}", clauses.join("; ")).into())
    }
}

/// The record types of the `types` argument (words the host checked
/// against [`TYPE_CHOICES`]), each once; `all` is every type.
fn record_types<'a>(words: impl Iterator<Item = &'a str>) -> Vec<RecordType> {
    let mut types = Vec::new();
    for word in words {
        if word.eq_ignore_ascii_case("all") {
            return RecordType::ALL.to_vec();
        }
        if let Some(kind) = RecordType::parse(word)
            && !types.contains(&kind)
        {
            types.push(kind);
        }
    }
    types
}

/// Report one record, once: an A query's answer repeats the CNAME chain
/// that a CNAME query also returns.
fn report_record(
    query: &str,
    query_type: RecordType,
    record: &ResourceRecord,
    subject: Subject,
    reported: &mut HashSet<(String, String, String)>,
) -> Result<(), Error> {
    let kind = record.data.record_type();
    let value = record.data.to_text();
    if !reported.insert((
        record.name.clone(),
        kind.as_str().to_string(),
        value.clone(),
    )) {
        return Ok(());
    }
    let owner = record.name.strip_suffix('.').unwrap_or(&record.name);
    let mut data = json!({
        "query": query,
        "query_type": query_type.as_str(),
        "name": record.name,
        "type": kind.as_str(),
        "ttl": record.ttl,
        "value": value,
    });
    if let Some(detail) = detail(&record.data) {
        data["detail"] = detail;
    }
    let title = format!("{owner} {} {value}", kind.as_str());
    report::finding(Finding::new("dns-record", Severity::Info, title, subject).data(data))
        .context("report")
}

/// The fields of structured record types, for consumers of the JSON.
fn detail(data: &RecordData) -> Option<Value> {
    Some(match data {
        RecordData::Mx(mx) => json!({"preference": mx.preference, "exchange": mx.exchange}),
        RecordData::Txt(strings) => json!({"strings": strings}),
        RecordData::Soa(soa) => json!({
            "mname": soa.mname, "rname": soa.rname, "serial": soa.serial,
            "refresh": soa.refresh, "retry": soa.retry, "expire": soa.expire,
            "minimum": soa.minimum,
        }),
        RecordData::Srv(srv) => json!({
            "priority": srv.priority, "weight": srv.weight, "port": srv.port, "target": srv.target,
        }),
        RecordData::Caa(caa) => {
            json!({"critical": caa.critical, "tag": caa.tag, "value": caa.value})
        }
        _ => return None,
    })
}

wscan_sdk::export_plugin!(Dns);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_argument() {
        assert_eq!(
            record_types(["A", "AAAA", "MX", "A"].into_iter()),
            [RecordType::A, RecordType::Aaaa, RecordType::Mx]
        );
        assert_eq!(record_types(["MX", "all"].into_iter()).len(), 10);
        // Every choice the host accepts names a type (or all).
        for word in TYPE_CHOICES {
            assert!(!record_types([word].into_iter()).is_empty(), "{word}");
        }
    }
}
