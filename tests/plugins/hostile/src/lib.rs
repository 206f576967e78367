//! Test plugin: misbehaves in the way its `mode` argument names, so the
//! tests can show each misbehaviour is contained and recorded:
//! `bomb` allocates until memory runs out, `flood` reports findings without
//! end, `leak` holds ever more host resources, `undeclared` calls a
//! primitive it did not declare (DNS), `outside` connects out of scope,
//! `linger` emits an out-of-scope address and then sleeps.

use wscan_sdk::bindings::wscan::plugin::tcp as raw;
use wscan_sdk::prelude::*;

struct Hostile;

impl Plugin for Hostile {
    fn describe() -> PluginInfo {
        PluginInfo::new("hostile", "0.1.0", "Misbehaves on purpose (tests only)")
            .consumes(SubjectFilter::addresses())
            .capability(Capability::Tcp)
            .arg(ArgInfo::choice(
                "mode",
                "how to misbehave",
                &["bomb", "flood", "leak", "undeclared", "outside", "linger"],
            ))
            .arg(
                ArgInfo::integer("port", "a closed port of the subject, for leak", 1..=65535)
                    .default(9),
            )
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        let ip = subject.ip().ok_or("addresses only")?;
        match options.text("mode").unwrap_or_default() {
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Touch every page, so the memory is really taken.
                    hoard.push(vec![0x5a; 8 << 20]);
                }
            }
            "flood" => {
                for n in 0..1_000_000u32 {
                    let finding =
                        Finding::new("flood", Severity::Info, format!("#{n}"), subject.clone());
                    if let Err(e) = report::finding(finding) {
                        return Err(format!("stopped after {n} findings: {}", e.message()).into());
                    }
                }
                Ok(())
            }
            "leak" => {
                let port: u16 = options.integer("port").unwrap_or(9);
                let mut held = Vec::new();
                loop {
                    // Started and never awaited nor dropped: each is a live
                    // host resource.
                    held.push(raw::connect(wscan_sdk::from_ip(ip), port, Some(1000)));
                }
            }
            "undeclared" => {
                let answer = dns::lookup("www.example.test", dns::RecordType::A).await;
                let outcome = match answer {
                    Ok(_) => "answered".to_string(),
                    Err(e) => e.message(),
                };
                report::finding(Finding::new(
                    "undeclared",
                    Severity::Info,
                    outcome,
                    subject.clone(),
                ))
                .map_err(Error::from)
            }
            "outside" => {
                let outcome = match tcp::connect("127.0.0.2".parse().unwrap(), 9, None).await {
                    Ok(_) => "connected".to_string(),
                    Err(e) => e.message(),
                };
                report::finding(Finding::new(
                    "outside",
                    Severity::Info,
                    outcome,
                    subject.clone(),
                ))
                .map_err(Error::from)
            }
            // Finds a subject outside the scope, says so, then takes its
            // time: a scan stopped now must still report the subject.
            "linger" => {
                report::subject(Subject::address("127.0.0.2".parse().unwrap(), None))?;
                report::finding(Finding::new(
                    "lingering",
                    Severity::Info,
                    "emitted 127.0.0.2, now lingering",
                    subject.clone(),
                ))?;
                wscan_sdk::task::sleep(wscan_sdk::time::Duration::from_secs(120)).await;
                Ok(())
            }
            other => Err(format!("unknown mode {other:?}").into()),
        }
    }
}

wscan_sdk::export_plugin!(Hostile);
