//! The plugin folder, the compile cache, and `wscan plugin info|check|new`.

use crate::dns_server::DnsServer;
use crate::http_server::HttpServer;
use crate::support::*;
use crate::tls_server::{Cert, TlsServer};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[test]
fn plugin_folder_plugins_load_and_take_a_builtins_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(test_plugin("fakeport"), dir.path().join("fakeport.wasm")).unwrap();
    std::fs::copy(test_plugin("greeter"), dir.path().join("greeter.wasm")).unwrap();
    std::fs::write(dir.path().join("broken.wasm"), b"\0asm\x0d\0\x01\0garbage").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not a plugin").unwrap();

    let mut cmd = wscan();
    cmd.args(["plugin", "list", "--format", "jsonl", "--plugin-dir"])
        .arg(dir.path());
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    let listed = records(&out);
    let names: Vec<&str> = listed.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dns", "http", "port", "tls", "greeter"]);
    assert_eq!(listed[2]["version"], "9.9.9");
    assert!(
        listed[2]["source"]
            .as_str()
            .unwrap()
            .ends_with("fakeport.wasm")
    );
    assert_eq!(listed[2]["replaces"], "built-in");
    // The broken file is reported, with its name and the reason, and skipped.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.wasm is not a WebAssembly component"),
        "{stderr}"
    );

    // A scan uses the stand-in, not the built-in.
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        "1",
        "--plugins",
        "port",
        "--format",
        "jsonl",
        "--plugin-dir",
    ])
    .arg(dir.path());
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    let records = records(&out);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["kind"], "fake-port");
    assert_eq!(records[0]["plugin"]["version"], "9.9.9");
}

#[test]
fn a_missing_plugin_folder_named_on_the_command_line_is_an_error() {
    let mut cmd = wscan();
    cmd.args(["plugin", "list", "--plugin-dir", "/nonexistent/plugins"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("the plugin folder /nonexistent/plugins does not exist")
    );
}

#[test]
fn compiled_plugins_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let files = |dir: &std::path::Path| walk(dir).len();
    let mut cmd = wscan();
    cmd.arg("--cache-dir")
        .arg(cache.path())
        .args(["plugin", "list", "--format", "jsonl"]);
    assert_eq!(run(cmd, Duration::from_secs(60)).status.code(), Some(0));
    let after_first = files(cache.path());
    assert!(
        after_first >= 1,
        "nothing cached in {}",
        cache.path().display()
    );
    let mut cmd = wscan();
    cmd.arg("--cache-dir")
        .arg(cache.path())
        .args(["plugin", "list", "--format", "jsonl"]);
    assert_eq!(run(cmd, Duration::from_secs(60)).status.code(), Some(0));
    assert_eq!(
        files(cache.path()),
        after_first,
        "an unchanged plugin was compiled again"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
            out.push(path);
        }
    }
    out
}

#[test]
fn plugin_check_and_info_describe_one_plugin() {
    let mut cmd = wscan();
    cmd.args(["plugin", "check", "--format", "jsonl"])
        .arg(test_plugin("greeter"));
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    let records = records(&out);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["name"], "greeter");
    assert_eq!(records[0]["capabilities"], serde_json::json!(["tcp"]));

    let mut cmd = wscan();
    cmd.args(["plugin", "info", "port", "--format", "table"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("port 0.2.0 (built-in)"), "{text}");
    // The arguments' table: key, type, default, description.
    assert!(
        text.contains("arguments (--plugin-arg port.KEY=VALUE):"),
        "{text}"
    );
    assert!(
        text.contains("banner-timeout  duration 1ms..5m  1500ms   how long to wait for a banner"),
        "{text}"
    );

    let mut cmd = wscan();
    cmd.args(["plugin", "info", "nope"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no plugin is named \"nope\"; loaded: dns, http, port, tls")
    );

    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let mut cmd = wscan();
    cmd.args(["plugin", "check"]).arg(&core);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("core WebAssembly module"));
}

