//! Test plugin: never returns from `scan`. The host must stop it at its
//! deadline, record an error for the unit, and finish the scan.

use wscan_sdk::prelude::*;

struct Looper;

impl Plugin for Looper {
    fn describe() -> PluginInfo {
        PluginInfo::new("looper", "0.1.0", "Spins forever on every address")
            .consumes(SubjectFilter::addresses())
    }

    async fn scan(subject: Subject, _options: ScanOptions) -> Result<(), Error> {
        // Report first, so the test can check nothing reported before the
        // plugin was stopped is lost.
        let finding = Finding::new("looping", Severity::Info, "about to loop", subject);
        report::finding(finding).map_err(Error::from)?;
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

wscan_sdk::export_plugin!(Looper);
