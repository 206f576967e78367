//! The trait a plugin implements, and the glue that runs it.

use crate::{PluginInfo, ScanOptions, Subject};
use std::future::Future;

/// A wscan scan plugin. Implement it on a unit struct and export it with
/// [`export_plugin!`](crate::export_plugin).
pub trait Plugin {
    /// Who the plugin is, what it consumes and which capabilities it needs.
    /// Called once at load time; must not use the network.
    fn describe() -> PluginInfo;

    /// Scan one subject. Report findings and new subjects with
    /// [`report`](crate::report) as you find them; return `Err` with a
    /// message when the scan of this subject failed as a whole.
    fn scan(subject: Subject, options: ScanOptions) -> impl Future<Output = Result<(), String>>;
}

/// Drive a plugin's `scan` future to completion on the wasi:io/poll reactor.
#[doc(hidden)]
pub fn __run_scan(future: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    wstd::runtime::block_on(future)
}
