//! The tls primitive and plugin, and service identification by the port
//! plugin, against TLS servers the test starts on 127.0.0.1 with
//! certificates from a test CA (`tls_server`), through the real binary.

use crate::dns_server::DnsServer;
use crate::support::*;
use crate::tls_server::{Cert, TestCa, TlsServer};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

/// `wscan scan www.wscan.test` against `dns`, ports of `servers`, with
/// the dns, port and tls plugins, plus `extra`.
fn scan_by_name(dns: &DnsServer, servers: &[&TlsServer], extra: &[&str]) -> Output {
    let ports: Vec<String> = servers.iter().map(|s| s.port().to_string()).collect();
    let mut cmd = wscan();
    cmd.args(["scan", "www.wscan.test", "--format", "jsonl"]);
    cmd.args([
        "--resolver",
        &dns.addr().to_string(),
        "-p",
        &ports.join(","),
    ]);
    cmd.args(["--plugins", "dns,port,tls"]);
    cmd.args(extra);
    run(cmd, Duration::from_secs(90))
}

/// Findings of `kind` on `port`.
fn on_port<'a>(records: &'a [Value], kind: &str, port: u16) -> Vec<&'a Value> {
    findings(records, kind)
        .into_iter()
        .filter(|f| f["subject"]["port"] == port)
        .collect()
}

