//! Target ranges, exclusions, orders and shards, through --dry-run (which
//! sends nothing) and one real scan.

use crate::support::*;
use std::collections::BTreeSet;
use std::time::Duration;

fn dry_run(args: &[&str]) -> Vec<String> {
    let mut cmd = wscan();
    cmd.args(["scan", "--dry-run", "--plugins", "port"])
        .args(args);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.strip_prefix("port ").expect("unit line").to_string())
        .collect()
}

#[test]
fn shards_together_cover_every_address_exactly_once() {
    let targets = ["10.1.0.0/22", "10.2.0.1-10.2.0.77", "2001:db8::/120"];
    let all = dry_run(&[&targets[..], &["--seed", "5"]].concat());
    assert_eq!(all.len(), 1024 + 77 + 256);
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "an address came twice");
    let mut union: Vec<String> = Vec::new();
    for i in 1..=4 {
        let shard = format!("{i}/4");
        union.extend(dry_run(
            &[&targets[..], &["--seed", "5", "--shard", &shard]].concat(),
        ));
    }
    assert_eq!(union.len(), all.len(), "shards overlap or miss addresses");
    assert_eq!(union.iter().collect::<BTreeSet<_>>(), unique);
}

#[test]
fn order_is_shuffled_by_seed_unless_ordered() {
    let ordered = dry_run(&["10.0.0.0/24", "--ordered"]);
    assert_eq!(ordered[..3], ["10.0.0.0", "10.0.0.1", "10.0.0.2"]);
    let a = dry_run(&["10.0.0.0/24", "--seed", "1"]);
    let b = dry_run(&["10.0.0.0/24", "--seed", "2"]);
    assert_ne!(a, ordered);
    assert_ne!(a, b);
    assert_eq!(
        a,
        dry_run(&["10.0.0.0/24", "--seed", "1"]),
        "the same seed gives the same order"
    );
    let mut sorted = a.clone();
    sorted.sort_by_key(|ip| ip.parse::<std::net::IpAddr>().unwrap());
    assert_eq!(sorted, ordered);
}

#[test]
fn exclusions_from_flags_and_files_are_never_scheduled() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exclude.txt");
    std::fs::write(&file, "# lab gear\n10.0.0.128/25\n\n10.0.0.7 # printer\n").unwrap();
    let units = dry_run(&[
        "10.0.0.0/24",
        "--ordered",
        "--exclude",
        "10.0.0.0-10.0.0.3,10.0.0.9",
        "--exclude-file",
        file.to_str().unwrap(),
    ]);
    let expected: Vec<String> = (4..128)
        .filter(|n| *n != 7 && *n != 9)
        .map(|n| format!("10.0.0.{n}"))
        .collect();
    assert_eq!(units, expected);

    let mut cmd = wscan();
    cmd.args([
        "scan",
        "--dry-run",
        "--count",
        "10.0.0.0/16",
        "--exclude",
        "10.0.0.0/17",
    ]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "32768");

    std::fs::write(&file, "10.0.0.0/24\nnot-an-address\n").unwrap();
    let mut cmd = wscan();
    cmd.args(["scan", "--dry-run", "10.0.0.0/24", "--exclude-file"])
        .arg(&file);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("exclude.txt:2: invalid target \"not-an-address\"")
    );
}

#[test]
fn excluded_addresses_are_not_contacted_by_a_real_scan() {
    let open = Listener::start(Behaviour::Silent);
    let port = open.port().to_string();
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1-127.0.0.2",
        "-p",
        &port,
        "--format",
        "jsonl",
        "--exclude",
        "127.0.0.1",
    ]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1-2",
        "-p",
        &port,
        "--format",
        "jsonl",
        "--plugin-arg",
        "port.banner=false",
    ]);
    let out = run(cmd, Duration::from_secs(60));
    let records = records(&out);
    assert_eq!(findings(&records, "open-port").len(), 1, "{records:#?}");
}

#[test]
fn shard_without_seed_and_bad_ranges_are_usage_errors() {
    for (args, message) in [
        (
            vec!["10.0.0.0/24", "--shard", "1/2"],
            "--shard needs --seed",
        ),
        (
            vec!["10.0.0.0/24", "--shard", "3/2", "--seed", "1"],
            "expected I/N",
        ),
        (
            vec!["10.0.0.9-10.0.0.1"],
            "a range goes from a lower address",
        ),
        (vec!["10.0.0.1", "--count"], "--dry-run"),
    ] {
        let mut cmd = wscan();
        cmd.arg("scan").args(&args);
        let out = run(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn overlapping_and_repeated_targets_are_scanned_once() {
    let units = dry_run(&["10.0.0.0/30", "10.0.0.1-2", "10.0.0.3", "--ordered"]);
    assert_eq!(units, ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    // Lines of -i that repeat a line, or the command line, add nothing.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    std::fs::write(
        &file,
        "10.0.0.2-5\n10.0.0.5\n10.0.0.9:80\n10.0.0.9:80\n10.0.0.9:81\n",
    )
    .unwrap();
    let units = dry_run(&["10.0.0.0/30", "--ordered", "-i", file.to_str().unwrap()]);
    assert_eq!(
        units,
        [
            "10.0.0.0",
            "10.0.0.1",
            "10.0.0.2",
            "10.0.0.3",
            "10.0.0.4",
            "10.0.0.5",
            "10.0.0.9 port 80",
            "10.0.0.9 port 81"
        ]
    );
}
