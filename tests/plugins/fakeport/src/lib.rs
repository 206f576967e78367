//! Test plugin: calls itself `port`, so dropping it in the plugin folder
//! takes the built-in port plugin's place. It reports one finding per
//! address and touches no network.

use wscan_sdk::prelude::*;

struct FakePort;

impl Plugin for FakePort {
    fn describe() -> PluginInfo {
        PluginInfo::new("port", "9.9.9", "A stand-in for the built-in port plugin")
            .consumes(SubjectFilter::addresses())
    }

    async fn scan(subject: Subject, _options: ScanOptions) -> Result<(), Error> {
        let finding = Finding::new("fake-port", Severity::Info, "the stand-in ran", subject);
        report::finding(finding).map_err(Error::from)
    }
}

wscan_sdk::export_plugin!(FakePort);
