//! Hot loading: watch the plugin folder and swap plugins in while a scan
//! runs, without a restart.
//!
//! Events are debounced per file (a file still being written keeps moving
//! its deadline), then the file is validated and compiled exactly as at
//! start. Only a plugin that loads and describes itself is swapped in; a
//! broken file is reported and the previous version stays in use.

use super::registry::Registry;
use super::{Engine, PluginSource};
use notify::{RecursiveMode, Watcher};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Quiet time after the last event on a file before it is (re)loaded.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Keeps the watch running; dropping it stops watching.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start watching `dir`, loading changes into `registry`.
pub fn watch(
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    dir: &Path,
) -> notify::Result<WatchHandle> {
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            // Reading a file (our own reload does) raises access events; only
            // changes to the folder's contents matter.
            Ok(event) if matches!(event.kind, notify::EventKind::Access(_)) => {}
            Ok(event) => {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
            Err(e) => tracing::warn!("plugin folder watch error: {e}"),
        })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    tracing::info!("watching the plugin folder {}", dir.display());
    let task = tokio::spawn(debounce_and_load(engine, registry, rx));
    Ok(WatchHandle {
        _watcher: watcher,
        task,
    })
}

async fn debounce_and_load(
    engine: Arc<Engine>,
    registry: Arc<Registry>,
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
) {
    let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
    loop {
        let next = pending.values().min().copied();
        tokio::select! {
            event = rx.recv() => match event {
                Some(path) if path.extension().is_some_and(|x| x == "wasm") => {
                    pending.insert(path, Instant::now() + DEBOUNCE);
                }
                Some(_) => {}
                None => return,
            },
            _ = tokio::time::sleep_until(next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))), if next.is_some() => {
                let now = Instant::now();
                let due: Vec<PathBuf> = pending.iter().filter(|(_, t)| **t <= now).map(|(p, _)| p.clone()).collect();
                for path in due {
                    pending.remove(&path);
                    reload(&engine, &registry, &path).await;
                }
            }
        }
    }
}

async fn reload(engine: &Engine, registry: &Registry, path: &Path) {
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(name) = registry.remove_dir_plugin(path) {
                tracing::info!(
                    "plugin {name} removed ({} is gone); no longer scheduled",
                    path.display()
                );
            }
            return;
        }
        Err(e) => {
            registry.reject();
            tracing::warn!(
                "plugin file {} rejected: cannot read it: {e}",
                path.display()
            );
            return;
        }
    };
    // A file rewritten with the same bytes (touched, or put there by an
    // upload that installed it already) is not loaded again.
    if registry.dir_digest(path) == Some(super::digest(&bytes)) {
        tracing::debug!("{} is unchanged", path.display());
        return;
    }
    match engine
        .load(bytes, PluginSource::Dir(path.to_path_buf()))
        .await
    {
        Ok(plugin) => {
            let (name, version) = (plugin.info.name.clone(), plugin.info.version.clone());
            let swapped = registry.install_dir_plugin(plugin);
            let verb = if swapped { "swapped in" } else { "loaded" };
            tracing::info!("plugin {name} {version} {verb} from {}", path.display());
        }
        Err(e) => {
            registry.reject();
            tracing::warn!("rejected, the previous version (if any) stays in use: {e}");
        }
    }
}
