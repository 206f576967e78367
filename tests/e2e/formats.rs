//! The output formats other tools read, checked by those tools: nmap's XML
//! against nmap's DTD (xmllint) and read back by python-libnmap, SARIF
//! against the OASIS 2.1.0 JSON schema (python-jsonschema), CSV read back
//! by Python's csv module. `tests/run` installs them (Debian's
//! libxml2-utils, nmap-common, python3-libnmap, python3-jsonschema) and
//! fetches the schema.

use crate::http_server::HttpServer;
use crate::support::*;
use crate::tls_server::{Cert, TestCa, TlsServer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// nmap's DTD, from Debian's nmap-common.
const NMAP_DTD: &str = "/usr/share/nmap/nmap.dtd";

/// Debian's Python, which has python3-libnmap and python3-jsonschema.
const PYTHON: &str = "/usr/bin/python3";

/// The SARIF 2.1.0 schema `tests/run` fetched ($WSCAN_SARIF_SCHEMA, or
/// target/test-tools/).
fn sarif_schema() -> PathBuf {
    let path = std::env::var_os("WSCAN_SARIF_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/test-tools/sarif-schema-2.1.0.json")
        });
    assert!(
        path.exists(),
        "{} is missing: tests/run fetches it",
        path.display()
    );
    path
}

/// Run Debian's Python on `script` with `args`; its standard output.
fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{PYTHON}: {e} (tests/run installs it)"));
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// xmllint's verdict on `xml` against nmap's DTD.
fn assert_valid_nmap_xml(xml: &Path) {
    let out = Command::new("xmllint")
        .args(["--noout", "--dtdvalid", NMAP_DTD])
        .arg(xml)
        .output()
        .expect("xmllint (tests/run installs libxml2-utils)");
    assert!(
        out.status.success(),
        "{} is not valid against nmap's DTD: {}\n{}",
        xml.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(xml).unwrap_or_default()
    );
}

/// `sarif` checked against the 2.1.0 schema (formats too); the log.
fn valid_sarif(sarif: &Path) -> Value {
    let checked = python(
        "import json, sys, jsonschema\n\
         schema = json.load(open(sys.argv[1]))\n\
         log = json.load(open(sys.argv[2]))\n\
         v = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)\n\
         errors = [f'{list(e.path)}: {e.message}' for e in v.iter_errors(log)]\n\
         print('\\n'.join(errors) if errors else 'valid')\n",
        &[&sarif_schema(), sarif],
    );
    assert_eq!(checked.trim(), "valid", "{}", sarif.display());
    serde_json::from_str(&std::fs::read_to_string(sarif).unwrap()).unwrap()
}

/// Every line of `jsonl` checked against docs/jsonl-schema.json.
fn assert_valid_jsonl(jsonl: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/jsonl-schema.json");
    let checked = python(
        "import json, sys, jsonschema\n\
         schema = json.load(open(sys.argv[1]))\n\
         v = jsonschema.Draft202012Validator(schema)\n\
         errors = [f'line {n}: {e.message}' for n, line in enumerate(open(sys.argv[2]), 1) for e in v.iter_errors(json.loads(line))]\n\
         print('\\n'.join(errors) if errors else 'valid')\n",
        &[&schema, jsonl],
    );
    assert_eq!(checked.trim(), "valid", "{}", jsonl.display());
}

