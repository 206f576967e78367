//! The port plugin through the real binary, against loopback listeners.

use crate::support::*;
use std::collections::BTreeMap;
use std::time::Duration;

#[test]
fn reports_exactly_the_open_ports_with_their_banners() {
    let ssh = Listener::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"));
    let smtp = Listener::start(Behaviour::Banner(b"220 mail.example.test ESMTP ready\r\n"));
    let silent = Listener::start(Behaviour::Silent);
    let closed = closed_port();
    let ports = format!(
        "{},{},{},{}",
        ssh.port(),
        smtp.port(),
        silent.port(),
        closed
    );

    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        &ports,
        "--plugins",
        "port",
        "--format",
        "jsonl",
    ]);
    cmd.args(["--plugin-arg", "port.banner-timeout=500ms"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = records(&out);
    // An open-port finding per port, and a service finding per banner.
    assert_eq!(records.len(), 5, "{records:#?}");

    let by_port: BTreeMap<u64, &serde_json::Value> = findings(&records, "open-port")
        .into_iter()
        .map(|r| (r["subject"]["port"].as_u64().unwrap(), r))
        .collect();
    let expected: Vec<u64> = {
        let mut v = vec![ssh.port().into(), smtp.port().into(), silent.port().into()];
        v.sort();
        v
    };
    assert_eq!(by_port.keys().copied().collect::<Vec<_>>(), expected);

    for r in &records {
        assert_eq!(r["plugin"]["name"], "port");
        assert_eq!(r["plugin"]["version"], "0.2.0");
        assert_eq!(r["severity"], "info");
        assert_eq!(r["subject"]["kind"], "service");
        assert_eq!(r["subject"]["address"], "127.0.0.1");
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(r["data"]["protocol"], "tcp");
    }
    // The open-port finding came before its banner: named by the port
    // number alone (nothing, for these ephemeral ports).
    let ssh_open = by_port[&u64::from(ssh.port())];
    assert_eq!(ssh_open["title"], format!("open port {}/tcp", ssh.port()));
    assert!(ssh_open["data"].get("banner").is_none(), "{ssh_open}");
    let services: BTreeMap<u64, &serde_json::Value> = findings(&records, "service")
        .into_iter()
        .map(|r| (r["subject"]["port"].as_u64().unwrap(), r))
        .collect();
    let ssh_rec = services[&u64::from(ssh.port())];
    assert_eq!(ssh_rec["data"]["banner"], "SSH-2.0-OpenSSH_9.2p1 Debian");
    assert_eq!(ssh_rec["data"]["service"], "ssh");
    assert_eq!(ssh_rec["subject"]["service"], "ssh");
    assert_eq!(ssh_rec["title"], format!("{}/tcp is ssh", ssh.port()));
    let smtp_rec = services[&u64::from(smtp.port())];
    assert_eq!(
        smtp_rec["data"]["banner"],
        "220 mail.example.test ESMTP ready"
    );
    assert_eq!(smtp_rec["data"]["service"], "smtp");
    // Silent: open, and nothing more to say.
    assert!(!services.contains_key(&u64::from(silent.port())));
    let silent_rec = by_port[&u64::from(silent.port())];
    assert_eq!(
        silent_rec["title"],
        format!("open port {}/tcp", silent.port())
    );
}

#[test]
fn output_file_receives_the_records_and_stdout_stays_empty() {
    let open = Listener::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.jsonl");
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        &open.port().to_string(),
        "--plugins",
        "port",
        "-q",
    ]);
    cmd.args(["--plugin-arg", "port.banner=false", "-o"])
        .arg(&file);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.is_empty(),
        "--quiet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["subject"]["port"], open.port());
}

#[test]
fn table_format_shows_one_row_per_open_port_and_one_per_banner() {
    let open = Listener::start(Behaviour::Banner(b"hello\r\n"));
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        &format!("{},{}", open.port(), closed_port()),
    ]);
    cmd.args(["--plugins", "port", "--format", "table"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("SEVERITY"));
    assert!(
        lines[1].contains(&format!("127.0.0.1:{}", open.port())) && lines[1].contains("open-port"),
        "{text}"
    );
    assert!(
        lines[2].contains(&format!("127.0.0.1:{}", open.port()))
            && lines[2].contains("service")
            && lines[2].ends_with(&format!("{}/tcp sent a banner  \"hello\"", open.port())),
        "{text}"
    );
}

/// `--format csv`: a header, then one row per record with the chosen
/// fields (a banner with a comma and quotes stays one cell), from a scan
/// and from the store; `--format markdown` groups them by host; `--fields`
/// without CSV, or an unknown field, is a usage error before anything is
/// sent.
#[test]
fn csv_output_has_the_chosen_columns_from_a_scan_and_from_the_store() {
    let ssh = Listener::start(Behaviour::Banner(b"SSH-2.0-test, \"quoted\"\r\n"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let port = ssh.port().to_string();
    let fields = "plugin,kind,address,port,data.banner";
    let mut cmd = wscan();
    cmd.arg("--db").arg(&db);
    cmd.args(["scan", "127.0.0.1", "-p", &port, "--plugins", "port", "-q"]);
    cmd.args(["--format", "csv", "--fields", fields]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = |out: &std::process::Output| -> Vec<Vec<String>> {
        csv::Reader::from_reader(&out.stdout[..])
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect()
    };
    let header: Vec<String> = csv::Reader::from_reader(&out.stdout[..])
        .headers()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header.join(","), fields);
    let scanned = rows(&out);
    let service = scanned
        .iter()
        .find(|r| r[1] == "service")
        .unwrap_or_else(|| panic!("{scanned:?}"));
    assert_eq!(
        service,
        &[
            "port",
            "service",
            "127.0.0.1",
            &port,
            "SSH-2.0-test, \"quoted\""
        ]
    );
    assert!(
        scanned
            .iter()
            .any(|r| r[1] == "open-port" && r[4].is_empty())
    );

    let mut cmd = wscan();
    cmd.arg("--db").arg(&db);
    cmd.args([
        "results", "show", "1", "--format", "csv", "--fields", fields,
    ]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(rows(&out), scanned, "the store gives the same rows");

    // The same records as a Markdown report, grouped by host.
    let mut cmd = wscan();
    cmd.arg("--db").arg(&db);
    cmd.args(["results", "show", "1", "--format", "markdown"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.starts_with("# wscan report\n"), "{report}");
    assert!(report.contains("\n## 127.0.0.1\n"), "{report}");
    assert!(
        report.contains(&format!("| info | port | service | {port} |")),
        "{report}"
    );

    for (args, says) in [
        (vec!["--fields", "port"], "add --format csv"),
        (
            vec!["--format", "csv", "--fields", "bogus"],
            "unknown field \"bogus\"",
        ),
    ] {
        let mut cmd = wscan();
        cmd.args(["scan", "127.0.0.1", "-p", &port, "--no-db"])
            .args(&args);
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}
