//! # wscan-sdk: write scan plugins for wscan
//!
//! A wscan plugin is a WebAssembly component (`wasm32-wasip2`) that implements
//! the `wscan:plugin/plugin` world. It has no sockets of its own: the host owns
//! every connection and runs it on its event loop, checking scope and limits.
//! This crate hides the generated bindings behind ordinary async Rust:
//!
//! ```no_run
//! use wscan_sdk::prelude::*;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("hello", env!("CARGO_PKG_VERSION"), "Says hello to every open port")
//!             .consumes(SubjectFilter::services())
//!             .capability(Capability::Tcp)
//!     }
//!
//!     async fn scan(subject: Subject, _options: ScanOptions) -> Result<(), Error> {
//!         let Subject::Service(service) = &subject else { return Ok(()) };
//!         let title = format!("hello, port {}", service.port);
//!         report::finding(Finding::new("hello", Severity::Info, title, subject.clone()))?;
//!         Ok(())
//!     }
//! }
//!
//! wscan_sdk::export_plugin!(Hello);
//! ```
//!
//! Operations such as [`tcp::connect`] start at once on the host and return a
//! future; start many and await them together (with [`futures`] or
//! [`spawn`]) to keep thousands in flight from one `scan` call.
//!
//! The host hands an instance many subjects at once, and the SDK runs
//! their `scan` calls concurrently on one reactor; what each reports is
//! its own (see [`Plugin::scan_batch`] for plugins that scan a batch
//! together).

#![allow(async_fn_in_trait)]

#[doc(hidden)]
pub mod bindings {
    //! Generated bindings for the `wscan:plugin` world. Use the wrappers in
    //! the crate root instead; this module may change with any release.
    #![allow(missing_docs, unsafe_code, clippy::all)]
    wit_bindgen::generate!({
        path: "../wit",
        world: "wscan:plugin/plugin",
        with: {
            "wasi:io/poll@0.2.12": wasip2::io::poll,
        },
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "wscan_sdk::bindings",
    });
}

mod args;
mod convert;
pub mod dns;
mod error;
pub mod http;
pub mod log;
mod plugin;
pub mod report;
pub mod tcp;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod tls;
mod wait;

pub use plugin::{__run_batch, Plugin, Task, spawn};

/// The shared types of the plugin contract.
pub use bindings::wscan::plugin::types::{
    AddressSubject, ArgInfo, ArgKind, ArgValue, Capability, ErrorCode, Finding, PluginInfo,
    PortRange, ScanOptions, Service, Severity, Subject, SubjectFilter, SubjectKind,
};
pub use convert::{from_ip, to_ip};
pub use error::{Context, Error};
pub use futures;
pub use serde_json;
pub use wstd::{task, time};

/// The most used items, for `use wscan_sdk::prelude::*`.
pub mod prelude {
    pub use crate::{
        AddressSubject, ArgInfo, ArgValue, Capability, Context, Error, ErrorCode, Finding, Plugin,
        PluginInfo, PortRange, ScanOptions, Service, Severity, Subject, SubjectFilter, SubjectKind,
        Task, dns, http, log, report, tcp, tls,
    };
}

/// Export a type implementing [`Plugin`] as this component's `wscan:plugin`
/// world. Use it once, at the root of a `cdylib` crate.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ident) => {
        const _: () = {
            impl $crate::bindings::Guest for $ty {
                fn describe() -> $crate::PluginInfo {
                    <$ty as $crate::Plugin>::describe()
                }
                fn scan(
                    tasks: ::std::vec::Vec<$crate::bindings::wscan::plugin::report::Task>,
                    options: $crate::ScanOptions,
                ) {
                    $crate::__run_batch::<$ty>(tasks, options)
                }
            }
    $crate::bindings::__export_plugin_world!($ty with_types_in $crate::bindings);
        };
    };
}
