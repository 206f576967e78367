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

/// `wscan scan ARGS --dry-run --count --plugins port`, answered within the
/// hang guard: the count of units.
fn count(args: &[&str]) -> String {
    let mut cmd = wscan();
    cmd.args(["scan", "--dry-run", "--count", "--plugins", "port"])
        .args(args);
    let out = run(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn count_of_a_huge_block_is_arithmetic_not_a_walk() {
    // Each of these walked every address before: they never ended.
    assert_eq!(count(&["fd00::/64"]), (1u128 << 64).to_string());
    assert_eq!(
        count(&[
            "fd00::/64",
            "--exclude",
            "fd00::/65",
            "--seed",
            "3",
            "--shard",
            "1/2"
        ]),
        (1u128 << 62).to_string()
    );
    let all: u128 = count(&["::/0"]).parse().unwrap();
    assert!(all > 1u128 << 127, "{all}");
    // -i lines are counted the same way.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.txt");
    std::fs::write(&file, "fd00::/64\n10.0.0.0/8\n").unwrap();
    assert_eq!(
        count(&["-i", file.to_str().unwrap(), "--exclude", "10.0.0.0/9"]),
        ((1u128 << 64) + (1 << 23)).to_string()
    );
    // And a count equals the number of units listed, shards and
    // exclusions included.
    for shard in ["1/3", "2/3", "3/3"] {
        let args = [
            "10.0.0.0/22",
            "::ffff:10.9.0.0/120",
            "--exclude",
            "10.0.1.0/25,10.0.2.17,10.9.0.3",
            "--seed",
            "7",
            "--shard",
            shard,
        ];
        assert_eq!(count(&args), dry_run(&args).len().to_string(), "{shard}");
    }
}

#[test]
fn an_ipv4_mapped_exclusion_excludes_the_ipv4_address() {
    let open = Listener::start(Behaviour::Silent);
    let port = open.port().to_string();
    // Exclusion written mapped, target written plain: nothing is contacted.
    let mut cmd = wscan();
    cmd.args(["scan", "127.0.0.1", "-p", &port, "--format", "jsonl"]);
    cmd.args(["--exclude", "::ffff:127.0.0.1", "--plugins", "port"]);
    let out = run(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(open.accepted(), 0, "an excluded address was contacted");
    // And the other way round, through a block.
    let units = dry_run(&[
        "::ffff:127.0.0.0/126",
        "--ordered",
        "--exclude",
        "127.0.0.1",
    ]);
    assert_eq!(units, ["127.0.0.0", "127.0.0.2", "127.0.0.3"]);
}

#[test]
fn an_ipv4_mapped_target_is_scanned_as_its_ipv4_address() {
    let open = Listener::start(Behaviour::Silent);
    let port = open.port().to_string();
    let mut cmd = wscan();
    cmd.args(["scan", "::ffff:127.0.0.1", "-p", &port, "--format", "jsonl"]);
    cmd.args(["--plugins", "port", "--plugin-arg", "port.banner=false"]);
    let out = run(cmd, Duration::from_secs(60));
    // It was accepted, then every operation on it refused (exit 3).
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let records = records(&out);
    let open_ports = findings(&records, "open-port");
    assert_eq!(open_ports.len(), 1, "{records:#?}");
    assert_eq!(open_ports[0]["subject"]["address"], "127.0.0.1");
}
