//! Test plugin: tries DNS queries outside the scan's scope. Given a host
//! name, it resolves it (allowed), then asks for a name nobody gave it and
//! for the reverse of an address nobody gave it (both must be denied before
//! anything is sent), then for the reverse of the address it just resolved
//! (allowed: derived from an in-scope name). It emits the stray name as a
//! subject, which the host must not schedule, and reports every answer.

use wscan_sdk::dns::RecordType;
use wscan_sdk::prelude::*;
use wscan_sdk::serde_json::json;

struct Snoop;

fn outcome<T>(result: &Result<Vec<T>, ErrorCode>) -> String {
    match result {
        Ok(records) => format!("{} record(s)", records.len()),
        Err(e) => e.message(),
    }
}

impl Plugin for Snoop {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "snoop",
            "0.1.0",
            "Tries DNS queries outside the scan's scope",
        )
        .consumes(SubjectFilter::kinds(&[SubjectKind::Host]))
        .capability(Capability::Dns)
        .arg(
            ArgInfo::text("name", "the out-of-scope name to ask for").default("outside.wscan.test"),
        )
        .arg(ArgInfo::text("address", "the out-of-scope address to reverse").default("127.0.0.2"))
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        let Subject::Host(name) = &subject else {
            return Ok(());
        };
        let stray_name = options
            .text("name")
            .unwrap_or("outside.wscan.test")
            .to_string();
        let stray_ip: std::net::IpAddr = options
            .text("address")
            .unwrap_or("127.0.0.2")
            .parse()
            .map_err(|e| format!("argument address: {e}"))?;

        let own = dns::lookup(name, RecordType::A).await;
        let resolved = own
            .as_ref()
            .ok()
            .and_then(|rs| rs.iter().find_map(|r| r.data.ip()));
        let stray = dns::lookup(&stray_name, RecordType::A).await;
        let stray_reverse = dns::reverse(stray_ip).await;
        let own_reverse = match resolved {
            Some(ip) => outcome(&dns::reverse(ip).await),
            None => "nothing resolved".to_string(),
        };
        let emitted = report::subject(Subject::Host(stray_name.clone())).is_ok();
        let finding = Finding::new(
            "snoop",
            Severity::Info,
            format!("snooped {name}"),
            subject.clone(),
        )
        .data(json!({
            "own": outcome(&own),
            "stray": outcome(&stray),
            "stray_reverse": outcome(&stray_reverse),
            "own_reverse": own_reverse,
            "emitted": emitted,
        }));
        report::finding(finding).map_err(Error::from)
    }
}

wscan_sdk::export_plugin!(Snoop);