/// The kinds of the tls plugin's findings on `port`, sorted.
fn tls_kinds(records: &[Value], port: u16) -> Vec<String> {
    let mut kinds: Vec<String> = records
        .iter()
        .filter(|r| r["type"] == "finding" && r["plugin"]["name"] == "tls")
        .filter(|r| r["subject"]["port"] == port)
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn a_name_is_resolved_its_tls_port_identified_and_its_certificate_examined() {
    let dns = DnsServer::start();
    let server = TlsServer::start(Cert::Valid);
    let ca = TestCa::get().pem_path().to_str().unwrap().to_string();
    let out = scan_by_name(&dns, &[&server], &["--ca-file", &ca]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);

    // The port plugin found TLS on a port whose number says nothing.
    assert_eq!(on_port(&records, "open-port", server.port()).len(), 1);
    let found = on_port(&records, "service", server.port());
    assert_eq!(found.len(), 1, "{records:#?}");
    assert_eq!(found[0]["subject"]["service"], "https");
    assert_eq!(found[0]["data"]["tls"], true);
    // The subject handed on says so too (the service's TLS hint), and the
    // tls plugin's findings carry it.
    assert_eq!(found[0]["subject"]["tls"], true, "{records:#?}");
    // The open-port finding came before identification: no hint there.
    assert!(
        on_port(&records, "open-port", server.port())[0]["subject"]
            .get("tls")
            .is_none()
    );

    let certs = on_port(&records, "tls-certificate", server.port());
    assert_eq!(certs.len(), 1, "{records:#?}");
    let cert = certs[0];
    assert_eq!(cert["severity"], "info");
    assert_eq!(cert["subject"]["host"], "www.wscan.test");
    assert_eq!(
        cert["title"],
        "TLS certificate www.wscan.test for www.wscan.test: valid"
    );
    let data = &cert["data"];
    assert_eq!(data["verdict"], "valid");
    assert_eq!(data["problems"], serde_json::json!([]));
    assert_eq!(data["server_name"], "www.wscan.test");
    assert_eq!(data["alpn"], "h2");
    assert!(
        ["TLSv1.2", "TLSv1.3"].contains(&data["version"].as_str().unwrap()),
        "{data}"
    );
    assert!(
        data["cipher_suite"].as_str().unwrap().starts_with("TLS"),
        "{data}"
    );
    let leaf = &data["chain"][0];
    assert_eq!(
        leaf["subject"].as_str().unwrap(),
        "CN=www.wscan.test, O=wscan tests"
    );
    assert!(
        leaf["issuer"].as_str().unwrap().contains("wscan test CA"),
        "{leaf}"
    );
    assert_eq!(
        leaf["sans"],
        serde_json::json!(["www.wscan.test", "127.0.0.1"])
    );
    assert_eq!(leaf["key_type"], "ecdsa");
    assert_eq!(leaf["key_bits"], 256);
    assert_eq!(leaf["signature_algorithm"], "ecdsa-with-SHA256");
    let der = server.leaf_der();
    let sha = ring_hex_sha256(&der);
    assert_eq!(leaf["sha256"], sha);
    // The key's own fingerprint, from x509-parser's reading of the DER
    // (the plugin parses it with another crate).
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("leaf DER");
    let spki = ring_hex_sha256(cert.tbs_certificate.subject_pki.raw);
    assert_eq!(leaf["spki_sha256"], spki);
    assert_eq!(data["days_left"], 364);
    // No fault, no other finding.
    assert_eq!(tls_kinds(&records, server.port()), ["tls-certificate"]);
    assert!(errors(&records).is_empty(), "{records:#?}");
    // Learned from a real handshake with this server.
    assert!(server.handshakes() >= 1, "{}", server.handshakes());
    assert!(server.connections() >= server.handshakes());
}

/// SHA-256 of `der`, lowercase hex (the certificate's fingerprint).
fn ring_hex_sha256(der: &[u8]) -> String {
    use std::fmt::Write;
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest.as_ref().iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[test]
fn each_certificate_fault_has_its_own_finding_and_severity() {
    let dns = DnsServer::start();
    let expired = TlsServer::start(Cert::Expired);
    let soon = TlsServer::start(Cert::ExpiringSoon);
    let selfsigned = TlsServer::start(Cert::SelfSigned);
    let wrong = TlsServer::start(Cert::WrongName);
    let weak = TlsServer::start(Cert::WeakRsa);
    let ca = TestCa::get().pem_path().to_str().unwrap().to_string();
    let out = scan_by_name(
        &dns,
        &[&expired, &soon, &selfsigned, &wrong, &weak],
        &["--ca-file", &ca],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);

    let expect = |server: &TlsServer, kinds: &[&str], problems: &[&str]| {
        assert_eq!(tls_kinds(&records, server.port()), kinds, "{records:#?}");
        let cert = on_port(&records, "tls-certificate", server.port());
        assert_eq!(cert[0]["data"]["problems"], serde_json::json!(problems));
    };
    expect(&expired, &["tls-certificate", "tls-expired"], &["expired"]);
    expect(&soon, &["tls-certificate", "tls-expiring"], &[]);
    expect(
        &selfsigned,
        &["tls-certificate", "tls-self-signed"],
        &["self-signed"],
    );
    expect(
        &wrong,
        &["tls-certificate", "tls-name-mismatch"],
        &["name-mismatch"],
    );
    let severity = |server: &TlsServer, kind: &str| {
        on_port(&records, kind, server.port())[0]["severity"].clone()
    };
    assert_eq!(severity(&expired, "tls-expired"), "high");
    assert_eq!(severity(&soon, "tls-expiring"), "medium");
    assert_eq!(
        on_port(&records, "tls-expiring", soon.port())[0]["data"]["days_left"],
        9
    );
    assert_eq!(severity(&selfsigned, "tls-self-signed"), "medium");
    assert_eq!(severity(&wrong, "tls-name-mismatch"), "medium");
    // The handshake signature of a 1024-bit key cannot be checked (ring
    // refuses such keys); the key's size is the fault, nothing else.
    expect(&weak, &["tls-certificate", "tls-weak-key"], &[]);
    let weak_finding = &on_port(&records, "tls-weak-key", weak.port())[0];
    assert_eq!(weak_finding["data"]["key_bits"], 1024);
    assert_eq!(
        weak_finding["title"],
        "TLS certificate for www.wscan.test has a 1024-bit RSA key"
    );
}

#[test]
fn certificate_names_outside_the_scope_are_reported_and_never_contacted() {
    let dns = DnsServer::start();
    let wrong = TlsServer::start(Cert::WrongName);
    let selfsigned = TlsServer::start(Cert::SelfSigned);
    // The certificate names 127.0.0.7: a listener there on the same port
    // shows whether anything tried it.
    let outside = std::net::TcpListener::bind(("127.0.0.7", wrong.port())).expect("bind 127.0.0.7");
    outside.set_nonblocking(true).unwrap();
    let ca = TestCa::get().pem_path().to_str().unwrap().to_string();
    let out = scan_by_name(&dns, &[&wrong, &selfsigned], &["--ca-file", &ca]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);

    // One record per unit that found something outside, listing it all.
    let groups: Vec<&Value> = records
        .iter()
        .filter(|r| r["type"] == "out-of-scope")
        .collect();
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0]["subject"]["kind"], "service", "{groups:#?}");
    let mut reported: Vec<(String, Value)> = groups
        .iter()
        .flat_map(|r| {
            assert_eq!(r["plugin"]["name"], "tls", "{r}");
            r["outside"].as_array().unwrap().iter()
        })
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_string(),
                s.get("host").or(s.get("address")).unwrap().clone(),
            )
        })
        .collect();
    reported.sort_by(|a, b| a.0.cmp(&b.0));
    // Each once; the wildcard names no host and is not emitted.
    assert_eq!(
        reported,
        vec![
            ("address".to_string(), Value::from("127.0.0.7")),
            ("host".to_string(), Value::from("other.example.test")),
        ],
        "{records:#?}"
    );
    assert!(
        matches!(outside.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a connection reached 127.0.0.7"
    );
    let asked: Vec<_> = dns.queries().into_iter().map(|(name, _)| name).collect();
    assert!(
        !asked.iter().any(|n| n.contains("example.test")),
        "an out-of-scope name was resolved: {asked:?}"
    );
    // The self-signed certificate names www.wscan.test and 127.0.0.1, both
    // already scanned: not reported, not started over.
    let dns_units = records
        .iter()
        .filter(|r| r["plugin"]["name"] == "dns" && r["kind"] == "dns-record")
        .filter(|r| r["data"]["type"] == "A")
        .count();
    assert_eq!(dns_units, 1, "{records:#?}");
}

