//! The wasmtime side: one engine and linker per process, plugin loading and
//! validation, and bounded calls into plugins.
//!
//! Each plugin is compiled once into an `InstancePre`; every call gets a
//! fresh `Store` with its own limits, and a batch of subjects, so calls run
//! concurrently and a plugin that traps, loops or leaks only loses its own
//! call, whose unfinished subjects run again alone.

pub mod bindings;
mod builtin;
pub mod convert;
pub mod host;
pub mod limits;
pub mod registry;
pub mod state;
pub mod tape;
pub mod watch;

pub use crate::model::PluginId;
pub use state::{Event, ScanContext};

use crate::metrics::Metrics;
use crate::model::{PluginInfo, Subject, check_declared, valid_name};
use bindings::{PluginPre, wscan::plugin::types as wit};
use host::report::TaskHandle;
use limits::EPOCH_TICK;
use state::{CallContext, HostState, TaskState};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Store, UpdateDeadline};

/// How long `describe()` may take at load time.
const DESCRIBE_DEADLINE: Duration = Duration::from_secs(10);

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Embedded in the binary.
    Builtin,
    /// Loaded from the plugin folder (`--plugin-dir`).
    Dir(PathBuf),
    /// Loaded from a file named on the command line (`--plugin`).
    File(PathBuf),
}

impl fmt::Display for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginSource::Builtin => f.write_str("built-in"),
            PluginSource::Dir(path) | PluginSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: std::io::Error,
    },
    /// The bytes are not a WebAssembly component.
    #[error("plugin {origin} is not a WebAssembly component: {reason}")]
    NotAComponent {
        /// Where it came from.
        origin: PluginSource,
        /// What it is instead.
        reason: String,
    },
    /// It was built for another version of the `wscan:plugin` package.
    #[error(
        "plugin {origin} was built for wscan:plugin@{found}, but this wscan runs plugins of {WIT_PACKAGE}: rebuild it with wscan-sdk {SDK_VERSION} (docs/plugins.md, \"Upgrading a plugin\", says what changed), or run it with a wscan that runs plugins of wscan:plugin@{found}"
    )]
    WitVersion {
        /// Where it came from.
        origin: PluginSource,
        /// The version its imports name.
        found: String,
    },
    /// It does not fit the `wscan:plugin` world.
    #[error(
        "plugin {origin} does not fit the {WIT_PACKAGE} world: {reason}. Plugins may import only the wscan:plugin interfaces and basic WASI 0.2, and must export describe and scan; build them with wscan-sdk"
    )]
    Link {
        /// Where it came from.
        origin: PluginSource,
        /// The linker's words.
        reason: String,
    },
    /// `describe()` trapped or returned nonsense.
    #[error("plugin {origin}: describe() failed: {reason}")]
    Describe {
        /// Where it came from.
        origin: PluginSource,
        /// What went wrong.
        reason: String,
    },
}

/// Why a `scan` call did not complete normally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin returned `err`.
    #[error("plugin reported failure: {0}")]
    Failed(String),
    /// The plugin trapped (panic, memory limit, bad handle...).
    #[error("plugin trapped: {0}")]
    Trapped(String),
    /// The plugin ran past its deadline and was stopped.
    #[error("plugin stopped after exceeding its {} deadline", humantime::format_duration(*.0))]
    Deadline(Duration),
}

/// Options of one `scan` call, in host types.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// The user's ports.
    pub ports: Vec<(u16, u16)>,
    /// The per-operation timeout.
    pub timeout: Duration,
    /// This plugin's arguments as the user gave them (`key`, `text`),
    /// checked and completed with defaults against the plugin's
    /// declaration when the call starts.
    pub args: Vec<(String, String)>,
    /// Wall-clock limit for the whole call.
    pub deadline: Duration,
    /// Linear memory the call may grow to, in bytes (`--plugin-memory`).
    pub memory: usize,
}

/// The process-wide wasmtime engine and linker.
pub struct Engine {
    engine: wasmtime::Engine,
    linker: Linker<HostState>,
    /// The process's metrics: every scan run on this engine counts in
    /// them.
    metrics: Arc<Metrics>,
}

