//! Distributed scans through real Redis and real workers: a coordinator
//! (`wscan scan --redis`) and `wscan worker` processes, all inside a
//! private network namespace with the listeners they scan and a
//! `redis-server` the test starts there (no persistence, its own folder).

use crate::namespace::Netns;
use crate::resume::{census, read_jsonl};
use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An SSH-like banner on 22 and a web page on 80 at every 64th address of
/// 127.0.0.0/20, from 127.0.0.5 on: 64 servers.
const SERVERS: &str = r#"
import socket, threading, time
BODY = b'<html><head><title>cluster test</title></head></html>'
def handle(c, kind):
    try:
        if kind == 'ssh':
            c.sendall(b'SSH-2.0-wscan-cluster\r\n')
            time.sleep(0.3)
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
for n in range(5, 4096, 64):
    for port, kind in ((22, 'ssh'), (80, 'http')):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.%d.%d' % (n >> 8, n & 255), port))
        s.listen(4096)
        threading.Thread(target=serve, args=(s, kind), daemon=True).start()
print('ready', flush=True)
time.sleep(900)
"#;

/// Where the lab's Redis listens, inside the namespace.
const REDIS: &str = "redis://127.0.0.1:6379";

/// A namespace with the servers, a Redis, and the processes started.
struct Lab {
    ns: Netns,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let ns = Netns::create(tag);
        let servers = ns.python(SERVERS);
        let mut lab = Lab {
            ns,
            children: vec![servers],
            dir: tempfile::tempdir().unwrap(),
        };
        lab.redis(6379, &[]);
        lab
    }

    /// Start a redis-server on `port` (no persistence, the lab's folder)
    /// with `extra` settings, and wait until it answers.
    fn redis(&mut self, port: u16, extra: &[&str]) {
        let child = start_redis(&self.ns, self.dir.path(), port, extra);
        self.children.push(child);
    }

    /// `redis-cli` on the lab's Redis: its answer.
    fn redis_cli(&self, args: &[&str]) -> String {
        let out = self.ns.exec("redis-cli").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `wscan [args]` in the namespace, with the lab's store.
    fn wscan(&self, args: &[&str]) -> Command {
        let mut cmd = self.ns.wscan();
        cmd.arg("--db").arg(self.dir.path().join("results.db"));
        cmd.args(args);
        cmd
    }

    /// Start a worker named `name` (see [`start_worker`]); its index in
    /// `children` is returned.
    fn worker(&mut self, name: &str, extra: &[&str]) -> usize {
        let child = start_worker(&self.ns, self.dir.path(), name, REDIS, extra);
        self.children.push(child);
        self.children.len() - 1
    }

    /// What the lab's scan finds run locally, in one process: what every
    /// distributed run of it must find.
    fn reference(&self) -> std::collections::BTreeMap<String, usize> {
        let whole = self.path("whole.jsonl");
        let mut local = self.wscan(&["scan"]);
        local.args(SCAN).arg("-o").arg(&whole);
        let out = run(local, Duration::from_secs(180));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        census(&read_jsonl(&whole))
    }

    /// How many units the item `worker` holds (its first pending entry)
    /// has sent so far: 0 when it holds none.
    fn sent_of_held(&self, worker: &str) -> usize {
        let pending = self.redis_cli(&["XPENDING", "wscan:work", "workers", "-", "+", "1", worker]);
        let Some(id) = pending.lines().next().filter(|id| !id.is_empty()) else {
            return 0;
        };
        let entry = self.redis_cli(&["XRANGE", "wscan:work", id, id]);
        let Some(item) = entry
            .lines()
            .find_map(|line| serde_json::from_str::<Value>(line).ok())
        else {
            return 0;
        };
        let key = format!(
            "wscan:scan:{}:units:{}",
            item["scan"].as_str().unwrap_or_default(),
            item["item"]
        );
        self.redis_cli(&["HLEN", &key]).parse().unwrap_or(0)
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

/// Start a redis-server in `ns` on `port` (no persistence, a folder of
/// `dir`) with `extra` settings, and wait until it answers.
fn start_redis(ns: &Netns, dir: &Path, port: u16, extra: &[&str]) -> Child {
    start_redis_with(&|program| ns.exec(program), dir, port, extra)
}

/// Start a redis-server on a free port of the machine's own loopback (no
/// persistence, a folder of `dir`): for tests that scan nothing but
/// listeners of their own there. The server and its port.
pub(crate) fn redis_on_loopback(dir: &Path) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (
        start_redis_with(&|program| Command::new(program), dir, port, &[]),
        port,
    )
}

/// [`start_redis`], each program run by `exec`.
fn start_redis_with(
    exec: &dyn Fn(&str) -> Command,
    dir: &Path,
    port: u16,
    extra: &[&str],
) -> Child {
    let dir = dir.join(format!("redis-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = exec("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(&dir)
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian: apt-get install redis-server)");
    let until = Instant::now() + Duration::from_secs(10);
    let answers = || {
        let out = exec("redis-cli")
            .args(["-p", &port.to_string(), "PING"])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        out.contains("PONG") || out.contains("NOAUTH")
    };
    while !answers() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    if answers() {
        child
    } else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start");
    }
}

/// Start `wscan worker --redis URL` named `name` in `ns`, with a cache
/// (compiled and fetched plugins) of its own, as on a machine of its own;
/// its standard error goes to `dir/NAME.log`.
fn start_worker(ns: &Netns, dir: &Path, name: &str, url: &str, extra: &[&str]) -> Child {
    let cache = dir.join(format!("cache-{name}"));
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    ns.wscan()
        .arg("--cache-dir")
        .arg(&cache)
        .args(["worker", "--redis", url, "--name", name, "--lease", "3s"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The scan of the lab, as flags after `wscan scan`.
const SCAN: &[&str] = &[
    "127.0.0.0/20",
    "-p",
    "22,80",
    "--plugins",
    "port,http",
    "--plugin-arg",
    "port.banner-timeout=300ms",
    "--seed",
    "11",
    "--format",
    "jsonl",
];

fn stored(lab: &Lab, scan: i64) -> Vec<Value> {
    let out = run(
        lab.wscan(&["results", "show", &scan.to_string(), "--format", "jsonl"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    records(&out)
}

fn last_scan(lab: &Lab) -> i64 {
    let out = run(
        lab.wscan(&["results", "list", "--format", "jsonl"]),
        Duration::from_secs(60),
    );
    records(&out).last().unwrap()["id"].as_i64().unwrap()
}

#[test]
fn three_workers_find_exactly_what_a_local_scan_finds_though_one_is_killed_and_one_joins_late() {
    let mut lab = Lab::new("cluster");
    let reference = lab.reference();
    let open = reference
        .keys()
        .filter(|k| k.contains("\"open-port\""))
        .count();
    assert_eq!(open, 128, "{reference:#?}");
    assert!(reference.values().all(|&n| n == 1), "{reference:#?}");

    // Two workers first, slowed by a rate cap so the scan lasts a while.
    let slow = ["--rate", "300"];
    let first = lab.worker("w1", &slow);
    lab.worker("w2", &slow);
    let cut = lab.path("cut.jsonl");
    let stats = lab.path("stats.json");
    let mut coordinator = lab.wscan(&["scan"]);
    coordinator
        .args(SCAN)
        .args(["--redis", REDIS, "--item-size", "256", "-o"])
        .arg(&cut)
        .arg("--stats")
        .arg(&stats);
    let coordinator = std::thread::spawn(move || run(coordinator, Duration::from_secs(300)));

    // w1 dies mid-item (SIGKILL, no goodbye), once it has sent some units
    // of the item it holds; w3 joins after.
    let until = Instant::now() + Duration::from_secs(60);
    while lab.sent_of_held("w1") == 0 {
        assert!(
            Instant::now() < until,
            "w1 never sent a unit of an item it held"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = &mut lab.children[first];
    killed.kill().unwrap();
    killed.wait().unwrap();
    lab.worker("w3", &slow);

    let out = coordinator.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\nw1: {}",
        stderr(&out),
        std::fs::read_to_string(lab.log("w1")).unwrap_or_default()
    );
    assert_eq!(
        census(&read_jsonl(&cut)),
        reference,
        "the coordinator's output differs from a local scan's"
    );
    let id = last_scan(&lab);
    assert_eq!(
        census(&stored(&lab, id)),
        reference,
        "the coordinator's store differs from a local scan's"
    );
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let cluster = &stats["cluster"];
    println!("{cluster:#}");
    // 4,096 steps of the walk in items of 256.
    assert_eq!(cluster["items"], 16, "{stats:#}");
    assert_eq!(cluster["dead"], 0, "{stats:#}");
    // The worker that took w1's cut item over ran only the units w1 had
    // not sent: nothing arrived twice.
    assert_eq!(cluster["duplicates"], 0, "{stats:#}");
    let logs: String = ["w2", "w3"]
        .iter()
        .map(|w| std::fs::read_to_string(lab.log(w)).unwrap_or_default())
        .collect();
    assert!(
        logs.contains("an earlier run sent are not run again"),
        "{logs}"
    );
    let done: u64 = cluster["workers"]
        .as_object()
        .unwrap()
        .values()
        .map(|w| w["items"].as_u64().unwrap())
        .sum();
    assert_eq!(done, 16, "{stats:#}");
    assert!(
        cluster["workers"]["w3"]["items"].as_u64().unwrap_or(0) >= 1,
        "the worker that joined late took no item: {stats:#}"
    );
    assert!(
        stderr(&out).contains("16 work item(s) on"),
        "{}",
        stderr(&out)
    );
    // Nothing of the scan is left in Redis but the workers' group.
    assert_eq!(lab.redis_cli(&["XLEN", "wscan:work"]), "0");
    assert_eq!(lab.redis_cli(&["KEYS", "wscan:scan:*"]), "");
}

#[test]
fn an_item_no_worker_can_run_ends_as_a_dead_letter_and_an_error_record() {
    let mut lab = Lab::new("cluster-dead");
    // The coordinator publishes before any worker is there.
    let mut coordinator = lab.wscan(&["scan"]);
    coordinator.args(["127.0.0.0/24", "-p", "22", "--plugins", "port"]);
    coordinator.args(["--seed", "3", "--format", "jsonl", "--redis", REDIS]);
    coordinator.args(["--item-size", "128", "--max-deliveries", "2"]);
    let coordinator = std::thread::spawn(move || run(coordinator, Duration::from_secs(120)));
    let until = Instant::now() + Duration::from_secs(30);
    let key = loop {
        let keys = lab.redis_cli(&["KEYS", "wscan:plugin:*"]);
        if !keys.is_empty() && lab.redis_cli(&["XLEN", "wscan:work"]) == "2" {
            break keys;
        }
        assert!(Instant::now() < until, "the coordinator published nothing");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The plugin's component is gone (expired, deleted): no worker can
    // fetch the digest the items name.
    assert_eq!(lab.redis_cli(&["DEL", &key]), "1");
    lab.worker("w1", &[]);
    let out = coordinator.join().unwrap();
    // Exit 3: the scan ran, but units (here, whole items) failed.
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let printed = records(&out);
    let dead: Vec<&Value> = errors(&printed);
    assert_eq!(dead.len(), 2, "{printed:#?}");
    for record in &dead {
        assert_eq!(record["plugin"]["name"], "cluster", "{record:#}");
        let error = record["error"].as_str().unwrap();
        assert!(error.contains("is in wscan:dead"), "{error}");
        assert!(error.contains("delivered 3 times"), "{error}");
        assert!(error.contains("is not in Redis"), "{error}");
    }
    assert_eq!(lab.redis_cli(&["XLEN", "wscan:dead"]), "2");
    let log = std::fs::read_to_string(lab.log("w1")).unwrap();
    assert!(log.contains("moved to wscan:dead"), "{log}");
}

#[test]
fn an_unreachable_redis_or_a_wrong_password_is_a_clear_error() {
    let mut lab = Lab::new("cluster-bad");
    lab.redis(6380, &["--requirepass", "s3cret"]);
    let scan = |url: &str| {
        let mut cmd = lab.wscan(&["scan", "127.0.0.1", "-p", "22", "--plugins", "port"]);
        cmd.args(["--redis", url]);
        run(cmd, Duration::from_secs(60))
    };
    let out = scan("redis://127.0.0.1:6390");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Redis at redis://127.0.0.1:6390"),
        "{}",
        stderr(&out)
    );
    let out = scan("redis://:wrong@127.0.0.1:6380");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(text.contains("Password authentication failed"), "{text}");
    assert!(!text.contains(":wrong@"), "the password is shown: {text}");
    let out = scan("http://127.0.0.1:6380");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("redis://"), "{}", stderr(&out));

    // A worker that cannot reach Redis says so and stops.
    let mut cmd = lab.ns.wscan();
    cmd.args(["worker", "--redis", "redis://127.0.0.1:6390"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("Redis at"), "{}", stderr(&out));
    // The right password works: a worker joins.
    let mut cmd = lab.ns.wscan();
    cmd.args(["worker", "--redis", "redis://:s3cret@127.0.0.1:6380"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let line = {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        line
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.contains("joined redis://:***@127.0.0.1:6380"),
        "{line}"
    );
    // A walk too large for work items is refused before anything is
    // published.
    let out = run(
        lab.wscan(&["scan", "fd00::/64", "-p", "80", "--redis", REDIS]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("give a larger --item-size"),
        "{}",
        stderr(&out)
    );
    assert_eq!(lab.redis_cli(&["EXISTS", "wscan:work"]), "0");
    // Flags that do not go with --redis.
    let out = run(
        lab.wscan(&["scan", "127.0.0.1", "--dry-run", "--redis", REDIS]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn workers_and_a_coordinator_reach_a_tls_redis_that_asks_for_client_certificates() {
    use crate::tls_server::{Cert, TestCa, client_pem, leaf_pem};
    let mut lab = Lab::new("cluster-tls");
    let file = |name: &str, text: &str| {
        let path = lab.path(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (server, server_key) = leaf_pem(Cert::Valid);
    let (client, client_key) = client_pem("wscan worker");
    let (server, server_key) = (file("redis.pem", &server), file("redis.key", &server_key));
    let (client, client_key) = (file("client.pem", &client), file("client.key", &client_key));
    let ca = TestCa::get().pem_path().display().to_string();
    // Plain on 6381 (the test's own redis-cli), TLS with client
    // certificates on 6382.
    lab.redis(
        6381,
        &[
            "--tls-port",
            "6382",
            "--tls-cert-file",
            &server,
            "--tls-key-file",
            &server_key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "yes",
        ],
    );
    let url = "rediss://127.0.0.1:6382";
    let tls = [
        "--redis-ca",
        &ca,
        "--redis-cert",
        &client,
        "--redis-key",
        &client_key,
    ];
    let scan = [
        "127.0.0.0/24",
        "-p",
        "22",
        "--plugins",
        "port",
        "--seed",
        "5",
        "--format",
        "jsonl",
    ];

    // Without our CA the server's certificate is not trusted; without a
    // client certificate the server hangs up; a CA with a plain URL is a
    // mistake said as such.
    let refused = |extra: &[&str], url: &str| {
        let mut cmd = lab.wscan(&["scan"]);
        cmd.args(scan).args(["--redis", url]).args(extra);
        run(cmd, Duration::from_secs(60))
    };
    let out = refused(&[], url);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Redis at rediss://127.0.0.1:6382"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--redis-ca FILE"), "{}", stderr(&out));
    let out = refused(&["--redis-ca", &ca], url);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--redis-cert FILE"),
        "{}",
        stderr(&out)
    );
    let out = refused(&["--redis-ca", &ca], "redis://127.0.0.1:6381");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("give a rediss:// URL"),
        "{}",
        stderr(&out)
    );
    let out = refused(&["--redis-ca", &ca, "--redis-cert", &client], url);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(lab.redis_cli(&["-p", "6381", "EXISTS", "wscan:work"]), "0");

    // With both, over TLS only, the scan finds what it finds locally.
    let child = start_worker(&lab.ns, lab.dir.path(), "w1", url, &tls);
    lab.children.push(child);
    let mut local = lab.wscan(&["scan"]);
    local.args(scan);
    let local = run(local, Duration::from_secs(60));
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));
    let mut cmd = lab.wscan(&["scan"]);
    cmd.args(scan).args(["--redis", url]).args(tls);
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let found = census(&records(&out));
    assert_eq!(found, census(&records(&local)));
    // An open port and its service at each of the 4 SSH servers.
    assert_eq!(found.len(), 8, "{found:#?}");
    let log = std::fs::read_to_string(lab.log("w1")).unwrap();
    assert!(log.contains("joined rediss://127.0.0.1:6382"), "{log}");
}

#[test]
fn a_redis_restarted_mid_scan_and_a_killed_coordinator_resumed_still_find_exactly_what_a_local_scan_finds()
 {
    let mut lab = Lab::new("cluster-restart");
    let reference = lab.reference();
    let slow = ["--rate", "400"];
    lab.worker("w1", &slow);
    lab.worker("w2", &slow);
    let coordinator = |lab: &Lab, output: &PathBuf| {
        let mut cmd = lab.wscan(&["scan"]);
        cmd.args(SCAN)
            .args(["--redis", REDIS, "--item-size", "256", "-o"])
            .arg(output);
        cmd
    };

    // Redis dies (SIGKILL, nothing saved) and comes back empty: the
    // coordinator publishes what is not done again, and the workers go on.
    let first = lab.path("restarted.jsonl");
    let cmd = coordinator(&lab, &first);
    let scan = std::thread::spawn(move || run(cmd, Duration::from_secs(300)));
    std::thread::sleep(Duration::from_secs(4));
    let redis = &mut lab.children[1];
    redis.kill().unwrap();
    redis.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    lab.redis(6379, &[]);
    let out = scan.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("published again"), "{}", stderr(&out));
    assert_eq!(
        census(&read_jsonl(&first)),
        reference,
        "after a Redis restart"
    );

    // The coordinator is killed mid-scan; `--resume` withdraws what the
    // killed run left in Redis and publishes the items it had not stored.
    let second = lab.path("resumed.jsonl");
    let mut child = coordinator(&lab, &second)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    child.kill().unwrap();
    child.wait().unwrap();
    let id = last_scan(&lab);
    let out = run(
        lab.wscan(&["scan", "--resume", &id.to_string()]),
        Duration::from_secs(300),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        census(&stored(&lab, id)),
        reference,
        "the store after --resume"
    );
    assert_eq!(
        census(&read_jsonl(&second)),
        reference,
        "the -o file after --resume"
    );
    // What a worker still sent for the killed run expires: no key of a
    // scan stays in Redis for good.
    for key in lab.redis_cli(&["KEYS", "wscan:scan:*"]).lines() {
        let ttl: i64 = lab.redis_cli(&["TTL", key]).parse().unwrap();
        assert!(ttl > 0, "{key} never expires");
    }
}

/// Run `ip ARGS`; panics when it fails.
fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip");
    assert!(status.success(), "ip {args:?} failed");
}

/// Join namespaces `a` and `b` with a veth pair, `a` at `a_addr` and `b`
/// at `b_addr` (each ADDRESS/24). Interface names must be unique on the
/// machine while they exist, and at most 15 bytes: `tag` makes them so.
fn veth(a: &Netns, a_addr: &str, b: &Netns, b_addr: &str, tag: &str) {
    let (ea, eb) = (format!("{tag}a"), format!("{tag}b"));
    ip(&["link", "add", &ea, "type", "veth", "peer", "name", &eb]);
    for (ns, dev, addr) in [(a, &ea, a_addr), (b, &eb, b_addr)] {
        ip(&["link", "set", dev, "netns", ns.name()]);
        ip(&["-n", ns.name(), "addr", "add", addr, "dev", dev]);
        ip(&["-n", ns.name(), "link", "set", dev, "up"]);
    }
}

#[test]
fn workers_in_namespaces_of_their_own_reach_the_targets_only_through_their_veth() {
    // Test hosts: every address of 10.250.0.0/20 is local to the targets'
    // namespace, where the servers listen. Each worker's namespace reaches
    // them through a veth of its own, and Redis, in the coordinator's
    // namespace, through another. The coordinator has no route to the
    // targets at all: what is found, the workers found.
    let dir = tempfile::tempdir().unwrap();
    let targets = Netns::create("cl-targets");
    let coordinator = Netns::create("cl-coord");
    ip(&[
        "-n",
        targets.name(),
        "route",
        "add",
        "local",
        "10.250.0.0/20",
        "dev",
        "lo",
    ]);
    let mut children = vec![targets.python(&SERVERS.replace("'127.0.%d.%d'", "'10.250.%d.%d'"))];
    let tag = std::process::id() % 100_000;
    let mut workers = Vec::new();
    for k in 1..=3 {
        let ns = Netns::create(&format!("cl-w{k}"));
        veth(
            &ns,
            &format!("10.249.{k}.2/24"),
            &targets,
            &format!("10.249.{k}.1/24"),
            &format!("wt{tag}{k}"),
        );
        ip(&[
            "-n",
            ns.name(),
            "route",
            "add",
            "10.250.0.0/20",
            "via",
            &format!("10.249.{k}.1"),
        ]);
        veth(
            &ns,
            &format!("10.248.{k}.2/24"),
            &coordinator,
            &format!("10.248.{k}.1/24"),
            &format!("wc{tag}{k}"),
        );
        workers.push(ns);
    }
    children.push(start_redis(
        &coordinator,
        dir.path(),
        6379,
        &[
            "--bind",
            "127.0.0.1 10.248.1.1 10.248.2.1 10.248.3.1",
            "--protected-mode",
            "no",
        ],
    ));
    let scan: Vec<String> = SCAN
        .iter()
        .map(|a| a.replace("127.0.0.0/20", "10.250.0.0/20"))
        .collect();

    // The reference: one local scan, from a worker's namespace.
    let whole = dir.path().join("whole.jsonl");
    let mut local = workers[0].wscan();
    local
        .arg("--db")
        .arg(dir.path().join("local.db"))
        .arg("scan")
        .args(&scan);
    local.arg("-o").arg(&whole);
    let out = run(local, Duration::from_secs(180));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reference = census(&read_jsonl(&whole));
    assert_eq!(
        reference
            .keys()
            .filter(|k| k.contains("\"open-port\""))
            .count(),
        128,
        "{reference:#?}"
    );

    for (k, ns) in workers.iter().enumerate() {
        let url = format!("redis://10.248.{}.1:6379", k + 1);
        children.push(start_worker(
            ns,
            dir.path(),
            &format!("w{}", k + 1),
            &url,
            &[],
        ));
    }
    let cut = dir.path().join("cut.jsonl");
    let stats = dir.path().join("stats.json");
    let mut cmd = coordinator.wscan();
    cmd.arg("--db")
        .arg(dir.path().join("coordinator.db"))
        .arg("scan")
        .args(&scan);
    cmd.args(["--redis", REDIS, "--item-size", "256", "-o"])
        .arg(&cut);
    cmd.arg("--stats").arg(&stats);
    let out = run(cmd, Duration::from_secs(240));
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(census(&read_jsonl(&cut)), reference);
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(stats["cluster"]["items"], 16, "{stats:#}");
    // The coordinator itself connected to nothing: its own counters are
    // the workers' sums, and its namespace has no route to the targets.
    let mut alone = coordinator.wscan();
    alone
        .args(["--db"])
        .arg(dir.path().join("alone.db"))
        .arg("scan")
        .args(&scan);
    let out = run(alone, Duration::from_secs(120));
    assert!(
        findings(&records(&out), "open-port").is_empty(),
        "the coordinator's namespace reaches the targets"
    );
}

#[test]
fn input_lines_are_split_among_workers_and_found_as_a_local_scan_finds_them() {
    let mut lab = Lab::new("cluster-input");
    // Every 4th address of the /20, a comment and a line that is no
    // target: 1,024 targets in chunks of 100 lines.
    let mut text = String::from("# the lab\nnot a target!\n");
    for n in (1..4096).step_by(4) {
        text.push_str(&format!("127.0.{}.{}\n", n >> 8, n & 255));
    }
    let input = lab.path("targets.txt");
    std::fs::write(&input, text).unwrap();
    let flags = |output: &Path| {
        let mut args: Vec<String> = vec!["scan".into(), "-i".into()];
        args.push(input.display().to_string());
        args.extend(SCAN.iter().skip(1).map(|a| a.to_string()));
        args.push("-o".into());
        args.push(output.display().to_string());
        args
    };
    let whole = lab.path("whole.jsonl");
    let mut local = lab.wscan(&[]);
    local.args(flags(&whole));
    let local = run(local, Duration::from_secs(180));
    // Exit 2: a line was not a target (the scan ran all the others).
    assert_eq!(local.status.code(), Some(2), "{}", stderr(&local));
    let reference = census(&read_jsonl(&whole));
    assert_eq!(
        reference
            .keys()
            .filter(|k| k.contains("\"open-port\""))
            .count(),
        128
    );
    lab.worker("w1", &[]);
    lab.worker("w2", &[]);
    let cut = lab.path("cut.jsonl");
    let mut cmd = lab.wscan(&[]);
    cmd.args(flags(&cut))
        .args(["--redis", REDIS, "--item-size", "100"]);
    let out = run(cmd, Duration::from_secs(240));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("11 work item(s) published"),
        "{}",
        stderr(&out)
    );
    assert_eq!(census(&read_jsonl(&cut)), reference);
    // --shard splits a file's lines by position: not with chunks.
    let mut cmd = lab.wscan(&[]);
    cmd.args(flags(&cut))
        .args(["--redis", REDIS, "--shard", "1/2"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("drop --shard"), "{}", stderr(&out));
}

/// An authoritative server for `wscan.test.` on 127.0.0.1:5300 (UDP):
/// `hN.wscan.test` has A 127.0.1.N (TTL 300), `short.wscan.test` A
/// 127.0.2.1 (TTL 2); every query is logged to the file of argv[1] as
/// "NAME TYPE".
const DNS: &str = r#"
import socket, struct, sys
log = open(sys.argv[1], 'a')
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 5300))
print('ready', flush=True)
while True:
    q, peer = s.recvfrom(4096)
    ident, _, qd = struct.unpack('>HHH', q[:6])
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower())
        i += 1 + q[i]
    qtype = struct.unpack('>H', q[i + 1:i + 3])[0]
    question = q[12:i + 5]
    name = '.'.join(labels) + '.'
    log.write('%s %d\n' % (name, qtype)); log.flush()
    answer, rcode = b'', 3
    if labels[1:] == ['wscan', 'test'] and qtype == 1:
        if labels[0] == 'short':
            rcode, ttl, ip = 0, 2, bytes([127, 0, 2, 1])
        elif labels[0][0] == 'h' and labels[0][1:].isdigit():
            rcode, ttl, ip = 0, 300, bytes([127, 0, 1, int(labels[0][1:]) % 256])
        if rcode == 0:
            answer = b'\xc0\x0c' + struct.pack('>HHIH', 1, 1, ttl, 4) + ip
    header = struct.pack('>HHHHHH', ident, 0x8400 | rcode, 1, 1 if answer else 0, 0, 0)
    s.sendto(header + question + answer, peer)
"#;

#[test]
fn workers_share_dns_answers_through_redis_for_their_ttl() {
    let mut lab = Lab::new("cluster-dns");
    let queries = lab.path("dns.log");
    let server = lab
        .ns
        .exec("python3")
        .args(["-c", DNS])
        .arg(&queries)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    lab.children.push(server);
    {
        use std::io::BufRead;
        let child = lab.children.last_mut().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let asked = || {
        std::fs::read_to_string(&queries)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let names = lab.path("names.txt");
    let mut text: String = (0..200).map(|n| format!("h{n}.wscan.test\n")).collect();
    text.push_str("short.wscan.test\n");
    std::fs::write(&names, text).unwrap();
    let names = names.display().to_string();
    let scan = [
        "-i",
        &names,
        "--plugins",
        "dns",
        "--plugin-arg",
        "dns.types=A",
        "--resolver",
        "127.0.0.1:5300",
        "--format",
        "jsonl",
    ];
    // Asked of a local scan, --dns-cache redis is refused.
    let mut cmd = lab.wscan(&["scan"]);
    cmd.args(scan).args(["--dns-cache", "redis"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("give --redis URL too"),
        "{}",
        stderr(&out)
    );

    let mut local = lab.wscan(&["scan"]);
    local.args(scan);
    let local = run(local, Duration::from_secs(60));
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));
    let reference = census(&records(&local));
    assert_eq!(reference.len(), 201, "{reference:#?}");
    assert_eq!(asked(), 201);

    lab.worker("w1", &[]);
    lab.worker("w2", &[]);
    let distributed = |run_no: usize| {
        let stats = lab.path(&format!("stats{run_no}.json"));
        let mut cmd = lab.wscan(&["scan"]);
        cmd.args(scan)
            .args([
                "--dns-cache",
                "redis",
                "--redis",
                REDIS,
                "--item-size",
                "50",
            ])
            .arg("--stats")
            .arg(&stats);
        let out = run(cmd, Duration::from_secs(120));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(census(&records(&out)), reference);
        let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
        assert_eq!(stats["cluster"]["items"], 5, "{stats:#}");
        let h7 = records(&out)
            .into_iter()
            .find(|r| r["title"] == "h7.wscan.test A 127.0.1.7")
            .unwrap_or_else(|| panic!("no h7 record: {}", String::from_utf8_lossy(&out.stdout)));
        (
            stats["net"]["dns_queries"].as_u64().unwrap(),
            stats["net"]["dns_shared_hits"].as_u64().unwrap(),
            h7["data"]["ttl"].as_u64().unwrap(),
        )
    };
    // The first distributed run asks the name server for every name and
    // keeps each answer in Redis for its TTL.
    let (queries, hits, _) = distributed(1);
    assert_eq!((queries, hits), (201, 0));
    assert_eq!(asked(), 402);
    let key = "wscan:dns:127.0.0.1:5300:A:h7.wscan.test.";
    let ttl: u64 = lab.redis_cli(&["TTL", key]).parse().unwrap();
    assert!((290..=300).contains(&ttl), "TTL of {key}: {ttl}");
    assert!(lab.redis_cli(&["GET", key]).contains("127.0.1.7"));
    // A second run, after the 2-second answer expired: only that name is
    // asked again; every other answer comes from Redis, whichever worker
    // kept it.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        lab.redis_cli(&["EXISTS", "wscan:dns:127.0.0.1:5300:A:short.wscan.test."]),
        "0"
    );
    let (queries, hits, ttl) = distributed(2);
    assert_eq!((queries, hits), (1, 200));
    // The TTL an answer from Redis reports is counted down by its time
    // there (3 s and more).
    assert!(ttl <= 297, "h7's TTL after 3 s in Redis: {ttl}");
    assert_eq!(asked(), 403);
}

#[test]
fn a_plugin_swapped_on_the_coordinator_reaches_the_workers_for_the_items_they_take_next() {
    use std::io::BufRead;
    let mut lab = Lab::new("cluster-swap");
    let dir = lab.path("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let install = |plugin: &str| {
        let tmp = dir.join("tick.tmp");
        std::fs::copy(test_plugin(plugin), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("tick.wasm")).unwrap();
    };
    install("tick_v1");
    lab.worker("w1", &[]);
    // 64 addresses in items of 8, one unit at a time, 100 ms each: about
    // 0.8 s an item.
    let mut cmd = lab.wscan(&["scan", "127.0.0.0/26", "--plugins", "tick"]);
    cmd.args(["--parallel", "1", "--batch-size", "1", "--format", "jsonl"]);
    cmd.args([
        "--watch",
        "--redis",
        REDIS,
        "--item-size",
        "8",
        "--plugin-dir",
    ]);
    cmd.arg(&dir);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen: Vec<Value> = Vec::new();
    // The first record is version 1's; then version 2 goes in the folder.
    for line in lines.by_ref() {
        seen.push(serde_json::from_str(&line.unwrap()).unwrap());
        if seen.iter().any(|r| r["title"] == "tick 1.0.0") {
            break;
        }
    }
    install("tick_v2");
    for line in lines {
        seen.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("plugin(s) tick changed; published to the workers"),
        "{text}"
    );
    let ticks = findings(&seen, "tick");
    let addresses: std::collections::BTreeSet<&str> = ticks
        .iter()
        .map(|r| r["subject"]["address"].as_str().unwrap())
        .collect();
    assert_eq!((ticks.len(), addresses.len()), (64, 64), "{seen:#?}");
    let version = |v: &str| ticks.iter().filter(|r| r["data"]["version"] == v).count();
    println!(
        "version 1: {}, version 2: {}",
        version("1.0.0"),
        version("2.0.0")
    );
    assert!(version("1.0.0") >= 1, "{seen:#?}");
    // Items taken after the swap ran version 2: at least the last one.
    assert!(version("2.0.0") >= 8, "{seen:#?}");
    // The worker fetched version 2 by its digest.
    assert_eq!(
        lab.redis_cli(&["KEYS", "wscan:plugin:*"]).lines().count(),
        2
    );
}

/// w1 stalls (SIGSTOP) mid-item in a scan of 64 units; w2 starts and
/// takes w1's item over after the 3-second lease; w1 wakes up (SIGCONT)
/// once `wake(lab, entry)` holds, `entry` being the item's stream entry.
/// Every unit must be found exactly once. The two workers' logs.
fn stall_and_wake(name: &str, wake: &dyn Fn(&Lab, &str) -> bool) -> (String, String) {
    use std::io::BufRead;
    let mut lab = Lab::new(name);
    let dir = lab.path("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(test_plugin("tick_v1"), dir.join("tick.wasm")).unwrap();
    let first = lab.worker("w1", &[]);
    // 8 items of 8 units, one at a time, 300 ms each: about 2.4 s an item.
    let mut cmd = lab.wscan(&["scan", "127.0.0.0/26", "--plugins", "tick"]);
    cmd.args(["--parallel", "1", "--batch-size", "1", "--format", "jsonl"]);
    cmd.args(["--plugin-arg", "tick.sleep=300ms", "--redis", REDIS]);
    cmd.args(["--item-size", "8", "--plugin-dir"]).arg(&dir);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen: Vec<Value> = Vec::new();
    seen.push(serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap());
    // w1 has sent a unit, so it holds an item: its entry is the first
    // line of XPENDING's answer.
    let pending = lab.redis_cli(&["XPENDING", "wscan:work", "workers", "-", "+", "10", "w1"]);
    let entry = pending
        .lines()
        .next()
        .expect("w1 holds an item")
        .to_string();
    let pid = lab.children[first].id();
    signal(pid, "-STOP");
    lab.worker("w2", &[]);
    let until = Instant::now() + Duration::from_secs(60);
    while !wake(&lab, &entry) {
        assert!(Instant::now() < until, "w1 was never woken up");
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(pid, "-CONT");
    for line in lines {
        seen.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ticks = findings(&seen, "tick");
    let addresses: std::collections::BTreeSet<&str> = ticks
        .iter()
        .map(|r| r["subject"]["address"].as_str().unwrap())
        .collect();
    assert_eq!((ticks.len(), addresses.len()), (64, 64), "{seen:#?}");
    let log = |name| std::fs::read_to_string(lab.log(name)).unwrap();
    (log("w1"), log("w2"))
}

#[test]
fn a_stalled_worker_lets_go_of_the_item_another_took_over() {
    // w1 wakes up as soon as w2 holds its item: its heartbeat finds the
    // item is w2's and lets go of it (it used to claim it back, and both
    // ran it).
    let (w1, w2) = stall_and_wake("cluster-stall", &|lab, _| {
        lab.redis_cli(&["XPENDING", "wscan:work", "workers", "-", "+", "10", "w1"])
            .is_empty()
    });
    assert!(w1.contains("was taken over by another worker"), "{w1}");
    // w2 ran only what w1 had not sent of that item.
    assert!(w2.contains("an earlier run sent are not run again"), "{w2}");
}

#[test]
fn a_stalled_worker_lets_go_of_the_item_another_finished() {
    // w1 wakes up only once w2 has finished its item and acknowledged it:
    // the entry is no longer pending at all. w1 lets go of it (it used to
    // run the rest of the item again).
    let (w1, _) = stall_and_wake("cluster-stall-done", &|lab, entry| {
        !lab.redis_cli(&["XPENDING", "wscan:work", "workers", "-", "+", "100"])
            .lines()
            .any(|line| line == entry)
    });
    assert!(w1.contains("is no longer pending"), "{w1}");
    assert!(!w1.contains("was taken over by another worker"), "{w1}");
}
