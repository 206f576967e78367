//! Testing a plugin in `cargo test` against a recording, with no server.
//!
//! Record the plugin once against a real service with
//! `wscan plugin run PLUGIN.wasm --subject ... --record tests/redis.jsonl`,
//! then test it against that recording:
//!
//! ```no_run
//! #[test]
//! fn reads_the_version_from_an_info_reply() {
//!     let findings = wscan_sdk::testing::Replay::new("tests/redis.jsonl").findings().unwrap();
//!     assert_eq!(findings[0]["data"]["redis_version"], "7.2.4");
//! }
//! ```
//!
//! [`Replay`] builds this crate as a component (`cargo build --release
//! --target wasm32-wasip2`, into the target folder cargo picks for the
//! crate: for a `wscan plugin new` crate, the shared one) and runs it
//! with `wscan plugin run --replay`: the plugin runs in the real host, with
//! its limits and sandbox, and every network call is answered from the
//! recording. A call the recording lacks is an error that says which. It
//! needs `wscan` on `PATH` (or its path in `WSCAN`). Native builds only:
//! this module is not in the component.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A replay of this crate's plugin against a recording.
#[derive(Debug, Clone)]
pub struct Replay {
    recording: PathBuf,
    args: Vec<String>,
}

impl Replay {
    /// A replay of the recording at `path` (relative to the crate's
    /// folder, as `cargo test` runs tests there).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Replay {
            recording: path.as_ref().to_path_buf(),
            args: Vec::new(),
        }
    }

    /// Pass `--plugin-arg NAME.KEY=VALUE` (the recording's own arguments
    /// are used when none is given).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_string());
        self
    }

    /// Every record the plugin produced (findings, emitted subjects, the
    /// error of a scan that failed), as the JSON Lines `wscan` prints; an
    /// error when the build fails, the replay diverges, or `wscan` cannot
    /// run, with its words.
    pub fn records(&self) -> Result<Vec<Value>, String> {
        let component = build()?;
        let wscan = std::env::var_os("WSCAN").unwrap_or_else(|| "wscan".into());
        let mut run = Command::new(&wscan);
        run.args(["plugin", "run"])
            .arg(&component)
            .args(["--format", "jsonl", "--replay"])
            .arg(&self.recording);
        for arg in &self.args {
            run.args(["--plugin-arg", arg]);
        }
        let out = run.output().map_err(|e| {
            format!(
                "cannot run {} ({e}): put wscan on PATH or its path in WSCAN",
                wscan.to_string_lossy()
            )
        })?;
        // 0: it ran; 3: the plugin's scan failed (its error is a record).
        if !matches!(out.status.code(), Some(0 | 3)) {
            return Err(format!(
                "wscan plugin run --replay {} failed ({}):\n{}",
                self.recording.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).map_err(|e| format!("{e}: {line}")))
            .collect()
    }

    /// The findings only.
    pub fn findings(&self) -> Result<Vec<Value>, String> {
        Ok(self
            .records()?
            .into_iter()
            .filter(|r| r["type"] == "finding")
            .collect())
    }
}

/// Build the crate under test as a component; the path of the `.wasm`.
fn build() -> Result<PathBuf, String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .ok_or("CARGO_MANIFEST_DIR is not set: run this from cargo test")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&dir)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .args(["--message-format", "json-render-diagnostics"])
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the plugin does not build as a component:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The cdylib's artifact message names the file.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|m| {
            m["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
        })
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| "cargo built no .wasm (is the crate a cdylib?)".to_string())
}
