//! Bad input: a clear message, the documented exit code, nothing scanned.

use crate::support::*;
use std::time::Duration;

fn fails_with(args: &[&str], code: i32, message: &str) {
    let mut cmd = wscan();
    cmd.args(args);
    let out = run(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        stderr.contains(message),
        "{args:?}: expected {message:?} in:\n{stderr}"
    );
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
}

#[test]
fn malformed_targets_ports_flags_and_durations_are_usage_errors() {
    fails_with(&["scan", "300.1.1.1"], 2, "invalid target \"300.1.1.1\"");
    fails_with(&["scan", "10.0.0.0/40"], 2, "prefix length /40 is too long");
    fails_with(
        &["scan", "127.0.0.1", "-p", "0"],
        2,
        "ports are numbers from 1 to 65535",
    );
    fails_with(&["scan", "127.0.0.1", "-p", "90-80"], 2, "write 80-90");
    fails_with(
        &["scan", "127.0.0.1", "-p", "top-2000"],
        2,
        "top-N takes N from 1 to 1000",
    );
    fails_with(&["scan", "127.0.0.1", "--timeout", "5"], 2, "has no unit");
    fails_with(
        &["scan", "127.0.0.1", "--concurrency", "0"],
        2,
        "above zero",
    );
    fails_with(
        &["scan", "127.0.0.1", "--frobnicate"],
        2,
        "unexpected argument '--frobnicate'",
    );
    fails_with(&["scan"], 2, "required arguments were not provided");
    fails_with(
        &["scan", "127.0.0.1", "--plugin-memory", "lots"],
        2,
        "expected a size such as 64M",
    );
    fails_with(
        &["scan", "127.0.0.1", "--plugin-memory", "8G"],
        2,
        "between 1 MiB and 4 GiB",
    );
}

#[test]
fn unknown_plugins_and_arguments_are_usage_errors() {
    fails_with(
        &["scan", "127.0.0.1", "--plugins", "nope"],
        2,
        "unknown plugin \"nope\" in --plugins; available: dns, http, port, tls",
    );
    fails_with(
        &["scan", "127.0.0.1", "--plugin-arg", "port.colour=red"],
        2,
        "plugin port takes no argument \"colour\"",
    );
    fails_with(
        &["scan", "127.0.0.1", "--plugin-arg", "ghost.x=1"],
        2,
        "no selected plugin is named \"ghost\"",
    );
    fails_with(
        &["scan", "127.0.0.1", "--plugin-arg", "portbanner"],
        2,
        "expected PLUGIN.KEY=VALUE",
    );
}