/// The reply of a Redis server to `INFO server`, as the tcp-exchange
/// template expects it.
const REDIS_INFO: &[u8] =
    b"$71\r\n# Server\r\nredis_version:7.2.4\r\nredis_mode:standalone\r\nos:Linux 6.1.0 x86_64\r\n\r\n";

#[test]
fn every_plugin_template_builds_passes_its_tests_and_finds_on_a_live_service() {
    let dir = tempfile::tempdir().unwrap();
    // Where `plugin new` puts the target folder its crates share.
    let cache = dir.path().join("cache");
    let shared = cache.join("wscan/plugin-target");
    let new = |name: &str, template: &str| {
        let crate_dir = dir.path().join(name);
        let mut cmd = wscan();
        cmd.args(["plugin", "new", name, "--template", template, "--path"])
            .arg(&crate_dir)
            .env("XDG_CACHE_HOME", &cache);
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        for file in [
            "Cargo.toml",
            ".cargo/config.toml",
            "rustfmt.toml",
            "src/lib.rs",
            "README.md",
            ".gitignore",
        ] {
            assert!(crate_dir.join(file).is_file(), "{template}: {file} missing");
        }
        // Named for what it is, not after the trait.
        let code = std::fs::read_to_string(crate_dir.join("src/lib.rs")).unwrap();
        assert!(!code.contains("struct Plugin"), "{template}");
        // Built as its README says, into the shared folder; its unit
        // tests pass natively.
        build_plugin(&crate_dir, None, template);
        cargo(&crate_dir, &["test"], template);
        // Written as `cargo fmt` (with the crate's rustfmt.toml) leaves it.
        let rustfmt = Path::new(env!("CARGO")).with_file_name("rustfmt");
        let mut check = Command::new(rustfmt);
        check
            .current_dir(&crate_dir)
            .args(["--edition", "2024", "--check", "src/lib.rs"]);
        let out = run(check, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "{template} is not formatted:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let wasm = shared.join(format!(
            "wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        ));
        assert!(wasm.is_file(), "{template}: no {}", wasm.display());
        wasm
    };
    // Each live run is recorded, and its replay finds the same.
    let recordings = std::cell::Cell::new(0);
    let plugin_run = |wasm: &Path, subject: &str, extra: &[&str]| {
        recordings.set(recordings.get() + 1);
        let tape = dir.path().join(format!("{}.jsonl", recordings.get()));
        let mut cmd = wscan();
        cmd.args(["plugin", "run"])
            .arg(wasm)
            .args(["--subject", subject, "--format", "jsonl", "--record"])
            .arg(&tape)
            .args(extra);
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let live = finding_records(&out);
        assert_eq!(
            replay(wasm, &tape),
            live,
            "the replay of {}",
            wasm.display()
        );
        live
    };

    let banner = new("ssh-banner", "tcp-banner");
    assert!(
        std::fs::read_to_string(dir.path().join("ssh-banner/src/lib.rs"))
            .unwrap()
            .contains("struct SshBanner;")
    );
    let ssh = Listener::start(Behaviour::Banner(b"SSH-2.0-OpenSSH_9.6\r\n"));
    // In a scan, after the port plugin found the service.
    let mut cmd = wscan();
    cmd.args(["scan", "127.0.0.1", "-p", &ssh.port().to_string()])
        .args(["--format", "jsonl", "--plugin-arg", "port.banner=false"])
        .arg("--plugin")
        .arg(&banner);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let scanned = records(&out);
    let found = findings(&scanned, "banner");
    assert_eq!(found.len(), 1, "{scanned:#?}");
    assert_eq!(found[0]["data"]["banner"], "SSH-2.0-OpenSSH_9.6");
    let found = plugin_run(&banner, &format!("127.0.0.1:{}", ssh.port()), &[]);
    assert_eq!(found[0]["data"]["banner"], "SSH-2.0-OpenSSH_9.6");

    let exchange = new("redis-info", "tcp-exchange");
    let redis = Listener::start(Behaviour::Reply(REDIS_INFO));
    let found = plugin_run(&exchange, &format!("127.0.0.1:{}", redis.port()), &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["data"]["redis_version"], "7.2.4");
    assert_eq!(found[0]["data"]["os"], "Linux 6.1.0 x86_64");

    let paths = new("admin-paths", "http-paths");
    let site = HttpServer::start();
    let found = plugin_run(
        &paths,
        &format!("127.0.0.1:{}", site.port()),
        &["--plugin-arg", "admin-paths.paths=/,/favicon.ico,/nope"],
    );
    let served: Vec<&str> = found
        .iter()
        .map(|f| f["data"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(served, ["/", "/favicon.ico"], "{found:#?}");

    let expiry = new("cert-expiry", "tls-check");
    let tls = TlsServer::start(Cert::ExpiringSoon);
    let found = plugin_run(&expiry, &format!("127.0.0.1:{}", tls.port()), &[]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["severity"], "medium");
    let days = found[0]["data"]["days_left"].as_i64().unwrap();
    assert!((8..=10).contains(&days), "{days}");

    let records_plugin = new("mail-records", "dns-records");
    let dns = DnsServer::start();
    let found = plugin_run(
        &records_plugin,
        "wscan.test",
        &["--resolver", &dns.addr().to_string()],
    );
    // wscan.test publishes an SPF policy: one finding, no missing-spf.
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["data"]["mx"][0], "10 mail.wscan.test.");
    assert_eq!(found[0]["data"]["txt"][0], "\"v=spf1 -all\"");

    // The recordings shipped with the tests replay (made with the plugin
    // each template gives, against a listener that is not there now).
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/recordings");
    let found = replay(&banner, &shipped.join("tcp-banner.jsonl"));
    assert_eq!(found[0]["title"], "port 2222 says \"SSH-2.0-OpenSSH_9.6\"");
    let found = replay(&exchange, &shipped.join("tcp-exchange.jsonl"));
    assert_eq!(found[0]["title"], "redis_version 7.2.4 on port 6379");
    // Its --plugin-arg (the paths asked for) is in the recording.
    let found = replay(&paths, &shipped.join("http-paths.jsonl"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0]["title"],
        "http://127.0.0.1:8080/admin/ is served (14 bytes)"
    );
    // A certificate that expired on 2026-01-01, reached through its name.
    let found = replay(&expiry, &shipped.join("tls-check.jsonl"));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["severity"], "high");
    assert!(found[0]["data"]["days_left"].as_i64().unwrap() < 0);
    // A domain that takes mail and publishes no SPF policy.
    let found = replay(&records_plugin, &shipped.join("dns-records.jsonl"));
    let kinds: Vec<&str> = found.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["dns-records", "missing-spf"], "{found:#?}");
    assert_eq!(found[0]["data"]["mx"][0], "10 mx1.example.test.");

    // `plugin dev`: built and run on start, rebuilt and rerun on a save.
    let crate_dir = dir.path().join("ssh-banner");
    let mut cmd = wscan();
    cmd.args(["plugin", "dev"])
        .arg(&crate_dir)
        .args(["--format", "jsonl", "--replay"])
        .arg(shipped.join("tcp-banner.jsonl"))
        .env("XDG_CACHE_HOME", &cache)
        .env_remove("CARGO_TARGET_DIR")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut dev = cmd.spawn().unwrap();
    let lines = stdout_lines(&mut dev);
    let next_title = || next_title(&lines, Duration::from_secs(300));
    assert_eq!(next_title(), "port 2222 says \"SSH-2.0-OpenSSH_9.6\"");
    let lib = crate_dir.join("src/lib.rs");
    let code = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, code.replace("says {line:?}", "said {line:?}")).unwrap();
    let rerun = next_title();
    let _ = dev.kill();
    let _ = dev.wait();
    assert_eq!(rerun, "port 2222 said \"SSH-2.0-OpenSSH_9.6\"");

    // The SDK's replay in `cargo test`: the plugin, built as a component,
    // run by wscan against a recording, no server.
    let redis_dir = dir.path().join("redis-info");
    std::fs::create_dir_all(redis_dir.join("tests")).unwrap();
    std::fs::copy(
        shipped.join("tcp-exchange.jsonl"),
        redis_dir.join("tests/redis.jsonl"),
    )
    .unwrap();
    std::fs::write(
        redis_dir.join("tests/replay.rs"),
        "#[test]\n\
         fn reads_the_version_from_a_recorded_reply() {\n\
         \x20   let findings = wscan_sdk::testing::Replay::new(\"tests/redis.jsonl\").findings().unwrap();\n\
         \x20   assert_eq!(findings[0][\"data\"][\"redis_version\"], \"7.2.4\");\n\
         }\n",
    )
    .unwrap();
    cargo(
        &redis_dir,
        &["test", "--test", "replay"],
        "the SDK's replay",
    );

    // A second scaffold into the same place is refused.
    let mut cmd = wscan();
    cmd.args(["plugin", "new", "ssh-banner", "--path"])
        .arg(dir.path().join("ssh-banner"));
    assert_eq!(run(cmd, Duration::from_secs(60)).status.code(), Some(2));

    // The plugins the README and the guide show build as written, in the
    // same target folder (the SDK is built once).
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    for (doc, name) in [
        ("README.md", "readme-hello"),
        ("docs/plugins.md", "guide-banner-len"),
    ] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(doc))
                .unwrap();
        let code = text
            .split("`src/lib.rs`:\n\n```rust\n")
            .nth(1)
            .and_then(|rest| rest.split("\n```").next())
            .unwrap_or_else(|| panic!("{doc} has no `src/lib.rs` example"));
        let crate_dir = dir.path().join(name);
        std::fs::create_dir_all(crate_dir.join("src")).unwrap();
        std::fs::write(crate_dir.join("src/lib.rs"), code).unwrap();
        std::fs::write(
            crate_dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.2.0\"\nedition = \"2024\"\n\n\
                 [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nwscan-sdk = {{ path = {:?} }}\n\n\
                 [workspace]\n",
                sdk.display().to_string()
            ),
        )
        .unwrap();
        build_plugin(&crate_dir, Some(&shared), doc);
    }
}

