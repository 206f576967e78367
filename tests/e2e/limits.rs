//! The scan's limits and statistics through the real binary: `--retries`
//! against a port whose first SYN is dropped (iptables, in a private
//! namespace), `--host-concurrency`, `--rate`, and `--stats`.

use crate::namespace::Netns;
use crate::support::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Read the `--stats` file of a finished scan.
fn stats(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).expect("stats file");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("stats not JSON ({e}): {text}"))
}

#[test]
fn a_dropped_first_syn_is_a_filtered_port_until_retries_are_allowed() {
    // Two listeners whose first SYN (per source address) is dropped; the
    // kernel would send its own second SYN only after 1 s, past the 300 ms
    // timeout, so only wscan's retry can get through.
    let (lost, retried) = (7001u16, 7002u16);
    let mut ns = Netns::create("retries");
    ns.listen(&[lost, retried]);
    for port in [lost, retried] {
        let (port, list) = (port.to_string(), format!("first-syn-{port}"));
        let rule = |check: &str, target: &str| {
            vec![
                "-A", "INPUT", "-p", "tcp", "--dport", &port, "--syn", "-m", "recent", "--name",
                &list, check, "-j", target,
            ]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
        };
        for args in [rule("--rcheck", "ACCEPT"), rule("--set", "DROP")] {
            ns.iptables(&args.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let scan = |port: u16, retries: &str, stats_file: &std::path::Path| {
        let mut cmd = ns.wscan();
        cmd.args([
            "scan",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--plugins",
            "port",
        ]);
        cmd.args([
            "--format",
            "jsonl",
            "--timeout",
            "300ms",
            "--retries",
            retries,
        ]);
        cmd.arg("--stats").arg(stats_file);
        cmd.args(["--plugin-arg", "port.banner=false"]);
        run(cmd, Duration::from_secs(60))
    };

    let without = dir.path().join("without.json");
    let out = scan(lost, "0", &without);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(findings(&records(&out), "open-port").is_empty());
    let s = stats(&without);
    assert_eq!(s["net"]["filtered"], 1, "{s:#}");
    assert_eq!(s["net"]["timeouts"], 1, "{s:#}");
    assert_eq!(s["net"]["retries"], 0, "{s:#}");

    let with = dir.path().join("with.json");
    let out = scan(retried, "2", &with);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    let open = findings(&records, "open-port");
    assert_eq!(open.len(), 1, "{records:#?}");
    assert_eq!(open[0]["subject"]["port"], retried);
    let s = stats(&with);
    assert_eq!(s["net"]["open"], 1, "{s:#}");
    assert_eq!(s["net"]["timeouts"], 1, "{s:#}");
    assert_eq!(s["net"]["retries"], 1, "{s:#}");
    assert_eq!(s["net"]["connects"], 2, "{s:#}");
}

#[test]
fn stats_count_every_port_state_and_plugin() {
    let open = [
        Listener::start(Behaviour::Silent),
        Listener::start(Behaviour::Silent),
    ];
    let closed = [closed_port(), closed_port(), closed_port()];
    let ports: Vec<String> = open
        .iter()
        .map(Listener::port)
        .chain(closed)
        .map(|p| p.to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stats.json");
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        &ports.join(","),
        "--plugins",
        "port",
    ]);
    cmd.args([
        "--format",
        "jsonl",
        "--host-concurrency",
        "1",
        "--timeout",
        "2s",
    ]);
    cmd.args(["--plugin-arg", "port.banner=false"]);
    cmd.arg("--stats").arg(&file);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(findings(&records(&out), "open-port").len(), 2);

    let s = stats(&file);
    assert_eq!(s["units"], 1, "{s:#}");
    assert_eq!(s["findings"], 2, "{s:#}");
    assert_eq!(s["errors"], 0, "{s:#}");
    assert_eq!(s["targets"], 1, "{s:#}");
    let net = &s["net"];
    assert_eq!(
        (net["open"].as_u64(), net["closed"].as_u64()),
        (Some(2), Some(3)),
        "{s:#}"
    );
    assert_eq!(net["connects"], 5, "{s:#}");
    assert_eq!(net["filtered"], 0, "{s:#}");
    // One address, at most one operation on it at a time.
    assert_eq!(net["peak_in_flight"], 1, "{s:#}");
    let port = &s["plugins"]["port"];
    assert_eq!(
        (port["units"].as_u64(), port["findings"].as_u64()),
        (Some(1), Some(2)),
        "{s:#}"
    );
    assert!(port["time_s"].as_f64().unwrap() > 0.0, "{s:#}");
    assert!(s["elapsed_s"].as_f64().unwrap() > 0.0, "{s:#}");

    // The same numbers on standard error.
    let stderr = stderr(&out);
    assert!(
        stderr.contains("5 connect(s): 2 open, 3 closed, 0 filtered, 0 unreachable port(s)"),
        "{stderr}"
    );
    assert!(stderr.contains("peak 1 in flight"), "{stderr}");
    assert!(
        stderr.contains("plugin port: 1 unit(s), 2 finding(s), 0 error(s)"),
        "{stderr}"
    );
}

#[test]
fn the_rate_spaces_connections_out() {
    // 21 closed ports at 20 per second: the last connect cannot start
    // before 1 s has passed (a lower bound the limit guarantees, not a
    // speed measurement).
    let ports: Vec<String> = (0..21).map(|_| closed_port().to_string()).collect();
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        &ports.join(","),
        "--plugins",
        "port",
    ]);
    cmd.args(["--format", "jsonl", "--rate", "20"]);
    let started = Instant::now();
    let out = run(cmd, Duration::from_secs(60));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(took >= Duration::from_millis(1000), "{took:?}");
    let stderr = stderr(&out);
    assert!(
        stderr.contains("21 connect(s): 0 open, 21 closed"),
        "{stderr}"
    );
}

#[test]
fn bad_limits_are_usage_errors() {
    for (flag, value, says) in [
        ("--rate", "0", "between 0.001 and 100000000"),
        ("--rate", "fast", "operations per second"),
        ("--retries", "many", "--retries"),
        ("--host-concurrency", "0", "above zero"),
    ] {
        let mut cmd = wscan();
        cmd.args(["scan", "127.0.0.1", "-p", "1", flag, value]);
        let out = run(cmd, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let stderr = stderr(&out);
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        "1",
        "--stats",
        "/nonexistent/dir/stats.json",
    ]);
    let out = run(cmd, Duration::from_secs(30));
    assert_ne!(out.status.code(), Some(0));
    let stderr = stderr(&out);
    assert!(
        stderr.contains("cannot create the statistics file"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing was scanned");
}
