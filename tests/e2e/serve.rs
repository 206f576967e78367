//! `wscan serve`: the real daemon on a loopback port, driven over HTTP
//! with reqwest, scanning listeners these tests start.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Spawn `wscan ... serve --listen 127.0.0.1:0` (`cmd`) and wait until it
/// says where it listens: the process, its base URL, and the rest of its
/// standard error.
fn spawn_serve(
    mut cmd: Command,
) -> (
    Child,
    String,
    std::io::Lines<BufReader<std::process::ChildStderr>>,
) {
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
            panic!("serve ended before it said where it listens");
        };
        if line.contains("serving the API on") {
            let base = line
                .split_whitespace()
                .find(|w| w.starts_with("http://"))
                .unwrap_or_else(|| panic!("no address in {line:?}"))
                .to_string();
            return (child, base, lines);
        }
    }
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
    let ssh = Listener::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.2p1\r\n"));
    let silent = Listener::start(Behaviour::Silent);
    let ports = format!("{},{},{}", ssh.port(), silent.port(), closed_port());
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
    let killed = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
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
fn the_openapi_document_describes_every_route_and_loopback_is_enforced() {
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
    ] {
        assert!(paths.contains(path), "{path} not in {paths:?}");
    }
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

    let mut outside = wscan();
    outside.args(["serve", "--listen", "0.0.0.0:0"]);
    let out = run(outside, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("loopback only"), "{}", stderr(&out));
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
    let wrong = format!("{}0", &tokens["admin"][..tokens["admin"].len() - 1]);
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
