//! End-to-end tests: the real `wscan` binary, the real built-in plugins and
//! the test plugins from `tests/plugins/`, against listeners these tests
//! start on 127.0.0.1 (or inside a private network namespace they create).

mod dns_server;
mod http_server;
mod support;
mod tls_server;

mod bad_input;
mod cluster;
mod dns;
mod formats;
mod hostile_plugins;
mod hostile_targets;
mod hot_reload;
mod http;
mod input;
mod limits;
mod namespace;
mod plugin_commands;
mod plugins;
mod port_scan;
mod python;
mod resume;
mod serve;
mod targets;
mod tls;
