//! `Pending<T>`: the host half of every future resource in the contract
//! (`future-connection`, `future-bytes`...). The operation runs as a tokio
//! task from the moment it is created; `subscribe` turns it into a
//! `wasi:io/poll` pollable; `get` takes the result once.

use crate::engine::bindings::ErrorCode;
use futures::FutureExt;
use std::future::Future;
use tokio::task::JoinHandle;
use wasmtime_wasi::p2::Pollable;

/// The size above which an operation's future is boxed before it is
/// spawned: a copy of this much costs roughly what an allocation does.
const BOX_ABOVE: usize = 512;

/// An operation running on the host, or its result.
pub struct Pending<T: Send + 'static> {
    state: State<T>,
}

enum State<T> {
    /// Still running.
    Running(JoinHandle<T>),
    /// Finished; the result waits for `get`.
    Ready(T),
    /// The result was handed out.
    Taken,
}

/// What [`Pending::take`] found.
pub enum Take<T> {
    /// Still running.
    NotReady,
    /// The result, handed over now.
    Value(T),
    /// It was handed over before.
    AlreadyTaken,
}

impl<T: Send + 'static> Pending<T> {
    /// Start `operation` on the runtime now.
    pub fn spawn<F: Future<Output = T> + Send + 'static>(operation: F) -> Self {
        // A task holds its future inline, and tokio moves the whole of it
        // when it starts the task, stores the output and hands it over. A
        // DNS lookup's is 1,696 bytes (6,952 when this was measured, before
        // `tape::wrap` stopped holding it twice): boxed, those moves copy a
        // pointer (measured on 30,000 names: memmove was 6.6% of the
        // scan's CPU, about half of it these moves).
        let handle = if size_of::<F>() > BOX_ABOVE {
            tokio::spawn(Box::pin(operation))
        } else {
            tokio::spawn(operation)
        };
        Pending {
            state: State::Running(handle),
        }
    }

    /// An operation that finished before it started (denied, invalid).
    pub fn ready(value: T) -> Self {
        Pending {
            state: State::Ready(value),
        }
    }

    /// Take the result if there is one.
    pub fn take(&mut self) -> Take<T> {
        if let State::Running(handle) = &mut self.state {
            if !handle.is_finished() {
                return Take::NotReady;
            }
            match handle.now_or_never() {
                Some(Ok(value)) => self.state = State::Ready(value),
                // A finished task that panicked: a host bug, surfaced as such.
                Some(Err(e)) => std::panic::resume_unwind(e.into_panic()),
                None => return Take::NotReady,
            }
        }
        match std::mem::replace(&mut self.state, State::Taken) {
            State::Ready(value) => Take::Value(value),
            State::Taken => Take::AlreadyTaken,
            State::Running(_) => unreachable!("running handled above"),
        }
    }
}

impl<T: Send + 'static> Drop for Pending<T> {
    fn drop(&mut self) {
        // The plugin dropped the future: nobody will read the result, so
        // stop the work and release its socket and concurrency permit.
        if let State::Running(handle) = &self.state {
            handle.abort();
        }
    }
}

#[wasmtime_wasi::async_trait]
impl<T: Send + 'static> Pollable for Pending<T> {
    async fn ready(&mut self) {
        if let State::Running(handle) = &mut self.state {
            match handle.await {
                Ok(value) => self.state = State::Ready(value),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Cancelled only by our own Drop, which cannot run while we
                // hold `&mut self`.
                Err(_) => self.state = State::Taken,
            }
        }
    }
}

/// What a future resource's `get` returns for `pending`: `None` while it
/// runs, then the result once, then `invalid-state`.
pub fn take<T: Send + 'static>(
    pending: &mut Pending<Result<T, ErrorCode>>,
) -> Option<Result<T, ErrorCode>> {
    match pending.take() {
        Take::NotReady => None,
        Take::Value(v) => Some(v),
        Take::AlreadyTaken => Some(Err(ErrorCode::InvalidState)),
    }
}
