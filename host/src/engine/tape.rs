//! Record and replay of a plugin's network calls (`wscan plugin run
//! --record FILE` and `--replay FILE`).
//!
//! A recording is JSON Lines: a header (the plugin, its version, the
//! subject), then one line a completed host call: what was called (`call`,
//! such as `tcp.read 127.0.0.1:6379#0`), which call of that text it was
//! (`n`, from 0), what it sent when it sent something (a write's bytes, a
//! request's body), and its result. Calls are matched on replay by call
//! text and `n`, not by position: a plugin's concurrent operations finish
//! in another order when nothing waits on the network, and each one still
//! finds its own result. A call the recording lacks, or one that sends
//! other bytes, is a divergence: the call fails with `other`, and the run
//! says where (the first divergence is kept for the exit).
//!
//! Replay sends nothing: every recorded kind of call (tcp connect, read and
//! write; dns lookup and reverse; tls handshake; http send) is answered
//! from the file, and a port probe is refused (probes are not recorded).

use crate::engine::bindings::ErrorCode;
pub use crate::primitives::bytes::to_json as bytes_json;
use futures::future::{BoxFuture, Either};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// The recording format's version, in its header.
pub const FORMAT: u32 = 1;

/// What goes wrong reading or writing a recording.
#[derive(Debug, Error)]
pub enum TapeError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The recording's path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a recording this version reads.
    #[error("{path}, line {line}: not a wscan recording ({why})")]
    Format {
        /// The recording's path.
        path: String,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// The first line of a recording.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// The format's version.
    pub wscan_recording: u32,
    /// The plugin recorded.
    pub plugin: String,
    /// Its version.
    pub version: String,
    /// The subject it was called on, as `--subject` takes it.
    pub subject: String,
    /// The `--plugin-arg` values it was called with (`NAME.KEY=VALUE`).
    #[serde(default)]
    pub args: Vec<String>,
}

/// One completed host call.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    call: String,
    n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sent: Option<Value>,
    /// `{"ok": value}` or `{"err": {"code": ..., "detail": ...}}`.
    result: Value,
}

/// One call, numbered among the calls with the same text.
#[derive(Debug, Clone)]
pub struct Ticket {
    call: String,
    n: u32,
}

impl Ticket {
    /// `tcp.read 127.0.0.1:6379#0`-style id of what this call opened
    /// (a connection's calls are named after its connect).
    pub fn id(&self) -> String {
        format!(
            "{}#{}",
            self.call.split_once(' ').map_or("", |(_, to)| to),
            self.n
        )
    }
}

enum Mode {
    Record(Mutex<Vec<Line>>),
    Replay(HashMap<(String, u32), Line>),
}

/// A recording being made, or being played back.
pub struct Tape {
    header: Header,
    mode: Mode,
    counts: Mutex<HashMap<String, u32>>,
    divergence: Mutex<Option<String>>,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape")
            .field("header", &self.header)
            .field("replay", &self.is_replay())
            .finish()
    }
}

impl Tape {
    /// A new, empty recording of `header`'s call.
    pub fn recording(header: Header) -> Self {
        Tape {
            header,
            mode: Mode::Record(Mutex::default()),
            counts: Mutex::default(),
            divergence: Mutex::default(),
        }
    }

