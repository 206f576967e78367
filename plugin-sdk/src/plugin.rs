//! The trait a plugin implements, and the glue that runs it.

use crate::{Error, PluginInfo, ScanOptions, Subject};
use std::future::Future;

/// A wscan scan plugin. Implement it on a unit struct and export it with
/// [`export_plugin!`](crate::export_plugin).
pub trait Plugin {
    /// Who the plugin is, what it consumes and which capabilities it needs.
    /// Called once at load time; must not use the network.
    fn describe() -> PluginInfo;

    /// Scan one subject. Report findings and new subjects with
    /// [`report`](crate::report) as you find them; return `Err` when the
    /// scan of this subject failed as a whole (host errors convert with
    /// `?`; what was reported before stays).
    fn scan(subject: Subject, options: ScanOptions) -> impl Future<Output = Result<(), Error>>;
}

/// Drive a plugin's `scan` future to completion on the wasi:io/poll reactor.
#[doc(hidden)]
pub fn __run_scan(future: impl Future<Output = Result<(), Error>>) -> Result<(), String> {
    wstd::runtime::block_on(future).map_err(String::from)
}
