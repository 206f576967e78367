//! Per-call limits: what one `scan` call of one plugin may consume. They keep
//! a buggy or hostile plugin from hurting the host or the rest of the scan.

/// Plugin instances alive at once (the pooling allocator's slots): plugin
/// calls running (`--parallel`, capped below it) plus loads.
pub const MAX_INSTANCES: u32 = 1100;
/// The most plugin calls a scan may run at once.
pub const MAX_PARALLEL: usize = 1000;
/// Linear memory a plugin instance may grow to, unless `--plugin-memory`
/// says otherwise.
pub const DEFAULT_PLUGIN_MEMORY: usize = 256 << 20;
/// The most `--plugin-memory` may allow: all a 32-bit linear memory can
/// address, and what the pooling allocator's slots are sized for (their
/// address space is reserved anyway, so the cap costs nothing).
pub const MAX_PLUGIN_MEMORY: usize = 4 << 30;
/// The least `--plugin-memory` may allow: a plugin needs a stack and a heap.
pub const MIN_PLUGIN_MEMORY: usize = 1 << 20;
/// Host resources (futures, connections, probes) a call may hold at once.
/// Past it the call traps: it is leaking handles.
pub const MAX_LIVE_RESOURCES: usize = 50_000;
/// Findings a call may report about one subject; later ones get
/// `limit-exceeded`.
pub const MAX_FINDINGS_PER_CALL: u64 = 100_000;
/// Subjects a call may emit from one subject; later ones get
/// `limit-exceeded`.
pub const MAX_SUBJECTS_PER_CALL: u64 = 100_000;
/// Events (findings and subjects) a subject of a batch may have held back
/// until it is finished; past it they stream, and the subject is not run
/// again if its batch fails.
pub const MAX_HELD_EVENTS: usize = 1024;
/// Bytes of events the subjects of one batch may hold back together (a
/// finding may carry 1 MiB of data); past it the largest holder streams,
/// as though it had passed [`MAX_HELD_EVENTS`].
pub const MAX_HELD_BYTES: usize = 16 << 20;
/// Size of one finding's `data` JSON.
pub const MAX_FINDING_DATA_BYTES: usize = 1 << 20;
/// Log messages a call may write for each of its subjects; later ones are
/// dropped.
pub const MAX_LOGS_PER_CALL: u64 = 1_000;
/// Longest log message kept; longer ones are cut.
pub const MAX_LOG_BYTES: usize = 4096;
/// Largest single read.
pub const MAX_READ_BYTES: u32 = 1 << 20;
/// What a plugin may write to its stderr (kept to explain a trap).
pub const MAX_STDERR_BYTES: usize = 64 << 10;
/// How often the epoch ticks: the granularity of deadlines, and how often a
/// busy plugin yields its thread to others.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// The resource limiter of one call's store: wasmtime's [`StoreLimits`]
/// for tables and instance counts, and a memory cap that ends the call with
/// an error naming the limit, rather than letting the plugin's allocator
/// fail in its own words (or, worse, carry on without the memory).
///
/// [`StoreLimits`]: wasmtime::StoreLimits
pub struct CallLimiter {
    inner: wasmtime::StoreLimits,
    memory: usize,
}

impl CallLimiter {
    /// Limits for one call, with `memory` bytes of linear memory at most.
    pub fn new(memory: usize) -> Self {
        CallLimiter {
            inner: wasmtime::StoreLimitsBuilder::new()
                .instances(16)
                .tables(64)
                .memories(16)
                .build(),
            memory,
        }
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory {
            wasmtime::bail!(
                "plugin memory limit reached: growing linear memory from {} to {} is over the {} allowed (--plugin-memory)",
                size(current),
                size(desired),
                size(self.memory)
            );
        }
        self.inner.memory_growing(current, desired, maximum)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

/// A byte count for people: `256 MiB`, `1.5 GiB`, `640 KiB`.
pub fn size(bytes: usize) -> String {
    const UNITS: [(&str, usize); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            return if bytes.is_multiple_of(scale) {
                format!("{} {unit}", bytes / scale)
            } else {
                format!("{:.1} {unit}", bytes as f64 / scale as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// Parse a memory size: a number of bytes with an optional unit, `K`, `M`,
/// `G` (or `KiB`, `MiB`, `GiB`; all powers of 1024), such as `64M`,
/// `512MiB`, `1G`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let bad = || format!("{text:?}: expected a size such as 64M, 512MiB or 1G");
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let scale: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        for bad in [
            "",
            "M",
            "-1M",
            "1.5G",
            "12 parsecs",
            "99999999999999999999G",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_print_for_people() {
        assert_eq!(size(256 << 20), "256 MiB");
        assert_eq!(size(3 << 29), "1.5 GiB");
        assert_eq!(size(100), "100 bytes");
    }
}
