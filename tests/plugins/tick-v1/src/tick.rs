// Shared by tick-v1 and tick-v2, which differ only in VERSION: the hot
// reload test swaps one for the other while a scan runs.

use std::time::Duration;
use wscan_sdk::prelude::*;
use wscan_sdk::serde_json::json;

struct Tick;

impl Plugin for Tick {
    fn describe() -> PluginInfo {
        PluginInfo::new("tick", VERSION, "Reports its version for every address, slowly")
            .consumes(SubjectFilter::addresses())
            .arg(
                ArgInfo::duration(
                    "sleep",
                    "how long each unit takes",
                    Duration::ZERO..=Duration::from_secs(60),
                )
                .default("100ms"),
            )
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        let finding = Finding::new("tick", Severity::Info, format!("tick {VERSION}"), subject)
            .data(json!({ "version": VERSION }));
        report::finding(finding).map_err(Error::from)?;
        let sleep = options.duration("sleep").unwrap_or(Duration::from_millis(100));
        wscan_sdk::task::sleep(wscan_sdk::time::Duration::from(sleep)).await;
        Ok(())
    }
}

wscan_sdk::export_plugin!(Tick);