/// The marker used to tell a deadline trap from any other.
#[derive(Debug)]
struct DeadlineExceeded;

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

impl Engine {
    /// Set up wasmtime: epoch interruption for deadlines, and a linker with
    /// the wscan interfaces and sandboxed WASI (no files, env or sockets).
    ///
    /// With `cache_dir`, compiled components are kept there by wasmtime's
    /// cache, keyed by a hash of the component, the wasmtime version and the
    /// compilation settings: an unchanged plugin is compiled once, then only
    /// loaded.
    pub fn new(cache_dir: Option<&Path>) -> wasmtime::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        // A scan instantiates a plugin per unit, tens of thousands of times:
        // the pooling allocator keeps memory slots mapped and reuses them,
        // where the default maps and unmaps a reservation every time.
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(limits::MAX_INSTANCES)
            .total_core_instances(limits::MAX_INSTANCES * 8)
            .total_memories(limits::MAX_INSTANCES * 2)
            .total_tables(limits::MAX_INSTANCES * 4)
            .max_memory_size(limits::MAX_PLUGIN_MEMORY);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        if let Some(dir) = cache_dir {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(dir);
            // wasmtime's cache worker recompresses an artifact used 256
            // times at zstd level 20, inside whichever process uses it
            // next: a scan then peaks at about 165 MB more (seen in
            // bench/run). A scan is not the place for it: never.
            cache.with_optimized_compression_usage_counter_threshold(u64::MAX);
            config.cache(Some(wasmtime::Cache::new(cache)?));
        }
        let engine = wasmtime::Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::wscan::plugin::tcp::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        bindings::wscan::plugin::dns::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        bindings::wscan::plugin::tls::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        bindings::wscan::plugin::http::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        bindings::wscan::plugin::log::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;
        bindings::wscan::plugin::report::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )?;

        // The epoch clock: every tick lets a busy plugin yield its thread,
        // and lets its deadline be checked. Stops when the engine is gone.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wscan-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(Engine {
            engine,
            linker,
            metrics: Arc::default(),
        })
    }

    /// The process's metrics (`/metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Compile, link and describe the built-in plugins.
    pub async fn load_builtins(&self) -> Result<Vec<LoadedPlugin>, LoadError> {
        let mut plugins = Vec::new();
        for (_, bytes) in builtin::BUILTINS {
            plugins.push(self.load(bytes.to_vec(), PluginSource::Builtin).await?);
        }
        Ok(plugins)
    }

    /// Load every `*.wasm` file of the plugin folder `dir`, in name order.
    /// A file that fails to load is returned among the errors, not fatal:
    /// one broken file must not keep the others from working.
    pub async fn load_dir(&self, dir: &Path) -> (Vec<LoadedPlugin>, Vec<LoadError>) {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
                .collect(),
            Err(reason) => {
                return (
                    Vec::new(),
                    vec![LoadError::Io {
                        path: dir.to_path_buf(),
                        reason,
                    }],
                );
            }
        };
        files.sort();
        let (mut plugins, mut errors) = (Vec::new(), Vec::new());
        for path in files {
            let loaded = match tokio::fs::read(&path).await {
                Ok(bytes) => self.load(bytes, PluginSource::Dir(path.clone())).await,
                Err(reason) => Err(LoadError::Io {
                    path: path.clone(),
                    reason,
                }),
            };
            match loaded {
                Ok(plugin) => plugins.push(plugin),
                Err(e) => errors.push(e),
            }
        }
        (plugins, errors)
    }

    /// Load a plugin from a file.
    pub async fn load_file(&self, path: &Path) -> Result<LoadedPlugin, LoadError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|reason| LoadError::Io {
                path: path.to_path_buf(),
                reason,
            })?;
        self.load(bytes, PluginSource::File(path.to_path_buf()))
            .await
    }

    /// Validate and compile `bytes`, link them, and call `describe()`.
    pub async fn load(
        &self,
        bytes: Vec<u8>,
        origin: PluginSource,
    ) -> Result<LoadedPlugin, LoadError> {
        check_header(&bytes).map_err(|reason| LoadError::NotAComponent {
            origin: origin.clone(),
            reason,
        })?;
        let digest = digest(&bytes);
        // Compiling takes tens of milliseconds of CPU: keep it off the
        // runtime's worker threads.
        let engine = self.engine.clone();
        let component = tokio::task::spawn_blocking(move || Component::new(&engine, &bytes))
            .await
            .map_err(|e| LoadError::NotAComponent {
                origin: origin.clone(),
                reason: e.to_string(),
            })?
            .map_err(|e| LoadError::NotAComponent {
                origin: origin.clone(),
                reason: format!("{e:#}"),
            })?;
        let link = |e: wasmtime::Error| match wit_version(&component, &self.engine) {
            Some(found) if found != WIT_VERSION => LoadError::WitVersion {
                origin: origin.clone(),
                found,
            },
            _ => LoadError::Link {
                origin: origin.clone(),
                reason: format!("{e:#}"),
            },
        };
        let pre =
            PluginPre::new(self.linker.instantiate_pre(&component).map_err(link)?).map_err(link)?;

        let loading = Arc::new(PluginId {
            name: "(loading)".into(),
            version: String::new(),
        });
        let call = CallContext {
            plugin: loading,
            capabilities: Vec::new(),
            scan: None,
            events: None,
            tasks: Vec::new(),
            started: Instant::now(),
            logs: 0,
            held_bytes: 0,
            live_resources: 0,
        };
        let mut store = self.store(call, DESCRIBE_DEADLINE, limits::DEFAULT_PLUGIN_MEMORY);
        let describe = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_describe(&mut store).await
        };
        let info: PluginInfo = match tokio::time::timeout(DESCRIBE_DEADLINE, describe).await {
            Ok(Ok(info)) => info.into(),
            Ok(Err(e)) => {
                return Err(LoadError::Describe {
                    origin,
                    reason: explain_trap(&e, store.data()),
                });
            }
            Err(_) => {
                return Err(LoadError::Describe {
                    origin,
                    reason: "did not return within 10s".into(),
                });
            }
        };
        if !valid_name(&info.name) {
            return Err(LoadError::Describe {
                origin,
                reason: format!(
                    "invalid plugin name {:?}: use 1-64 lowercase letters, digits and '-'",
                    info.name
                ),
            });
        }
        if let Err(e) = check_declared(&info.args) {
            return Err(LoadError::Describe {
                origin,
                reason: e.to_string(),
            });
        }
        let id = Arc::new(PluginId {
            name: info.name.clone(),
            version: info.version.clone(),
        });
        Ok(LoadedPlugin {
            digest,
            info,
            source: origin,
            id,
            pre,
        })
    }

    fn store(&self, call: CallContext, deadline: Duration, memory: usize) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(call, memory));
        store.limiter(|s| &mut s.limits);
        let until = Instant::now() + deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= until {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }
}

