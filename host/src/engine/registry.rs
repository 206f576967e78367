//! The plugins in use, in layers: built-in, then the plugin folder's, then
//! `--plugin` files. A later layer's plugin takes the place of an earlier
//! one with the same name. The active set is recomputed whenever a layer
//! changes (a hot reload) and handed out as an immutable snapshot, so a unit
//! of work keeps the version it started with.

use super::{LoadedPlugin, PluginSource};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A plugin in use, and what it took the place of.
#[derive(Clone)]
pub struct Active {
    /// The plugin.
    pub plugin: Arc<LoadedPlugin>,
    /// The plugin of the same name from an earlier layer, if any.
    pub replaces: Option<PluginSource>,
}

/// What the plugin folder's watcher did, for the statistics.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// New files loaded.
    pub loaded: AtomicU64,
    /// Changed files swapped in.
    pub swapped: AtomicU64,
    /// Files rejected (the previous version, if any, stays).
    pub rejected: AtomicU64,
    /// Files removed (their plugin is no longer scheduled).
    pub removed: AtomicU64,
}

#[derive(Default)]
struct Layers {
    builtins: Vec<Arc<LoadedPlugin>>,
    dir: BTreeMap<PathBuf, Arc<LoadedPlugin>>,
    files: Vec<Arc<LoadedPlugin>>,
}

impl Layers {
    fn resolve(&self) -> Vec<Active> {
        let mut active: Vec<Active> = Vec::new();
        let layers = self
            .builtins
            .iter()
            .chain(self.dir.values())
            .chain(self.files.iter());
        for plugin in layers {
            match active
                .iter_mut()
                .find(|a| a.plugin.info.name == plugin.info.name)
            {
                Some(slot) => {
                    *slot = Active {
                        plugin: plugin.clone(),
                        replaces: Some(slot.plugin.source.clone()),
                    };
                }
                None => active.push(Active {
                    plugin: plugin.clone(),
                    replaces: None,
                }),
            }
        }
        active
    }
}

/// The plugins of one wscan process.
#[derive(Default)]
pub struct Registry {
    layers: Mutex<Layers>,
    active: RwLock<Arc<Vec<Active>>>,
    /// Hot-reload counters (shared with the metrics).
    pub stats: Arc<ReloadStats>,
}

impl Registry {
    /// A registry with these layers.
    pub fn new(
        builtins: Vec<LoadedPlugin>,
        dir: Vec<LoadedPlugin>,
        files: Vec<LoadedPlugin>,
    ) -> Self {
        let mut layers = Layers {
            builtins: builtins.into_iter().map(Arc::new).collect(),
            files: files.into_iter().map(Arc::new).collect(),
            ..Layers::default()
        };
        for plugin in dir {
            if let PluginSource::Dir(path) = &plugin.source {
                layers.dir.insert(path.clone(), Arc::new(plugin));
            }
        }
        let active = RwLock::new(Arc::new(layers.resolve()));
        Registry {
            layers: Mutex::new(layers),
            active,
            stats: Arc::default(),
        }
    }

    /// The plugins in use right now.
    pub fn active(&self) -> Arc<Vec<Active>> {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The plugin named `name` in use right now.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.active()
            .iter()
            .find(|a| a.plugin.info.name == name)
            .map(|a| a.plugin.clone())
    }

    fn update(&self, change: impl FnOnce(&mut Layers)) {
        let mut layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut layers);
        *self.active.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(layers.resolve());
    }

    /// Put a plugin-folder plugin in use, replacing the one from the same
    /// file if there was one. Returns true when it replaced one.
    pub fn install_dir_plugin(&self, plugin: LoadedPlugin) -> bool {
        let PluginSource::Dir(path) = plugin.source.clone() else {
            return false;
        };
        let mut replaced = false;
        self.update(|layers| replaced = layers.dir.insert(path, Arc::new(plugin)).is_some());
        let counter = if replaced {
            &self.stats.swapped
        } else {
            &self.stats.loaded
        };
        counter.fetch_add(1, Ordering::Relaxed);
        replaced
    }

    /// Stop using the plugin loaded from `path`. Returns its name, if one was.
    pub fn remove_dir_plugin(&self, path: &Path) -> Option<String> {
        let mut removed = None;
        self.update(|layers| removed = layers.dir.remove(path).map(|p| p.info.name.clone()));
        if removed.is_some() {
            self.stats.removed.fetch_add(1, Ordering::Relaxed);
        }
        removed
    }

    /// The digest of the plugin loaded from the plugin folder's `path`,
    /// if one was.
    pub fn dir_digest(&self, path: &Path) -> Option<String> {
        let layers = self.layers.lock().unwrap_or_else(|e| e.into_inner());
        layers.dir.get(path).map(|p| p.digest.clone())
    }

    /// Count a rejected file.
    pub fn reject(&self) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
    }
}
