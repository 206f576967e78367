//! Test plugin: floods the pipeline. On an address it emits a service
//! subject for every port in `-p` (it never connects); on a service it
//! reports a `drained` finding. With the scan's ports in the tens of
//! thousands and one instance at a time, the address unit emits far faster
//! than its services run: the host must make it wait for room, without a
//! deadlock while it holds the only slot, and every service must be
//! drained once.

use wscan_sdk::prelude::*;

struct Flood;

impl Plugin for Flood {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "flood",
            "0.1.0",
            "Emits a service for every port, then drains each",
        )
        .consumes(SubjectFilter::kinds(&[
            SubjectKind::Address,
            SubjectKind::Service,
        ]))
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        match &subject {
            Subject::Address(target) => {
                let ip = wscan_sdk::to_ip(target.address);
                for range in &options.ports {
                    for port in range.first..=range.last {
                        report::subject(Subject::Service(Service::new(ip, port)))
                            .context(format_args!("emit {ip}:{port}"))?;
                    }
                }
            }
            Subject::Service(service) => {
                let title = format!("drained {}", service.port);
                report::finding(Finding::new(
                    "drained",
                    Severity::Info,
                    title,
                    subject.clone(),
                ))?;
            }
            Subject::Host(_) => return Err("addresses and services only".into()),
        }
        Ok(())
    }
}

wscan_sdk::export_plugin!(Flood);
