//! Diagnostics, shown by the host with `-v` and tagged with the plugin name.

use crate::bindings::wscan::plugin::log::{Level, log};

/// Log at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Log at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Log at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Log at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Log at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}
