//! Test plugin: a batch with poison in it. On an address ending in .13 it
//! panics (a trap), on .14 it spins forever (the deadline), on .15 it
//! allocates without end (the memory limit). Every other address gets an
//! `ok` finding: at once below .13 (finished before the poison strikes),
//! and before a short sleep above it (unfinished when its batch fails, so
//! run again alone). The host must give the three their own error records
//! and every other address its finding, exactly once.

use std::time::Duration;
use wscan_sdk::prelude::*;

struct Poison;

impl Plugin for Poison {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "poison",
            "0.1.0",
            "Traps, loops or exhausts memory on three addresses",
        )
        .consumes(SubjectFilter::addresses())
    }

    async fn scan(subject: Subject, _options: ScanOptions) -> Result<(), Error> {
        let last = match subject.ip() {
            Some(std::net::IpAddr::V4(ip)) => ip.octets()[3],
            _ => return Err("IPv4 addresses only".into()),
        };
        match last {
            13 => panic!("poison: trap on {:?}", subject.ip()),
            14 => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            15 => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => {}
        }
        let finding = Finding::new("ok", Severity::Info, "scanned", subject);
        report::finding(finding).map_err(Error::from)?;
        if last > 15 {
            wscan_sdk::task::sleep(wscan_sdk::time::Duration::from(Duration::from_millis(200)))
                .await;
        }
        Ok(())
    }
}

wscan_sdk::export_plugin!(Poison);
