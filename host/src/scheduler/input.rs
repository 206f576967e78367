//! Targets read from a file or standard input (`-i FILE`, `-i -`), one per
//! line, streamed: a line is parsed, added to the scope and expanded into
//! start subjects when the scan is ready for it, so scanning starts with the
//! first line and a file of millions of lines is never read whole.

use crate::model::Subject;
use crate::scope::Scope;
use crate::targets::{Endpoint, Order, Shard, TargetArg, TargetError, TargetSpace};
use ipnet::IpNet;
use std::io::BufRead;
use std::path::PathBuf;

/// Where `-i` reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// `-i -`
    Stdin,
    /// `-i FILE`
    File(PathBuf),
}

impl InputSource {
    /// Open the source for reading.
    pub fn open(&self) -> std::io::Result<Box<dyn BufRead + Send>> {
        Ok(match self {
            InputSource::Stdin => Box::new(std::io::BufReader::new(std::io::stdin())),
            InputSource::File(path) => {
                Box::new(std::io::BufReader::new(std::fs::File::open(path)?))
            }
        })
    }
}

impl std::fmt::Display for InputSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputSource::Stdin => f.write_str("standard input"),
            InputSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Where a scan starts: a subject, and the ports to hand its plugins when
/// the target named one (`host:port`, a URL) instead of `-p`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The subject.
    pub subject: Subject,
    /// `Some` for a `host:port` target on an address.
    pub ports: Option<Vec<(u16, u16)>>,
    /// The port of a `host:port` target on a name, which applies to the
    /// addresses the name resolves to.
    pub pin: Option<u16>,
}

impl Start {
    /// A start with the scan's ports.
    pub fn new(subject: Subject) -> Self {
        Start {
            subject,
            ports: None,
            pin: None,
        }
    }
}

/// A line that is not a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// Why.
    pub error: TargetError,
}

/// Turns input lines into this shard's start subjects, in input order; a
/// block or range is walked in the scan's order (`--seed`, `--ordered`).
#[derive(Debug)]
pub struct Expander {
    exclude: Vec<IpNet>,
    order: Order,
    shard: Shard,
    /// Lines that are one unit (names, `host:port`), counted for sharding.
    singles: u64,
    /// Names and `host:port` targets already taken, so each runs once
    /// (addresses are deduplicated by the scope, which holds them anyway).
    taken: std::collections::HashSet<(Endpoint, u16)>,
}

impl Expander {
    /// An expander for a scan with these exclusions, order and shard.
    pub fn new(exclude: Vec<IpNet>, order: Order, shard: Shard) -> Self {
        Expander {
            exclude,
            order,
            shard,
            singles: 0,
            taken: Default::default(),
        }
    }

    /// Whether this shard takes the next single-unit line.
    fn take_single(&mut self) -> bool {
        let mine = self.singles % self.shard.count == self.shard.index - 1;
        self.singles += 1;
        mine
    }

    fn excluded(&self, ip: std::net::IpAddr) -> bool {
        self.exclude.iter().any(|n| n.contains(&ip))
    }

    /// Call `each` with every start of `target` this shard takes; stops
    /// early (returning `false`) when `each` does.
    pub fn expand(&mut self, target: &TargetArg, mut each: impl FnMut(Start) -> bool) -> bool {
        match target {
            TargetArg::Addresses(t) => {
                let space =
                    TargetSpace::new(vec![*t], self.exclude.clone(), self.order, self.shard);
                space
                    .iter()
                    .all(|ip| each(Start::new(Subject::Address { ip, host: None })))
            }
            TargetArg::Host(name) => {
                // Port 0: the name itself, with the scan's ports.
                !self.taken.insert((Endpoint::Name(name.clone()), 0))
                    || !self.take_single()
                    || each(Start::new(Subject::Host(name.clone())))
            }
            TargetArg::Port {
                host: Endpoint::Ip(ip),
                port,
            } => {
                if !self.taken.insert((Endpoint::Ip(*ip), *port))
                    || !self.take_single()
                    || self.excluded(*ip)
                {
                    return true;
                }
                each(Start {
                    subject: Subject::Address {
                        ip: *ip,
                        host: None,
                    },
                    ports: Some(vec![(*port, *port)]),
                    pin: None,
                })
            }
            TargetArg::Port {
                host: Endpoint::Name(name),
                port,
            } => {
                !self.taken.insert((Endpoint::Name(name.clone()), *port))
                    || !self.take_single()
                    || each(Start {
                        subject: Subject::Host(name.clone()),
                        ports: None,
                        pin: Some(*port),
                    })
            }
        }
    }
}

