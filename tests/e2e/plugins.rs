//! Plugins loaded with --plugin: findings come out, subjects chain, and a
//! plugin that loops or panics loses only its own unit.

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

#[test]
fn sdk_plugin_chains_from_port_and_its_findings_come_out() {
    let echo = Listener::start(Behaviour::Echo);
    let mut cmd = scan_port(echo.port(), &["greeter"]);
    cmd.args([
        "--plugin-arg",
        "greeter.greeting=hi there",
        "--plugin-arg",
        "port.banner-timeout=200ms",
    ]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = records(&out);
    assert_eq!(findings(&records, "open-port").len(), 1, "{records:#?}");
    let greetings = findings(&records, "greeting");
    assert_eq!(greetings.len(), 1, "{records:#?}");
    let g = greetings[0];
    assert_eq!(g["plugin"]["name"], "greeter");
    assert_eq!(g["severity"], "low");
    assert_eq!(g["subject"]["kind"], "service");
    assert_eq!(g["subject"]["port"], echo.port());
    assert_eq!(g["data"]["sent"], "hi there");
    assert_eq!(g["data"]["reply"], "echo: hi there\n");
}

#[test]
fn looping_plugin_is_stopped_at_its_deadline_and_the_scan_completes() {
    let open = Listener::start(Behaviour::Silent);
    let mut cmd = scan_port(open.port(), &["looper"]);
    cmd.args([
        "--plugins",
        "port,looper",
        "--plugin-timeout",
        "1s",
        "--plugin-arg",
        "port.banner=false",
    ]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = records(&out);
    // The port plugin's work is intact.
    assert_eq!(findings(&records, "open-port").len(), 1, "{records:#?}");
    // What the looper reported before it was stopped is kept.
    assert_eq!(findings(&records, "looping").len(), 1, "{records:#?}");
    let errors = errors(&records);
    assert_eq!(errors.len(), 1, "{records:#?}");
    assert_eq!(errors[0]["plugin"]["name"], "looper");
    assert_eq!(errors[0]["subject"]["address"], "127.0.0.1");
    assert_eq!(
        errors[0]["error"],
        "plugin stopped after exceeding its 1s deadline"
    );
}

#[test]
fn panicking_plugin_is_recorded_with_its_message() {
    let open = Listener::start(Behaviour::Silent);
    let mut cmd = scan_port(open.port(), &["panicker"]);
    cmd.args([
        "--plugins",
        "panicker,port",
        "--plugin-arg",
        "port.banner=false",
    ]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(3));
    let records = records(&out);
    assert_eq!(findings(&records, "open-port").len(), 1, "{records:#?}");
    let errors = errors(&records);
    assert_eq!(errors.len(), 1, "{records:#?}");
    let message = errors[0]["error"].as_str().unwrap();
    assert!(message.starts_with("plugin trapped: "), "{message}");
    assert!(
        message.contains("panicker was asked to scan Some(127.0.0.1)"),
        "{message}"
    );
}

/// The records of a scan of 127.0.0.0/27 in which .13, .14 and .15 are
/// poison: every other address has its one `ok` finding, and those three
/// have one error each and are the only errors. Their messages, in order.
pub(crate) fn poisoned_batch(records: &[Value]) -> [String; 3] {
    let mut ok: Vec<&str> = findings(records, "ok")
        .iter()
        .map(|f| f["subject"]["address"].as_str().unwrap())
        .collect();
    ok.sort_unstable();
    let mut want: Vec<String> = (0..32)
        .filter(|n| !(13..=15).contains(n))
        .map(|n| format!("127.0.0.{n}"))
        .collect();
    want.sort_unstable();
    assert_eq!(ok, want, "every other subject once: {records:#?}");
    let errors = errors(records);
    assert_eq!(errors.len(), 3, "{records:#?}");
    [13, 14, 15].map(|n| {
        let of: Vec<_> = errors
            .iter()
            .filter(|e| e["subject"]["address"] == format!("127.0.0.{n}"))
            .collect();
        assert_eq!(of.len(), 1, "one error for .{n}: {records:#?}");
        of[0]["error"].as_str().unwrap().to_string()
    })
}

#[test]
fn poison_in_a_batch_costs_the_other_subjects_nothing() {
    // One instance at a time, so the 32 addresses go to it as one batch
    // (one port: an address unit weighs its ports, and the scan's default
    // ports would make each a batch of its own). .13 traps, .14 loops, .15 exhausts its memory: the batch fails, its
    // unfinished subjects run again alone, and each poison one ends as its
    // own error. The plugin never touches the network.
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.0/27",
        "-p",
        "1",
        "--plugins",
        "poison",
        "--parallel",
        "1",
        "--plugin-timeout",
        "2s",
        "--plugin-memory",
        "32M",
        "--format",
        "jsonl",
        "--plugin",
    ]);
    cmd.arg(test_plugin("poison"));
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let records = records(&out);
    let error = poisoned_batch(&records);
    assert!(error[0].contains("poison: trap on"), "{}", error[0]);
    assert_eq!(error[1], "plugin stopped after exceeding its 2s deadline");
    assert!(
        error[2].contains("plugin memory limit reached"),
        "{}",
        error[2]
    );
    assert!(
        stderr(&out).contains("32 unit(s), 29 finding(s), 3 error(s)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_batch_holding_too_much_streams_its_largest_subjects() {
    // Eight addresses in one batch each report 4 MB, past the 16 MiB a
    // call may hold back, then .7 traps. The largest holders must have
    // streamed as the call went: they keep their findings and end with the
    // trap; the others run again alone. Without the cap every subject is
    // held, and only .7 ends in error.
    let mut cmd = wscan();
    // One port, so the eight are one batch (see the poison test).
    cmd.args(["scan", "127.0.0.0/29", "-p", "1", "--plugins", "hoard"]);
    cmd.args(["--parallel", "1"]);
    cmd.args(["--format", "jsonl", "--plugin"]);
    cmd.arg(test_plugin("hoard"));
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let records = records(&out);
    let mut seen: Vec<(String, u64)> = findings(&records, "hoard")
        .iter()
        .map(|f| {
            let address = f["subject"]["address"].as_str().unwrap().to_string();
            (address, f["data"]["n"].as_u64().unwrap())
        })
        .collect();
    seen.sort_unstable();
    let want: Vec<(String, u64)> = (0..8)
        .flat_map(|a| (0..4).map(move |n| (format!("127.0.0.{a}"), n)))
        .collect();
    assert_eq!(seen, want, "every finding exactly once");
    let errors = errors(&records);
    for error in &errors {
        let text = error["error"].as_str().unwrap();
        assert!(text.contains("hoard: trap on"), "{text}");
    }
    let streamed = errors
        .iter()
        .filter(|e| e["subject"]["address"] != "127.0.0.7")
        .count();
    assert!(streamed >= 2, "the largest holders streamed: {errors:#?}");
    assert_eq!(errors.len() - streamed, 1, "{errors:#?}");
}

#[test]
fn a_plugin_flooding_derived_subjects_finishes_without_deadlock() {
    // Address units emit a service for each of their ports, several times
    // the 10,000 places the scan keeps for derived subjects waiting to run.
    // First one instance at a time, the flooding unit holding the only
    // slot; then four addresses whose ports fill the budget of work in
    // flight, one flooding unit at a time. The plugin never touches the
    // network.
    for (targets, ports, parallel, want) in [
        ("127.0.0.1", "1-30000", "1", 30_000),
        ("127.0.0.0/30", "1-12000", "64", 48_000),
    ] {
        let mut cmd = wscan();
        cmd.args(["scan", targets, "-p", ports, "--plugins", "flood"]);
        cmd.args(["--parallel", parallel, "--format", "jsonl", "--plugin"]);
        cmd.arg(test_plugin("flood"));
        let out = run(cmd, Duration::from_secs(300));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let records = records(&out);
        let mut drained: Vec<(String, u64)> = findings(&records, "drained")
            .iter()
            .map(|f| {
                (
                    f["subject"]["address"].as_str().unwrap().to_string(),
                    f["subject"]["port"].as_u64().unwrap(),
                )
            })
            .collect();
        let total = drained.len();
        drained.sort_unstable();
        drained.dedup();
        assert_eq!(drained.len(), total, "a service drained twice ({targets})");
        assert_eq!(total, want, "{targets}: {}", stderr(&out));
    }
}

#[test]
fn plugin_list_shows_builtin_and_loaded_plugins() {
    let mut cmd = wscan();
    cmd.args(["plugin", "list", "--format", "jsonl", "--plugin"])
        .arg(test_plugin("greeter"));
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    let records = records(&out);
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dns", "http", "port", "tls", "greeter"]);
    assert_eq!(records[0]["consumes"]["kinds"], serde_json::json!(["host"]));
    assert_eq!(records[0]["capabilities"], serde_json::json!(["dns"]));
    assert_eq!(records[2]["source"], "built-in");
    assert_eq!(
        records[2]["consumes"]["kinds"],
        serde_json::json!(["address"])
    );
    assert_eq!(
        records[2]["capabilities"],
        serde_json::json!(["tcp", "tls"])
    );
    assert!(
        records[4]["source"]
            .as_str()
            .unwrap()
            .ends_with("wscan_test_greeter.wasm")
    );
    assert_eq!(records[4]["args"][0]["name"], "greeting");
}

#[test]
fn connects_outside_the_scope_are_denied_and_stray_subjects_not_scanned() {
    // Two listeners share a port number on 127.0.0.1 and 127.0.0.2; only
    // 127.0.0.1 is a target. Nothing may reach the one on 127.0.0.2.
    let inside = Listener::start(Behaviour::Silent);
    let port = inside.port();
    let outside = std::net::TcpListener::bind(("127.0.0.2", port)).expect("bind 127.0.0.2");
    outside.set_nonblocking(true).unwrap();

    let mut cmd = scan_port(port, &["stray"]);
    cmd.args(["--plugin-arg", "port.banner=false"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = records(&out);
    let attempts = findings(&records, "stray-attempt");
    assert_eq!(attempts.len(), 1, "{records:#?}");
    let denied = "access denied: 127.0.0.2 is outside the scan's scope";
    assert_eq!(attempts[0]["data"]["connect"], denied);
    assert_eq!(attempts[0]["data"]["probe"], denied);
    assert_eq!(attempts[0]["data"]["emitted"], true);
    // The stray subject was not scanned: one open-port finding, for 127.0.0.1.
    let open = findings(&records, "open-port");
    assert_eq!(open.len(), 1, "{records:#?}");
    assert_eq!(open[0]["subject"]["address"], "127.0.0.1");
    assert!(
        matches!(outside.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection reached 127.0.0.2"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("3 out-of-scope operation(s) denied"),
        "{stderr}"
    );
}