    /// The recording in the file at `path`, for replay.
    pub fn load(path: &Path) -> Result<Self, TapeError> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| TapeError::Io {
            path: shown.clone(),
            source,
        })?;
        let bad = |line: usize, why: String| TapeError::Format {
            path: shown.clone(),
            line,
            why,
        };
        let mut lines = std::io::BufReader::new(file).lines();
        let first = lines
            .next()
            .ok_or_else(|| bad(1, "the file is empty".into()))?
            .map_err(|source| TapeError::Io {
                path: shown.clone(),
                source,
            })?;
        let header: Header =
            serde_json::from_str(&first).map_err(|e| bad(1, format!("its header: {e}")))?;
        if header.wscan_recording != FORMAT {
            return Err(bad(
                1,
                format!(
                    "format {} (this wscan reads format {FORMAT})",
                    header.wscan_recording
                ),
            ));
        }
        let mut calls = HashMap::new();
        for (i, text) in lines.enumerate() {
            let text = text.map_err(|source| TapeError::Io {
                path: shown.clone(),
                source,
            })?;
            if text.trim().is_empty() {
                continue;
            }
            let line: Line = serde_json::from_str(&text).map_err(|e| bad(i + 2, e.to_string()))?;
            calls.insert((line.call.clone(), line.n), line);
        }
        Ok(Tape {
            header,
            mode: Mode::Replay(calls),
            counts: Mutex::default(),
            divergence: Mutex::default(),
        })
    }

    /// Write the recording to `path` (calls in the order they finished).
    pub fn save(&self, path: &Path) -> Result<(), TapeError> {
        let io = |source| TapeError::Io {
            path: path.display().to_string(),
            source,
        };
        let Mode::Record(lines) = &self.mode else {
            return Ok(());
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        let header = serde_json::to_string(&self.header).expect("a header serializes");
        writeln!(out, "{header}").map_err(io)?;
        for line in lines.lock().expect("tape lock").iter() {
            let text = serde_json::to_string(line).expect("a line serializes");
            writeln!(out, "{text}").map_err(io)?;
        }
        out.flush().map_err(io)
    }

    /// The recording's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Whether calls are answered from the file.
    pub fn is_replay(&self) -> bool {
        matches!(self.mode, Mode::Replay(_))
    }

    /// The host calls recorded so far.
    pub fn len(&self) -> usize {
        match &self.mode {
            Mode::Record(lines) => lines.lock().expect("tape lock").len(),
            Mode::Replay(calls) => calls.len(),
        }
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first divergence of a replay, in words.
    pub fn divergence(&self) -> Option<String> {
        self.divergence.lock().expect("tape lock").clone()
    }

    /// Number a call of this text (in the order the plugin makes them).
    pub fn ticket(&self, call: String) -> Ticket {
        let mut counts = self.counts.lock().expect("tape lock");
        let n = counts.entry(call.clone()).or_default();
        let ticket = Ticket { call, n: *n };
        *n += 1;
        ticket
    }

    /// Keep `result` as the outcome of `ticket`'s call.
    pub fn record<T: Serialize>(
        &self,
        ticket: &Ticket,
        sent: Option<Value>,
        result: &Result<T, ErrorCode>,
    ) {
        if let Mode::Record(lines) = &self.mode {
            let result = match result {
                Ok(value) => json!({ "ok": value }),
                Err(code) => json!({ "err": error_json(code) }),
            };
            lines.lock().expect("tape lock").push(Line {
                call: ticket.call.clone(),
                n: ticket.n,
                sent,
                result,
            });
        }
    }

    /// Whether the recording has `ticket`'s call as unfinished (the
    /// plugin let go of it before it ended).
    pub fn unfinished(&self, ticket: &Ticket) -> bool {
        match &self.mode {
            Mode::Replay(calls) => calls
                .get(&(ticket.call.clone(), ticket.n))
                .is_some_and(|line| line.result.get("unfinished").is_some()),
            Mode::Record(_) => false,
        }
    }

    /// The recorded outcome of `ticket`'s call, or a divergence.
    pub fn replay<T: DeserializeOwned>(
        &self,
        ticket: &Ticket,
        sent: Option<Value>,
    ) -> Result<T, ErrorCode> {
        let Mode::Replay(calls) = &self.mode else {
            return Err(ErrorCode::Other("not a replay".into()));
        };
        let ordinal = ticket.n + 1;
        let Some(line) = calls.get(&(ticket.call.clone(), ticket.n)) else {
            let recorded = calls
                .keys()
                .filter(|(call, _)| *call == ticket.call)
                .count();
            return Err(self.diverge(format!(
                "the plugin made call {ordinal} of `{}`, and the recording has {recorded}",
                ticket.call
            )));
        };
        if line.sent != sent {
            return Err(self.diverge(format!(
                "call {ordinal} of `{}` sent {}, and the recorded one sent {}",
                ticket.call,
                shown(&sent),
                shown(&line.sent)
            )));
        }
        if let Some(ok) = line.result.get("ok") {
            serde_json::from_value(ok.clone()).map_err(|e| {
                self.diverge(format!(
                    "the recorded result of call {ordinal} of `{}` is not of its kind: {e}",
                    ticket.call
                ))
            })
        } else {
            Err(error_from_json(
                line.result.get("err").unwrap_or(&Value::Null),
            ))
        }
    }

    fn diverge(&self, why: String) -> ErrorCode {
        tracing::warn!("replay diverged: {why}");
        let mut first = self.divergence.lock().expect("tape lock");
        first.get_or_insert_with(|| why.clone());
        ErrorCode::Other(format!("replay diverged: {why}"))
    }
}

/// A call being recorded. [`Open::finish`] writes its result; dropped
/// before that (the plugin let go of the call: a `select!`, a timeout of
/// its own, `--plugin-timeout`), it is written as unfinished, and a replay
/// leaves that call unanswered too, so the plugin takes the same path.
pub struct Open {
    tape: Arc<Tape>,
    ticket: Ticket,
    sent: Option<Value>,
    done: bool,
}

impl Open {
    /// Start recording `ticket`'s call.
    pub fn new(tape: Arc<Tape>, ticket: Ticket, sent: Option<Value>) -> Self {
        Open {
            tape,
            ticket,
            sent,
            done: false,
        }
    }

    /// The call ended with `result`.
    pub fn finish<T: Serialize>(mut self, result: &Result<T, ErrorCode>) {
        self.done = true;
        self.tape.record(&self.ticket, self.sent.take(), result);
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if !self.done
            && let Mode::Record(lines) = &self.tape.mode
        {
            lines.lock().expect("tape lock").push(Line {
                call: self.ticket.call.clone(),
                n: self.ticket.n,
                sent: self.sent.take(),
                result: json!({ "unfinished": true }),
            });
        }
    }
}

/// `live`, recorded when recording; the recorded result instead when
/// replaying (`live` then never runs, so nothing is sent; a call the
/// recording has as unfinished never ends); `live` alone without a tape.
///
/// Without a tape the result is `live` itself. An `async` block around it
/// would hold it twice (once captured, once awaited): with the `async`
/// block the dns host call wrapped it in, a lookup's future took 6,952
/// bytes for each name in flight, 1,696 without the copies. With a tape,
/// boxed.
pub fn wrap<T, F>(
    tape: Option<&Arc<Tape>>,
    call: impl FnOnce() -> String,
    sent: Option<Value>,
    live: F,
) -> Either<F, BoxFuture<'static, Result<T, ErrorCode>>>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    F: Future<Output = Result<T, ErrorCode>> + Send + 'static,
{
    let Some(tape) = tape else {
        return Either::Left(live);
    };
    let (tape, ticket) = (tape.clone(), tape.ticket(call()));
    Either::Right(Box::pin(async move {
        if tape.is_replay() {
            if tape.unfinished(&ticket) {
                std::future::pending::<()>().await;
            }
            tape.replay(&ticket, sent)
        } else {
            let open = Open::new(tape, ticket, sent);
            let result = live.await;
            open.finish(&result);
            result
        }
    }))
}

/// What a divergence message shows of what was sent.
fn shown(sent: &Option<Value>) -> String {
    match sent {
        None => "nothing".into(),
        Some(value) => {
            let text = value.to_string();
            if text.len() > 200 {
                format!("{}…", &text[..text.floor_char_boundary(200)])
            } else {
                text
            }
        }
    }
}

fn error_json(code: &ErrorCode) -> Value {
    let (name, detail): (&str, Option<&str>) = match code {
        ErrorCode::ConnectionRefused => ("connection-refused", None),
        ErrorCode::Timeout => ("timeout", None),
        ErrorCode::Unreachable => ("unreachable", None),
        ErrorCode::ConnectionReset => ("connection-reset", None),
        ErrorCode::Closed => ("closed", None),
        ErrorCode::AccessDenied(why) => ("access-denied", Some(why)),
        ErrorCode::LimitExceeded => ("limit-exceeded", None),
        ErrorCode::InvalidState => ("invalid-state", None),
        ErrorCode::InvalidArgument(why) => ("invalid-argument", Some(why)),
        ErrorCode::NameNotFound => ("name-not-found", None),
        ErrorCode::ServerFailure => ("server-failure", None),
        ErrorCode::QueryRefused => ("query-refused", None),
        ErrorCode::TlsFailure(why) => ("tls-failure", Some(why)),
        ErrorCode::HttpProtocol(why) => ("http-protocol", Some(why)),
        ErrorCode::Unsupported => ("unsupported", None),
        ErrorCode::Other(why) => ("other", Some(why)),
    };
    match detail {
        Some(detail) => json!({ "code": name, "detail": detail }),
        None => json!({ "code": name }),
    }
}

fn error_from_json(value: &Value) -> ErrorCode {
    let detail = || value["detail"].as_str().unwrap_or("").to_string();
    match value["code"].as_str().unwrap_or("") {
        "connection-refused" => ErrorCode::ConnectionRefused,
        "timeout" => ErrorCode::Timeout,
        "unreachable" => ErrorCode::Unreachable,
        "connection-reset" => ErrorCode::ConnectionReset,
        "closed" => ErrorCode::Closed,
        "access-denied" => ErrorCode::AccessDenied(detail()),
        "limit-exceeded" => ErrorCode::LimitExceeded,
        "invalid-state" => ErrorCode::InvalidState,
        "invalid-argument" => ErrorCode::InvalidArgument(detail()),
        "name-not-found" => ErrorCode::NameNotFound,
        "server-failure" => ErrorCode::ServerFailure,
        "query-refused" => ErrorCode::QueryRefused,
        "tls-failure" => ErrorCode::TlsFailure(detail()),
        "http-protocol" => ErrorCode::HttpProtocol(detail()),
        "unsupported" => ErrorCode::Unsupported,
        other => ErrorCode::Other(if other == "other" {
            detail()
        } else {
            format!("a recorded error this wscan does not know: {value}")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            wscan_recording: FORMAT,
            plugin: "p".into(),
            version: "1.0.0".into(),
            subject: "127.0.0.1:1".into(),
            args: Vec::new(),
        }
    }

    #[test]
    fn a_recording_replays_by_call_and_number_and_says_where_it_diverges() {
        let tape = Tape::recording(header());
        let first = tape.ticket("tcp.read 127.0.0.1:1#0".into());
        let second = tape.ticket("tcp.read 127.0.0.1:1#0".into());
        tape.record(&second, None, &Ok::<_, ErrorCode>(bytes_json(b"second")));
        tape.record(&first, None, &Ok::<_, ErrorCode>(bytes_json(&[0xff, 0])));
        let write = tape.ticket("tcp.write 127.0.0.1:1#0".into());
        tape.record(
            &write,
            Some(bytes_json(b"PING\r\n")),
            &Ok::<_, ErrorCode>(6u64),
        );
        let lookup = tape.ticket("dns.lookup wscan.test TXT".into());
        tape.record(
            &lookup,
            None,
            &Err::<(), _>(ErrorCode::TlsFailure("x".into())),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        tape.save(&path).unwrap();

        let replay = Tape::load(&path).unwrap();
        assert_eq!(replay.header().plugin, "p");
        let read = |t: &Tape| t.replay::<Value>(&t.ticket("tcp.read 127.0.0.1:1#0".into()), None);
        assert_eq!(read(&replay).unwrap(), json!({"base64": "/wA="}));
        assert_eq!(read(&replay).unwrap(), json!({"text": "second"}));
        assert!(matches!(
            replay.replay::<u64>(
                &replay.ticket("tcp.write 127.0.0.1:1#0".into()),
                Some(bytes_json(b"PING\r\n"))
            ),
            Ok(6)
        ));
        assert!(matches!(
            replay.replay::<()>(&replay.ticket("dns.lookup wscan.test TXT".into()), None),
            Err(ErrorCode::TlsFailure(why)) if why == "x"
        ));
        assert!(replay.divergence().is_none());
        // A third read is not in the recording.
        let Err(ErrorCode::Other(why)) = read(&replay) else {
            panic!("a missing call replayed")
        };
        assert!(
            why.contains("call 3 of `tcp.read 127.0.0.1:1#0`, and the recording has 2"),
            "{why}"
        );
        assert!(replay.divergence().unwrap().contains("call 3"));
    }

    #[test]
    fn other_bytes_sent_are_a_divergence() {
        let tape = Tape::recording(header());
        let write = tape.ticket("tcp.write a#0".into());
        tape.record(
            &write,
            Some(bytes_json(b"INFO\r\n")),
            &Ok::<_, ErrorCode>(6u64),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        tape.save(&path).unwrap();
        let replay = Tape::load(&path).unwrap();
        let result = replay.replay::<u64>(
            &replay.ticket("tcp.write a#0".into()),
            Some(bytes_json(b"PING\r\n")),
        );
        assert!(result.is_err());
        let why = replay.divergence().unwrap();
        assert!(why.contains(r#"sent {"text":"PING\r\n"}"#), "{why}");
        assert!(
            why.contains(r#"recorded one sent {"text":"INFO\r\n"}"#),
            "{why}"
        );
    }

    #[test]
    fn a_call_let_go_of_while_recording_stays_unanswered_on_replay() {
        let tape = Arc::new(Tape::recording(header()));
        let ticket = tape.ticket("tcp.read a#0".into());
        drop(Open::new(tape.clone(), ticket, None));
        let done = tape.ticket("tcp.read a#0".into());
        Open::new(tape.clone(), done, None).finish(&Ok::<_, ErrorCode>(bytes_json(b"x")));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        tape.save(&path).unwrap();
        let replay = Tape::load(&path).unwrap();
        let first = replay.ticket("tcp.read a#0".into());
        let second = replay.ticket("tcp.read a#0".into());
        assert!(replay.unfinished(&first));
        assert!(!replay.unfinished(&second));
        assert!(replay.replay::<Value>(&second, None).is_ok());
    }

    #[test]
    fn a_file_that_is_not_a_recording_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, "{\"type\":\"finding\"}\n").unwrap();
        let e = Tape::load(&path).unwrap_err().to_string();
        assert!(e.contains("line 1: not a wscan recording"), "{e}");
    }
}
