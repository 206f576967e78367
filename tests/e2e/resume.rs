//! The result store and crash-safe resume through the real binary: a scan
//! killed with SIGKILL at several points and resumed each time ends with
//! exactly the findings of an uninterrupted run, in the store and in its
//! `-o` file; Ctrl-C stops a scan cleanly and says how to resume it.
//!
//! The scans sweep 64 addresses in a private namespace, where a python
//! script serves SSH banners and HTTP pages on some of them, so units of
//! both kinds (addresses, and the web services they lead to) are cut short.

use crate::namespace::Netns;
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every fourth address of 127.0.0.0/26 has an SSH-like banner on 22 and a
/// web page on 80.
const SERVERS: &str = r#"
import socket, threading, time
BODY = b'<html><head><title>resume test</title></head></html>'
def handle(c, kind):
    try:
        if kind == 'ssh':
            c.sendall(b'SSH-2.0-wscan-test\r\n')
            time.sleep(0.5)
        else:
            c.settimeout(3)
            data = b''
            while b'\r\n\r\n' not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            c.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n' % len(BODY) + BODY)
    except OSError:
        pass
    finally:
        c.close()
def serve(s, kind):
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c, kind), daemon=True).start()
for n in range(1, 64, 4):
    for port, kind in ((22, 'ssh'), (80, 'http')):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.0.%d' % n, port))
        s.listen(4096)
        threading.Thread(target=serve, args=(s, kind), daemon=True).start()
print('ready', flush=True)
time.sleep(600)
"#;

/// 16 servers with an SSH banner and a web page each.
const EXPECTED_SERVERS: usize = 16;

struct Lab {
    ns: Netns,
    servers: Child,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let ns = Netns::create(tag);
        let servers = ns.python(SERVERS);
        Lab {
            ns,
            servers,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("results.db")
    }

    /// `wscan [args]` in the namespace, with the lab's store.
    fn wscan(&self, args: &[&str]) -> Command {
        let mut cmd = self.ns.wscan();
        cmd.arg("--db").arg(self.db()).args(args);
        cmd
    }

    /// A new scan of the lab writing to `output`: slow enough (a low rate,
    /// few calls at once) to be cut at several points.
    fn scan(&self, output: &Path) -> Command {
        let mut cmd = self.wscan(&["scan", "127.0.0.0/26", "-p", "22,80,443"]);
        cmd.args(["--plugins", "port,http", "--rate", "80", "--parallel", "4"]);
        cmd.args(["--plugin-arg", "port.banner-timeout=300ms"]);
        cmd.args(["--format", "jsonl", "-o"]).arg(output);
        cmd
    }

