//! The `wscan:plugin/log` interface: plugin diagnostics into `tracing`,
//! tagged with the plugin's name and capped per call.

use crate::engine::bindings::wscan::plugin::log::{Host, Level};
use crate::engine::limits::{MAX_LOG_BYTES, MAX_LOGS_PER_CALL};
use crate::engine::state::HostState;

/// Cut `message` to at most `max` bytes on a character boundary.
fn truncate(message: &str, max: usize) -> &str {
    if message.len() <= max {
        return message;
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

impl Host for HostState {
    async fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        // The cap grows with the subjects of the call, so a batch logs as
        // much per subject as a call of one.
        let cap = MAX_LOGS_PER_CALL * self.call.tasks.len().max(1) as u64;
        self.call.logs += 1;
        if self.call.logs > cap {
            if self.call.logs == cap + 1 {
                tracing::warn!(plugin = %self.call.plugin.name, "plugin log limit reached; further messages dropped");
            }
            return Ok(());
        }
        let plugin = &self.call.plugin.name;
        let message = truncate(&message, MAX_LOG_BYTES);
        match level {
            Level::Trace => tracing::trace!(target: "plugin", %plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", %plugin, "{message}"),
            Level::Info => tracing::info!(target: "plugin", %plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", %plugin, "{message}"),
            Level::Error => tracing::error!(target: "plugin", %plugin, "{message}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncation_respects_utf8() {
        assert_eq!(super::truncate("héllo", 2), "h");
        assert_eq!(super::truncate("héllo", 3), "hé");
        assert_eq!(super::truncate("abc", 10), "abc");
    }
}