/// The version of the `wscan:plugin` package this host implements.
pub const WIT_VERSION: &str = "0.3.0";
/// The package with its version, as components name it.
pub const WIT_PACKAGE: &str = "wscan:plugin@0.3.0";
/// The SDK release that builds plugins for [`WIT_PACKAGE`].
const SDK_VERSION: &str = "0.3";

/// The `wscan:plugin` version a component's imports name (every plugin
/// imports at least `wscan:plugin/types@VERSION`), if any.
fn wit_version(component: &Component, engine: &wasmtime::Engine) -> Option<String> {
    component
        .component_type()
        .imports(engine)
        .find_map(|(name, _)| {
            let (_, version) = name.strip_prefix("wscan:plugin/")?.split_once('@')?;
            Some(version.to_string())
        })
}

/// Tell a component from a core module or a stray file before compiling,
/// to give an error that says what to do.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(
            "it is a core WebAssembly module; build it for the wasm32-wasip2 target (cargo build --target wasm32-wasip2) so it is a component".into(),
        ),
        Some([0, b'a', b's', b'm', ..]) => Err("unsupported WebAssembly binary version".into()),
        _ => Err("the file does not start with the WebAssembly magic bytes".into()),
    }
}

/// A trap, in one line, with the plugin's last words on stderr when it left
/// some (a panic message, an allocation failure).
fn explain_trap(e: &wasmtime::Error, state: &HostState) -> String {
    let mut msg = match e.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        // A host function's error (a limit it enforces) comes wrapped in
        // the wasm backtrace: its own words are the root cause.
        None => e.root_cause().to_string(),
    };
    if let Some(line) = state.stderr_tail() {
        msg.push_str(": ");
        msg.push_str(&line);
    }
    msg
}