/// What python-libnmap reads from nmap's XML: per port, its state,
/// service name, tunnel and scripts (id and output).
fn libnmap(xml: &Path) -> Value {
    let text = python(
        "import json, sys\n\
         from libnmap.parser import NmapParser\n\
         r = NmapParser.parse_fromfile(sys.argv[1])\n\
         print(json.dumps({'hosts': [{'address': h.address, 'status': h.status, 'names': h.hostnames,\n\
           'ports': [{'port': s.port, 'state': s.state, 'service': s.service, 'tunnel': s.tunnel,\n\
             'scripts': {x['id']: x['output'] for x in s.scripts_results}} for s in h.services]}\n\
           for h in r.hosts], 'commandline': r.commandline, 'summary': r.summary}))\n",
        &[xml],
    );
    serde_json::from_str(&text).unwrap()
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// One scan written to five files at once, each format checked by the
/// tool that reads it, and all holding the same findings as the JSON Lines.
#[test]
fn one_scan_writes_every_format_at_once_and_their_readers_accept_them() {
    let ssh = Listener::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.2p1 <&\"x\">\r\n"));
    let web = HttpServer::start();
    let tls = TlsServer::start(Cert::Expired);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let ports = format!("{},{},{}", ssh.port(), web.port(), tls.port());
    let ca = TestCa::get().pem_path().to_str().unwrap().to_string();
    let mut cmd = wscan();
    cmd.args(["scan", "127.0.0.1", "-p", &ports, "--no-db", "-q"]);
    cmd.args(["--plugins", "port,http,tls", "--ca-file", &ca]);
    cmd.args(["--fields", "kind,port,severity,data.banner"]);
    for file in ["scan.jsonl", "scan.xml", "scan.sarif", "report.md"] {
        cmd.arg("-o").arg(path(file));
    }
    // A format named before the file, whatever its extension.
    cmd.arg("-o")
        .arg(format!("csv:{}", path("cells.txt").display()));
    let out = run(cmd, Duration::from_secs(90));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "every record went to the files");

    assert_valid_jsonl(&path("scan.jsonl"));
    let records = read_jsonl(&path("scan.jsonl"));
    let found: Vec<&Value> = records.iter().filter(|r| r["type"] == "finding").collect();
    let kinds: BTreeSet<&str> = found.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    for kind in ["open-port", "service", "http-response", "tls-expired"] {
        assert!(kinds.contains(kind), "no {kind} in {records:#?}");
    }

    // nmap's XML: valid, and python-libnmap reads the open ports, their
    // services, the banner and the other findings as scripts.
    assert_valid_nmap_xml(&path("scan.xml"));
    let nmap = libnmap(&path("scan.xml"));
    let hosts = nmap["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 1, "{nmap:#}");
    assert_eq!(hosts[0]["address"], "127.0.0.1");
    assert_eq!(hosts[0]["status"], "up");
    let open: BTreeSet<u64> = found
        .iter()
        .filter(|f| f["kind"] == "open-port")
        .map(|f| f["subject"]["port"].as_u64().unwrap())
        .collect();
    let ports: BTreeSet<u64> = hosts[0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, open, "{nmap:#}");
    let port = |n: u16| {
        hosts[0]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == n)
            .unwrap_or_else(|| panic!("port {n} not in {nmap:#}"))
    };
    assert_eq!(port(ssh.port())["state"], "open");
    assert_eq!(port(ssh.port())["service"], "ssh");
    assert_eq!(
        port(ssh.port())["scripts"]["banner"],
        "SSH-2.0-OpenSSH_9.2p1 <&\"x\">"
    );
    assert_eq!(port(web.port())["service"], "http");
    assert!(
        port(web.port())["scripts"]["http-response"]
            .as_str()
            .unwrap()
            .contains(crate::http_server::TITLE),
        "{nmap:#}"
    );
    assert_eq!(port(tls.port())["tunnel"], "ssl", "{nmap:#}");
    assert!(
        port(tls.port())["scripts"]["tls-expired"]
            .as_str()
            .unwrap()
            .starts_with("[high] "),
        "{nmap:#}"
    );
    assert!(
        nmap["commandline"]
            .as_str()
            .unwrap()
            .starts_with("wscan scan 127.0.0.1 -p "),
        "{nmap:#}"
    );

    // SARIF: valid against the schema; a result per finding, a rule per kind.
    let sarif = valid_sarif(&path("scan.sarif"));
    let run = &sarif["runs"][0];
    assert_eq!(run["results"].as_array().unwrap().len(), found.len());
    let rules: BTreeSet<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, kinds);
    let expired = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "tls-expired")
        .unwrap();
    assert_eq!(expired["level"], "error");
    assert_eq!(
        expired["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        format!("tcp://127.0.0.1:{}", tls.port())
    );
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);

    // CSV, read by Python's csv module: the chosen columns of each record.
    let rows: Vec<Vec<String>> = serde_json::from_str(&python(
        "import csv, json, sys\nprint(json.dumps(list(csv.reader(open(sys.argv[1], newline='')))))",
        &[&path("cells.txt")],
    ))
    .unwrap();
    assert_eq!(rows[0], ["kind", "port", "severity", "data.banner"]);
    let expected: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let text = |v: &Value| match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vec![
                text(&r["kind"]),
                text(&r["subject"]["port"]),
                text(&r["severity"]),
                text(&r["data"]["banner"]),
            ]
        })
        .collect();
    assert_eq!(rows[1..], expected[..]);

    let report = std::fs::read_to_string(path("report.md")).unwrap();
    assert!(report.contains("\n## 127.0.0.1\n"), "{report}");
}

