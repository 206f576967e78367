//! Plugins written in Python: built with componentize-py (PyPI, pinned in
//! tests/run) against wit/, and run by the host exactly as Rust ones.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Build `tests/plugins-python/NAME/app.py`, on the Python SDK
/// (`plugin-sdk/python`), into `out/NAME.wasm`.
fn build_python(name: &str, out: &Path) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Built from a copy of the plugin's folder, as a user's would be.
    let src = out.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(
        repo.join("tests/plugins-python").join(name).join("app.py"),
        src.join("app.py"),
    )
    .unwrap();
    let wasm = out.join(format!("{name}.wasm"));
    let mut build = Command::new("componentize-py");
    build
        .arg("-d")
        .arg(repo.join("wit"))
        .args(["-w", "wscan:plugin/plugin", "componentize", "-p"])
        .arg(repo.join("plugin-sdk/python"))
        .arg("-p")
        .arg(&src)
        .arg("app")
        .arg("-o")
        .arg(&wasm);
    let out = build.output().unwrap_or_else(|e| {
        panic!(
            "cannot run componentize-py ({e}): pip install componentize-py==0.25.1 (tests/run does)"
        )
    });
    assert!(
        out.status.success(),
        "componentize-py failed on {name}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wasm
}

#[test]
fn a_python_plugin_builds_loads_and_finds_as_a_rust_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = build_python("banner", dir.path());
    let cache = dir.path().join("cache");

    // Loaded and described as any component.
    let mut cmd = wscan();
    cmd.arg("--cache-dir")
        .arg(&cache)
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
        .arg(&cache)
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
        .arg(&cache)
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
    let dir = tempfile::tempdir().unwrap();
    let wasm = build_python("fanout", dir.path());
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

    let mut cmd = wscan();
    cmd.arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["plugin", "run"])
        .arg(&wasm)
        .args(["--subject", &addr.to_string(), "--format", "jsonl"]);
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
