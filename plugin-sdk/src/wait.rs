//! The one place that turns a host future resource into a Rust future.

use crate::ErrorCode;
use wasip2::io::poll::Pollable;
use wstd::runtime::AsyncPollable;

/// Wait until the host operation behind `subscribe`/`get` has a result.
///
/// The pollable is a child of the host resource, so it is dropped here,
/// before the caller drops the resource itself.
pub(crate) async fn ready<T>(
    pollable: Pollable,
    mut get: impl FnMut() -> Option<Result<T, ErrorCode>>,
) -> Result<T, ErrorCode> {
    let pollable = AsyncPollable::new(pollable);
    loop {
        // Waiting comes first: an operation just started has no result
        // yet, and asking would be one more call into the host for each
        // (waiting on one that finished returns at once).
        pollable.wait_for().await;
        if let Some(result) = get() {
            return result;
        }
    }
}
