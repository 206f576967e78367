//! The dns plugin and the dns primitive, against an authoritative server
//! the test starts on 127.0.0.1 (`dns_server`), through the real binary.

use crate::dns_server::DnsServer;
use crate::support::*;
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

/// `wscan scan TARGETS --resolver SERVER --format jsonl` plus `extra`.
fn scan(server: &DnsServer, targets: &[&str], extra: &[&str]) -> Output {
    let mut cmd = wscan();
    cmd.arg("scan").args(targets);
    cmd.args([
        "--resolver",
        &server.addr().to_string(),
        "--format",
        "jsonl",
    ]);
    cmd.args(extra);
    run(cmd, Duration::from_secs(60))
}

/// The dns-record findings as (owner, type, value), sorted.
fn record_set(records: &[Value]) -> Vec<(String, String, String)> {
    let mut set: Vec<(String, String, String)> = findings(records, "dns-record")
        .iter()
        .map(|f| {
            let d = &f["data"];
            (
                d["name"].as_str().unwrap().to_string(),
                d["type"].as_str().unwrap().to_string(),
                d["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    set.sort();
    set
}

fn triple(name: &str, kind: &str, value: &str) -> (String, String, String) {
    (name.into(), kind.into(), value.into())
}

#[test]
fn a_host_name_is_resolved_then_its_address_port_scanned() {
    let server = DnsServer::start();
    let listener = Listener::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let port = listener.port().to_string();
    let out = scan(
        &server,
        &["www.wscan.test"],
        &["-p", &port, "--plugins", "dns,port"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    assert_eq!(
        record_set(&records),
        [
            triple("www.wscan.test.", "A", "127.0.0.1"),
            triple("www.wscan.test.", "AAAA", "::1"),
        ],
        "{records:#?}"
    );
    let a = findings(&records, "dns-record")
        .into_iter()
        .find(|f| f["data"]["type"] == "A")
        .unwrap();
    assert_eq!(a["plugin"]["name"], "dns");
    assert_eq!(a["severity"], "info");
    assert_eq!(a["title"], "www.wscan.test A 127.0.0.1");
    assert_eq!(a["subject"]["kind"], "host");
    assert_eq!(a["subject"]["host"], "www.wscan.test");
    assert_eq!(a["data"]["query"], "www.wscan.test");
    assert_eq!(a["data"]["ttl"], 300);

    // The addresses the resolver returned were scanned, with the name kept.
    let open = findings(&records, "open-port");
    assert_eq!(open.len(), 1, "{records:#?}");
    assert_eq!(open[0]["subject"]["address"], "127.0.0.1");
    assert_eq!(open[0]["subject"]["host"], "www.wscan.test");
    let service = findings(&records, "service");
    assert_eq!(service[0]["data"]["banner"], "SSH-2.0-OpenSSH_9.6");
    assert_eq!(service[0]["subject"]["host"], "www.wscan.test");
    assert!(errors(&records).is_empty(), "{records:#?}");
}

#[test]
fn every_record_type_with_its_fields() {
    let server = DnsServer::start();
    let out = scan(
        &server,
        &["wscan.test", "_http._tcp.wscan.test"],
        &["--plugins", "dns", "--plugin-arg", "dns.types=all"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    assert_eq!(
        record_set(&records),
        [
            triple("_http._tcp.wscan.test.", "SRV", "10 5 8080 www.wscan.test."),
            triple("wscan.test.", "CAA", "0 issue \"letsencrypt.org\""),
            triple("wscan.test.", "MX", "10 mail.wscan.test."),
            triple("wscan.test.", "NS", "ns1.wscan.test."),
            triple(
                "wscan.test.",
                "SOA",
                "ns1.wscan.test. hostmaster.wscan.test. 2026112601 3600 600 86400 60"
            ),
            triple("wscan.test.", "TXT", "\"v=spf1 -all\""),
        ],
        "{records:#?}"
    );
    let detail = |kind: &str| {
        findings(&records, "dns-record")
            .into_iter()
            .find(|f| f["data"]["type"] == kind)
            .unwrap()["data"]["detail"]
            .clone()
    };
    assert_eq!(
        detail("MX"),
        serde_json::json!({"preference": 10, "exchange": "mail.wscan.test."})
    );
    assert_eq!(
        detail("SRV"),
        serde_json::json!({"priority": 10, "weight": 5, "port": 8080, "target": "www.wscan.test."})
    );
    assert_eq!(
        detail("CAA"),
        serde_json::json!({"critical": false, "tag": "issue", "value": "letsencrypt.org"})
    );
    assert_eq!(detail("SOA")["serial"], 2026112601);
    assert_eq!(
        detail("TXT"),
        serde_json::json!({"strings": ["v=spf1 -all"]})
    );
    // A name with records of other types only is not an error.
    assert!(errors(&records).is_empty(), "{records:#?}");
}

#[test]
fn an_alias_reports_its_chain_and_its_target_is_in_scope() {
    let server = DnsServer::start();
    let listener = Listener::start(Behaviour::Silent);
    let port = listener.port().to_string();
    let out = scan(
        &server,
        &["alias.wscan.test"],
        &[
            "-p",
            &port,
            "--plugins",
            "dns,port",
            "--plugin-arg",
            "dns.types=A,CNAME",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    assert_eq!(
        record_set(&records),
        [
            triple("alias.wscan.test.", "CNAME", "www.wscan.test."),
            triple("www.wscan.test.", "A", "127.0.0.1"),
        ],
        "{records:#?}"
    );
    let open = findings(&records, "open-port");
    assert_eq!(open.len(), 1, "{records:#?}");
    assert_eq!(open[0]["subject"]["host"], "alias.wscan.test");
}

#[test]
fn nxdomain_servfail_refused_and_timeout_are_told_apart() {
    let server = DnsServer::start();
    let out = scan(
        &server,
        &[
            "missing.wscan.test",
            "servfail.wscan.test",
            "refused.wscan.test",
            "silent.wscan.test",
        ],
        &[
            "--plugins",
            "dns",
            "--plugin-arg",
            "dns.types=A",
            "--timeout",
            "300ms",
        ],
    );
    // Failed units: exit 3, and every other outcome still written.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let records = records(&out);
    let mut errors: Vec<(String, String)> = errors(&records)
        .iter()
        .map(|e| {
            (
                e["subject"]["host"].as_str().unwrap().to_string(),
                e["error"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    errors.sort();
    let expect = |host: &str, why: &str| {
        (
            host.to_string(),
            format!("plugin reported failure: {host}: {why} (A)"),
        )
    };
    assert_eq!(
        errors,
        [
            expect("missing.wscan.test", "name not found (NXDOMAIN)"),
            expect("refused.wscan.test", "query refused (REFUSED)"),
            expect("servfail.wscan.test", "server failure (SERVFAIL)"),
            expect("silent.wscan.test", "timed out"),
        ]
    );
}

#[test]
fn a_truncated_answer_is_fetched_again_over_tcp() {
    let server = DnsServer::start();
    let out = scan(
        &server,
        &["big.wscan.test"],
        &["--plugins", "dns", "--plugin-arg", "dns.types=TXT"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    let txt = findings(&records, "dns-record");
    assert_eq!(txt.len(), 1, "{records:#?}");
    let strings = txt[0]["data"]["detail"]["strings"].as_array().unwrap();
    assert_eq!(strings.len(), 30);
    assert!(strings.iter().all(|s| s.as_str().unwrap().len() == 100));
    assert!(server.udp_queries() >= 1 && server.tcp_queries() >= 1);
}

/// How many PTR queries for 192.0.2.1 reached the server. (The resolver
/// answers 127.0.0.0/8 PTR queries itself, RFC 6761, so the test names
/// resolve to a documentation address that only the dns plugin sees: no
/// connection is made to it.)
fn ptr_queries(server: &DnsServer) -> usize {
    server
        .queries()
        .iter()
        .filter(|(name, kind)| name == "1.2.0.192.in-addr.arpa." && kind == "PTR")
        .count()
}

#[test]
fn answers_are_cached_for_the_scan_unless_turned_off() {
    // Two names resolve to 192.0.2.1; each unit asks for its PTR. Units run
    // one at a time, each in an instance of its own, so the second asks
    // after the first has its answer.
    let args = [
        "--plugins",
        "dns",
        "--plugin-arg",
        "dns.types=A",
        "--plugin-arg",
        "dns.ptr=true",
        "--parallel",
        "1",
        "--batch-size",
        "1",
    ];
    let cached = DnsServer::start();
    let out = scan(&cached, &["doc.wscan.test", "doc2.wscan.test"], &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ptr_queries(&cached), 1, "{:?}", cached.queries());
    // Both units still report the answer, the second from the cache.
    let records = records(&out);
    let ptr: Vec<_> = findings(&records, "dns-record")
        .into_iter()
        .filter(|f| f["data"]["type"] == "PTR")
        .collect();
    assert_eq!(ptr.len(), 2, "one PTR finding per unit: {records:#?}");
    assert_eq!(
        ptr[0]["title"],
        "1.2.0.192.in-addr.arpa PTR www.wscan.test."
    );
    assert_eq!(ptr[0]["subject"]["kind"], "address");
    assert_eq!(ptr[0]["subject"]["address"], "192.0.2.1");

    let uncached = DnsServer::start();
    let mut args = args.to_vec();
    args.push("--no-dns-cache");
    let out = scan(&uncached, &["doc.wscan.test", "doc2.wscan.test"], &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ptr_queries(&uncached), 2, "{:?}", uncached.queries());
}

#[test]
fn queries_outside_the_scope_are_denied_and_never_sent() {
    let server = DnsServer::start();
    let mut cmd = wscan();
    // doc.wscan.test is 192.0.2.1, a documentation address: only DNS
    // queries about it are made, all to the test's server on loopback.
    cmd.args([
        "scan",
        "doc.wscan.test",
        "--format",
        "jsonl",
        "--plugins",
        "snoop",
    ]);
    cmd.args(["--resolver", &server.addr().to_string()]);
    cmd.args(["--plugin-arg", "snoop.address=192.0.2.2"]);
    cmd.arg("--plugin").arg(test_plugin("snoop"));
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    let snoop = findings(&records, "snoop");
    assert_eq!(snoop.len(), 1, "{records:#?}");
    let data = &snoop[0]["data"];
    assert_eq!(data["own"], "1 record(s)");
    assert_eq!(data["own_reverse"], "1 record(s)");
    assert_eq!(
        data["stray"],
        "access denied: outside.wscan.test is outside the scan's scope"
    );
    assert_eq!(
        data["stray_reverse"],
        "access denied: 192.0.2.2 is outside the scan's scope"
    );
    // The stray name emitted as a subject was not scheduled.
    assert_eq!(data["emitted"], true);
    assert_eq!(findings(&records, "snoop").len(), 1);
    let asked: Vec<String> = server.queries().into_iter().map(|(n, _)| n).collect();
    assert!(
        asked.contains(&"1.2.0.192.in-addr.arpa.".to_string()),
        "{asked:?}"
    );
    assert!(
        !asked
            .iter()
            .any(|n| n.starts_with("outside.") || n.starts_with("2.2.0.192")),
        "an out-of-scope query reached the server: {asked:?}"
    );
    // Two queries and one emitted subject.
    assert!(
        stderr(&out).contains("3 out-of-scope operation(s) denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn host_names_need_a_plugin_that_resolves_them() {
    let mut cmd = wscan();
    cmd.args(["scan", "www.wscan.test", "--plugins", "port"]);
    let out = run(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no selected plugin resolves host names; add the dns plugin"),
        "{}",
        stderr(&out)
    );
    let mut cmd = wscan();
    cmd.args(["scan", "127.0.0.1", "--resolver", "not-an-ip"]);
    let out = run(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected a name server address"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn dry_run_lists_host_names_and_shards_split_them() {
    let list = |shard: Option<&str>| {
        let mut cmd = wscan();
        cmd.args([
            "scan",
            "a.wscan.test",
            "b.wscan.test",
            "c.wscan.test",
            "127.0.0.1",
        ]);
        cmd.args(["--plugins", "dns,port", "--dry-run", "--ordered"]);
        if let Some(shard) = shard {
            cmd.args(["--shard", shard]);
        }
        let out = run(cmd, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        lines.sort();
        lines
    };
    let all = list(None);
    assert_eq!(
        all,
        [
            "dns a.wscan.test",
            "dns b.wscan.test",
            "dns c.wscan.test",
            "port 127.0.0.1"
        ]
    );
    let mut union = list(Some("1/2"));
    let second = list(Some("2/2"));
    assert!(union.iter().all(|l| !second.contains(l)), "shards overlap");
    union.extend(second);
    union.sort();
    assert_eq!(union, all);
}

#[test]
fn a_resolver_cannot_widen_the_scope_with_records_for_other_names() {
    let server = DnsServer::start();
    // One port, on the in-scope address and on the three injected ones.
    let good = Listener::start_at("127.0.0.61:0", Behaviour::Silent);
    let port = good.port();
    let injected: Vec<Listener> = [62, 63, 64]
        .iter()
        .map(|last| Listener::start_at(&format!("127.0.0.{last}:{port}"), Behaviour::Silent))
        .collect();
    let out = scan(
        &server,
        &["inject.wscan.test", "injectmx.wscan.test"],
        &[
            "-p",
            &port.to_string(),
            "--plugins",
            "dns,port",
            "--plugin-arg",
            "dns.types=A,MX",
            "--plugin-arg",
            "port.banner=false",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    let open: Vec<&str> = findings(&records, "open-port")
        .iter()
        .map(|f| f["subject"]["address"].as_str().unwrap())
        .collect();
    assert_eq!(open, ["127.0.0.61"], "{records:#?}");
    // The plugin handed the injected addresses on; each was reported as
    // out of scope and never contacted.
    let mut outside: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "out-of-scope")
        .flat_map(|r| r["outside"].as_array().unwrap())
        .filter_map(|s| s["address"].as_str())
        .collect();
    outside.sort();
    assert_eq!(
        outside,
        ["127.0.0.62", "127.0.0.63", "127.0.0.64"],
        "{records:#?}"
    );
    for listener in &injected {
        assert_eq!(listener.accepted(), 0, "{} was contacted", listener.addr);
    }
}

/// Rows of `table` in the store at `db`, of scan 1 (python's sqlite3: the
/// store's own schema, read as any tool would).
fn stored_rows(db: &std::path::Path, table: &str) -> u64 {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM ' + sys.argv[2] + ' WHERE scan = 1').fetchone()[0])",
        ])
        .arg(db)
        .arg(table)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// An address the dns plugin emits is journaled for a resume to route
/// again only when a plugin of the scan takes addresses: in a DNS-only
/// scan it would route to none, and was a third of the store's rows.
#[test]
fn the_store_keeps_an_emitted_address_only_when_a_plugin_takes_it() {
    let server = DnsServer::start();
    let listener = Listener::start(Behaviour::Silent);
    let port = listener.port().to_string();
    for (plugins, emitted, args) in [
        ("dns", 0, &["--plugin-arg", "dns.types=A"][..]),
        (
            "dns,port",
            1,
            &[
                "--plugin-arg",
                "dns.types=A",
                "--plugin-arg",
                "port.banner=false",
            ][..],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("results.db");
        let mut cmd = wscan();
        cmd.arg("--db")
            .arg(&db)
            .args(["scan", "www.wscan.test", "-q"]);
        cmd.args(["--resolver", &server.addr().to_string()]);
        cmd.args(["-p", &port, "--plugins", plugins]);
        cmd.args(args);
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stored_rows(&db, "emitted"), emitted, "--plugins {plugins}");
        // The A record is stored either way.
        assert!(stored_rows(&db, "records") >= 1, "--plugins {plugins}");
    }
}
