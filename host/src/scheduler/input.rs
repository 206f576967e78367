//! Targets read from a file or standard input (`-i FILE`, `-i -`), one per
//! line, streamed: a line is parsed, added to the scope and expanded into
//! start subjects when the scan is ready for it, so scanning starts with the
//! first line and a file of millions of lines is never read whole.

use crate::model::Subject;
use crate::scope::Scope;
use crate::targets::{Endpoint, Exclusions, Order, Shard, TargetArg, TargetError, TargetSpace};
use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::Arc;

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

/// The longest line read as a target. A target is at most a few hundred
/// bytes (a URL); a longer line is reported, quoted shortened, and skipped
/// without holding it in memory.
pub const MAX_LINE: usize = 64 * 1024;

/// Why a line is not a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// The text is not a target.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A byte that is not UTF-8 before any `#` comment.
    #[error(
        "not UTF-8 text (byte {offset} of the line is {byte:#04x}); targets are ASCII: save the file as UTF-8 or remove the line"
    )]
    NotUtf8 {
        /// 0-based offset of the first bad byte.
        offset: usize,
        /// The byte.
        byte: u8,
    },
    /// A line longer than [`MAX_LINE`] with no comment mark early on.
    #[error(
        "a line of {len} bytes ({start:?}...) is not a target (a target line is at most {MAX_LINE} bytes)"
    )]
    TooLong {
        /// The line's length in bytes.
        len: u64,
        /// Its first characters.
        start: String,
    },
}

/// A line that is not a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    /// 1-based line number.
    pub line: u64,
    /// Why.
    pub error: LineProblem,
}

/// Turns input lines into this shard's start subjects, in input order; a
/// block or range is walked in the scan's order (`--seed`, `--ordered`).
#[derive(Debug)]
pub struct Expander {
    exclude: Arc<Exclusions>,
    order: Order,
    shard: Shard,
    /// Lines that are one unit (names, `host:port`), counted for sharding.
    singles: u64,
    /// Addresses of the lines before, so shards number a file's addresses
    /// as one space.
    addresses: u128,
}

impl Expander {
    /// An expander for a scan with these exclusions, order and shard.
    pub fn new(exclude: Arc<Exclusions>, order: Order, shard: Shard) -> Self {
        Expander {
            exclude,
            order,
            shard,
            singles: 0,
            addresses: 0,
        }
    }

    /// Whether this shard takes the next single-unit line.
    fn take_single(&mut self) -> bool {
        let mine = self.singles % self.shard.count == self.shard.index - 1;
        self.singles += 1;
        mine
    }

    /// The space of an address line, numbered after the lines before.
    fn space(&mut self, target: &crate::targets::Target) -> TargetSpace {
        let space = TargetSpace::new(vec![*target], self.exclude.clone(), self.order, self.shard)
            .after(self.addresses);
        self.addresses = self.addresses.saturating_add(space.total());
        space
    }

    /// How many starts [`Expander::expand`] would give for `target`,
    /// without walking a block's addresses.
    pub fn count(&mut self, target: &TargetArg) -> u128 {
        match target {
            TargetArg::Addresses(t) => self.space(t).count(),
            _ => {
                let mut n = 0;
                self.expand(target, |_| {
                    n += 1;
                    true
                });
                n
            }
        }
    }

