//! Hot loading: plugins in the folder of a running `wscan scan --watch` are
//! swapped, rejected and removed without a restart.

use crate::support::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Write `bytes` to `dest` the way an installer should: a temporary file in
/// the same folder, then an atomic rename.
fn install(bytes: &[u8], dest: &Path) {
    let tmp = dest.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dest).unwrap();
}

#[test]
fn swaps_rejects_and_removes_plugins_while_a_watch_scan_runs() {
    let dir = tempfile::tempdir().unwrap();
    let tick = dir.path().join("tick.wasm");
    install(&std::fs::read(test_plugin("tick_v1")).unwrap(), &tick);

    // 256 addresses, one at a time (one instance, one subject each), 100 ms
    // each: a scan of about 25 s, unless the plugin disappears.
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.0/24",
        "--plugins",
        "tick",
        "--parallel",
        "1",
        "--batch-size",
        "1",
        "--format",
        "jsonl",
        "--watch",
    ]);
    cmd.arg("--plugin-dir").arg(dir.path());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = mpsc::channel::<serde_json::Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(serde_json::from_str(&line.unwrap()).unwrap());
        }
    });
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let wait_for = |seen: &mut Vec<serde_json::Value>,
                    what: &str,
                    done: &dyn Fn(&[serde_json::Value]) -> bool| {
        while !done(seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(record) => seen.push(record),
                Err(_) => panic!("timed out waiting for {what}; records so far: {seen:#?}"),
            }
        }
    };
    let count = |seen: &[serde_json::Value], version: &str| {
        seen.iter()
            .filter(|r| r["kind"] == "tick" && r["plugin"]["version"] == version)
            .count()
    };

    wait_for(&mut seen, "three units of version 1", &|s| {
        count(s, "1.0.0") >= 3
    });
    install(&std::fs::read(test_plugin("tick_v2")).unwrap(), &tick);
    wait_for(&mut seen, "a unit of version 2", &|s| {
        count(s, "2.0.0") >= 1
    });

    // A corrupt file in place of the plugin is rejected; version 2 goes on.
    install(b"\0asm\x0d\0\x01\0 this is not a component", &tick);
    let before = count(&seen, "2.0.0");
    wait_for(&mut seen, "version 2 to keep running", &|s| {
        count(s, "2.0.0") >= before + 8
    });

    // Removing the file stops the plugin being scheduled: the scan ends.
    std::fs::remove_file(&tick).unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the scan did not end after the plugin was removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(record) = rx.recv_timeout(Duration::from_secs(2)) {
        seen.push(record);
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");

    // Every unit before the swap ran version 1, every unit after it version 2
    // (one unit at a time, so output order is start order), and none failed.
    let versions: Vec<&str> = seen
        .iter()
        .map(|r| r["plugin"]["version"].as_str().unwrap())
        .collect();
    let first_v2 = versions.iter().position(|v| *v == "2.0.0").unwrap();
    assert!(
        versions[..first_v2].iter().all(|v| *v == "1.0.0"),
        "{versions:?}"
    );
    assert!(
        versions[first_v2..].iter().all(|v| *v == "2.0.0"),
        "{versions:?}"
    );
    assert!(seen.iter().all(|r| r["type"] == "finding"), "{seen:#?}");
    assert!(
        seen.len() < 256,
        "the removed plugin kept running: {} units",
        seen.len()
    );

    assert!(
        stderr.contains("plugin tick 2.0.0 swapped in from"),
        "{stderr}"
    );
    assert!(
        stderr.contains("tick.wasm is not a WebAssembly component"),
        "{stderr}"
    );
    assert!(stderr.contains("plugin tick removed"), "{stderr}");
    assert!(
        stderr.contains("plugin folder: 0 loaded, 1 swapped, 1 rejected, 1 removed"),
        "{stderr}"
    );
}

#[test]
fn watch_without_a_plugin_folder_is_a_usage_error() {
    let mut cmd = wscan();
    cmd.args(["scan", "127.0.0.1", "-p", "1", "--watch"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--watch needs a plugin folder"));
}