    /// Scan numbers in the store, with their status and runs.
    fn scans(&self) -> Vec<Value> {
        let out = run(
            self.wscan(&["results", "list", "--format", "jsonl"]),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        records(&out)
    }

    /// What `results show SCAN` prints.
    fn stored(&self, scan: i64) -> Vec<Value> {
        let out = run(
            self.wscan(&["results", "show", &scan.to_string(), "--format", "jsonl"]),
            Duration::from_secs(60),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        records(&out)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.servers.kill();
        let _ = self.servers.wait();
    }
}

/// What a finding is, without when it was found or how long it took.
fn identity(record: &Value) -> String {
    format!(
        "{} {} {} {}:{} {}",
        record["type"],
        record["plugin"]["name"],
        record["kind"],
        record["subject"]["address"],
        record["subject"]["port"],
        record["title"]
            .as_str()
            .unwrap_or_else(|| record["error"].as_str().unwrap_or("")),
    )
}

/// The records as a multiset of identities.
pub(crate) fn census(records: &[Value]) -> BTreeMap<String, usize> {
    let mut count = BTreeMap::new();
    for record in records {
        *count.entry(identity(record)).or_insert(0) += 1;
    }
    count
}

pub(crate) fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Start `cmd`, let it run for `after`, then SIGKILL it. Whether it got
/// to finish first is returned (a fast machine may).
fn kill_after(mut cmd: Command, after: Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + after;
    while Instant::now() < until {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    false
}

#[test]
fn a_scan_killed_at_several_points_and_resumed_finds_exactly_what_an_uninterrupted_one_does() {
    let lab = Lab::new("resume-kill");

    // The reference: one run, never interrupted.
    let whole = lab.dir.path().join("whole.jsonl");
    let out = run(lab.scan(&whole), Duration::from_secs(180));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reference = census(&read_jsonl(&whole));
    assert_eq!(
        reference.keys().filter(|k| k.contains("open-port")).count(),
        EXPECTED_SERVERS * 2,
        "{reference:#?}"
    );
    assert_eq!(
        reference
            .keys()
            .filter(|k| k.contains("resume test"))
            .count(),
        EXPECTED_SERVERS,
        "{reference:#?}"
    );
    assert!(reference.values().all(|&n| n == 1), "{reference:#?}");

    // The same scan, killed early (before much is done), in the middle and
    // late, and resumed after each kill until a run completes.
    let cut = lab.dir.path().join("cut.jsonl");
    let finished = kill_after(lab.scan(&cut), Duration::from_millis(400));
    assert!(!finished, "the scan ended before the first kill");
    let id = lab.scans().last().unwrap()["id"].as_i64().unwrap();
    assert_eq!(lab.scans().last().unwrap()["status"], "interrupted");
    let resume = || lab.wscan(&["scan", "--resume", &id.to_string()]);
    let mut kills = 1;
    for after in [1200, 800, 1600, 500] {
        if kill_after(resume(), Duration::from_millis(after)) {
            break;
        }
        kills += 1;
    }
    let out = run(resume(), Duration::from_secs(180));
    let status = lab.scans().last().unwrap().clone();
    assert!(
        out.status.code() == Some(0) || stderr(&out).contains("is complete: nothing to resume"),
        "{}",
        stderr(&out)
    );
    assert_eq!(status["status"], "completed", "{status}");
    assert!(
        kills >= 3,
        "only {kills} kill(s) landed before the scan ended"
    );
    assert!(status["runs"].as_u64().unwrap() >= 3, "{status}");

    let in_file = census(&read_jsonl(&cut));
    let in_store = census(&lab.stored(id));
    assert_eq!(
        in_file, reference,
        "the -o file differs from an uninterrupted run"
    );
    assert_eq!(
        in_store, reference,
        "the store differs from an uninterrupted run"
    );
}

#[test]
fn a_batched_sweep_killed_and_resumed_finds_exactly_what_an_uninterrupted_one_does() {
    // 4,096 addresses of one port: the port plugin takes them in batches
    // of up to 256 per instance, each swept in one probe. Killed while
    // batches are in flight, every resume must neither lose nor repeat a
    // subject of a batch cut short.
    let lab = Lab::new("resume-batch");
    let sweep = |output: &Path| {
        let mut cmd = lab.wscan(&["scan", "127.0.0.0/20", "-p", "80"]);
        cmd.args(["--plugins", "port", "--rate", "1500", "--parallel", "4"]);
        cmd.args(["--plugin-arg", "port.banner=false"]);
        cmd.args(["--format", "jsonl", "-o"]).arg(output);
        cmd
    };
    let whole = lab.dir.path().join("whole.jsonl");
    let out = run(sweep(&whole), Duration::from_secs(180));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reference = census(&read_jsonl(&whole));
    assert_eq!(reference.len(), EXPECTED_SERVERS, "{reference:#?}");
    assert!(reference.values().all(|&n| n == 1), "{reference:#?}");

    let cut = lab.dir.path().join("cut.jsonl");
    assert!(
        !kill_after(sweep(&cut), Duration::from_millis(600)),
        "the sweep ended before the first kill"
    );
    let id = lab.scans().last().unwrap()["id"].as_i64().unwrap();
    let resume = || lab.wscan(&["scan", "--resume", &id.to_string()]);
    let mut kills = 1;
    for after in [700, 900, 600] {
        if kill_after(resume(), Duration::from_millis(after)) {
            break;
        }
        kills += 1;
    }
    let out = run(resume(), Duration::from_secs(180));
    assert!(
        out.status.code() == Some(0) || stderr(&out).contains("is complete: nothing to resume"),
        "{}",
        stderr(&out)
    );
    assert_eq!(lab.scans().last().unwrap()["status"], "completed");
    assert!(
        kills >= 2,
        "only {kills} kill(s) landed before the scan ended"
    );
    assert_eq!(
        census(&read_jsonl(&cut)),
        reference,
        "the -o file differs from an uninterrupted run"
    );
    assert_eq!(
        census(&lab.stored(id)),
        reference,
        "the store differs from an uninterrupted run"
    );
}

#[test]
fn ctrl_c_stops_cleanly_and_says_how_to_resume() {
    let lab = Lab::new("resume-int");
    let output = lab.dir.path().join("out.jsonl");
    let child = lab
        .scan(&output)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    signal(child.id(), "-INT");
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "slow to stop");
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    let id = lab.scans().last().unwrap()["id"].as_i64().unwrap();
    assert!(
        text.contains(&format!("Resume with: wscan scan --resume {id} --db ")),
        "{text}"
    );
    let scan = lab.scans().last().unwrap().clone();
    assert_eq!(scan["status"], "interrupted", "{scan}");
    assert_eq!(scan["stats"]["interrupted"], true, "{scan}");

    let out = run(
        lab.wscan(&["scan", "--resume", &id.to_string()]),
        Duration::from_secs(180),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("resuming scan {id}")));
    let found = census(&read_jsonl(&output));
    assert_eq!(
        found.keys().filter(|k| k.contains("open-port")).count(),
        EXPECTED_SERVERS * 2
    );
    assert!(found.values().all(|&n| n == 1), "{found:#?}");
    assert_eq!(found, census(&lab.stored(id)));
}

#[test]
fn resume_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("r.db");
    let wscan_db = |args: &[&str]| {
        let mut cmd = wscan();
        cmd.arg("--db").arg(&db).args(args);
        run(cmd, Duration::from_secs(60))
    };
    let port = closed_port().to_string();
    let out = wscan_db(&["scan", "127.0.0.1", "-p", &port, "--plugins", "port", "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (args, message) in [
        (
            vec!["scan", "--resume", "1", "-p", "80"],
            "takes no targets and no scan flags but -q (got --ports)",
        ),
        (vec!["scan", "--resume", "1", "127.0.0.2"], "(got TARGET)"),
        (
            vec!["scan", "--resume", "1"],
            "scan 1 is complete: nothing to resume",
        ),
        (vec!["scan", "--resume", "99"], "there is no scan 99 in"),
        (vec!["results", "show", "99"], "there is no scan 99 in"),
        (
            vec!["scan", "--resume", "1", "--no-db"],
            "cannot be used with",
        ),
    ] {
        let out = wscan_db(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    // Standard input cannot be read twice.
    let mut cmd = wscan();
    cmd.arg("--db")
        .arg(&db)
        .args(["scan", "-i", "-", "-p", &port, "--plugins", "port", "-q"]);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    child.wait().unwrap();
    // Marked as cut short by hand, as a crash would leave it.
    let conn = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE scans SET status='interrupted' WHERE id=2\"); c.commit()",
        ])
        .arg(&db)
        .status()
        .unwrap();
    assert!(conn.success());
    let out = wscan_db(&["scan", "--resume", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("standard input, which cannot be read again"));

    // A file that is not a database.
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "x".repeat(4096)).unwrap();
    let mut cmd = wscan();
    cmd.arg("--db")
        .arg(&junk)
        .args(["scan", "127.0.0.1", "-p", &port]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot open the result store"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--no-db"), "{}", stderr(&out));
}