/// `wscan plugin run WASM --replay TAPE`: it must succeed; its findings,
/// without their time.
pub(crate) fn replay(wasm: &Path, tape: &Path) -> Vec<serde_json::Value> {
    let mut cmd = wscan();
    cmd.args(["plugin", "run"])
        .arg(wasm)
        .args(["--format", "jsonl", "--replay"])
        .arg(tape);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    finding_records(&out)
}

/// The finding records `out` printed, without their time (which a replay
/// does not repeat).
pub(crate) fn finding_records(out: &std::process::Output) -> Vec<serde_json::Value> {
    records(out)
        .into_iter()
        .filter(|r| r["type"] == "finding")
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("time");
            r
        })
        .collect()
}

/// `cargo ARGS` in a plugin crate (`test` runs natively, as its README
/// says; the SDK's replay finds this wscan in `WSCAN`).
fn cargo(crate_dir: &Path, args: &[&str], what: &str) {
    let mut test = Command::new(env!("CARGO"));
    test.current_dir(crate_dir)
        .args(args)
        .env("WSCAN", env!("CARGO_BIN_EXE_wscan"));
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
    ] {
        test.env_remove(var);
    }
    let out = run(test, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "cargo {args:?} fails for {what}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

/// Build the plugin crate in `crate_dir` as a user would, out of tree, into
/// `target` (else where its own `.cargo/config.toml` says); `what` names it
/// when it fails.
fn build_plugin(crate_dir: &Path, target: Option<&Path>, what: &str) {
    let mut build = Command::new(env!("CARGO"));
    build
        .current_dir(crate_dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"]);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
    ] {
        build.env_remove(var);
    }
    if let Some(target) = target {
        build.env("CARGO_TARGET_DIR", target);
    }
    let out = run(build, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "{what} does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plugin_run_prints_findings_and_emitted_subjects_of_one_call() {
    let echo = Listener::start(Behaviour::Banner(b"SSH-2.0-test\r\n"));
    let mut cmd = wscan();
    cmd.args([
        "plugin",
        "run",
        "port",
        "--subject",
        "127.0.0.1",
        "--format",
        "jsonl",
    ]);
    cmd.args(["-p", &format!("{},{}", echo.port(), closed_port())]);
    cmd.args(["--plugin-arg", "port.banner-timeout=500ms"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = records(&out);
    let kinds: Vec<&str> = printed
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["finding", "finding", "subject"], "{printed:#?}");
    assert_eq!(printed[0]["kind"], "open-port");
    assert_eq!(printed[1]["kind"], "service");
    assert_eq!(printed[1]["data"]["banner"], "SSH-2.0-test");
    assert_eq!(
        printed[2]["subject"],
        serde_json::json!({"kind": "service", "address": "127.0.0.1", "port": echo.port(), "service": "ssh"})
    );

    // The subject is the scope: the stray plugin's attempts are denied.
    let mut cmd = wscan();
    cmd.args(["plugin", "run"]).arg(test_plugin("stray"));
    cmd.args([
        "--subject",
        &format!("127.0.0.1:{}", echo.port()),
        "--format",
        "jsonl",
    ]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    let stray = records(&out);
    let attempt = findings(&stray, "stray-attempt");
    assert_eq!(
        attempt[0]["data"]["connect"],
        "access denied: 127.0.0.2 is outside the scan's scope"
    );

    let mut cmd = wscan();
    cmd.args(["plugin", "run", "port", "--subject", "not a subject"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid subject \"not a subject\""));
}

#[test]
fn plugin_check_explains_components_of_another_world_and_describe_traps() {
    let command =
        std::path::PathBuf::from(env!("WSCAN_GUEST_ARTIFACTS")).join("wscan-test-notaplugin.wasm");
    let mut cmd = wscan();
    cmd.args(["plugin", "check"]).arg(&command);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does not fit the wscan:plugin@0.3.0 world"),
        "{stderr}"
    );

    let mut cmd = wscan();
    cmd.args(["plugin", "check"]).arg(test_plugin("badinfo"));
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("describe() failed"), "{stderr}");
    assert!(stderr.contains("describe is broken on purpose"), "{stderr}");
}

/// Issue 17, item 6: `plugin run` says why a plugin would not be given the
/// subject in a scan (kind, or only the port filter), says it again when
/// nothing was reported, and takes a service reached through a name.
#[test]
fn plugin_run_explains_a_mismatch_and_takes_a_service_through_a_name() {
    let web = crate::http_server::HttpServer::start();

    // A service through a name: the request carries the name.
    let mut cmd = wscan();
    cmd.args(["plugin", "run", "http", "--format", "jsonl", "--subject"]);
    cmd.arg(format!("www.wscan.test@127.0.0.1:{}", web.port()));
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = records(&out);
    let pages = findings(&printed, "http-response");
    assert_eq!(pages.len(), 1, "{printed:#?}");
    assert_eq!(pages[0]["subject"]["host"], "www.wscan.test");
    assert_eq!(pages[0]["data"]["title"], crate::http_server::TITLE);
    assert!(
        web.requests()
            .iter()
            .any(|(host, _)| host.starts_with("www.wscan.test")),
        "{:?}",
        web.requests()
    );
    // Its port is not one the http plugin's filter names: said, and run.
    assert!(
        stderr(&out).contains(&format!(
            "a scan would not give 127.0.0.1:{} to plugin http: it consumes services on ports",
            web.port()
        )),
        "{}",
        stderr(&out)
    );

    // The wrong kind, and a plugin that quietly returns: said twice.
    let mut cmd = wscan();
    cmd.args(["plugin", "run"]).arg(test_plugin("snoop"));
    cmd.args(["--subject", "127.0.0.1", "--format", "jsonl"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let why = "it consumes host, and 127.0.0.1 is an address";
    assert!(
        stderr(&out).contains(&format!(
            "a scan would not give 127.0.0.1 to plugin snoop: {why}"
        )),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(&format!("wscan: plugin snoop reported nothing; {why}")),
        "{}",
        stderr(&out)
    );

    let mut cmd = wscan();
    cmd.args(["plugin", "run", "http", "--subject", "a.test@b.test"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("after '@' comes an address or ADDRESS:PORT"));
}

#[test]
fn plugin_run_records_network_calls_and_replays_them_without_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let site = HttpServer::start();
    let tls = TlsServer::start(Cert::Valid);
    let dns = DnsServer::start();
    let resolver = dns.addr().to_string();
    let cases: [(&str, String, Vec<&str>); 3] = [
        ("http", format!("127.0.0.1:{}", site.port()), vec![]),
        ("tls", format!("127.0.0.1:{}", tls.port()), vec![]),
        (
            "dns",
            "wscan.test".to_string(),
            vec!["--resolver", &resolver, "--plugin-arg", "dns.types=all"],
        ),
    ];
    for (plugin, subject, extra) in &cases {
        let tape = dir.path().join(format!("{plugin}.jsonl"));
        let mut cmd = wscan();
        cmd.args(["plugin", "run", plugin, "--subject", subject])
            .args(["--format", "jsonl", "--record"])
            .arg(&tape)
            .args(extra);
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let live = finding_records(&out);
        assert!(!live.is_empty(), "{plugin} found nothing live");
        assert!(
            stderr(&out).contains("network call(s) to"),
            "{}",
            stderr(&out)
        );

        // The same findings from the recording, and not one packet sent.
        let before = (
            site.requests().len(),
            tls.connections(),
            dns.queries().len(),
        );
        assert_eq!(replay(Path::new(plugin), &tape), live, "{plugin}");
        let after = (
            site.requests().len(),
            tls.connections(),
            dns.queries().len(),
        );
        assert_eq!(before, after, "{plugin}'s replay reached a server");
    }

    // A call the recording lacks: the http plugin asked for its favicon
    // too. It fails, and the run says which call, with exit 1.
    let mut cmd = wscan();
    cmd.args(["plugin", "run", "http", "--format", "jsonl", "--replay"])
        .arg(dir.path().join("http.jsonl"))
        .args(["--plugin-arg", "http.favicon=true"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let expected = format!(
        "the replay diverged from the recording: the plugin made call 1 of `http.send GET http://127.0.0.1:{}/favicon.ico via 127.0.0.1`, and the recording has 0",
        site.port()
    );
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));

    // Port probes are not recorded: the unit says so.
    let mut cmd = wscan();
    cmd.args(["plugin", "run", "port", "--subject", "127.0.0.1", "-p", "1"])
        .args(["--format", "jsonl", "--record"])
        .arg(dir.path().join("port.jsonl"));
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let printed = records(&out);
    assert!(
        errors(&printed)[0]["error"]
            .as_str()
            .unwrap()
            .contains("port probes (tcp.probe) are not recorded"),
        "{printed:#?}"
    );

    // A file that is not a recording: exit 2, saying so.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "not json\n").unwrap();
    let mut cmd = wscan();
    cmd.args(["plugin", "run", "http", "--replay"]).arg(&bad);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("line 1: not a wscan recording"),
        "{}",
        stderr(&out)
    );
}
