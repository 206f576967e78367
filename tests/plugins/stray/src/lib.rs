//! Test plugin: tries to leave the scan's scope. It connects to an address
//! it was not given (on loopback, so nothing could leave the machine even if
//! the host let it through) and emits it as a subject; it reports what the
//! host answered, so the tests can check the denial.

use wscan_sdk::prelude::*;
use wscan_sdk::serde_json::json;

struct Stray;

impl Plugin for Stray {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "stray",
            "0.1.0",
            "Tries to connect outside the scan's scope",
        )
        .consumes(SubjectFilter::services())
        .capability(Capability::Tcp)
        .arg(ArgInfo::text("target", "the out-of-scope address to try").default("127.0.0.2"))
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        let Subject::Service(service) = &subject else {
            return Ok(());
        };
        let target: std::net::IpAddr = options
            .text("target")
            .unwrap_or("127.0.0.2")
            .parse()
            .map_err(|e| format!("argument target: {e}"))?;
        let connect = match tcp::connect(target, service.port, None).await {
            Ok(_) => "connected".to_string(),
            Err(e) => e.message(),
        };
        let probe = match tcp::probe(
            target,
            &[PortRange {
                first: service.port,
                last: service.port,
            }],
            None,
        ) {
            Ok(_) => "started".to_string(),
            Err(e) => e.message(),
        };
        // Hand the stray address on: the host must not schedule it.
        let stray = Service::new(target, service.port);
        let emitted = report::subject(Subject::Service(stray)).map_err(Error::from);
        let finding = Finding::new(
            "stray-attempt",
            Severity::Info,
            format!("tried {target}"),
            subject.clone(),
        )
        .data(json!({ "connect": connect, "probe": probe, "emitted": emitted.is_ok() }));
        report::finding(finding).map_err(Error::from)
    }
}

wscan_sdk::export_plugin!(Stray);