/// Issue 12 (memory and output that grow without bound): a certificate
/// with many foreign names made one `out-of-scope` record per name. Now
/// one record per unit lists them all, in the stream and in the store.
#[test]
fn a_certificate_with_many_foreign_names_makes_one_out_of_scope_record() {
    let dns = DnsServer::start();
    let many = TlsServer::start(Cert::ManyNames);
    let ca = TestCa::get().pem_path().to_str().unwrap().to_string();
    let db = tempfile::tempdir().unwrap();
    let db_path = db.path().join("results.db");
    let db_arg = db_path.to_str().unwrap().to_string();
    let out = scan_by_name(&dns, &[&many], &["--ca-file", &ca, "--db", &db_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let check =
        |records: &[Value]| {
            let groups: Vec<&Value> = records
                .iter()
                .filter(|r| r["type"] == "out-of-scope")
                .collect();
            assert_eq!(groups.len(), 1, "one record for the certificate");
            assert_eq!(groups[0]["subject"]["port"], many.port());
            let outside = groups[0]["outside"].as_array().unwrap();
            assert_eq!(outside.len(), crate::tls_server::MANY_NAMES);
            assert!(outside.iter().all(
                |s| s["kind"] == "host" && s["host"].as_str().unwrap().ends_with(".other.test")
            ));
        };
    check(&records(&out));
    // The stored record reads back the same.
    let mut cmd = wscan();
    cmd.args(["--db", &db_arg, "results", "show", "1", "--format", "jsonl"]);
    let shown = run(cmd, Duration::from_secs(60));
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    check(&records(&shown));
}

#[test]
fn without_the_ca_the_issuer_is_unknown_and_by_address_no_name_is_judged() {
    let server = TlsServer::start(Cert::Valid);
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "--format",
        "jsonl",
        "--plugins",
        "port,tls",
    ]);
    cmd.args(["-p", &server.port().to_string()]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    assert_eq!(
        tls_kinds(&records, server.port()),
        ["tls-certificate", "tls-unknown-issuer"],
        "{records:#?}"
    );
    let cert = &on_port(&records, "tls-certificate", server.port())[0];
    assert_eq!(
        cert["data"]["problems"],
        serde_json::json!(["unknown-issuer"])
    );
    assert_eq!(cert["data"]["server_name"], Value::Null);
}

#[test]
fn plugin_run_examines_one_service_and_bad_ca_files_are_usage_errors() {
    let server = TlsServer::start(Cert::SelfSigned);
    let mut cmd = wscan();
    cmd.args(["plugin", "run", "tls", "--format", "jsonl"]);
    cmd.args(["--subject", &format!("127.0.0.1:{}", server.port())]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    assert_eq!(
        tls_kinds(&records, server.port()),
        ["tls-certificate", "tls-self-signed"],
        "{records:#?}"
    );

    let mut cmd = wscan();
    cmd.args(["scan", "127.0.0.1", "--ca-file", "/nonexistent/ca.pem"]);
    let out = run(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot use CA file /nonexistent/ca.pem"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_port_that_is_not_tls_is_an_error_for_the_tls_unit_only() {
    let listener = Listener::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let mut cmd = wscan();
    cmd.args([
        "plugin",
        "run",
        "tls",
        "--format",
        "jsonl",
        "--timeout",
        "500ms",
    ]);
    cmd.args(["--subject", &format!("127.0.0.1:{}", listener.port())]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let records = records(&out);
    let errors = errors(&records);
    assert_eq!(errors.len(), 1, "{records:#?}");
    let error = errors[0]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "TLS handshake with 127.0.0.1 port {}: TLS failure",
            listener.port()
        )),
        "{error}"
    );
}
