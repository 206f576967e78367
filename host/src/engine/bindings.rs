//! The one `bindgen!` for the whole `wscan:plugin` world.
//!
//! Imports are async (they may wait for back-pressure) and trappable (a bad
//! handle or host bug traps the plugin; remote outcomes are `error-code`
//! values). Host resources map to the types in `primitives`.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "wscan:plugin/plugin",
    imports: { default: async | trappable },
    exports: { default: async },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wscan:plugin/tcp.connection": crate::primitives::tcp::ConnectionHandle,
        "wscan:plugin/tcp.future-connection": crate::primitives::tcp::FutureConnection,
        "wscan:plugin/tcp.future-bytes": crate::primitives::tcp::FutureBytes,
        "wscan:plugin/tcp.future-written": crate::primitives::tcp::FutureWritten,
        "wscan:plugin/tcp.port-probe": crate::primitives::tcp::PortProbe,
        "wscan:plugin/dns.future-records": crate::primitives::dns::FutureRecords,
        "wscan:plugin/tls.future-handshake": crate::primitives::tls::FutureHandshake,
        "wscan:plugin/http.future-response": crate::primitives::http::FutureResponse,
    },
});

pub use self::wscan::plugin::types::{ErrorCode, IpAddress};
