//! Targets that fight back, started on loopback: a port that resets every
//! connection, one that sends binary garbage, one that trickles a byte a
//! second, one that never speaks, and a "TLS" port that answers garbage.
//! Each scan ends within its limits and records each outcome for what it is.
//! (DNS servers that time out, SERVFAIL or truncate are in `dns.rs`.)

use crate::support::*;
use std::time::{Duration, Instant};

#[test]
fn resets_garbage_trickles_and_silence_are_each_recorded_for_what_they_are() {
    let reset = Listener::start(Behaviour::Reset);
    let garbage = Listener::start(Behaviour::Banner(b"\x00\xff\xfe\x80garbage\x1b[31m\x07"));
    let trickle = Listener::start(Behaviour::Trickle(b"SSH-2.0-slow-server\r\n"));
    let silent = Listener::start(Behaviour::Silent);
    let ports: Vec<String> = [&reset, &garbage, &trickle, &silent]
        .iter()
        .map(|l| l.port().to_string())
        .collect();
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
        "--timeout",
        "1s",
        "--plugin-timeout",
        "30s",
    ]);
    let started = Instant::now();
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Banner reads are bounded by port.banner-timeout (1.5 s), the
    // identification probes by --timeout: far from the hang guard.
    assert!(started.elapsed() < Duration::from_secs(30));
    let records = records(&out);
    // Every port is open; what it said is in its `service` finding.
    for l in [&reset, &garbage, &trickle, &silent] {
        assert!(
            findings(&records, "open-port")
                .iter()
                .any(|f| f["subject"]["port"] == l.port()),
            "port {} not reported: {records:#?}",
            l.port()
        );
    }
    let service = |l: &Listener| {
        findings(&records, "service")
            .into_iter()
            .find(|f| f["subject"]["port"] == l.port())
            .cloned()
    };
    // Reset at once: open (the handshake completed), nothing read.
    assert_eq!(service(&reset), None);
    // Garbage: kept, invalid UTF-8 replaced, control characters intact in
    // the JSON string.
    let g = service(&garbage).expect("garbage banner");
    let banner = g["data"]["banner"].as_str().unwrap();
    assert!(banner.contains("garbage"), "{g}");
    assert!(banner.contains('\u{fffd}'), "{g}");
    // A byte a second: what arrived first, within the banner timeout.
    let t = service(&trickle).expect("trickled banner");
    let banner = t["data"]["banner"].as_str().unwrap_or("");
    assert!(
        "SSH-2.0-slow-server".starts_with(banner) && !banner.is_empty(),
        "{t}"
    );
    // Silent: open, no banner.
    assert_eq!(service(&silent), None);
    assert!(errors(&records).is_empty(), "{records:#?}");
}

#[test]
fn a_tls_port_that_answers_garbage_is_a_tls_failure_for_that_unit_only() {
    let garbage = Listener::start(Behaviour::Banner(
        b"HTTP/1.0 400 nope\r\n\r\n\xff\xff\xff\xff",
    ));
    let mut cmd = wscan();
    cmd.args(["plugin", "run", "tls", "--subject"]);
    cmd.arg(format!("127.0.0.1:{}", garbage.port()));
    cmd.args(["--format", "jsonl", "--timeout", "2s"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let records = records(&out);
    let errs = errors(&records);
    assert_eq!(errs.len(), 1, "{records:#?}");
    let error = errs[0]["error"].as_str().unwrap();
    assert!(error.contains("TLS handshake with 127.0.0.1"), "{error}");
    assert!(error.to_lowercase().contains("tls"), "{error}");
    assert!(findings(&records, "tls-certificate").is_empty());
}

#[test]
fn open_ports_of_a_tarpit_are_reported_before_the_plugin_deadline() {
    // Listeners that never accept: every connect completes (the kernel's
    // backlog), and every banner read waits until its timeout.
    let tarpits: Vec<std::net::TcpListener> = (0..5)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<String> = tarpits
        .iter()
        .map(|l| l.local_addr().unwrap().port().to_string())
        .collect();
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        &ports.join(","),
        "--plugins",
        "port",
    ]);
    cmd.args(["--format", "jsonl", "--plugin-timeout", "2s"]);
    cmd.args(["--plugin-arg", "port.banner-timeout=20s"]);
    let out = run(cmd, Duration::from_secs(60));
    // The deadline stops the banner reads: an error for the unit...
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let records = records(&out);
    let errs = errors(&records);
    assert_eq!(errs.len(), 1, "{records:#?}");
    assert!(
        errs[0]["error"].as_str().unwrap().contains("deadline"),
        "{records:#?}"
    );
    // ...but every open port found before it is kept.
    let mut open: Vec<String> = findings(&records, "open-port")
        .iter()
        .map(|f| f["subject"]["port"].to_string())
        .collect();
    open.sort();
    let mut want = ports.clone();
    want.sort();
    assert_eq!(open, want, "{records:#?}");
}
