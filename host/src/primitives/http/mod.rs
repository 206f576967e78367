//! The `wscan:plugin/http` interface: requests through the scan's pooled
//! clients, pinned to in-scope addresses.

pub mod core;

pub use self::core::{HttpCore, HttpError, HttpRequest, HttpResponse};