/// The component of the built-in plugin whose digest is `digest`.
pub fn builtin_component(digest: &str) -> Option<&'static [u8]> {
    builtin::BUILTINS
        .iter()
        .map(|(_, bytes)| *bytes)
        .find(|bytes| self::digest(bytes) == digest)
}

/// The SHA-256 of a component's bytes, in lowercase hex.
pub fn digest(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A compiled, linked and described plugin, ready for any number of calls.
pub struct LoadedPlugin {
    /// What `describe()` said.
    pub info: PluginInfo,
    /// Where it came from.
    pub source: PluginSource,
    /// The SHA-256 of its component, in hex: which build this is.
    pub digest: String,
    id: Arc<PluginId>,
    pre: PluginPre<HostState>,
}

impl LoadedPlugin {
    /// Name and version, as stamped on findings.
    pub fn id(&self) -> &Arc<PluginId> {
        &self.id
    }

    /// Run `scan` on `tasks` (each the caller's number for a unit, and its
    /// subject) in one fresh instance. Findings, subjects and the end of
    /// each unit ([`Event::Done`]) go to `events`.
    ///
    /// A call of one subject streams its events and ends its unit whatever
    /// happens, keeping what it sent. A call of several holds each
    /// subject's events until the plugin finishes it; when the call traps,
    /// hits the memory limit or its deadline, the subjects not finished
    /// are returned, their events dropped, to be run again alone. Empty
    /// when every unit has ended.
    pub async fn scan(
        &self,
        engine: &Engine,
        scan: Arc<ScanContext>,
        events: mpsc::Sender<Event>,
        tasks: Vec<(u64, Subject)>,
        options: &CallOptions,
    ) -> Vec<(u64, Subject)> {
        let call = CallContext {
            plugin: self.id.clone(),
            capabilities: self.info.capabilities.clone(),
            scan: Some(scan),
            events: Some(events),
            tasks: tasks
                .into_iter()
                .map(|(unit, subject)| TaskState::new(unit, subject))
                .collect(),
            started: Instant::now(),
            logs: 0,
            held_bytes: 0,
            live_resources: 0,
        };
        let mut store = engine.store(call, options.deadline, options.memory);
        let count = store.data().call.tasks.len();
        // Checked when the scan was specified; checked again here because a
        // plugin hot-loaded since may declare its arguments differently.
        let args = match self.info.resolve_args(&options.args) {
            Ok(args) => args,
            Err(e) => {
                let failed = CallError::Failed(format!("plugin argument {e}"));
                end_all(&mut store, &failed).await;
                return Vec::new();
            }
        };
        let wit_options = wit::ScanOptions {
            ports: options
                .ports
                .iter()
                .map(|&(first, last)| wit::PortRange { first, last })
                .collect(),
            timeout_ms: u32::try_from(options.timeout.as_millis()).unwrap_or(u32::MAX),
            args: args.into_iter().map(|(k, v)| (k, v.into())).collect(),
        };
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            match store.data_mut().push(TaskHandle(index)) {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    end_all(&mut store, &CallError::Trapped(format!("{e:#}"))).await;
                    return Vec::new();
                }
            }
        }
        let run = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance.call_scan(&mut store, &handles, &wit_options).await
        };
        let failure = match tokio::time::timeout(options.deadline, run).await {
            Ok(Ok(())) => None,
            Err(_) => Some(CallError::Deadline(options.deadline)),
            Ok(Err(e)) if e.downcast_ref::<DeadlineExceeded>().is_some() => {
                Some(CallError::Deadline(options.deadline))
            }
            Ok(Err(e)) => Some(CallError::Trapped(explain_trap(&e, store.data()))),
        };
        match failure {
            // Returned with a subject neither finished nor dropped (the
            // plugin leaked its task): a fault of the plugin, not of the
            // subject's neighbours, so it is not run again.
            None => {
                let leaked = CallError::Failed(
                    "the plugin returned without finishing this subject's task".into(),
                );
                end_all(&mut store, &leaked).await;
                Vec::new()
            }
            Some(failed) if count == 1 => {
                end_all(&mut store, &failed).await;
                Vec::new()
            }
            Some(failed) => {
                let state = store.data_mut();
                let mut again = Vec::new();
                for index in 0..count {
                    let task = &mut state.call.tasks[index];
                    if task.finished || task.streamed {
                        // Finished before the failure (only its sending was
                        // cut short), or too prolific to hold: ends here.
                        state.end_task(index, Err(failed.clone())).await;
                    } else {
                        task.held.clear();
                        state.call.held_bytes -= std::mem::take(&mut task.held_bytes);
                        again.push((task.unit, task.subject.clone()));
                    }
                }
                again
            }
        }
    }
}

