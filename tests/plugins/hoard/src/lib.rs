//! Test plugin: a batch that would hold too much. Every address reports
//! four findings of about 1 MB each, then waits; the address ending in .7
//! panics once everyone has reported. Eight addresses report 32 MB, more
//! than the 16 MiB a call may hold back: the host must stream the largest
//! holders as it goes (they keep their findings and end with the batch's
//! trap) and run the rest again alone, so every finding is written exactly
//! once.

use std::time::Duration;
use wscan_sdk::prelude::*;

struct Hoard;

/// About 1 MB of finding data.
const PAD: usize = 1_000_000;

impl Plugin for Hoard {
    fn describe() -> PluginInfo {
        PluginInfo::new("hoard", "0.1.0", "Reports 4 MB per address; .7 traps")
            .consumes(SubjectFilter::addresses())
    }

    async fn scan(subject: Subject, _options: ScanOptions) -> Result<(), Error> {
        let last = match subject.ip() {
            Some(std::net::IpAddr::V4(ip)) => ip.octets()[3],
            _ => return Err("IPv4 addresses only".into()),
        };
        let pad = "x".repeat(PAD);
        for n in 0..4 {
            let finding = Finding::new("hoard", Severity::Info, "hoarded", subject.clone())
                .data(wscan_sdk::serde_json::json!({ "n": n, "pad": pad }));
            report::finding(finding).map_err(Error::from)?;
        }
        // Every subject of the batch reports before .7 strikes.
        let wait = if last == 7 { 300 } else { 600 };
        wscan_sdk::task::sleep(wscan_sdk::time::Duration::from(Duration::from_millis(wait))).await;
        if last == 7 {
            panic!("hoard: trap on {:?}", subject.ip());
        }
        Ok(())
    }
}

wscan_sdk::export_plugin!(Hoard);