    /// Call `each` with every start of `target` this shard takes; stops
    /// early (returning `false`) when `each` does.
    pub fn expand(&mut self, target: &TargetArg, mut each: impl FnMut(Start) -> bool) -> bool {
        match target {
            TargetArg::Addresses(t) => self
                .space(t)
                .iter()
                .all(|ip| each(Start::new(Subject::Address { ip, host: None }))),
            TargetArg::Host(name) => {
                !self.take_single() || each(Start::new(Subject::Host(name.clone())))
            }
            TargetArg::Port {
                host: Endpoint::Ip(ip),
                port,
            } => {
                if !self.take_single() || self.exclude.contains(*ip) {
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
                !self.take_single()
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

/// Read one line into `buf`, without its newline (at most [`MAX_LINE`] + 1
/// bytes of it; the rest of a longer line is read and dropped). Returns the
/// line's whole length, or `None` at the end of the input.
fn next_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<u64>> {
    buf.clear();
    let read = (&mut *reader)
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)?;
    if read == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Some(buf.len() as u64));
    }
    let mut len = read as u64;
    if buf.len() > MAX_LINE {
        loop {
            let chunk = reader.fill_buf()?;
            if chunk.is_empty() {
                break;
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    reader.consume(end + 1);
                    len += end as u64;
                    break;
                }
                None => {
                    let n = chunk.len();
                    reader.consume(n);
                    len += n as u64;
                }
            }
        }
    }
    Ok(Some(len))
}

/// The target text of a line: what comes before `#`, trimmed; `Ok("")`
/// for a blank or comment line. Bytes after `#` may be anything (a Latin-1
/// comment does not make the line bad).
fn line_text(buf: &[u8], len: u64) -> Result<&str, LineProblem> {
    let hash = buf.iter().position(|&b| b == b'#');
    let before = &buf[..hash.unwrap_or(buf.len())];
    if hash.is_none() && len > MAX_LINE as u64 {
        let start = String::from_utf8_lossy(&before[..before.len().min(60)]).into_owned();
        return Err(LineProblem::TooLong { len, start });
    }
    match std::str::from_utf8(before) {
        Ok(text) => Ok(text.trim()),
        Err(e) => Err(LineProblem::NotUtf8 {
            offset: e.valid_up_to(),
            byte: before[e.valid_up_to()],
        }),
    }
}

/// Read `reader` line by line, adding each target to `scope` (when given)
/// and handing `each` the line's targets not seen before (a block already
/// swept is not handed again), or the line's error. Blank lines and `#`
/// comments are skipped; a bad line (not a target, not UTF-8, too long) is
/// handed as an error with its number, and reading goes on. Stops early
/// when `each` returns `false`.
pub fn for_each_target(
    reader: &mut dyn BufRead,
    scope: Option<&Scope>,
    mut each: impl FnMut(Result<TargetArg, LineError>) -> bool,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut number = 0u64;
    while let Some(len) = next_line(reader, &mut buf)? {
        number += 1;
        let target = match line_text(&buf, len).and_then(|text| match text {
            "" => Ok(None),
            text => Ok(Some(text.parse::<TargetArg>()?)),
        }) {
            Ok(None) => continue,
            Ok(Some(target)) => target,
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
        let fresh = match scope {
            Some(scope) => scope.add(&target),
            None => vec![target],
        };
        for target in fresh {
            if !each(Ok(target)) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// [`for_each_target`], each target expanded into this shard's starts.
pub fn for_each(
    reader: &mut dyn BufRead,
    expander: &mut Expander,
    scope: Option<&Scope>,
    mut each: impl FnMut(Item) -> bool,
) -> std::io::Result<()> {
    for_each_target(reader, scope, |item| match item {
        Ok(target) => expander.expand(&target, |start| each(Ok(start))),
        Err(e) => each(Err(e)),
    })
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
        let mut expander = Expander::new(
            Arc::new(Exclusions::of(&["10.0.0.2/32".parse().unwrap()])),
            Order::Ordered,
            shard,
        );
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
    fn shards_split_a_file_of_single_addresses_evenly() {
        let lines: String = (1..=9).map(|i| format!("10.1.0.{i}\n")).collect();
        let lines = lines.trim_end();
        for i in 1..=3 {
            let mine = starts(lines, Shard { index: i, count: 3 });
            assert_eq!(mine.len(), 3, "shard {i}/3: {mine:?}");
        }
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

    fn read_all(bytes: &[u8]) -> Vec<Result<String, String>> {
        let mut reader: &[u8] = bytes;
        let mut out = Vec::new();
        for_each_target(&mut reader, None, |item| {
            out.push(match item {
                Ok(TargetArg::Host(h)) => Ok(h),
                Ok(other) => Ok(format!("{other:?}")),
                Err(e) => Err(e.to_string()),
            });
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn bad_bytes_and_long_lines_are_line_errors_and_reading_goes_on() {
        let mut input = b"# caf\xe9\na.test # caf\xe9\nb\xff.test\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 3));
        input.extend_from_slice(b"\n# long comments are fine: ");
        input.extend(std::iter::repeat_n(b'y', MAX_LINE * 2));
        input.extend_from_slice(b"\nc.test");
        let got = read_all(&input);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], Ok("a.test".into()));
        assert_eq!(
            got[1],
            Err("line 3: not UTF-8 text (byte 1 of the line is 0xff); targets are ASCII: save the file as UTF-8 or remove the line".into())
        );
        let long = got[2].as_ref().unwrap_err();
        assert!(
            long.starts_with("line 4: a line of 196608 bytes (\"xxx"),
            "{long}"
        );
        assert!(long.len() < 200, "{long}");
        assert_eq!(got[3], Ok("c.test".into()));
    }
}
