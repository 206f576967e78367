//! Private network namespaces (only `lo`) the tests create, so a sweep of
//! many ports touches only the listeners they started there; and the sweep
//! of all 65,535 ports.

use crate::support::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A network namespace with only `lo`, removed on drop.
pub struct Netns {
    name: String,
    listeners: Option<Child>,
}

impl Netns {
    /// A new namespace, `tag` telling apart those of one test process.
    pub fn create(tag: &str) -> Netns {
        let name = format!("wscan-e2e-{}-{tag}", std::process::id());
        let ok = |cmd: &mut Command| cmd.status().map(|s| s.success()).unwrap_or(false);
        assert!(
            ok(Command::new("ip").args(["netns", "add", &name])),
            "cannot create network namespace {name}: this test needs root and iproute2 (ip netns)"
        );
        assert!(ok(Command::new("ip").args([
            "netns", "exec", &name, "ip", "link", "set", "lo", "up"
        ])));
        Netns {
            name,
            listeners: None,
        }
    }

    /// Its name (for `ip netns exec`, `ip link set ... netns`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run `program` inside the namespace.
    pub fn exec(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// The `wscan` binary under test, inside the namespace, with the
    /// tests' data folder (as [`wscan`] has it).
    pub fn wscan(&self) -> Command {
        let mut cmd = self.exec(env!("CARGO_BIN_EXE_wscan"));
        cmd.env_remove("WSCAN_LOG")
            .env("XDG_DATA_HOME", data_home());
        cmd
    }
}

impl Netns {
    /// Start listeners on 127.0.0.1 at `ports` inside the namespace (python3
    /// binds them and says "ready"); they stop with the namespace.
    pub fn listen(&mut self, ports: &[u16]) {
        let script = format!(
            "import socket,sys,time\nss=[]\nfor p in {ports:?}:\n s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', p)); s.listen(4096); ss.append(s)\nprint('ready', flush=True)\ntime.sleep(300)\n"
        );
        self.listeners = Some(self.python(&script));
    }

    /// Run a python3 `script` inside the namespace and wait until it prints
    /// "ready" (its servers are listening). The caller stops it.
    pub fn python(&self, script: &str) -> Child {
        let mut child = self
            .exec("python3")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
        child
    }

    /// Run iptables inside the namespace; panics when it fails.
    pub fn iptables(&self, args: &[&str]) {
        let status = self.exec("iptables").args(args).status().expect("iptables");
        assert!(
            status.success(),
            "iptables {args:?} failed: this test needs iptables"
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(mut child) = self.listeners.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn all_ports_in_a_private_namespace_finds_exactly_the_listeners() {
    let ports = [22u16, 80, 8443, 31337, 65535];
    let mut ns = Netns::create("all-ports");
    ns.listen(&ports);

    let mut cmd = ns.wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        "all",
        "--plugins",
        "port",
        "--format",
        "jsonl",
    ]);
    cmd.args(["--plugin-arg", "port.banner-timeout=200ms"]);
    let out = run(cmd, Duration::from_secs(120));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = records(&out);
    let mut found: Vec<u64> = findings(&records, "open-port")
        .iter()
        .map(|r| r["subject"]["port"].as_u64().unwrap())
        .collect();
    found.sort();
    assert_eq!(
        found,
        ports.iter().map(|&p| u64::from(p)).collect::<Vec<_>>(),
        "{records:#?}"
    );
    assert_eq!(records.len(), ports.len());
}
