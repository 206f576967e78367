//! `wscan serve`: the real daemon on a loopback port, driven over HTTP
//! with reqwest, scanning listeners these tests start.

use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The standard error lines of a child, as it writes them.
type StderrLines = std::io::Lines<BufReader<std::process::ChildStderr>>;

/// Spawn `cmd` and wait until a line of its standard error contains
/// `marker`: the process, the first `http://` or `https://` address on that
/// line, and the rest of its standard error.
fn spawn_until(mut cmd: Command, marker: &str) -> (Child, String, StderrLines) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process ended before it said {marker:?}");
        };
        if line.contains(marker) {
            let url = line
                .split_whitespace()
                .find(|w| w.starts_with("http"))
                .unwrap_or_else(|| panic!("no address in {line:?}"))
                .to_string();
            return (child, url, lines);
        }
    }
}

/// Spawn `wscan ... serve --listen 127.0.0.1:0` (`cmd`) and wait until it
/// says where it listens: the process, its base URL, and the rest of its
/// standard error.
fn spawn_serve(cmd: Command) -> (Child, String, StderrLines) {
    spawn_until(cmd, "serving the API on")
}

/// A daemon on a free loopback port with a store of its own; killed on
/// drop.
struct Daemon {
    child: Child,
    base: String,
    db: PathBuf,
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("results.db");
        Daemon::start_with(dir, db, &[])
    }

    /// A daemon on the store `db` (in `dir`, which it keeps), with `extra`
    /// flags of `wscan serve`.
    fn start_with(dir: tempfile::TempDir, db: PathBuf, extra: &[&str]) -> Daemon {
        // reqwest is built without a TLS provider of its own (the host's is
        // ring's); these tests speak plain HTTP, but the client wants one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut cmd = wscan();
        cmd.arg("--db").arg(&db);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(extra);
        let (child, base, lines) = spawn_serve(cmd);
        // Keep reading standard error, so the daemon never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Daemon {
            child,
            base,
            db,
            _dir: dir,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// `method path` with `body` (JSON text); the status and the body as
    /// JSON (`null` when empty).
    fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        self.call_as(None, method, path, body)
    }

    /// [`Daemon::call`] with `Authorization: Bearer TOKEN`.
    fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let client = reqwest::Client::new();
            let mut request = client.request(method.parse().unwrap(), &url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            let response = request.send().await.expect("request");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let json = match text.is_empty() {
                true => Value::Null,
                false => serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}")),
            };
            (status, json)
        })
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None)
    }

    /// Start a scan; its number.
    fn scan(&self, body: &str) -> i64 {
        let (status, view) = self.call("POST", "/v1/scans", Some(body));
        assert_eq!(status, 201, "{view}");
        view["id"].as_i64().unwrap()
    }

    /// Wait until scan `id` is no longer running; its view.
    fn wait(&self, id: i64) -> Value {
        let started = Instant::now();
        loop {
            let (status, view) = self.get(&format!("/v1/scans/{id}"));
            assert_eq!(status, 200, "{view}");
            if view["status"] != "running" {
                return view;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "scan {id} still running"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until scan `id` has stored a record (at most 30 s).
    fn first_record(&self, id: i64) {
        let started = Instant::now();
        while self.records(id, 10, "").is_empty() {
            assert!(started.elapsed() < Duration::from_secs(30), "no record");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Every record of scan `id`, read `limit` at a time.
    fn records(&self, id: i64, limit: usize, filter: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let (status, page) = self.get(&format!(
                "/v1/scans/{id}/records?after={after}&limit={limit}{filter}"
            ));
            assert_eq!(status, 200, "{page}");
            all.extend(page["records"].as_array().unwrap().iter().cloned());
            match page["next"].as_i64() {
                Some(next) => after = next,
                None => return all,
            }
        }
    }
}

/// One Server-Sent Event: its name, id and data.
#[derive(Debug, Clone)]
struct SseEvent {
    name: String,
    id: Option<i64>,
    data: Value,
}

impl Daemon {
    /// Scan `id`'s event stream from its start, or after record `last`
    /// (sent as `Last-Event-ID`), read until its `end` event, or until
    /// `take` records came (then the connection is dropped).
    fn events(&self, id: i64, last: Option<i64>, take: Option<usize>) -> Vec<SseEvent> {
        let url = format!("{}/v1/scans/{id}/events", self.base);
        self.runtime.block_on(async {
            let mut request = reqwest::Client::new().get(&url);
            if let Some(last) = last {
                request = request.header("Last-Event-ID", last.to_string());
            }
            let mut response = request.send().await.expect("events");
            assert_eq!(response.status().as_u16(), 200);
            let mut text = String::new();
            let mut events = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let chunk = tokio::time::timeout_at(deadline.into(), response.chunk())
                    .await
                    .expect("the stream did not end")
                    .expect("stream");
                let Some(chunk) = chunk else {
                    panic!("the stream closed without an end event: {events:#?}")
                };
                text.push_str(std::str::from_utf8(&chunk).unwrap());
                while let Some(at) = text.find("\n\n") {
                    let block: String = text.drain(..at + 2).collect();
                    let mut event = SseEvent {
                        name: "message".into(),
                        id: None,
                        data: Value::Null,
                    };
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event: ") {
                            event.name = v.to_string();
                        } else if let Some(v) = line.strip_prefix("id: ") {
                            event.id = Some(v.parse().unwrap());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            event.data = serde_json::from_str(v).unwrap();
                        }
                    }
                    // Keep-alive comments carry nothing.
                    if event.data.is_null() {
                        continue;
                    }
                    let end = event.name == "end";
                    events.push(event);
                    let records = events.iter().filter(|e| e.name == "record").count();
                    if end || take == Some(records) {
                        return events;
                    }
                }
            }
        })
    }
}

