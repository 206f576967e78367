//! Targets from a file and from standard input (`-i`), streamed; and
//! `host:port` and URL targets, which scan one port.

use crate::dns_server::DnsServer;
use crate::http_server::{HttpServer, TITLE};
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn open_ports(records: &[Value]) -> BTreeSet<(String, u64)> {
    findings(records, "open-port")
        .iter()
        .map(|f| {
            let s = &f["subject"];
            (
                s["address"].as_str().unwrap().to_string(),
                s["port"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn host_port_targets_scan_that_port_only() {
    let (a, b) = (
        Listener::start(Behaviour::Silent),
        Listener::start(Behaviour::Silent),
    );
    // -p names b's port too, but the target asks for a's only.
    let mut cmd = wscan();
    cmd.args([
        "scan",
        &format!("127.0.0.1:{}", a.port()),
        "--plugins",
        "port",
    ]);
    cmd.args([
        "-p",
        &format!("{},{}", a.port(), b.port()),
        "--format",
        "jsonl",
    ]);
    cmd.args(["--plugin-arg", "port.banner=false"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        open_ports(&records(&out)),
        BTreeSet::from([("127.0.0.1".to_string(), u64::from(a.port()))])
    );
}

#[test]
fn a_url_target_reaches_the_http_plugin_through_its_name() {
    let dns = DnsServer::start();
    let web = HttpServer::start();
    let other = Listener::start(Behaviour::Silent);
    let mut cmd = wscan();
    cmd.args([
        "scan",
        &format!("http://www.wscan.test:{}/index.html", web.port()),
    ]);
    cmd.args(["--resolver", &dns.addr().to_string(), "--format", "jsonl"]);
    cmd.args(["-p", &other.port().to_string()]);
    let out = run(cmd, Duration::from_secs(90));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    // The name's addresses got the URL's port, not -p.
    assert_eq!(
        open_ports(&records),
        BTreeSet::from([("127.0.0.1".to_string(), u64::from(web.port()))]),
        "{records:#?}"
    );
    let pages = findings(&records, "http-response");
    assert_eq!(pages.len(), 1, "{records:#?}");
    assert_eq!(pages[0]["data"]["status"], 200);
    assert_eq!(pages[0]["data"]["title"], TITLE);
    assert_eq!(pages[0]["subject"]["host"], "www.wscan.test");
}

#[test]
fn a_target_file_is_scanned_and_its_bad_lines_reported() {
    let (a, b) = (
        Listener::start(Behaviour::Silent),
        Listener::start(Behaviour::Silent),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    std::fs::write(
        &file,
        format!(
            "# a comment, then a blank line\n\n127.0.0.1  # the address\n127.0.0.2:{}\nnot a target!\n127.0.0.3-4\n",
            b.port()
        ),
    )
    .unwrap();
    let mut cmd = wscan();
    cmd.args(["scan", "-i"]).arg(&file);
    cmd.args(["--plugins", "port", "--format", "jsonl", "--ordered"]);
    cmd.args(["-p", &format!("{},{}", a.port(), b.port())]);
    cmd.args(["--plugin-arg", "port.banner=false"]);
    let out = run(cmd, Duration::from_secs(60));
    // The bad line is the user's to fix: exit 2, but every good line ran.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("1 input line(s) were not targets"), "{err}");
    // The listeners are bound to 127.0.0.1 only: 127.0.0.2..4 are closed.
    assert_eq!(
        open_ports(&records(&out)),
        BTreeSet::from([
            ("127.0.0.1".to_string(), u64::from(a.port())),
            ("127.0.0.1".to_string(), u64::from(b.port())),
        ])
    );
    assert!(err.contains("4 unit(s)"), "{err}");

    // A file that cannot be read is an error before anything is sent.
    let mut cmd = wscan();
    cmd.args(["scan", "-i", "/nonexistent/targets.txt"]);
    let out = run(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read targets from /nonexistent/targets.txt"));
}

#[test]
fn standard_input_is_scanned_as_it_arrives() {
    let (a, b) = (
        Listener::start(Behaviour::Silent),
        Listener::start(Behaviour::Silent),
    );
    let mut cmd = wscan();
    cmd.args(["scan", "-i", "-", "--plugins", "port", "--format", "jsonl"]);
    cmd.args(["-p", &format!("{},{}", a.port(), b.port())]);
    cmd.args(["--plugin-arg", "port.banner=false"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn wscan");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());

    // The first line's finding arrives while standard input is still open:
    // the scan does not wait for the end of its input.
    writeln!(stdin, "127.0.0.1:{}", a.port()).unwrap();
    stdin.flush().unwrap();
    let started = Instant::now();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no record in time"
    );
    let first: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(first["subject"]["port"], a.port(), "{first}");

    writeln!(stdin, "127.0.0.1:{}", b.port()).unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let second: Value = serde_json::from_str(rest.trim()).unwrap();
    assert_eq!(second["subject"]["port"], b.port(), "{second}");
}

/// `--dry-run` units of `-i file`, with `extra` flags.
fn dry_run(file: &std::path::Path, extra: &[&str]) -> Vec<String> {
    let mut cmd = wscan();
    cmd.args(["scan", "--dry-run", "--plugins", "dns,port", "-i"])
        .arg(file);
    cmd.args(extra);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn shards_of_a_target_file_cover_every_unit_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    let mut text = String::from("10.9.0.0/24\n10.8.0.1-10.8.0.40\n");
    for i in 0..30 {
        text.push_str(&format!("host{i}.example.test\n10.7.0.{i}:8080\n"));
    }
    std::fs::write(&file, text).unwrap();
    let all = dry_run(&file, &["--seed", "9", "--exclude", "10.9.0.128/25"]);
    assert_eq!(all.len(), 128 + 40 + 30 + 30, "{all:?}");
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a unit came twice");
    assert!(
        all.contains(&"dns host7.example.test".to_string()),
        "{all:?}"
    );
    assert!(
        all.contains(&"port 10.7.0.3 port 8080".to_string()),
        "{all:?}"
    );
    let mut union = Vec::new();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        union.extend(dry_run(
            &file,
            &[
                "--seed",
                "9",
                "--exclude",
                "10.9.0.128/25",
                "--shard",
                &shard,
            ],
        ));
    }
    assert_eq!(union.len(), all.len(), "shards overlap or miss units");
    assert_eq!(union.iter().collect::<BTreeSet<_>>(), unique);
    let count = {
        let mut cmd = wscan();
        cmd.args([
            "scan",
            "--dry-run",
            "--count",
            "--plugins",
            "dns,port",
            "-i",
        ])
        .arg(&file);
        cmd.args(["--seed", "9", "--exclude", "10.9.0.128/25"]);
        let out = run(cmd, Duration::from_secs(60));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(count, all.len().to_string());
}

#[test]
fn an_address_after_a_host_port_target_is_still_swept_with_the_ports() {
    let (a, b) = (
        Listener::start(Behaviour::Silent),
        Listener::start(Behaviour::Silent),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    std::fs::write(&file, "127.0.0.1\n").unwrap();
    // The command line names a's port of 127.0.0.1; the file names
    // 127.0.0.1 itself, to be swept with -p (b's port).
    let mut cmd = wscan();
    cmd.args(["scan", &format!("127.0.0.1:{}", a.port()), "-i"])
        .arg(&file);
    cmd.args(["-p", &b.port().to_string(), "--plugins", "port"]);
    cmd.args(["--format", "jsonl", "--plugin-arg", "port.banner=false"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        open_ports(&records(&out)),
        BTreeSet::from([
            ("127.0.0.1".to_string(), u64::from(a.port())),
            ("127.0.0.1".to_string(), u64::from(b.port())),
        ])
    );
    // A host:port line, then a block holding its address: the block is
    // swept whole (the dry run lists what the scan runs).
    std::fs::write(&file, "127.0.0.5:8080\n127.0.0.0/29\n").unwrap();
    let units = dry_run(&file, &["--ordered", "-p", "9090"]);
    let mut want = vec!["port 127.0.0.5 port 8080".to_string()];
    want.extend((0..8).map(|i| format!("port 127.0.0.{i}")));
    assert_eq!(units, want);
}

#[test]
fn a_line_that_is_not_utf8_is_reported_and_reading_goes_on() {
    let open = Listener::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    let mut bytes = Vec::new();
    // A Latin-1 comment (fine: only the comment is not UTF-8), a Latin-1
    // target (bad), a 10 MB line with no comment (bad), then a target.
    bytes.extend_from_slice(b"# caf\xe9 servers\n");
    bytes.extend_from_slice(b"caf\xe9.example.test\n");
    bytes.extend(std::iter::repeat_n(b'a', 10 << 20));
    bytes.extend_from_slice(b"\n127.0.0.1\n");
    std::fs::write(&file, bytes).unwrap();
    let mut cmd = wscan();
    cmd.args(["scan", "-i"]).arg(&file);
    cmd.args(["-p", &open.port().to_string(), "--plugins", "port"]);
    cmd.args(["--format", "jsonl", "--plugin-arg", "port.banner=false"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        open_ports(&records(&out)),
        BTreeSet::from([("127.0.0.1".to_string(), u64::from(open.port()))])
    );
    let err = stderr(&out);
    assert!(err.contains("2 input line(s) were not targets"), "{err}");
    assert!(
        err.contains("line 2: not UTF-8 text (byte 3 of the line is 0xe9)"),
        "{err}"
    );
    // The dry run reports every bad line; the long one is quoted once,
    // shortened, and the message stays short.
    let mut cmd = wscan();
    cmd.args(["scan", "--dry-run", "--plugins", "port", "-i"])
        .arg(&file);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 3: a line of 10485760 bytes (\"aaaa"),
        "{err}"
    );
    assert!(err.len() < 2000, "{} bytes of errors", err.len());
}

#[test]
fn a_host_port_target_given_on_the_command_line_and_in_a_file_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    std::fs::write(
        &file,
        "127.0.0.1:8080\nwww.a.test:443\n127.0.0.1:8080\nWWW.a.test:443\nwww.a.test:8443\n",
    )
    .unwrap();
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1:8080",
        "--dry-run",
        "--plugins",
        "dns,port",
        "-i",
    ])
    .arg(&file);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let units: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        units,
        [
            "port 127.0.0.1 port 8080",
            "dns www.a.test port 443",
            "dns www.a.test port 8443"
        ]
    );
}

/// Issue 12, a sibling of item 5: a name given both as `host:port` and
/// bare lost one of the two: its addresses were scanned on the pinned port
/// only (the scan's ports were dropped, or the pin was, by the order of
/// the targets), and a bare `-i` line after the name's DNS unit had run
/// was dropped as already seen. Every order now scans both.
#[test]
fn a_name_given_bare_and_as_host_port_is_scanned_on_both() {
    let dns = DnsServer::start();
    let (pinned, swept) = (
        Listener::start(Behaviour::Silent),
        Listener::start(Behaviour::Silent),
    );
    let both = BTreeSet::from([
        ("127.0.0.1".to_string(), u64::from(pinned.port())),
        ("127.0.0.1".to_string(), u64::from(swept.port())),
    ]);
    let host_port = format!("www.wscan.test:{}", pinned.port());
    let scan = |targets: &[&str], file: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = wscan();
        cmd.arg("scan").args(targets);
        if let Some(content) = file {
            let path = dir.path().join("targets.txt");
            std::fs::write(&path, content).unwrap();
            cmd.arg("-i").arg(&path);
        }
        cmd.args(["--resolver", &dns.addr().to_string()]);
        cmd.args(["-p", &swept.port().to_string(), "--plugins", "dns,port"]);
        cmd.args(["--format", "jsonl", "--plugin-arg", "port.banner=false"]);
        let out = run(cmd, Duration::from_secs(90));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        open_ports(&records(&out))
    };
    assert_eq!(scan(&[&host_port, "www.wscan.test"], None), both);
    assert_eq!(scan(&["www.wscan.test", &host_port], None), both);
    assert_eq!(
        scan(&[], Some(&format!("{host_port}\nwww.wscan.test\n"))),
        both
    );
    assert_eq!(
        scan(&[], Some(&format!("www.wscan.test\n{host_port}\n"))),
        both
    );
    assert_eq!(scan(&[&host_port], Some("www.wscan.test\n")), both);

    // The bare line arrives after the pinned name's units have run: its
    // addresses are scanned on the scan's ports then, and the pinned port
    // is not scanned twice.
    let lines = |first: &str, second: &str| {
        let mut cmd = wscan();
        cmd.args(["scan", "-i", "-", "--resolver", &dns.addr().to_string()]);
        cmd.args(["-p", &swept.port().to_string(), "--plugins", "dns,port"]);
        cmd.args(["--format", "jsonl", "--plugin-arg", "port.banner=false"]);
        let seen = second_line_after_a_finding(cmd, first, second);
        assert_eq!(open_ports(&seen), both, "{seen:#?}");
        assert_eq!(
            findings(&seen, "open-port").len(),
            2,
            "each port once: {seen:#?}"
        );
    };
    lines(&host_port, "www.wscan.test");
    // And the other way: the pinned port of a line after the name's
    // addresses were scanned bare is scanned on them too.
    lines("www.wscan.test", &host_port);
}

/// Run `cmd` (a scan of `-i -`) with `first` on its standard input, then
/// `second` once `first` has given an open port; every record printed.
fn second_line_after_a_finding(mut cmd: Command, first: &str, second: &str) -> Vec<Value> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn wscan");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "{first}").unwrap();
    stdin.flush().unwrap();
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "ended early");
        let record: Value = serde_json::from_str(&line).unwrap();
        let open = record["kind"] == "open-port";
        seen.push(record);
        if open {
            break;
        }
    }
    writeln!(stdin, "{second}").unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    seen.extend(
        rest.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()),
    );
    seen
}

/// Issue 12, a sibling of item 5: the ports of a name given both as
/// `NAME:PORT` and bare in `-i` are split into units by when each line
/// arrives, and a resume (which routes what the done DNS unit emitted
/// before it reads a line) split them otherwise: it ran the scan's ports
/// again, a duplicate of every finding on them. What a resume skips is now
/// decided by the ports covered, however they were split.
#[test]
fn a_resumed_scan_of_a_name_given_bare_and_pinned_in_a_file_repeats_nothing() {
    let dns = DnsServer::start();
    let (pinned, swept) = (
        Listener::start(Behaviour::Silent),
        Listener::start(Behaviour::Silent),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let file = dir.path().join("targets.txt");
    let host_port = format!("www.wscan.test:{}", pinned.port());
    for (scan, content) in [
        (1, format!("{host_port}\nwww.wscan.test\n")),
        (2, format!("www.wscan.test\n{host_port}\n")),
    ] {
        std::fs::write(&file, content).unwrap();
        let mut cmd = wscan();
        cmd.arg("--db").arg(&db).args(["scan", "-i"]).arg(&file);
        cmd.args(["--resolver", &dns.addr().to_string()]);
        cmd.args(["-p", &swept.port().to_string(), "--plugins", "dns,port"]);
        cmd.args(["--plugin-arg", "port.banner=false", "-q"]);
        let out = run(cmd, Duration::from_secs(90));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        // Cut short by hand after every unit was done, as a crash after
        // the last unit leaves it: a resume must add nothing.
        let marked = Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE scans SET status='interrupted' WHERE id=\" + sys.argv[2]); c.commit()",
            ])
            .arg(&db)
            .arg(scan.to_string())
            .status()
            .unwrap();
        assert!(marked.success());
        let mut cmd = wscan();
        cmd.arg("--db").arg(&db);
        cmd.args(["scan", "--resume", &scan.to_string(), "-q"]);
        let out = run(cmd, Duration::from_secs(90));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let mut cmd = wscan();
        cmd.arg("--db").arg(&db);
        cmd.args(["results", "show", &scan.to_string(), "--format", "jsonl"]);
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let stored = records(&out);
        let open: Vec<u64> = findings(&stored, "open-port")
            .iter()
            .map(|f| f["subject"]["port"].as_u64().unwrap_or(0))
            .collect();
        let mut sorted = open.clone();
        sorted.sort_unstable();
        let mut expected = vec![u64::from(pinned.port()), u64::from(swept.port())];
        expected.sort_unstable();
        assert_eq!(sorted, expected, "scan {scan}, each port once: {stored:#?}");
    }
}