/// `wscan --db DB ARGS`, run to the end.
fn with_db(db: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = wscan();
    cmd.arg("--db").arg(db).args(args);
    run(cmd, Duration::from_secs(60))
}

#[test]
fn two_scans_creating_a_new_store_at_once_both_succeed() {
    let port = closed_port().to_string();
    for trial in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new").join("results.db");
        let children: Vec<_> = (0..4)
            .map(|_| {
                let mut cmd = wscan();
                cmd.arg("--db").arg(&db);
                cmd.args(["scan", "127.0.0.1", "-p", &port, "--plugins", "port", "-q"]);
                cmd.stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "trial {trial}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = with_db(&db, &["results", "list", "--format", "jsonl"]);
        assert_eq!(records(&out).len(), 4, "trial {trial}");
    }
}

#[test]
fn a_read_only_store_can_be_listed_and_shown() {
    let open = Listener::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let out = with_db(
        &db,
        &[
            "scan",
            "127.0.0.1",
            "-p",
            &open.port().to_string(),
            "--plugins",
            "port",
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The folder mounted read-only, in a mount namespace of the command's
    // own: nothing there can be created or written, even by root.
    let read_only = |args: &str| {
        let script = format!(
            "mount --bind {d} {d} && mount -o remount,bind,ro {d} && exec {wscan} --db {d}/results.db {args}",
            d = dir.path().display(),
            wscan = env!("CARGO_BIN_EXE_wscan"),
        );
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "sh", "-c", &script]);
        cmd.env("XDG_DATA_HOME", data_home());
        run(cmd, Duration::from_secs(60))
    };
    let out = read_only("results list --format jsonl");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let scans = records(&out);
    assert_eq!(scans.len(), 1, "{scans:?}");
    assert_eq!(scans[0]["status"], "completed");
    let out = read_only("results show 1 --format jsonl");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(findings(&records(&out), "open-port").len(), 1);
    // The check is real: writing there fails.
    let out = read_only(&format!("scan 127.0.0.1 -p {} -q", open.port()));
    assert_ne!(
        out.status.code(),
        Some(0),
        "a scan wrote to a read-only store"
    );
}

#[test]
fn a_killed_scan_not_yet_reaped_is_not_running() {
    // A port that accepts and never speaks, with a long banner wait: the
    // first run is still at it when it is killed.
    let tarpit = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tarpit.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("results.db");
    let mut cmd = wscan();
    cmd.arg("--db").arg(&db);
    cmd.args(["scan", "127.0.0.1", "-p", &port, "--plugins", "port", "-q"]);
    cmd.args(["--plugin-arg", "port.banner-timeout=60s"]);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let out = with_db(&db, &["results", "list", "--format", "jsonl"]);
        if records(&out)
            .first()
            .is_some_and(|s| s["status"] == "running")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the scan never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL, and no wait: the process is a zombie until reaped.
    child.kill().unwrap();
    let stat = format!("/proc/{}/stat", child.id());
    while !std::fs::read_to_string(&stat)
        .unwrap()
        .rsplit(')')
        .next()
        .unwrap()
        .trim_start()
        .starts_with('Z')
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = with_db(&db, &["results", "list", "--format", "jsonl"]);
    assert_eq!(records(&out)[0]["status"], "interrupted");
    drop(tarpit);
    let out = with_db(&db, &["scan", "--resume", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("resuming scan 1"), "{}", stderr(&out));
    child.wait().unwrap();
}