impl Daemon {
    /// Scan `id`'s WebSocket stream (after record `after`), read until the
    /// server closes it: each message's JSON.
    fn ws(&self, id: i64, after: Option<i64>) -> Vec<Value> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut url = format!(
            "{}/v1/scans/{id}/ws",
            self.base.replacen("http://", "ws://", 1)
        );
        if let Some(after) = after {
            url.push_str(&format!("?after={after}"));
        }
        self.runtime.block_on(async {
            let (mut socket, _) = tokio_tungstenite::connect_async(&url)
                .await
                .expect("WebSocket handshake");
            let mut messages = Vec::new();
            loop {
                let next = tokio::time::timeout(Duration::from_secs(60), socket.next())
                    .await
                    .expect("the WebSocket stream stalled");
                match next {
                    Some(Ok(Message::Text(text))) => {
                        messages.push(serde_json::from_str(text.as_str()).unwrap())
                    }
                    Some(Ok(Message::Close(_))) | None => return messages,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => panic!("WebSocket: {e}"),
                }
            }
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An SSH banner listener, a silent one and a closed port: the listeners
/// (kept while they serve) and the ports as `-p` takes them.
fn ssh_silent_closed() -> ([Listener; 2], String) {
    let ssh = Listener::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n"));
    let silent = Listener::start(Behaviour::Silent);
    let ports = format!("{},{},{}", ssh.port(), silent.port(), closed_port());
    ([ssh, silent], ports)
}

/// (kind, port) of each finding.
fn census(records: &[Value]) -> BTreeSet<(String, u64)> {
    records
        .iter()
        .filter(|r| r["type"] == "finding")
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["subject"]["port"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn a_scan_started_over_http_runs_and_its_records_are_served_page_by_page() {
    let (_listeners, ports) = ssh_silent_closed();
    let daemon = Daemon::start();
    assert_eq!(
        daemon.get("/healthz"),
        (200, serde_json::json!({"status": "ok"}))
    );
    assert_eq!(daemon.get("/readyz").0, 200);

    let body = format!(
        r#"{{"targets":["127.0.0.1"],"ports":"{ports}","plugins":["port"],"plugin_args":{{"port.banner-timeout":"300ms"}}}}"#
    );
    let id = daemon.scan(&body);
    let view = daemon.wait(id);
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["findings"], 3, "{view}");
    assert_eq!(view["stats"]["units"], 1, "{view}");

    // Page by page, one record a page, is all of them, in order, once.
    let records = daemon.records(id, 1, "");
    assert_eq!(records.len(), 3, "{records:#?}");
    let ids: Vec<i64> = records.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let services = daemon.records(id, 100, "&kind=service");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["data"]["banner"], "SSH-2.0-OpenSSH_9.2p1");

    // The same scan from the CLI finds the same.
    let mut cli = wscan();
    cli.args([
        "scan",
        "127.0.0.1",
        "-p",
        &ports,
        "--plugins",
        "port",
        "--no-db",
    ]);
    cli.args([
        "--plugin-arg",
        "port.banner-timeout=300ms",
        "--format",
        "jsonl",
    ]);
    let out = run(cli, Duration::from_secs(60));
    assert_eq!(census(&records), census(&crate::support::records(&out)));

    // It is a stored scan like any other.
    let mut show = wscan();
    show.arg("--db").arg(&daemon.db);
    show.args(["results", "show", &id.to_string(), "--format", "jsonl"]);
    let out = run(show, Duration::from_secs(30));
    assert_eq!(census(&crate::support::records(&out)), census(&records));

    let (status, page) = daemon.get("/v1/scans?status=completed");
    assert_eq!(status, 200);
    assert_eq!(page["scans"][0]["id"], id, "{page}");
    let (status, page) = daemon.get("/v1/scans?status=running");
    assert_eq!((status, page["scans"].as_array().unwrap().len()), (200, 0));

    // Exported in any output format, as `results show` writes it.
    let (status, kind, xml) = daemon.text(&format!("/v1/scans/{id}/export?format=nmap-xml"));
    assert_eq!((status, kind.as_str()), (200, "application/xml"), "{xml}");
    assert!(xml.contains("<nmaprun") && xml.contains("portid="), "{xml}");
    let (status, _, csv) = daemon.text(&format!("/v1/scans/{id}/export?format=csv"));
    assert_eq!(status, 200);
    assert_eq!(csv.lines().count(), 4, "a header and 3 findings: {csv}");
    let (status, error) = daemon.get(&format!("/v1/scans/{id}/export?format=pdf"));
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("format")),
        "{error}"
    );

    // Deleted: gone, records and all.
    assert_eq!(
        daemon.call("DELETE", &format!("/v1/scans/{id}"), None).0,
        204
    );
    assert_eq!(daemon.get(&format!("/v1/scans/{id}")).0, 404);
    assert_eq!(daemon.get(&format!("/v1/scans/{id}/records")).0, 404);
}

#[test]
fn bad_requests_get_json_errors_that_name_the_field() {
    let daemon = Daemon::start();
    let target = r#""targets":["127.0.0.1"]"#;
    for (body, status, field, says) in [
        ("{".to_string(), 400, None, "EOF while parsing"),
        ("[]".to_string(), 400, None, "expected struct ScanBody"),
        (
            format!(r#"{{{target},"port":"22"}}"#),
            400,
            Some("port"),
            "unknown field `port`",
        ),
        (
            format!(r#"{{{target},"ports":22}}"#),
            400,
            Some("ports"),
            "invalid type: integer `22`, expected a string",
        ),
        (
            format!(r#"{{{target},"seed":-1}}"#),
            400,
            Some("seed"),
            "invalid value",
        ),
        (
            format!(r#"{{{target},"ports":"99999"}}"#),
            422,
            Some("ports"),
            "ports are numbers from 1 to 65535",
        ),
        (
            format!(r#"{{{target},"plugins":["nope"]}}"#),
            422,
            Some("plugins"),
            "unknown plugin \"nope\"",
        ),
        (
            format!(r#"{{{target},"plugin_args":{{"port.banner":"maybe"}}}}"#),
            422,
            Some("plugin_args"),
            "expected a boolean",
        ),
        (
            format!(r#"{{{target},"concurrency":0}}"#),
            422,
            Some("concurrency"),
            "--concurrency",
        ),
        (
            format!(r#"{{{target},"timeout":"soon"}}"#),
            422,
            Some("timeout"),
            "--timeout",
        ),
        (
            r#"{"targets":[]}"#.to_string(),
            422,
            Some("targets"),
            "give at least one target",
        ),
        (
            r#"{"targets":["300.1.2.3/40"]}"#.to_string(),
            422,
            Some("targets"),
            "300.1.2.3/40",
        ),
        (
            r#"{"targets":["www.test"],"plugins":["port"]}"#.to_string(),
            422,
            Some("plugins"),
            "add the dns plugin",
        ),
        (
            format!(r#"{{{target},"ports":"{}"}}"#, "1,".repeat(600_000)),
            413,
            None,
            "length limit",
        ),
    ] {
        let (got, error) = daemon.call("POST", "/v1/scans", Some(&body));
        let shown = &body[..body.len().min(80)];
        assert_eq!(got, status, "{shown}: {error}");
        assert_eq!(error["field"].as_str(), field, "{shown}: {error}");
        assert!(
            error["error"].as_str().unwrap().contains(says),
            "{shown}: {error}"
        );
    }
    for (path, status) in [
        ("/v1/scans/abc", 400),
        ("/v1/scans/999", 404),
        ("/v1/scans/999/records", 404),
        ("/v1/scans?limit=0", 400),
        ("/v1/scans?status=done", 400),
        ("/v1/scans?bogus=1", 400),
        ("/v1/plugins/nope", 404),
        ("/v2/anything", 404),
    ] {
        let (got, error) = daemon.get(path);
        assert_eq!(got, status, "{path}: {error}");
        assert!(error["error"].is_string(), "{path}: {error}");
    }
    let (status, error) = daemon.call("POST", "/v1/scans/999/cancel", None);
    assert_eq!((status, error["error"].is_string()), (404, true));
    // Nothing was started by any of it.
    assert_eq!(daemon.get("/v1/scans").1["scans"], serde_json::json!([]));
}

#[test]
fn a_cancelled_scan_ends_interrupted_and_the_cli_resumes_it() {
    let silent = Listener::start(Behaviour::Silent);
    let daemon = Daemon::start();
    // The banner wait holds the scan after its open port is found.
    let body = format!(
        r#"{{"targets":["127.0.0.1"],"ports":"{}","plugins":["port"],"plugin_args":{{"port.banner-timeout":"3s"}}}}"#,
        silent.port()
    );
    let id = daemon.scan(&body);
    let started = Instant::now();
    daemon.first_record(id);
    let (status, view) = daemon.call("POST", &format!("/v1/scans/{id}/cancel"), None);
    assert_eq!(status, 202, "{view}");
    let view = daemon.wait(id);
    assert_eq!(view["status"], "interrupted", "{view}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the cancel did not stop it"
    );
    let (status, error) = daemon.call("POST", &format!("/v1/scans/{id}/cancel"), None);
    assert_eq!(status, 409, "{error}");

    let mut resume = wscan();
    resume.arg("--db").arg(&daemon.db);
    resume.args(["scan", "--resume", &id.to_string(), "-q"]);
    let out = run(resume, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let view = daemon.get(&format!("/v1/scans/{id}")).1;
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["runs"], 2, "{view}");
    let open: Vec<Value> = daemon.records(id, 100, "&kind=open-port");
    assert_eq!(open.len(), 1, "{open:#?}");
}

#[test]
fn sigterm_stops_the_daemon_and_its_scans_are_left_resumable() {
    let silent = Listener::start(Behaviour::Silent);
    let mut daemon = Daemon::start();
    let body = format!(
        r#"{{"targets":["127.0.0.1"],"ports":"{}","plugins":["port"],"plugin_args":{{"port.banner-timeout":"60s"}}}}"#,
        silent.port()
    );
    let id = daemon.scan(&body);
    let started = Instant::now();
    daemon.first_record(id);
    signal(daemon.child.id(), "-TERM");
    let status = daemon.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(30), "slow to stop");
    let mut list = wscan();
    list.arg("--db").arg(&daemon.db);
    list.args(["results", "list", "--format", "jsonl"]);
    let scans = records(&run(list, Duration::from_secs(30)));
    assert_eq!(scans[0]["id"], id);
    assert_eq!(scans[0]["status"], "interrupted", "{scans:#?}");
}

#[test]
fn the_openapi_document_describes_every_route() {
    let daemon = Daemon::start();
    let (status, doc) = daemon.get("/v1/openapi.json");
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        "/healthz",
        "/readyz",
        "/v1/scans",
        "/v1/scans/{id}",
        "/v1/scans/{id}/records",
        "/v1/scans/{id}/cancel",
        "/v1/scans/{id}/resume",
        "/v1/scans/{id}/events",
        "/v1/scans/{id}/ws",
        "/v1/plugins",
        "/v1/plugins/{name}",
        "/metrics",
    ] {
        assert!(paths.contains(path), "{path} not in {paths:?}");
    }
    assert!(doc["paths"]["/v1/plugins/{name}"]["put"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
        "{doc}"
    );
    assert!(doc["components"]["schemas"]["ScanBody"].is_object());
    let (status, plugins) = daemon.get("/v1/plugins");
    assert_eq!(status, 200);
    let names: BTreeSet<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["dns", "http", "port", "tls"]));
    assert_eq!(daemon.get("/v1/plugins/port").1["name"], "port");
    // Beyond loopback: see the HTTPS test, which tries it in a namespace.
}

#[test]
fn the_event_stream_sends_every_record_once_and_resumes_after_the_last_seen_over_sse_and_websocket()
{
    let banners: Vec<Listener> = (0..4)
        .map(|_| Listener::start(Behaviour::Banner(b"220 ready\r\n")))
        .collect();
    let silent = Listener::start(Behaviour::Silent);
    let ports: Vec<String> = banners
        .iter()
        .chain([&silent])
        .map(|l| l.port().to_string())
        .collect();
    let daemon = Daemon::start();
    // The silent port's banner wait keeps the scan running for 1.5 s: long
    // enough for progress events.
    let body = format!(
        r#"{{"targets":["127.0.0.1"],"ports":"{}","plugins":["port"],"plugin_args":{{"port.banner-timeout":"1500ms"}}}}"#,
        ports.join(",")
    );
    let id = daemon.scan(&body);
    // Three records, then the connection drops while the scan runs; the
    // client comes back with the last id it saw.
    let first = daemon.events(id, None, Some(3));
    let seen = first.iter().rev().find_map(|e| e.id).unwrap();
    assert_eq!(
        daemon.get(&format!("/v1/scans/{id}")).1["status"],
        "running"
    );
    let mut live = first.clone();
    live.extend(daemon.events(id, Some(seen), None));
    let end = live.last().unwrap();
    assert_eq!(end.name, "end");
    assert_eq!(end.data["status"], "completed", "{end:?}");
    let records: Vec<&SseEvent> = live.iter().filter(|e| e.name == "record").collect();
    let ids: Vec<i64> = records.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Every record once: the same as the records API's.
    let stored = daemon.records(id, 100, "");
    assert_eq!(records.len(), stored.len());
    for (event, record) in records.iter().zip(&stored) {
        assert_eq!(&event.data, record);
        assert_eq!(event.id, record["id"].as_i64());
    }
    assert_eq!(stored.len(), 9, "5 open ports and 4 banners: {stored:#?}");
    let progress: Vec<&SseEvent> = live.iter().filter(|e| e.name == "progress").collect();
    assert!(!progress.is_empty(), "no progress event: {live:#?}");
    assert!(
        progress
            .iter()
            .all(|p| p.data["units_known"].as_u64() >= Some(1))
    );
    // Connects only grow, up to the scan's own count.
    let connects: Vec<u64> = progress
        .iter()
        .map(|p| p.data["connects"].as_u64().unwrap())
        .collect();
    assert!(connects.windows(2).all(|w| w[0] <= w[1]), "{connects:?}");
    let end = live.iter().find(|e| e.name == "end").unwrap();
    let total = end.data["stats"]["net"]["connects"].as_u64().unwrap();
    assert!(
        connects.iter().all(|c| *c <= total),
        "{connects:?} of {total}"
    );

    // Reconnecting after the third record gets exactly the rest.
    let again = daemon.events(id, Some(ids[2]), None);
    let rest: Vec<i64> = again
        .iter()
        .filter(|e| e.name == "record")
        .map(|e| e.id.unwrap())
        .collect();
    assert_eq!(rest, ids[3..]);
    assert_eq!(again.last().unwrap().name, "end");
    assert_eq!(daemon.get("/v1/scans/99/events").0, 404);

    // The same events over WebSocket: every record once, then the end.
    let ws = daemon.ws(id, None);
    let ws_ids: Vec<i64> = ws
        .iter()
        .filter(|m| m["event"] == "record")
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ws_ids, ids);
    for (message, record) in ws.iter().filter(|m| m["event"] == "record").zip(&stored) {
        assert_eq!(&message["data"], record);
    }
    assert_eq!(ws.last().unwrap()["event"], "end", "{ws:#?}");
    let rest: Vec<i64> = daemon
        .ws(id, Some(ids[2]))
        .iter()
        .filter_map(|m| m["id"].as_i64())
        .collect();
    assert_eq!(rest, ids[3..]);
    // A plain GET is not a handshake: a JSON 4xx.
    let (status, error) = daemon.get(&format!("/v1/scans/{id}/ws"));
    assert!((400..500).contains(&status), "{status} {error}");
    assert!(error["error"].is_string(), "{error}");
}

/// `wscan token ...` on the daemon's store; its output.
fn token(daemon: &Daemon, args: &[&str]) -> std::process::Output {
    let mut cmd = wscan();
    cmd.arg("--db").arg(&daemon.db).arg("token").args(args);
    run(cmd, Duration::from_secs(30))
}

#[test]
fn tokens_let_each_role_do_its_part_and_nothing_more() {
    let daemon = Daemon::start();
    // No token yet: open (on loopback).
    assert_eq!(daemon.get("/v1/scans").0, 200);
    let mut tokens = std::collections::HashMap::new();
    for role in ["read", "scan", "admin"] {
        let out = token(
            &daemon,
            &["create", &format!("{role}-token"), "--role", role],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(secret.starts_with("wscan_"), "{secret}");
        tokens.insert(role, secret);
    }
    let out = token(&daemon, &["create", "read-token", "--role", "read"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("already a token named"),
        "{}",
        stderr(&out)
    );
    let out = token(&daemon, &["list", "--format", "jsonl"]);
    let listed = records(&out);
    assert_eq!(listed.len(), 3);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("wscan_"),
        "a secret was listed"
    );

    let port = closed_port();
    let body = format!(r#"{{"targets":["127.0.0.1"],"ports":"{port}","plugins":["port"]}}"#);
    let as_ = |role: Option<&str>, method: &str, path: &str, body: Option<&str>| {
        let token = role.map(|r| tokens[r].as_str());
        daemon.call_as(token, method, path, body)
    };
    // Health and the API's description need no token.
    assert_eq!(as_(None, "GET", "/healthz", None).0, 200);
    assert_eq!(as_(None, "GET", "/v1/openapi.json", None).0, 200);
    // No token, a malformed header, a wrong token: 401.
    let (status, error) = as_(None, "GET", "/v1/scans", None);
    assert_eq!(status, 401, "{error}");
    assert!(error["error"].as_str().unwrap().contains("needs a token"));
    // The admin token with its last character changed (to another one).
    let admin = &tokens["admin"];
    let last = if admin.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &admin[..admin.len() - 1]);
    assert_eq!(
        daemon.call_as(Some(&wrong), "GET", "/v1/scans", None).0,
        401
    );
    // read: GET only.
    assert_eq!(as_(Some("read"), "GET", "/v1/scans", None).0, 200);
    let (status, error) = as_(Some("read"), "POST", "/v1/scans", Some(&body));
    assert_eq!(status, 403, "{error}");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("has the role read; this request needs scan"),
        "{error}"
    );
    // scan: start, not delete.
    let (status, view) = as_(Some("scan"), "POST", "/v1/scans", Some(&body));
    assert_eq!(status, 201, "{view}");
    let id = view["id"].as_i64().unwrap();
    let started = Instant::now();
    while as_(Some("read"), "GET", &format!("/v1/scans/{id}"), None).1["status"] == "running" {
        assert!(started.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        as_(Some("scan"), "DELETE", &format!("/v1/scans/{id}"), None).0,
        403
    );
    // admin: everything.
    assert_eq!(
        as_(Some("admin"), "DELETE", &format!("/v1/scans/{id}"), None).0,
        204
    );
    // Revoked: refused at once, without a restart.
    let out = token(&daemon, &["revoke", "read-token"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(as_(Some("read"), "GET", "/v1/scans", None).0, 401);
    assert_eq!(
        token(&daemon, &["revoke", "read-token"]).status.code(),
        Some(2)
    );
}

#[test]
fn a_daemon_killed_mid_scan_resumes_its_scans_and_finds_exactly_what_it_would_have() {
    let banners: Vec<Listener> = (0..4)
        .map(|_| Listener::start(Behaviour::Banner(b"220 ready\r\n")))
        .collect();
    let silent = Listener::start(Behaviour::Silent);
    let mut ports: Vec<String> = banners
        .iter()
        .chain([&silent])
        .map(|l| l.port().to_string())
        .collect();
    ports.push(closed_port().to_string());
    let ports = ports.join(",");
    let args = r#""plugins":["port"],"plugin_args":{"port.banner-timeout":"2s"}"#;

    // What an uninterrupted scan finds.
    let mut cli = wscan();
    cli.args([
        "scan",
        "127.0.0.1",
        "-p",
        &ports,
        "--plugins",
        "port",
        "--no-db",
    ]);
    cli.args([
        "--plugin-arg",
        "port.banner-timeout=2s",
        "--format",
        "jsonl",
    ]);
    let reference = census(&crate::support::records(&run(cli, Duration::from_secs(60))));
    assert_eq!(reference.len(), 9, "{reference:?}");

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let mut daemon = Daemon::start_with(tempfile::tempdir().unwrap(), db.clone(), &[]);
    let id = daemon.scan(&format!(
        r#"{{"targets":["127.0.0.1"],"ports":"{ports}",{args}}}"#
    ));
    daemon.first_record(id);
    // SIGKILL: nothing is recorded of the stop.
    daemon.child.kill().unwrap();
    daemon.child.wait().unwrap();
    drop(daemon);

    let daemon = Daemon::start_with(dir, db, &["--resume-killed"]);
    let view = daemon.wait(id);
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["runs"], 2, "{view}");
    let records = daemon.records(id, 100, "");
    assert_eq!(census(&records), reference);
    assert_eq!(
        records.len(),
        reference.len(),
        "a record twice: {records:#?}"
    );
    let (status, error) = daemon.call("POST", &format!("/v1/scans/{id}/resume"), None);
    assert_eq!(status, 409, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("complete"),
        "{error}"
    );
}

/// The API fuzzed from its own OpenAPI document by schemathesis (PyPI;
/// tests/run installs it): no 5xx, and every response's status, content
/// type, headers and body are what the document says. The daemon and
/// schemathesis run in a private network namespace with only `lo`: the
/// scans the fuzzer starts (its targets are arbitrary) cannot reach
/// anything outside it.
#[test]
fn schemathesis_finds_no_server_error_and_no_response_off_the_document() {
    let ns = crate::namespace::Netns::create("fuzz");
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ns.wscan();
    cmd.arg("--db").arg(dir.path().join("results.db"));
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let (mut daemon, base, lines) = spawn_serve(cmd);
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let mut st = ns.exec("st");
    // Its cache (.schemathesis/) goes to the test's folder, not the crate's.
    st.current_dir(dir.path());
    st.args(["run", &format!("{base}/v1/openapi.json"), "--url", &base]);
    st.args([
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        "--max-examples",
        "15",
        "--seed",
        "1",
        "--no-color",
    ]);
    let out = run(st, Duration::from_secs(600));
    let report = String::from_utf8_lossy(&out.stdout);
    let _ = daemon.kill();
    let _ = daemon.wait();
    let log = log.join().unwrap();
    assert!(
        out.status.success(),
        "schemathesis failed (exit {:?}):\n{report}\n{}",
        out.status.code(),
        stderr(&out)
    );
    assert!(report.contains("generated"), "{report}");
    assert!(
        !log.iter().any(|l| l.contains("panicked")),
        "the daemon panicked: {log:#?}"
    );
}

/// One sample of a metrics page: its name, labels and value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parse an OpenMetrics page with the Prometheus project's Python client,
/// whose parser is strict (a malformed line, a missing `# EOF`, a counter
/// without `_total` are errors): its samples.
fn parse_metrics(text: &str) -> Vec<Sample> {
    let script = "import sys, json\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n\
        print(json.dumps([[s.name, s.labels, s.value] for f in parse(sys.stdin.read()) for s in f.samples]))";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (tests/run installs python3-prometheus-client)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not OpenMetrics text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The sum of the samples named `name` whose labels include `labels`.
fn sample(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

impl Daemon {
    /// `GET path` as text: the status, the content type and the body.
    fn text(&self, path: &str) -> (u16, String, String) {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let response = reqwest::get(&url).await.expect("request");
            let status = response.status().as_u16();
            let kind = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, kind, response.text().await.unwrap())
        })
    }
}

#[test]
fn metrics_parse_as_openmetrics_and_add_up_to_the_scans_statistics() {
    let (_listeners, ports) = ssh_silent_closed();
    let daemon = Daemon::start();
    // Two scans: the metrics are the process's, over both.
    let body = format!(
        r#"{{"targets":["127.0.0.1"],"ports":"{ports}","plugins":["port"],"plugin_args":{{"port.banner-timeout":"300ms"}}}}"#
    );
    let views: Vec<Value> = (0..2).map(|_| daemon.wait(daemon.scan(&body))).collect();
    let (status, kind, text) = daemon.text("/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let samples = parse_metrics(&text);
    let total = |pick: &dyn Fn(&Value) -> &Value| -> f64 {
        views
            .iter()
            .map(|v| pick(&v["stats"]).as_f64().unwrap())
            .sum()
    };

    for (metric, labels, stat) in [
        ("wscan_connects_total", vec![], "connects"),
        ("wscan_ports_total", vec![("state", "open")], "open"),
        ("wscan_ports_total", vec![("state", "closed")], "closed"),
        ("wscan_ports_total", vec![("state", "filtered")], "filtered"),
        ("wscan_dns_queries_total", vec![], "dns_queries"),
        ("wscan_connect_timeouts_total", vec![], "timeouts"),
    ] {
        assert_eq!(
            sample(&samples, metric, &labels),
            total(&|s| &s["net"][stat]),
            "{metric} {labels:?} against net.{stat}"
        );
    }
    assert!(sample(&samples, "wscan_connects_total", &[]) >= 6.0);
    let plugin = [("plugin", "port")];
    assert_eq!(
        sample(&samples, "wscan_unit_duration_seconds_count", &plugin),
        total(&|s| &s["plugins"]["port"]["units"])
    );
    assert_eq!(
        sample(
            &samples,
            "wscan_unit_duration_seconds_count",
            &[("plugin", "port"), ("outcome", "ok")]
        ),
        total(&|s| &s["plugins"]["port"]["units"]) - total(&|s| &s["plugins"]["port"]["errors"])
    );
    assert_eq!(
        sample(&samples, "wscan_findings_total", &plugin),
        total(&|s| &s["findings"])
    );
    assert_eq!(
        sample(
            &samples,
            "wscan_findings_total",
            &[("kind", "open-port"), ("severity", "info")]
        ),
        4.0,
        "one open port a scan, twice"
    );
    assert_eq!(sample(&samples, "wscan_scans_started_total", &[]), 2.0);
    assert_eq!(
        sample(
            &samples,
            "wscan_scans_ended_total",
            &[("status", "completed")]
        ),
        2.0
    );
    assert_eq!(sample(&samples, "wscan_scans_running", &[]), 0.0);
    assert_eq!(sample(&samples, "wscan_in_flight", &[]), 0.0);
    // Requests are counted by route pattern, not by path.
    assert_eq!(
        sample(
            &samples,
            "wscan_http_requests_total",
            &[
                ("route", "/v1/scans"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        2.0
    );
    assert!(
        sample(
            &samples,
            "wscan_http_requests_total",
            &[("route", "/v1/scans/{id}"), ("method", "GET")]
        ) >= 2.0
    );
    assert!(
        samples
            .iter()
            .any(|(n, l, _)| n == "wscan_build_info" && l.contains_key("version"))
    );
}

#[test]
fn a_cli_scan_serves_its_metrics_while_it_runs() {
    let listeners: Vec<Listener> = (0..3).map(|_| Listener::start(Behaviour::Silent)).collect();
    let mut ports: Vec<String> = listeners.iter().map(|l| l.port().to_string()).collect();
    // A slow scan (30 connects at 10 a second) to scrape mid-way.
    ports.extend((0..27).map(|_| closed_port().to_string()));
    let mut cmd = wscan();
    cmd.args(["scan", "127.0.0.1", "-p", &ports.join(",")]);
    cmd.args(["--plugins", "port", "--no-db", "--rate", "10"]);
    cmd.args(["--plugin-arg", "port.banner-timeout=100ms"]);
    cmd.args(["--metrics", "127.0.0.1:0", "-o", "-"]);
    let (mut child, url, lines) = spawn_until(cmd, "wscan: metrics at ");
    std::thread::spawn(move || lines.for_each(drop));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The address is said before the scan has read its plugins and
    // targets: the scan shows once it starts (well within its 3 s).
    let scrape =
        || runtime.block_on(async { reqwest::get(&url).await.unwrap().text().await.unwrap() });
    let deadline = Instant::now() + Duration::from_secs(2);
    let (text, samples) = loop {
        let text = scrape();
        let samples = parse_metrics(&text);
        if sample(&samples, "wscan_scans_running", &[]) == 1.0 || Instant::now() > deadline {
            break (text, samples);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(sample(&samples, "wscan_scans_running", &[]), 1.0, "{text}");
    assert!(
        sample(&samples, "wscan_connects_total", &[]) < 30.0,
        "{text}"
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    // An address it cannot listen on is a usage error, before any scan.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cmd = wscan();
    cmd.args(["scan", "127.0.0.1", "-p", &ports[0], "--no-db"]);
    cmd.args(["--metrics", &taken.local_addr().unwrap().to_string()]);
    let out = run(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot listen there"), "{stderr}");
}

impl Daemon {
    /// `PUT path` with `bytes` as the body: the status and the JSON body.
    fn put(&self, path: &str, bytes: Vec<u8>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let response = reqwest::Client::new()
                .put(&url)
                .header("content-type", "application/wasm")
                .body(bytes)
                .send()
                .await
                .expect("request");
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    /// The versions of `plugin` on scan `id`'s findings.
    fn versions(&self, id: i64) -> BTreeSet<String> {
        self.records(id, 100, "&type=finding")
            .iter()
            .map(|r| {
                r["data"]["version"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }
}

#[test]
fn uploaded_plugins_are_swapped_in_for_the_next_scan_and_broken_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let db = dir.path().join("results.db");
    let folder = plugins.to_str().unwrap().to_string();
    let daemon = Daemon::start_with(dir, db, &["--plugin-dir", &folder]);
    let v1 = std::fs::read(test_plugin("tick_v1")).unwrap();
    let v2 = std::fs::read(test_plugin("tick_v2")).unwrap();
    let scan = r#"{"targets":["127.0.0.1"],"plugins":["tick"],"plugin_args":{"tick.sleep":"0s"}}"#;

    let (status, view) = daemon.put("/v1/plugins/tick", v1.clone());
    assert_eq!(status, 201, "{view}");
    assert_eq!(view["version"], "1.0.0", "{view}");
    assert_eq!(view["digest"].as_str().unwrap().len(), 64, "{view}");
    assert_eq!(std::fs::read(plugins.join("tick.wasm")).unwrap(), v1);
    let first = daemon.scan(scan);
    assert_eq!(daemon.wait(first)["status"], "completed");
    assert_eq!(
        daemon.versions(first),
        BTreeSet::from(["1.0.0".to_string()])
    );

    let (status, view) = daemon.put("/v1/plugins/tick", v2.clone());
    assert_eq!(
        (status, view["version"].as_str()),
        (200, Some("2.0.0")),
        "{view}"
    );

    // Refused, each with its reason; 2.0.0 stays in use.
    let notaplugin =
        std::path::PathBuf::from(env!("WSCAN_GUEST_ARTIFACTS")).join("wscan-test-notaplugin.wasm");
    for (path, bytes, status, reason) in [
        (
            "/v1/plugins/tick",
            b"\0asm garbage".to_vec(),
            422,
            "the version in use (if any) stays",
        ),
        (
            "/v1/plugins/tick",
            std::fs::read(&notaplugin).unwrap(),
            422,
            "stays",
        ),
        (
            "/v1/plugins/tock",
            v1.clone(),
            422,
            "describes itself as \"tick\"",
        ),
        ("/v1/plugins/Tick!", v1.clone(), 400, "not a plugin name"),
    ] {
        let (got, error) = daemon.put(path, bytes);
        assert_eq!(got, status, "{path}: {error}");
        let text = error["error"].as_str().unwrap();
        assert!(text.contains(reason), "{path}: {text}");
    }
    assert_eq!(daemon.get("/v1/plugins/tick").1["version"], "2.0.0");
    assert_eq!(std::fs::read(plugins.join("tick.wasm")).unwrap(), v2);
    let second = daemon.scan(scan);
    assert_eq!(daemon.wait(second)["status"], "completed");
    assert_eq!(
        daemon.versions(second),
        BTreeSet::from(["2.0.0".to_string()])
    );

    // Built-in plugins stay; an uploaded one goes, file and all.
    assert_eq!(daemon.call("DELETE", "/v1/plugins/port", None).0, 409);
    assert_eq!(daemon.call("DELETE", "/v1/plugins/tick", None).0, 204);
    assert_eq!(daemon.get("/v1/plugins/tick").0, 404);
    assert!(!plugins.join("tick.wasm").exists());
    assert_eq!(daemon.call("DELETE", "/v1/plugins/tick", None).0, 404);
    let (status, error) = daemon.call("POST", "/v1/scans", Some(scan));
    assert_eq!(status, 422, "{error}");

    // The folder's watcher saw every write: an upload it finds in place
    // is not loaded a second time.
    std::thread::sleep(Duration::from_secs(1));
    let samples = parse_metrics(&daemon.text("/metrics").2);
    let reloads = |event: &str| sample(&samples, "wscan_plugin_reloads_total", &[("event", event)]);
    assert_eq!(
        [
            reloads("loaded"),
            reloads("swapped"),
            reloads("rejected"),
            reloads("removed")
        ],
        [1.0, 1.0, 3.0, 1.0]
    );
}

#[test]
fn https_serves_with_the_given_certificate_and_beyond_loopback_needs_tokens_and_tls() {
    use crate::tls_server::{Cert, TestCa, leaf_pem};
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = leaf_pem(Cert::Valid);
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let db = dir.path().join("results.db");
    let tls_flags = [
        "--tls-cert",
        cert_file.to_str().unwrap(),
        "--tls-key",
        key_file.to_str().unwrap(),
    ];

    // HTTPS on loopback: the certificate checks out against its CA.
    let mut cmd = wscan();
    cmd.arg("--db").arg(&db);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(tls_flags);
    let (mut child, base, lines) = spawn_serve(cmd);
    std::thread::spawn(move || lines.for_each(drop));
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(TestCa::get().pem_path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        let health = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(health.status().as_u16(), 200);
        // Plain HTTP on the HTTPS port gets nothing.
        let plain = base.replacen("https://", "http://", 1);
        let refused = client.get(format!("{plain}/healthz")).send().await;
        assert!(refused.is_err(), "{refused:?}");
        // Neither does a client that does not trust the certificate.
        let untrusting = reqwest::Client::new()
            .get(format!("{base}/healthz"))
            .send()
            .await;
        assert!(untrusting.is_err(), "{untrusting:?}");
    });
    let _ = child.kill();
    let _ = child.wait();

    // Beyond loopback (inside a namespace of our own): tokens first, then
    // HTTPS, both refused before anything listens.
    let ns = crate::namespace::Netns::create("serve-public");
    let serve = |extra: &[&str]| {
        let mut cmd = ns.wscan();
        cmd.arg("--db").arg(&db);
        cmd.args(["serve", "--listen", "0.0.0.0:0"]).args(extra);
        cmd
    };
    let out = run(serve(&tls_flags), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("create a token first"),
        "{}",
        stderr(&out)
    );
    let mut create = wscan();
    create.arg("--db").arg(&db);
    create.args(["token", "create", "ops", "--role", "admin"]);
    let out = run(create, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = run(serve(&[]), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--tls-cert"), "{}", stderr(&out));

    // With both, it serves, and only to a token; once the last token is
    // revoked, to no one.
    let (mut child, base, lines) = spawn_serve(serve(&tls_flags));
    std::thread::spawn(move || lines.for_each(drop));
    let port = base.rsplit(':').next().unwrap().to_string();
    let curl = |token: Option<&str>| {
        let mut cmd = ns.exec("curl");
        cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"]);
        cmd.arg(TestCa::get().pem_path());
        // The certificate names 127.0.0.1, where the daemon also listens.
        cmd.arg(format!("https://127.0.0.1:{port}/v1/scans"));
        if let Some(token) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        String::from_utf8(run(cmd, Duration::from_secs(30)).stdout).unwrap()
    };
    assert_eq!(curl(None), "401");
    assert_eq!(curl(Some(&token)), "200");
    let mut revoke = wscan();
    revoke.arg("--db").arg(&db).args(["token", "revoke", "ops"]);
    assert_eq!(run(revoke, Duration::from_secs(30)).status.code(), Some(0));
    assert_eq!(curl(Some(&token)), "401");
    assert_eq!(curl(None), "401");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn scans_share_the_daemons_budget_and_max_scans_caps_how_many_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let daemon = Daemon::start_with(dir, db, &["--concurrency", "8", "--max-scans", "1"]);
    // A scan asking for 1000 operations in flight gets the daemon's 8.
    let silent: Vec<Listener> = (0..40)
        .map(|_| Listener::start(Behaviour::Silent))
        .collect();
    let ports: Vec<String> = silent.iter().map(|l| l.port().to_string()).collect();
    let body = format!(
        r#"{{"targets":["127.0.0.1"],"ports":"{}","plugins":["port"],"concurrency":1000,"plugin_args":{{"port.banner-timeout":"200ms"}}}}"#,
        ports.join(",")
    );
    let first = daemon.scan(&body);
    // One at a time: a second is refused while the first runs...
    let (status, error) = daemon.call("POST", "/v1/scans", Some(&body));
    assert_eq!(status, 429, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("--max-scans 1"),
        "{error}"
    );
    let view = daemon.wait(first);
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!(view["findings"], 40, "{view}");
    let peak = view["stats"]["net"]["peak_in_flight"].as_u64().unwrap();
    assert!((1..=8).contains(&peak), "peak {peak} in flight: {view}");
    // ...and taken once it ended.
    let second = daemon.scan(&body);
    assert_eq!(daemon.wait(second)["status"], "completed");
    // Instances per scan are capped so that --max-scans scans fit the pool.
    let (status, error) = daemon.call(
        "POST",
        "/v1/scans",
        Some(r#"{"targets":["127.0.0.1"],"parallel":1000}"#),
    );
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("parallel")),
        "{error}"
    );

    // With --max-scans 64 a scan may hold 8 instances: a request that
    // names no `parallel` gets that many, one that asks for more is 422.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let many = Daemon::start_with(dir, db, &["--max-scans", "64"]);
    let small = r#"{"targets":["127.0.0.1"],"ports":"1","plugins":["port"]}"#;
    assert_eq!(many.wait(many.scan(small))["status"], "completed");
    let (status, error) = many.call(
        "POST",
        "/v1/scans",
        Some(r#"{"targets":["127.0.0.1"],"ports":"1","parallel":9}"#),
    );
    assert_eq!(
        (status, error["field"].as_str()),
        (422, Some("parallel")),
        "{error}"
    );
}

/// The web console in Debian's Chromium, driven by playwright-core
/// (tests/browser/console.mjs; `tests/run` installs both): log in, start a
/// scan from the form and watch it reach 100% with its findings arriving,
/// filter them, open a certificate, diff two scans, upload a plugin, and
/// see a read-only token get no controls. Screenshots go to
/// target/test-artifacts/console/.
#[test]
fn the_console_runs_a_scan_in_a_real_browser() {
    let tools = std::env::var("WSCAN_BROWSER_TOOLS").expect(
        "WSCAN_BROWSER_TOOLS: the folder where tests/run installs playwright-core; run the tests with tests/run",
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let mut tokens = std::collections::HashMap::new();
    for role in ["admin", "read"] {
        let mut create = wscan();
        create.arg("--db").arg(&db);
        create.args([
            "token",
            "create",
            &format!("console-{role}"),
            "--role",
            role,
        ]);
        let out = run(create, Duration::from_secs(30));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        tokens.insert(
            role,
            String::from_utf8(out.stdout).unwrap().trim().to_string(),
        );
    }
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let folder = plugins.to_str().unwrap().to_string();
    // Over HTTPS, as a team would serve it: the browser is told to accept
    // the test CA's certificate.
    let (cert, key) = crate::tls_server::leaf_pem(crate::tls_server::Cert::Valid);
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let (cert_file, key_file) = (
        cert_file.to_str().unwrap().to_string(),
        key_file.to_str().unwrap().to_string(),
    );
    let daemon = Daemon::start_with(
        dir,
        db,
        &[
            "--plugin-dir",
            &folder,
            "--tls-cert",
            &cert_file,
            "--tls-key",
            &key_file,
        ],
    );
    assert!(daemon.base.starts_with("https://"), "{}", daemon.base);
    let (_listeners, ports) = ssh_silent_closed();
    let tls = crate::tls_server::TlsServer::start(crate::tls_server::Cert::Valid);
    let first = format!("{ports},{}", tls.port());
    // The second scan drops the SSH listener: its findings disappear.
    let second = format!("{}", tls.port());
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../test-artifacts/console");
    std::fs::create_dir_all(&shots).unwrap();
    // ES modules find packages next to the script: it runs from there.
    let script = PathBuf::from(&tools).join("console.mjs");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/browser/console.mjs"),
        &script,
    )
    .unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    let test_plugin = test_plugin("tick_v1");
    std::fs::write(
        config.path(),
        serde_json::json!({
            "base": daemon.base,
            "admin": tokens["admin"],
            "read": tokens["read"],
            "ports": first,
            "ports2": second,
            "plugin": test_plugin,
            "shots": shots,
        })
        .to_string(),
    )
    .unwrap();
    let mut node = Command::new("node");
    node.arg(&script).arg(config.path());
    let out = run(node, Duration::from_secs(240));
    assert!(
        out.status.success(),
        "{}\n{}\n(screenshots in {})",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out),
        shots.display()
    );
}

/// Children killed (and waited for) on drop, a test's panic included.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_daemon_with_redis_runs_its_scans_on_workers_and_stores_what_they_find() {
    let (_listeners, ports) = ssh_silent_closed();
    let dir = tempfile::tempdir().unwrap();
    let (redis, port) = crate::cluster::redis_on_loopback(dir.path());
    let mut children = Children(vec![redis]);
    let url = format!("redis://127.0.0.1:{port}");

    // A Redis the daemon cannot reach stops it at start.
    let mut cmd = wscan();
    cmd.arg("--db").arg(dir.path().join("unused.db"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--redis"]);
    cmd.arg(format!("redis://127.0.0.1:{}", closed_port()));
    let out = run(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Redis at"), "{}", stderr(&out));

    let log = std::fs::File::create(dir.path().join("w1.log")).unwrap();
    let mut worker = wscan();
    worker.arg("--cache-dir").arg(dir.path().join("cache-w1"));
    worker.args(["worker", "--redis", &url, "--name", "w1"]);
    children
        .0
        .push(worker.stdout(Stdio::null()).stderr(log).spawn().unwrap());
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("results.db");
    let daemon = Daemon::start_with(store, db, &["--redis", &url, "--item-size", "64"]);
    let body = format!(
        r#"{{"targets":["127.0.0.1"],"ports":"{ports}","plugins":["port"],"plugin_args":{{"port.banner-timeout":"300ms"}}}}"#
    );
    let id = daemon.scan(&body);
    let view = daemon.wait(id);
    assert_eq!(view["status"], "completed", "{view}");
    // The worker ran it: the daemon's statistics are the cluster's.
    let cluster = &view["stats"]["cluster"];
    assert_eq!(cluster["items"], 1, "{view}");
    assert_eq!(cluster["workers"]["w1"]["items"], 1, "{view}");
    assert!(
        view["stats"]["net"]["connects"].as_u64().unwrap() >= 3,
        "{view}"
    );
    let records = daemon.records(id, 100, "");
    let mut cli = wscan();
    cli.args([
        "scan",
        "127.0.0.1",
        "-p",
        &ports,
        "--plugins",
        "port",
        "--no-db",
    ]);
    cli.args([
        "--plugin-arg",
        "port.banner-timeout=300ms",
        "--format",
        "jsonl",
    ]);
    let out = run(cli, Duration::from_secs(60));
    assert_eq!(census(&records), census(&crate::support::records(&out)));
    assert_eq!(records.len(), 3, "{records:#?}");
    // The daemon's metrics count the item by the worker that ran it.
    let (status, _, text) = daemon.text("/metrics");
    assert_eq!(status, 200);
    let samples = parse_metrics(&text);
    let worker = [("worker", "w1")];
    assert_eq!(sample(&samples, "wscan_cluster_items_total", &worker), 1.0);
    assert_eq!(
        sample(&samples, "wscan_cluster_worker_connects_total", &worker),
        view["stats"]["net"]["connects"].as_f64().unwrap()
    );
    assert_eq!(sample(&samples, "wscan_cluster_dead_items_total", &[]), 0.0);
    drop(daemon);
}
