//! Hostile plugins, each a component built with the test suite
//! (`tests/plugins/hostile`, one misbehaviour per `hostile.mode`): a memory
//! bomb, a flood of findings, a leak of host resources, a call to an
//! undeclared primitive, a connect out of scope. Each is contained and
//! recorded, and the port plugin's findings of the same scan survive.
//! (The infinite loop and the panic are in `plugins.rs`.)

use crate::support::*;
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

/// Scan an open port with the port plugin and `hostile` in `mode`.
fn scan(mode: &str, extra: &[&str]) -> (Output, Vec<Value>) {
    let open = Listener::start(Behaviour::Silent);
    let mut cmd = scan_port(open.port(), &["hostile"]);
    cmd.args([
        "--plugins",
        "port,hostile",
        "--plugin-arg",
        "port.banner=false",
    ]);
    cmd.args(["--plugin-arg", &format!("hostile.mode={mode}")]);
    cmd.args(extra);
    let out = run(cmd, Duration::from_secs(120));
    let records = records(&out);
    assert_eq!(
        findings(&records, "open-port").len(),
        1,
        "{mode}: the port plugin's finding is lost: {}",
        stderr(&out)
    );
    (out, records)
}

fn hostile_error(records: &[Value]) -> String {
    let errors = errors(records);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0]["plugin"]["name"], "hostile");
    errors[0]["error"].as_str().unwrap().to_string()
}

#[test]
fn a_memory_bomb_traps_at_the_memory_limit() {
    let (out, records) = scan("bomb", &[]);
    assert_eq!(out.status.code(), Some(3));
    let error = hostile_error(&records);
    assert!(error.starts_with("plugin trapped"), "{error}");
    // The limit is named, with its size and the flag that sets it.
    assert!(error.contains("plugin memory limit reached"), "{error}");
    assert!(
        error.contains("over the 256 MiB allowed (--plugin-memory)"),
        "{error}"
    );
}

#[test]
fn plugin_memory_sets_the_limit() {
    let (out, records) = scan("bomb", &["--plugin-memory", "24M"]);
    assert_eq!(out.status.code(), Some(3));
    let error = hostile_error(&records);
    assert!(error.contains("over the 24 MiB allowed"), "{error}");
}

#[test]
fn a_flood_of_findings_stops_at_the_per_call_cap() {
    let (out, records) = scan("flood", &[]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(findings(&records, "flood").len(), 100_000);
    let error = hostile_error(&records);
    assert!(error.contains("stopped after 100000 findings"), "{error}");
    assert!(error.contains("limit"), "{error}");
}

#[test]
fn a_resource_leak_traps_at_the_table_cap() {
    let port = closed_port().to_string();
    let (out, records) = scan("leak", &["--plugin-arg", &format!("hostile.port={port}")]);
    assert_eq!(out.status.code(), Some(3));
    let error = hostile_error(&records);
    assert!(error.starts_with("plugin trapped"), "{error}");
    assert!(error.contains("resource"), "{error}");
}

/// Run `mode`, which reports what its forbidden call got as a finding of
/// kind `mode`: it must be refused saying `why`, and the scan must say
/// `says`.
fn refused(mode: &str, why: &str, says: &str) {
    let (out, records) = scan(mode, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let refused = findings(&records, mode);
    assert_eq!(refused.len(), 1, "{records:#?}");
    let outcome = refused[0]["title"].as_str().unwrap();
    assert_eq!(outcome, format!("access denied: {why}"));
    let stderr = stderr(&out);
    assert!(stderr.contains(says), "{stderr}");
}

#[test]
fn an_undeclared_primitive_is_refused() {
    // The refusal names the capability and the fix.
    refused(
        "undeclared",
        "the plugin did not declare the dns capability (declare it in describe(): \
         .capability(Capability::Dns) in Rust, Capability.DNS in Python)",
        "capability it did not declare",
    );
}

#[test]
fn a_connect_out_of_scope_is_refused_and_counted() {
    refused(
        "outside",
        "127.0.0.2 is outside the scan's scope",
        "1 out-of-scope operation(s) denied",
    );
}

/// What a unit found outside the scope is written when the unit ends; a
/// unit cut short by Ctrl-C still has it written (the review of the
/// grouping found it dropped).
#[test]
fn a_unit_stopped_by_ctrl_c_still_reports_what_it_found_outside_the_scope() {
    use std::io::{BufRead, BufReader, Read};
    let open = Listener::start(Behaviour::Silent);
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "--no-db",
        "127.0.0.1",
        "-p",
        &open.port().to_string(),
    ]);
    cmd.args(["--format", "jsonl", "--plugins", "hostile"]);
    cmd.args(["--plugin-arg", "hostile.mode=linger", "--plugin"])
        .arg(test_plugin("hostile"));
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn wscan");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen: Vec<Value> = Vec::new();
    while !seen.iter().any(|r| r["kind"] == "lingering") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "ended early");
        seen.push(serde_json::from_str(&line).unwrap());
    }
    signal(child.id(), "-INT");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted scan exits 130");
    seen.extend(
        rest.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()),
    );
    let outside: Vec<&Value> = seen
        .iter()
        .filter(|r| r["type"] == "out-of-scope")
        .collect();
    assert_eq!(outside.len(), 1, "{seen:#?}");
    assert_eq!(outside[0]["subject"]["address"], "127.0.0.1");
    assert_eq!(outside[0]["outside"][0]["address"], "127.0.0.2");
}