/// SIGTERM in the middle of a scan: the XML and SARIF files are closed
/// properly, with what was found before the signal, and the stored scan
/// gives both formats again.
#[test]
fn sigterm_mid_scan_leaves_well_formed_xml_and_sarif() {
    // Silent: the port is open at once, then the banner wait holds the scan.
    let silent = Listener::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let db = path("results.db");
    let mut cmd = wscan();
    cmd.arg("--db").arg(&db);
    cmd.args(["scan", "127.0.0.1", "-p", &silent.port().to_string(), "-q"]);
    cmd.args([
        "--plugins",
        "port",
        "--plugin-arg",
        "port.banner-timeout=60s",
    ]);
    for file in ["scan.jsonl", "scan.xml", "scan.sarif"] {
        cmd.arg("-o").arg(path(file));
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::read_to_string(path("scan.jsonl"))
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no open port reported"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(child.id(), "-TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(30), "slow to stop");

    assert_valid_nmap_xml(&path("scan.xml"));
    let nmap = libnmap(&path("scan.xml"));
    assert_eq!(nmap["hosts"][0]["ports"][0]["port"], silent.port());
    let sarif = valid_sarif(&path("scan.sarif"));
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["ruleId"], "open-port");

    // The store writes the same documents again.
    for (format, file) in [("nmap-xml", "again.xml"), ("sarif", "again.sarif")] {
        let mut cmd = wscan();
        cmd.arg("--db").arg(&db);
        cmd.args(["results", "show", "1", "--format", format]);
        let out = run(cmd, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        std::fs::write(path(file), &out.stdout).unwrap();
    }
    assert_valid_nmap_xml(&path("again.xml"));
    assert_eq!(libnmap(&path("again.xml"))["hosts"], nmap["hosts"]);
    let again = valid_sarif(&path("again.sarif"));
    assert_eq!(again["runs"][0]["results"], sarif["runs"][0]["results"]);
}