/// Issue 12, item 9: a bad `--plugin-arg` value used to start the scan and
/// fail every unit (exit 3). Every kind of argument is checked first.
#[test]
fn bad_plugin_argument_values_are_usage_errors_before_anything_is_sent() {
    let listener = Listener::start(Behaviour::Banner(b"SSH-2.0-test\r\n"));
    let port = listener.port().to_string();
    let hostile = test_plugin("hostile");
    let hostile = hostile.to_str().unwrap();
    let cases: [(&[&str], &str); 7] = [
        (
            &["--plugin-arg", "port.banner=maybe"],
            "--plugin-arg port.banner=maybe: expected a boolean: true or false",
        ),
        (
            &["--plugin-arg", "port.banner-bytes=0"],
            "port.banner-bytes=0: expected a whole number from 1 to 65536",
        ),
        (
            &["--plugin-arg", "port.banner-bytes=lots"],
            "port.banner-bytes=lots: expected a whole number",
        ),
        (
            &["--plugin-arg", "port.banner-timeout=5"],
            "port.banner-timeout=5: expected a duration with a unit from 1ms to 5m",
        ),
        (
            &["--plugin-arg", "port.banner-timeout=1h"],
            "expected a duration with a unit from 1ms to 5m",
        ),
        (
            &["--plugin-arg", "dns.types=A,SPF"],
            "dns.types=A,SPF: expected comma-separated words, each one of A, AAAA, CNAME",
        ),
        (
            &["--plugin", hostile, "--plugin-arg", "hostile.mode=explode"],
            "hostile.mode=explode: expected one of bomb, flood, leak, undeclared, outside",
        ),
    ];
    let db = tempfile::tempdir().unwrap();
    let db_path = db.path().join("results.db");
    let db_arg = db_path.to_str().unwrap();
    for (extra, message) in cases {
        let mut args = vec!["--db", db_arg, "scan", "127.0.0.1", "-p", &port];
        args.extend_from_slice(extra);
        fails_with(&args, 2, message);
    }
    assert_eq!(
        listener.accepted(),
        0,
        "a bad value must be refused before any connect"
    );
    assert!(!db_path.exists(), "a scan was recorded");
    // A good value of each kind runs (and is what makes the port speak).
    let mut cmd = wscan();
    cmd.args(["scan", "127.0.0.1", "-p", &port, "--plugins", "port"]);
    cmd.args(["--plugin-arg", "port.banner=YES"]);
    cmd.args(["--plugin-arg", "port.banner-bytes=4"]);
    cmd.args(["--plugin-arg", "port.banner-timeout=2s"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    let services = findings(&records, "service");
    assert_eq!(services.len(), 1, "{records:?}");
    assert_eq!(services[0]["data"]["banner"], "SSH-", "{records:?}");
}

#[test]
fn a_plugin_built_for_an_older_contract_is_refused_with_the_fix() {
    // 0.1.0: from before typed arguments; 0.2.0: from before batches.
    for version in ["0.1.0", "0.2.0"] {
        let old = format!(
            "{}/../tests/fixtures/panicker-wit-{version}.wasm",
            env!("CARGO_MANIFEST_DIR")
        );
        fails_with(
            &["scan", "127.0.0.1", "--plugin", &old],
            1,
            &format!(
                "was built for wscan:plugin@{version}, but this wscan runs plugins of wscan:plugin@0.3.0: rebuild it with wscan-sdk 0.3"
            ),
        );
    }
}

#[test]
fn files_that_are_not_components_are_rejected_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "not wasm at all").unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let truncated = dir.path().join("truncated.wasm");
    let mut bytes = std::fs::read(test_plugin("greeter")).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&truncated, bytes).unwrap();

    let t = text.to_str().unwrap();
    fails_with(
        &["scan", "127.0.0.1", "--plugin", t],
        1,
        "is not a WebAssembly component: the file does not start with the WebAssembly magic bytes",
    );
    let c = core.to_str().unwrap();
    fails_with(
        &["scan", "127.0.0.1", "--plugin", c],
        1,
        "it is a core WebAssembly module; build it for the wasm32-wasip2 target",
    );
    let tr = truncated.to_str().unwrap();
    fails_with(
        &["plugin", "list", "--plugin", tr],
        1,
        "truncated.wasm is not a WebAssembly component",
    );
    fails_with(
        &["plugin", "list", "--plugin", "/nonexistent/x.wasm"],
        1,
        "cannot read plugin /nonexistent/x.wasm",
    );
}

#[test]
fn numeric_flags_out_of_range_are_usage_errors_before_anything_starts() {
    let db = tempfile::tempdir().unwrap();
    let db_path = db.path().join("results.db");
    let db_arg = db_path.to_str().unwrap();
    let scan = |flag: &str, value: &str| -> Vec<String> {
        ["--db", db_arg, "scan", "127.0.0.1", "-p", "1", flag, value]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    for (flag, value, message) in [
        // Panicked with exit 101 ("cannot convert float seconds to
        // Duration") and left an interrupted scan in the store.
        ("--rate", "1e-20", "between 0.001 and 100000000"),
        ("--rate", "1e300", "between 0.001 and 100000000"),
        ("--rate", "NaN", "between 0.001 and 100000000"),
        ("--concurrency", "99999999999", "at most 1000000 operations"),
        ("--host-concurrency", "0", "above zero"),
        ("--retries", "4000000000", "from 0 to 100"),
        ("--timeout", "1ns", "at least 1ms"),
        ("--timeout", "30days", "at most 7 days"),
        ("--plugin-timeout", "8days", "at most 7 days"),
        ("--parallel", "0", "above zero"),
    ] {
        let args = scan(flag, value);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&args, 2, message);
    }
    assert!(!db_path.exists(), "a scan was recorded");
}