/// One item of a streamed input.
pub type Item = Result<Start, LineError>;

/// Read `reader` line by line, adding each target to `scope` (when given)
/// before its starts are handed to `each`, with this shard's starts or a
/// line's error. Blank lines and `#` comments are skipped. Stops early
/// when `each` returns `false`.
pub fn for_each(
    reader: &mut dyn BufRead,
    expander: &mut Expander,
    scope: Option<&Scope>,
    mut each: impl FnMut(Item) -> bool,
) -> std::io::Result<()> {
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        number += 1;
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let target = match text.parse::<TargetArg>() {
            Ok(target) => target,
            Err(error) => {
                if !each(Err(LineError {
                    line: number,
                    error,
                })) {
                    return Ok(());
                }
                continue;
            }
        };
        // Addresses already in the scope were or will be visited: only
        // the new part of a line is expanded.
        let fresh = match (scope, &target) {
            (Some(scope), TargetArg::Addresses(_)) => scope
                .add(&target)
                .into_iter()
                .map(TargetArg::Addresses)
                .collect(),
            (Some(scope), _) => {
                scope.add(&target);
                vec![target]
            }
            (None, _) => vec![target],
        };
        for target in &fresh {
            if !expander.expand(target, |start| each(Ok(start))) {
                return Ok(());
            }
        }
    }
}

/// [`for_each`] on a thread of its own, sending to the scan over `tx`.
/// The channel is bounded, so reading waits while the scan is busy.
pub fn stream(
    mut reader: Box<dyn BufRead + Send>,
    mut expander: Expander,
    scope: std::sync::Arc<Scope>,
    tx: tokio::sync::mpsc::Sender<Item>,
) -> std::thread::JoinHandle<std::io::Result<()>> {
    std::thread::spawn(move || {
        for_each(&mut reader, &mut expander, Some(&scope), |item| {
            tx.blocking_send(item).is_ok()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(lines: &str, shard: Shard) -> Vec<String> {
        let mut expander =
            Expander::new(vec!["10.0.0.2/32".parse().unwrap()], Order::Ordered, shard);
        let mut out = Vec::new();
        for line in lines.lines() {
            let target: TargetArg = line.parse().unwrap();
            expander.expand(&target, |s| {
                out.push(match (&s.ports, s.pin) {
                    (Some(p), _) => format!("{} {:?}", s.subject, p),
                    (None, Some(pin)) => format!("{} pin {pin}", s.subject),
                    (None, None) => s.subject.to_string(),
                });
                true
            });
        }
        out
    }

    #[test]
    fn lines_expand_in_order_less_exclusions() {
        let all = starts(
            "10.0.0.1-3\nwww.example.test\n127.0.0.1:8080\nwww.example.test:8443\n10.0.0.2:22",
            Shard { index: 1, count: 1 },
        );
        assert_eq!(
            all,
            [
                "10.0.0.1",
                "10.0.0.3",
                "www.example.test",
                "127.0.0.1 [(8080, 8080)]",
                "www.example.test pin 8443",
            ]
        );
    }

    #[test]
    fn shards_split_lines_with_no_overlap() {
        let lines = "10.0.0.0/28\na.test\nb.test\n127.0.0.1:1\n127.0.0.1:2\nc.test:3";
        let whole = starts(lines, Shard { index: 1, count: 1 });
        let mut union: Vec<String> = (1..=3)
            .flat_map(|i| starts(lines, Shard { index: i, count: 3 }))
            .collect();
        assert_eq!(union.len(), whole.len());
        union.sort();
        let mut whole = whole;
        whole.sort();
        assert_eq!(union, whole);
    }
}
