//! Test plugin: `describe()` panics, so loading it must fail with the reason.

use wscan_sdk::prelude::*;

struct BadInfo;

impl Plugin for BadInfo {
    fn describe() -> PluginInfo {
        panic!("describe is broken on purpose");
    }

    async fn scan(_subject: Subject, _options: ScanOptions) -> Result<(), Error> {
        Ok(())
    }
}

wscan_sdk::export_plugin!(BadInfo);
