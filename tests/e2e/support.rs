//! Helpers: run the binary, start loopback listeners, read JSON Lines.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The `wscan` binary under test.
pub fn wscan() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wscan"));
    cmd.env_remove("WSCAN_LOG")
        .env("XDG_DATA_HOME", data_home())
        .stdin(Stdio::null());
    cmd
}

/// The tests' `$XDG_DATA_HOME`: it holds the result store their scans are
/// recorded in, and no plugin folder (the tests choose their plugins).
pub fn data_home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wscan-data")
}

/// A test plugin component built by the host's build script.
pub fn test_plugin(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("WSCAN_GUEST_ARTIFACTS")).join(format!("wscan_test_{name}.wasm"));
    assert!(path.exists(), "test plugin {} missing", path.display());
    path
}

/// `wscan scan 127.0.0.1 -p PORT --format jsonl` with `--plugin FILE` for
/// each of `test_plugins`: the setup the plugin tests share (each adds its
/// `--plugins` and plugin arguments).
pub fn scan_port(port: u16, test_plugins: &[&str]) -> Command {
    let mut cmd = wscan();
    cmd.args([
        "scan",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--format",
        "jsonl",
    ]);
    for name in test_plugins {
        cmd.arg("--plugin").arg(test_plugin(name));
    }
    cmd
}

/// Run `cmd`, failing the test if it does not finish within `limit` (a hang
/// guard, not a speed check). Its output is drained as it comes, so a
/// command that writes more than a pipe holds does not stall.
pub fn run(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn wscan");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "wscan did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// What the command wrote on standard error, as text.
/// Send `signal` (`-TERM`, `-INT`, `-STOP`, `-CONT`) to process `pid`, as
/// a user's `kill` does.
pub fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill {signal} {pid} failed");
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parse every stdout line as JSON.
pub fn records(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Records of `type` finding with the given kind.
pub fn findings<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == "finding" && r["kind"] == kind)
        .collect()
}

/// Error records.
pub fn errors(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["type"] == "error").collect()
}

/// How a test listener behaves once it accepts a connection.
#[derive(Clone)]
pub enum Behaviour {
    /// Send these bytes, then hold the connection until the peer closes.
    Banner(&'static [u8]),
    /// Say nothing; hold the connection until the peer closes.
    Silent,
    /// Read one line and send it back prefixed with `echo: `.
    Echo,
    /// Read one line (a request), then send these bytes.
    Reply(&'static [u8]),
    /// Reset the connection at once (RST, by closing with SO_LINGER 0).
    Reset,
    /// Send these bytes one per second.
    Trickle(&'static [u8]),
    /// Read an HTTP request head, answer 200 with a titled page whose
    /// `Content-Length` says 100 MB, then send one more byte a second.
    SlowBody,
}

/// A listener on 127.0.0.1 that serves until dropped.
pub struct Listener {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

impl Listener {
    pub fn start(behaviour: Behaviour) -> Self {
        Self::start_at("127.0.0.1:0", behaviour)
    }

    /// A listener on `addr` (any loopback address; port 0 for a free one).
    pub fn start_at(addr: &str, behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind(addr).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), accepted.clone());
        thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        let behaviour = behaviour.clone();
                        thread::spawn(move || serve(stream, behaviour));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Listener {
            addr,
            stop,
            accepted,
        }
    }

    /// How many connections it accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One line from `stream`, without its `\n` (what came, at its end).
fn read_line(stream: &mut TcpStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = stream.read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    line
}

fn serve(mut stream: TcpStream, behaviour: Behaviour) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    // Errors are expected: the port probe resets its connections at once.
    match behaviour {
        Behaviour::Banner(bytes) => {
            let _ = stream.write_all(bytes);
        }
        Behaviour::Silent => {}
        Behaviour::Reset => {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            return;
        }
        Behaviour::Trickle(bytes) => {
            for byte in bytes {
                if stream.write_all(&[*byte]).is_err() {
                    return;
                }
                thread::sleep(Duration::from_secs(1));
            }
        }
        Behaviour::SlowBody => {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            let start = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nServer: slowpoke/1.0\r\nContent-Length: 100000000\r\n\r\n<html><head><title>slow page</title></head><body>";
            if stream.write_all(start.as_bytes()).is_err() {
                return;
            }
            for _ in 0..60 {
                thread::sleep(Duration::from_secs(1));
                if stream.write_all(b"x").is_err() {
                    return;
                }
            }
        }
        Behaviour::Echo => {
            let line = read_line(&mut stream);
            // One write: the reader takes the first segment that arrives.
            let reply = [b"echo: ".as_slice(), &line, b"\n"].concat();
            let _ = stream.write_all(&reply);
        }
        Behaviour::Reply(bytes) => {
            read_line(&mut stream);
            let _ = stream.write_all(bytes);
        }
    }
    let mut sink = [0u8; 256];
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// `child`'s stdout, line by line as it prints them (read on a thread of
/// its own, so a test can wait for the next line with a timeout).
pub fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, lines) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    lines
}

/// The title of the next finding record `lines` gives (`plugin dev`'s
/// output), waiting at most `limit`.
pub fn next_title(lines: &std::sync::mpsc::Receiver<String>, limit: Duration) -> String {
    let line = lines
        .recv_timeout(limit)
        .expect("no finding printed in time");
    let record: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    record["title"].as_str().expect("a finding").to_string()
}
