//! Plugins written in Python: built with componentize-py (PyPI, pinned in
//! tests/run) against wit/, and run by the host exactly as Rust ones.

use crate::dns_server::DnsServer;
use crate::http_server::{HttpServer, TITLE};
use crate::support::*;
use crate::tls_server::{Cert, TestCa, TlsServer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Build the Python plugin in `folder` (its `app.py`, with `sdk` on the
/// path when the folder does not carry the SDK itself) into `wasm`, with
/// the command docs/plugins-python.md gives.
fn componentize(folder: &Path, sdk: Option<&Path>, wasm: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let wit = match folder.join("wit").is_dir() {
        true => folder.join("wit"),
        false => repo.join("wit"),
    };
    let mut build = Command::new("componentize-py");
    build.current_dir(folder).arg("-d").arg(wit).args([
        "-w",
        "wscan:plugin/plugin",
        "componentize",
    ]);
    if let Some(sdk) = sdk {
        build.arg("-p").arg(sdk);
    }
    build.args(["-p", ".", "app", "-o"]).arg(wasm);
    let out = build.output().unwrap_or_else(|e| {
        panic!(
            "cannot run componentize-py ({e}): pip install componentize-py==0.25.1 (tests/run does)"
        )
    });
    assert!(
        out.status.success(),
        "componentize-py failed on {}:\n{}",
        folder.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tests/plugins-python/NAME/app.py`, on the Python SDK
/// (`plugin-sdk/python`), built once per test run (a build takes seconds):
/// the component's path.
fn python_plugin(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(wasm) = built.get(name) {
        return wasm.clone();
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-plugins");
    // Built from a copy of the plugin's folder, as a user's would be.
    let src = out.join(format!("{name}-src"));
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(
        repo.join("tests/plugins-python").join(name).join("app.py"),
        src.join("app.py"),
    )
    .unwrap();
    let wasm = out.join(format!("{name}.wasm"));
    componentize(&src, Some(&repo.join("plugin-sdk/python")), &wasm);
    built.insert(name.to_string(), wasm.clone());
    wasm
}

/// One compile cache for every Python test: each component is compiled to
/// machine code once (seconds), as a user's second start would find it.
fn python_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-cache")
}

/// `wscan` with the Python tests' compile cache.
fn pywscan() -> Command {
    let mut cmd = wscan();
    cmd.arg("--cache-dir").arg(python_cache());
    cmd
}

#[test]
fn a_python_plugin_builds_loads_and_finds_as_a_rust_one_does() {
    let wasm = python_plugin("banner");
    let cache = tempfile::tempdir().unwrap();
    let cache = cache.path();

    // Loaded and described as any component.
    let mut cmd = wscan();
    cmd.arg("--cache-dir")
        .arg(cache)
        .args(["plugin", "check"])
        .arg(&wasm);
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let info: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(info["name"], "py-banner");
    assert_eq!(info["capabilities"], serde_json::json!(["tcp"]));

    // In a scan: the port plugin finds the service, the Python plugin
    // reads its banner through the host.
    let ssh = Listener::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let mut cmd = wscan();
    cmd.arg("--cache-dir")
        .arg(cache)
        .args(["scan", "127.0.0.1", "-p", &ssh.port().to_string()])
        .args(["--format", "jsonl", "--plugin-arg", "port.banner=false"])
        .arg("--plugin")
        .arg(&wasm);
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = records(&out);
    let found = findings(&printed, "banner");
    assert_eq!(found.len(), 1, "{printed:#?}");
    assert_eq!(found[0]["plugin"]["name"], "py-banner");
    assert_eq!(found[0]["data"]["banner"], "SSH-2.0-OpenSSH_9.6");

    // A refused connect is that unit's error record, as for Rust.
    let mut cmd = wscan();
    cmd.arg("--cache-dir")
        .arg(cache)
        .args(["plugin", "run"])
        .arg(&wasm)
        .args(["--subject", &format!("127.0.0.1:{}", closed_port())])
        .args(["--format", "jsonl"]);
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let printed = records(&out);
    let error = errors(&printed)[0]["error"].as_str().unwrap().to_string();
    // In the Rust SDK's words, not Python's repr of the error code.
    assert!(error.ends_with(": connection refused"), "{error}");
}

#[test]
fn a_python_plugin_keeps_a_hundred_connects_in_flight_from_one_call() {
    let wasm = python_plugin("fanout");
    // A listener that never accepts, its queue already full: every connect
    // the plugin starts stays in flight until it times out.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let _queued = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap();

    let mut cmd = pywscan();
    cmd.args(["plugin", "run"]).arg(&wasm).args([
        "--subject",
        &addr.to_string(),
        "--format",
        "jsonl",
    ]);
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = records(&out);
    let found = findings(&printed, "fanout");
    assert_eq!(found.len(), 1, "{printed:#?}");
    assert_eq!(found[0]["title"], "100 of 100 timed out");
    // The host had them all at once: `plugin run`'s statistics line says
    // "peak N in flight".
    let stderr = stderr(&out);
    let peak: usize = stderr
        .split("peak ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak in flight in {stderr}"));
    assert_eq!(peak, 100, "{stderr}");
}

/// An HTTP reply of its own: not the test site's page, so the two plugins
/// are compared on more than one title.
const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 64\r\n\
Connection: close\r\n\r\n<html><head><title>Gone  &amp; away</title></head></html>\n\n\n\n\n\n";

#[test]
fn a_python_http_title_plugin_finds_what_the_built_in_http_plugin_finds() {
    let sites = [HttpServer::start(), HttpServer::start()];
    let gone = Listener::start(Behaviour::Reply(NOT_FOUND));
    let mut ports: Vec<u16> = sites.iter().map(HttpServer::port).collect();
    ports.push(gone.port());
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut cmd = pywscan();
    cmd.args(["scan", "127.0.0.1", "-p", &list.join(",")])
        .args(["--plugins", "port,http,py-http-title", "--format", "jsonl"])
        .arg("--plugin")
        .arg(python_plugin("http-title"));
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = records(&out);
    assert!(errors(&printed).is_empty(), "{printed:#?}");
    // Each plugin's (port, URL, status, title, server), sorted by port.
    let seen = |kind: &str| -> Vec<(u64, Value, Value, Value, Value)> {
        let mut seen: Vec<_> = findings(&printed, kind)
            .iter()
            .map(|f| {
                let d = &f["data"];
                (
                    f["subject"]["port"].as_u64().unwrap(),
                    d["url"].clone(),
                    d["status"].clone(),
                    d["title"].clone(),
                    d["server"].clone(),
                )
            })
            .collect();
        seen.sort_by_key(|s| s.0);
        seen
    };
    let rust = seen("http-response");
    assert_eq!(rust.len(), 3, "{printed:#?}");
    assert_eq!(seen("http-title"), rust);
    // And both read what the servers say.
    let gone_page = rust.iter().find(|s| s.0 == u64::from(gone.port())).unwrap();
    assert_eq!(gone_page.2, 404);
    assert_eq!(gone_page.3, "Gone & away");
    let site = rust.iter().find(|s| s.0 == u64::from(ports[0])).unwrap();
    assert_eq!(site.3, TITLE);
}

/// A Redis server's `INFO server` reply.
const REDIS_INFO: &[u8] =
    b"$71\r\n# Server\r\nredis_version:7.2.4\r\nredis_mode:standalone\r\nos:Linux 6.1.0 x86_64\r\n\r\n";

#[test]
fn a_python_tcp_exchange_plugin_reports_the_fields_it_is_asked_for() {
    let redis = Listener::start(Behaviour::Reply(REDIS_INFO));
    let ask = |extra: &[&str]| {
        let mut cmd = pywscan();
        cmd.args(["plugin", "run"])
            .arg(python_plugin("redis-info"))
            .args(["--subject", &format!("127.0.0.1:{}", redis.port())])
            .args(["--format", "jsonl"])
            .args(extra);
        let out = run(cmd, Duration::from_secs(120));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let printed = records(&out);
        let found = findings(&printed, "redis-info");
        assert_eq!(found.len(), 1, "{printed:#?}");
        found[0]["data"].clone()
    };
    assert_eq!(
        ask(&[]),
        serde_json::json!({"redis_version": "7.2.4", "redis_mode": "standalone", "os": "Linux 6.1.0 x86_64"})
    );
    // A text-list argument, parsed by the host.
    assert_eq!(
        ask(&["--plugin-arg", "py-redis-info.keys=os,,redis_mode"]),
        serde_json::json!({"redis_mode": "standalone", "os": "Linux 6.1.0 x86_64"})
    );
}

#[test]
fn the_python_sdk_looks_up_records_and_reads_certificates_with_typed_arguments() {
    let dns = DnsServer::start();
    let valid = TlsServer::start(Cert::Valid);
    let expired = TlsServer::start(Cert::Expired);
    let ca = TestCa::get().pem_path().to_str().unwrap().to_string();
    let scan = |extra: &[&str]| {
        let mut cmd = pywscan();
        cmd.args([
            "scan",
            "www.wscan.test",
            "--resolver",
            &dns.addr().to_string(),
        ])
        .args(["-p", &format!("{},{}", valid.port(), expired.port())])
        .args([
            "--plugins",
            "dns,port,py-kit",
            "--format",
            "jsonl",
            "--ca-file",
            &ca,
        ])
        .arg("--plugin")
        .arg(python_plugin("kit"))
        .args(extra);
        run(cmd, Duration::from_secs(120))
    };
    let out = scan(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = records(&out);
    assert!(errors(&printed).is_empty(), "{printed:#?}");

    // Four lookups at once, in the zone-file form; a name outside the
    // scope refused in the Rust SDK's words.
    let names = findings(&printed, "py-records");
    assert_eq!(names.len(), 1, "{printed:#?}");
    assert_eq!(
        names[0]["data"],
        serde_json::json!({
            "A": ["127.0.0.1"], "AAAA": ["::1"], "MX": [], "TXT": [],
            "outside": "AccessDenied: access denied: example.com is outside the scan's scope",
            "sleep": "asyncio timers (asyncio.sleep, asyncio.wait_for, asyncio.timeout) do not run \
                      in a wscan plugin: give the host operation a timeout_ms instead",
        })
    );
    // Each certificate judged: the valid one through its name, trusted.
    let cert = |port: u16| {
        let found: Vec<_> = findings(&printed, "py-certificate")
            .into_iter()
            .filter(|f| f["subject"]["port"] == port)
            .collect();
        assert_eq!(found.len(), 1, "{printed:#?}");
        found[0].clone()
    };
    let good = cert(valid.port());
    assert_eq!(good["severity"], "info", "{good:#}");
    assert_eq!(good["data"]["problems"], serde_json::json!([]));
    assert!(
        good["data"]["sans"]
            .as_array()
            .unwrap()
            .contains(&"www.wscan.test".into())
    );
    let old = cert(expired.port());
    assert_eq!(old["severity"], "high");
    assert_eq!(old["data"]["problems"], serde_json::json!(["expired"]));
    assert!(old["data"]["days_left"].as_i64().unwrap() < 0);

    // Typed arguments: a choice list narrows the lookups; an integer past
    // its range is refused before anything is sent, naming the range.
    let out = scan(&[
        "--plugin-arg",
        "py-kit.types=mx",
        "--plugin-arg",
        "py-kit.warn-days=365",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = records(&out);
    let names = findings(&printed, "py-records");
    assert_eq!(names[0]["data"]["MX"], serde_json::json!([]));
    assert!(names[0]["data"].get("A").is_none(), "{printed:#?}");
    // 364 days left (of 365) is within a warning of 365 days.
    let good: Vec<_> = findings(&printed, "py-certificate")
        .into_iter()
        .filter(|f| f["subject"]["port"] == valid.port())
        .collect();
    assert_eq!(good[0]["severity"], "medium", "{printed:#?}");
    let out = scan(&["--plugin-arg", "py-kit.warn-days=0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("warn-days"), "{}", stderr(&out));
    assert!(records(&out).is_empty());
}

#[test]
fn a_python_plugin_that_raises_loops_or_hoards_memory_costs_the_other_subjects_nothing() {
    // As `plugins::poison_in_a_batch_costs_the_other_subjects_nothing`, in
    // Python: one instance at a time, so the 32 addresses are one batch.
    // .13 raises (its own error, nobody else's), .14 loops until the
    // deadline and .15 allocates until the memory limit: the batch ends,
    // and its unfinished subjects run again alone.
    let mut cmd = pywscan();
    cmd.args(["scan", "127.0.0.0/27", "-p", "1", "--plugins", "py-hostile"])
        .args([
            "--parallel",
            "1",
            "--plugin-timeout",
            "2s",
            "--plugin-memory",
            "128M",
        ])
        .args(["--format", "jsonl", "--plugin"])
        .arg(python_plugin("hostile"));
    let out = run(cmd, Duration::from_secs(180));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let error = crate::plugins::poisoned_batch(&records(&out));
    assert!(
        error[0].ends_with("ValueError: poison: raised on 127.0.0.13"),
        "{}",
        error[0]
    );
    assert_eq!(error[1], "plugin stopped after exceeding its 2s deadline");
    // A trap at the limit, before Python could catch a MemoryError.
    assert!(
        error[2].starts_with("plugin trapped: plugin memory limit reached"),
        "{}",
        error[2]
    );
    assert!(
        error[2].contains("over the 128 MiB allowed"),
        "{}",
        error[2]
    );
}

/// Run py-hostile in `mode` on an open port: what its forbidden call got
/// is its finding's title, and must be `access denied: {why}`; the port
/// plugin's finding survives and the scan says `says`.
fn python_refused(mode: &str, why: &str, says: &str) {
    let open = Listener::start(Behaviour::Silent);
    let mut cmd = pywscan();
    cmd.args(["scan", "127.0.0.1", "-p", &open.port().to_string()])
        .args(["--plugins", "port,py-hostile", "--format", "jsonl"])
        .args(["--plugin-arg", "port.banner=false"])
        .args(["--plugin-arg", &format!("py-hostile.mode={mode}")])
        .arg("--plugin")
        .arg(python_plugin("hostile"));
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = records(&out);
    assert_eq!(findings(&printed, "open-port").len(), 1, "{printed:#?}");
    let refused = findings(&printed, mode);
    assert_eq!(refused.len(), 1, "{printed:#?}");
    assert_eq!(refused[0]["title"], format!("access denied: {why}"));
    assert!(stderr(&out).contains(says), "{}", stderr(&out));
}

#[test]
fn a_python_plugin_is_refused_outside_its_scope_and_its_capabilities() {
    python_refused(
        "outside",
        "127.0.0.2 is outside the scan's scope",
        "1 out-of-scope operation(s) denied",
    );
    python_refused(
        "undeclared",
        "the plugin did not declare the dns capability (declare it in describe(): \
         .capability(Capability::Dns) in Rust, Capability.DNS in Python)",
        "capability it did not declare",
    );
}

#[test]
fn every_python_template_builds_as_its_readme_says_and_finds_what_the_rust_one_finds() {
    let dir = tempfile::tempdir().unwrap();
    let new = |name: &str, template: &str| -> PathBuf {
        let folder = dir.path().join(name);
        let mut cmd = wscan();
        cmd.args([
            "plugin",
            "new",
            name,
            "--lang",
            "python",
            "--template",
            template,
        ])
        .arg("--path")
        .arg(&folder);
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        for file in [
            "app.py",
            "README.md",
            ".gitignore",
            "wscan_sdk/__init__.py",
            "wit/world.wit",
            "wit/deps/io/io.wit",
        ] {
            assert!(folder.join(file).is_file(), "{template}: {file} missing");
        }
        // Built with the command its README gives, from its own SDK and
        // WIT: nothing of this checkout on the path.
        let readme = std::fs::read_to_string(folder.join("README.md")).unwrap();
        let command = format!(
            "componentize-py -d wit -w wscan:plugin/plugin componentize -p . app -o {name}.wasm"
        );
        assert!(readme.contains(&command), "{readme}");
        let wasm = folder.join(format!("{name}.wasm"));
        componentize(&folder, None, &wasm);
        wasm
    };
    let live = |wasm: &Path, subject: &str, extra: &[&str]| {
        let mut cmd = pywscan();
        cmd.args(["plugin", "run"])
            .arg(wasm)
            .args(["--subject", subject, "--format", "jsonl"])
            .args(extra);
        let out = run(cmd, Duration::from_secs(120));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        crate::plugin_commands::finding_records(&out)
    };
    // The recordings the Rust templates' test replays: a Python template
    // makes the same calls and finds the same.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/recordings");
    let replay = |wasm: &Path, tape: &str| {
        let mut cmd = pywscan();
        cmd.args(["plugin", "run"])
            .arg(wasm)
            .args(["--format", "jsonl", "--replay"])
            .arg(shipped.join(tape));
        let out = run(cmd, Duration::from_secs(120));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        crate::plugin_commands::finding_records(&out)
    };

    let banner = new("ssh-banner", "tcp-banner");
    // The guide's walk-through shows exactly this file.
    let guide = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugins-python.md"),
    )
    .unwrap();
    let app = std::fs::read_to_string(dir.path().join("ssh-banner/app.py")).unwrap();
    assert!(
        guide.contains(&format!("```python\n{app}```")),
        "docs/plugins-python.md shows another app.py"
    );
    let ssh = Listener::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let found = live(&banner, &format!("127.0.0.1:{}", ssh.port()), &[]);
    assert_eq!(found[0]["data"]["banner"], "SSH-2.0-OpenSSH_9.6");
    let found = replay(&banner, "tcp-banner.jsonl");
    assert_eq!(found[0]["title"], "port 2222 says \"SSH-2.0-OpenSSH_9.6\"");

    let exchange = new("redis-info", "tcp-exchange");
    let redis = Listener::start(Behaviour::Reply(REDIS_INFO));
    let found = live(&exchange, &format!("127.0.0.1:{}", redis.port()), &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["data"]["os"], "Linux 6.1.0 x86_64");
    let found = replay(&exchange, "tcp-exchange.jsonl");
    assert_eq!(found[0]["title"], "redis_version 7.2.4 on port 6379");

    let paths = new("admin-paths", "http-paths");
    let site = HttpServer::start();
    let found = live(
        &paths,
        &format!("127.0.0.1:{}", site.port()),
        &["--plugin-arg", "admin-paths.paths=/,/favicon.ico,/nope"],
    );
    let served: Vec<&str> = found
        .iter()
        .map(|f| f["data"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(served, ["/", "/favicon.ico"], "{found:#?}");
    let found = replay(&paths, "http-paths.jsonl");
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0]["title"],
        "http://127.0.0.1:8080/admin/ is served (14 bytes)"
    );

    let expiry = new("cert-expiry", "tls-check");
    let tls = TlsServer::start(Cert::ExpiringSoon);
    let found = live(&expiry, &format!("127.0.0.1:{}", tls.port()), &[]);
    assert_eq!(found[0]["severity"], "medium", "{found:#?}");
    let days = found[0]["data"]["days_left"].as_i64().unwrap();
    assert!((8..=10).contains(&days), "{days}");
    let found = replay(&expiry, "tls-check.jsonl");
    assert_eq!(found[0]["severity"], "high");

    let records_plugin = new("mail-records", "dns-records");
    let dns = DnsServer::start();
    let found = live(
        &records_plugin,
        "wscan.test",
        &["--resolver", &dns.addr().to_string()],
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["data"]["mx"][0], "10 mail.wscan.test.");
    assert_eq!(found[0]["data"]["txt"][0], "\"v=spf1 -all\"");
    let found = replay(&records_plugin, "dns-records.jsonl");
    let kinds: Vec<&str> = found.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["dns-records", "missing-spf"], "{found:#?}");

    // `plugin dev` on a Python folder: built and run on start, rebuilt and
    // rerun when app.py is saved.
    let folder = dir.path().join("ssh-banner");
    let mut cmd = pywscan();
    cmd.args(["plugin", "dev"])
        .arg(&folder)
        .args(["--format", "jsonl", "--replay"])
        .arg(shipped.join("tcp-banner.jsonl"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut dev = cmd.spawn().unwrap();
    let lines = stdout_lines(&mut dev);
    let next_title = || next_title(&lines, Duration::from_secs(300));
    assert_eq!(next_title(), "port 2222 says \"SSH-2.0-OpenSSH_9.6\"");
    assert!(folder.join(".dev/plugin.wasm").is_file());
    std::fs::write(
        folder.join("app.py"),
        app.replace("says {json", "said {json"),
    )
    .unwrap();
    let rerun = next_title();
    let _ = dev.kill();
    let _ = dev.wait();
    assert_eq!(rerun, "port 2222 said \"SSH-2.0-OpenSSH_9.6\"");
    // The user's own build was left alone.
    assert!(banner.is_file());
}
