// Shared by tick-v1 and tick-v2, which differ only in VERSION: the hot
// reload test swaps one for the other while a scan runs.

use wscan_sdk::prelude::*;
use wscan_sdk::serde_json::json;

struct Tick;

impl Plugin for Tick {
    fn describe() -> PluginInfo {
        PluginInfo::new("tick", VERSION, "Reports its version for every address, slowly")
            .consumes(SubjectFilter::addresses())
            .arg("sleep-ms", "how long each unit takes", Some("100"))
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), String> {
        let finding = Finding::new("tick", Severity::Info, format!("tick {VERSION}"), subject)
            .data(json!({ "version": VERSION }));
        report::finding(finding).map_err(|e| e.to_string())?;
        let sleep: u64 = options.arg_or("sleep-ms", 100)?;
        wscan_sdk::task::sleep(wscan_sdk::time::Duration::from_millis(sleep)).await;
        Ok(())
    }
}

wscan_sdk::export_plugin!(Tick);
