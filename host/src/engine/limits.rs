//! Per-call limits: what one `scan` call of one plugin may consume. They keep
//! a buggy or hostile plugin from hurting the host or the rest of the scan.

/// Plugin instances alive at once (the pooling allocator's slots): plugin
/// calls running (`--parallel`, capped below it) plus loads.
pub const MAX_INSTANCES: u32 = 1100;
/// The most plugin calls a scan may run at once.
pub const MAX_PARALLEL: usize = 1000;
/// Linear memory a plugin instance may grow to.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;
/// Host resources (futures, connections, probes) a call may hold at once.
/// Past it the call traps: it is leaking handles.
pub const MAX_LIVE_RESOURCES: usize = 50_000;
/// Findings a call may report; later ones get `limit-exceeded`.
pub const MAX_FINDINGS_PER_CALL: u64 = 100_000;
/// Subjects a call may emit; later ones get `limit-exceeded`.
pub const MAX_SUBJECTS_PER_CALL: u64 = 100_000;
/// Size of one finding's `data` JSON.
pub const MAX_FINDING_DATA_BYTES: usize = 1 << 20;
/// Log messages a call may write; later ones are dropped.
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