/// `-o` with a prefix that is not a format, or a format that cannot be
/// told and several outputs for a dry run: usage errors, exit 2.
#[test]
fn output_files_that_cannot_be_told_apart_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port().to_string();
    for (args, says) in [
        (
            vec!["-o", "xlm:out.xml"],
            "\"xlm\" is not a format; write FORMAT:FILE with FORMAT one of jsonl, table, csv, markdown, nmap-xml, sarif",
        ),
        (
            vec!["-o", "a.jsonl", "-o", "b.jsonl", "--dry-run"],
            "give at most one -o",
        ),
        (
            vec!["-o", "out.xml", "--fields", "port"],
            "--fields chooses the columns of CSV",
        ),
    ] {
        let mut cmd = wscan();
        cmd.current_dir(dir.path());
        cmd.args(["scan", "127.0.0.1", "-p", &port, "--no-db"])
            .args(&args);
        let out = run(cmd, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
}

/// A world in a private namespace: silent listeners on `ports` and, on
/// port 443, a TLS server presenting `cert` (PEM files `cert` and `key`).
/// Stops when dropped with the namespace's child.
fn world(
    ns: &crate::namespace::Netns,
    ports: &[u16],
    cert: &Path,
    key: &Path,
) -> std::process::Child {
    ns.python(&format!(
        "import socket, ssl, threading, time\n\
         ss = []\n\
         for p in {ports:?}:\n\
         \x20s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         \x20s.bind(('127.0.0.1', p)); s.listen(64); ss.append(s)\n\
         ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         ctx.load_cert_chain({cert:?}, {key:?})\n\
         t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         t.bind(('127.0.0.1', 443)); t.listen(64)\n\
         def one(c):\n\
         \x20try:\n\
         \x20 c.settimeout(5); tls = ctx.wrap_socket(c, server_side=True); tls.recv(1024); tls.close()\n\
         \x20except Exception:\n\
         \x20 c.close()\n\
         def serve():\n\
         \x20while True:\n\
         \x20 c, _ = t.accept(); threading.Thread(target=one, args=(c,), daemon=True).start()\n\
         threading.Thread(target=serve, daemon=True).start()\n\
         print('ready', flush=True)\n\
         time.sleep(300)\n",
        cert = cert.to_str().unwrap(),
        key = key.to_str().unwrap(),
    ))
}

/// Two scans of one namespace world, between which port 22 closed, port
/// 8080 opened and the certificate on 443 was replaced: the diff reports
/// exactly those three, in every format, and `--exit-code` says so.
#[test]
fn a_diff_of_two_scans_reports_a_port_opened_one_closed_and_a_certificate_changed() {
    use crate::tls_server::leaf_pem;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let db = path("results.db");
    let ca = TestCa::get().pem_path().to_str().unwrap().to_string();
    let ns = crate::namespace::Netns::create("diff");
    let scan = || {
        let mut cmd = ns.wscan();
        cmd.arg("--db").arg(&db);
        cmd.args(["scan", "127.0.0.1", "-p", "22,80,443,8080", "-q"]);
        cmd.args(["--plugins", "port,tls", "--ca-file", &ca]);
        cmd.args(["--plugin-arg", "port.banner-timeout=200ms"]);
        let out = run(cmd, Duration::from_secs(90));
        // The tls plugin fails on the silent ports (exit 3): errors are not
        // compared.
        assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    };
    for (i, ports) in [[22u16, 80], [80, 8080]].iter().enumerate() {
        let (cert, key) = leaf_pem(Cert::Valid);
        let (cert_path, key_path) = (path(&format!("cert{i}.pem")), path(&format!("key{i}.pem")));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        let mut servers = world(&ns, ports, &cert_path, &key_path);
        scan();
        let _ = servers.kill();
        let _ = servers.wait();
    }
    let diff = |args: &[&str]| {
        let mut cmd = wscan();
        cmd.arg("--db").arg(&db);
        cmd.args(["results", "diff", "1", "2"]).args(args);
        run(cmd, Duration::from_secs(30))
    };

    let out = diff(&["--format", "jsonl"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("scan 1 -> scan 2: 1 appeared, 1 disappeared, 1 changed"),
        "{}",
        stderr(&out)
    );
    let changes = records(&out);
    let summary: Vec<(String, String, u64)> = changes
        .iter()
        .map(|c| {
            assert_eq!(c["type"], "change");
            (
                c["change"].as_str().unwrap().to_string(),
                c["kind"].as_str().unwrap().to_string(),
                c["subject"]["port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("disappeared".into(), "open-port".into(), 22),
            ("changed".into(), "tls-certificate".into(), 443),
            ("appeared".into(), "open-port".into(), 8080),
        ],
        "{changes:#?}"
    );
    let cert = &changes[1];
    let fields: Vec<&str> = cert["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(fields.contains(&"data.chain.0.sha256"), "{fields:?}");
    assert!(
        !fields.iter().any(|f| f.ends_with("days_left")),
        "{fields:?}"
    );
    assert_ne!(
        cert["before"]["data"]["chain"][0]["sha256"],
        cert["after"]["data"]["chain"][0]["sha256"]
    );

    // --exit-code: 1 when something changed, 0 for a scan against itself.
    assert_eq!(diff(&["--exit-code"]).status.code(), Some(1));
    let mut same = wscan();
    same.arg("--db").arg(&db);
    same.args([
        "results",
        "diff",
        "2",
        "2",
        "--exit-code",
        "--format",
        "jsonl",
    ]);
    let out = run(same, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    // Every format: nmap's XML (22 closed, 8080 open, the certificate's
    // script marked changed), SARIF with baseline states, CSV, Markdown.
    let out = diff(&[
        "-o",
        path("d.jsonl").to_str().unwrap(),
        "-o",
        path("d.xml").to_str().unwrap(),
        "-o",
        path("d.sarif").to_str().unwrap(),
        "-o",
        path("d.csv").to_str().unwrap(),
        "-o",
        path("d.md").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_valid_jsonl(&path("d.jsonl"));
    assert_eq!(read_jsonl(&path("d.jsonl")), changes);
    assert_valid_nmap_xml(&path("d.xml"));
    let nmap = libnmap(&path("d.xml"));
    let states: Vec<(u64, String)> = nmap["hosts"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["port"].as_u64().unwrap(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (22, "closed".into()),
            (443, "open".into()),
            (8080, "open".into())
        ],
        "{nmap:#}"
    );
    let sarif = valid_sarif(&path("d.sarif"));
    let baseline: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["baselineState"].as_str().unwrap())
        .collect();
    assert_eq!(baseline, ["absent", "updated", "new"]);
    let rows: Vec<Vec<String>> = serde_json::from_str(&python(
        "import csv, json, sys\nprint(json.dumps(list(csv.reader(open(sys.argv[1], newline='')))))",
        &[&path("d.csv")],
    ))
    .unwrap();
    assert_eq!(
        rows[0].join(","),
        "change,severity,plugin,kind,address,port,host,title,fields"
    );
    let kinds: Vec<(&str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[5].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("disappeared", "22"),
            ("changed", "443"),
            ("appeared", "8080")
        ]
    );
    let report = std::fs::read_to_string(path("d.md")).unwrap();
    assert!(report.contains("| - open port 22/tcp"), "{report}");
}

/// `results export` writes a stored scan to files in any format;
/// `results prune` deletes what is older than asked, records included, and
/// keeps the rest.
#[test]
fn export_writes_stored_scans_and_prune_deletes_the_old_ones() {
    let open = Listener::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let db = path("results.db");
    let wscan_db = |args: &[&str]| {
        let mut cmd = wscan();
        cmd.arg("--db").arg(&db).args(args);
        run(cmd, Duration::from_secs(60))
    };
    let port = open.port().to_string();
    let scan = ["scan", "127.0.0.1", "-p", &port, "--plugins", "port", "-q"];
    for _ in 0..2 {
        let out = wscan_db(&[&scan[..], &["--plugin-arg", "port.banner=false"]].concat());
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let xml = path("one.xml");
    let out = wscan_db(&["results", "export", "1", "-o", xml.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_valid_nmap_xml(&xml);
    assert_eq!(libnmap(&xml)["hosts"][0]["ports"][0]["port"], open.port());

    let out = wscan_db(&[&scan[..], &["--plugin-arg", "port.banner=false"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Scans 1 and 2 were started 40 days ago, as far as the store knows.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let long_ago = humantime::format_rfc3339_millis(
        std::time::SystemTime::now() - Duration::from_secs(40 * 86_400),
    )
    .to_string();
    conn.execute(
        "UPDATE scans SET started = ?1 WHERE id IN (1, 2)",
        [&long_ago],
    )
    .unwrap();
    drop(conn);
    let out = wscan_db(&["results", "prune", "--older-than", "30d", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("would delete 2 scan(s)"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).ends_with(": 1, 2\n"), "{}", stderr(&out));
    let out = wscan_db(&["results", "prune", "--older-than", "30d"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deleted 2 scan(s)"),
        "{}",
        stderr(&out)
    );
    let out = wscan_db(&["results", "list", "--format", "jsonl"]);
    let left: Vec<i64> = records(&out)
        .iter()
        .map(|s| s["id"].as_i64().unwrap())
        .collect();
    assert_eq!(left, [3]);
    let out = wscan_db(&["results", "show", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("there is no scan 1"),
        "{}",
        stderr(&out)
    );
    let out = wscan_db(&["results", "show", "3", "--format", "jsonl"]);
    assert_eq!(records(&out).len(), 1);
    let out = wscan_db(&["results", "prune", "--older-than", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("write it like 30d"),
        "{}",
        stderr(&out)
    );
}