/// End every task of `store`'s call not ended yet with `error`.
async fn end_all(store: &mut Store<HostState>, error: &CallError) {
    let state = store.data_mut();
    for index in 0..state.call.tasks.len() {
        state.end_task(index, Err(error.clone())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        assert!(check_header(b"\0asm\x0d\0\x01\0rest").is_ok());
        assert!(
            check_header(b"\0asm\x01\0\0\0rest")
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(check_header(b"#!/bin/sh\n").unwrap_err().contains("magic"));
        assert!(check_header(b"").is_err());
    }

    #[test]
    fn plugin_names() {
        assert!(valid_name("port"));
        assert!(valid_name("http-title2"));
        assert!(!valid_name(""));
        assert!(!valid_name("Port"));
        assert!(!valid_name("a b"));
    }

    /// Component loading never panics: a real plugin, cut short or with
    /// bytes changed, is either a plugin or a `LoadError`.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn load(bytes: Vec<u8>) -> Result<String, LoadError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let engine = Engine::new(None).expect("engine");
                let plugin = engine.load(bytes, PluginSource::Builtin).await?;
                Ok(plugin.info.name.clone())
            })
        }

        /// The smallest built-in plugin: its name and bytes.
        fn original() -> (&'static str, Vec<u8>) {
            builtin::BUILTINS
                .iter()
                .min_by_key(|(_, bytes)| bytes.len())
                .map(|(name, bytes)| (*name, bytes.to_vec()))
                .expect("a built-in plugin")
        }

        proptest! {
            // Each case may compile a component: few cases, each worth it.
            #![proptest_config(ProptestConfig::with_cases(24))]

            #[test]
            fn a_damaged_component_is_an_error_not_a_crash(
                cut in 0usize..100_000,
                flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            ) {
                let (name, mut bytes) = original();
                let intact = flips.is_empty() && !(cut < bytes.len() && cut % 3 == 0);
                for (at, value) in flips {
                    let i = at % bytes.len();
                    bytes[i] ^= value | 1;
                }
                if !intact && cut < bytes.len() && cut % 3 == 0 {
                    bytes.truncate(cut);
                }
                match load(bytes) {
                    // A change that still loads (in a custom section, say)
                    // is still the same plugin.
                    Ok(loaded) => prop_assert_eq!(loaded, name),
                    Err(e) => prop_assert!(!intact, "the intact plugin failed: {e}"),
                }
            }

            #[test]
            fn random_bytes_after_the_header_are_an_error(
                tail in proptest::collection::vec(any::<u8>(), 0..4096),
            ) {
                let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
                bytes.extend(tail);
                prop_assert!(load(bytes).is_err());
            }
        }
    }
}
