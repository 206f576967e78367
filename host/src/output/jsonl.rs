//! JSON Lines: one record per line, flushed as written so a killed scan
//! loses nothing it already found.

use super::{Record, Sink};
use std::io::{self, Write};

/// Writes each record as one line of JSON.
pub struct JsonlSink<W: Write + Send> {
    out: W,
    /// A line being made: written with one call, not one per token (a
    /// locked `Stdout` takes its lock for each).
    line: Vec<u8>,
}

impl<W: Write + Send> JsonlSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        JsonlSink {
            out,
            line: Vec::new(),
        }
    }
}

impl<W: Write + Send> Sink for JsonlSink<W> {
    fn write(&mut self, record: &Record) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()
    }

    fn write_json(&mut self, _: &Record, json: &str) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(json.as_bytes());
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
