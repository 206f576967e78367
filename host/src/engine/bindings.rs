//! The one `bindgen!` for the whole `wscan:plugin` world.
//!
//! Imports are async (they may wait for back-pressure) and trappable (a bad
//! handle or host bug traps the plugin; remote outcomes are `error-code`
//! values). Host resources map to the types in `engine::host`.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wscan:plugin/plugin",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wscan:plugin/tcp.connection": crate::engine::host::tcp::ConnectionHandle,
        "wscan:plugin/tcp.future-connection": crate::engine::host::tcp::FutureConnection,
        "wscan:plugin/tcp.future-bytes": crate::engine::host::tcp::FutureBytes,
        "wscan:plugin/tcp.future-written": crate::engine::host::tcp::FutureWritten,
        "wscan:plugin/tcp.port-probe": crate::engine::host::tcp::PortProbe,
        "wscan:plugin/dns.future-records": crate::engine::host::dns::FutureRecords,
        "wscan:plugin/tls.future-handshake": crate::engine::host::tls::FutureHandshake,
        "wscan:plugin/http.future-response": crate::engine::host::http::FutureResponse,
        "wscan:plugin/report.task": crate::engine::host::report::TaskHandle,
    },
});

pub use self::wscan::plugin::types::{ErrorCode, IpAddress};
