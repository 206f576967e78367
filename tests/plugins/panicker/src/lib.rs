//! Test plugin: panics (a wasm trap) on every address. The host must record
//! an error for the unit and carry on.

use wscan_sdk::prelude::*;

struct Panicker;

impl Plugin for Panicker {
    fn describe() -> PluginInfo {
        PluginInfo::new("panicker", "0.1.0", "Panics on every address")
            .consumes(SubjectFilter::addresses())
    }

    async fn scan(subject: Subject, _options: ScanOptions) -> Result<(), Error> {
        panic!("panicker was asked to scan {:?}", subject.ip());
    }
}

wscan_sdk::export_plugin!(Panicker);
