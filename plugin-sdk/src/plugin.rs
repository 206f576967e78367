//! The trait a plugin implements, and the glue that runs it: the host hands
//! an instance a batch of subjects, each as a `task`, and the SDK scans
//! them concurrently on one reactor. What a subject's scan reports goes to
//! its own task, so findings, errors and the resume journal stay per
//! subject.

use crate::bindings::wscan::plugin::report as raw;
use crate::{Error, ErrorCode, Finding, PluginInfo, ScanOptions, Subject};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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
    ///
    /// Many subjects are scanned at once in one instance: keep state in
    /// locals, not in globals shared between subjects.
    fn scan(subject: Subject, options: ScanOptions) -> impl Future<Output = Result<(), Error>>;

    /// Scan the subjects of one call together, finishing each [`Task`].
    /// The default runs [`Plugin::scan`] on every subject concurrently,
    /// which is what most plugins want. Override it when the subjects share
    /// work: the built-in port plugin sweeps every address of a batch in
    /// one [`tcp::probe_many`](crate::tcp::probe_many).
    fn scan_batch(tasks: Vec<Task>, options: ScanOptions) -> impl Future<Output = ()> {
        async move {
            let scans = tasks.into_iter().map(|task| {
                let options = options.clone();
                async move {
                    let subject = task.subject().clone();
                    let result = task.scope(Self::scan(subject, options)).await;
                    task.finish(result);
                }
            });
            futures::future::join_all(scans).await;
        }
    }
}

thread_local! {
    /// The host's tasks of the call running, by index; `None` once
    /// finished. There are no threads in a component: one call at a time.
    static TASKS: RefCell<Vec<Option<raw::Task>>> = const { RefCell::new(Vec::new()) };
    /// The task whose code is running, set while a [`Scoped`] future is
    /// polled.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// One subject of a batch: what to scan, and where its results go.
/// Finish it with [`Task::finish`]; one dropped unfinished counts as a
/// failed subject.
pub struct Task {
    index: usize,
    subject: Subject,
}

impl Task {
    /// The subject to scan.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// Run `future` as this task's: what it reports with
    /// [`report`](crate::report), and what it starts with
    /// [`spawn`](crate::spawn), belongs to this subject.
    pub fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        Scoped {
            index: self.index,
            inner: Box::pin(future),
        }
    }

    /// Run `f` as this task's (see [`Task::scope`]).
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        let outer = CURRENT.replace(Some(self.index));
        let result = f();
        CURRENT.set(outer);
        result
    }

    /// Report a finding about this task's subject (as
    /// [`report::finding`](crate::report::finding) inside its scope).
    pub fn finding(&self, finding: Finding) -> Result<(), ErrorCode> {
        with_task(Some(self.index), |task| task.emit_finding(&finding))
    }

    /// Hand a discovered subject on, as this task's.
    pub fn emit(&self, subject: Subject) -> Result<(), ErrorCode> {
        with_task(Some(self.index), |task| task.emit_subject(&subject))
    }

    /// The scan of this subject is over: `Ok`, or failed with a reason
    /// (what was reported before stays).
    pub fn finish(self, result: Result<(), Error>) {
        if let Some(task) = TASKS.with_borrow_mut(|tasks| tasks[self.index].take()) {
            let outcome = result.map_err(String::from);
            raw::Task::finish(task, outcome.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // Unfinished: the host records the subject as failed.
        drop(TASKS.with_borrow_mut(|tasks| tasks[self.index].take()));
    }
}

/// A future that runs as one task's (see [`Task::scope`]).
struct Scoped<F: Future> {
    index: usize,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let outer = CURRENT.replace(Some(self.index));
        let result = self.inner.as_mut().poll(cx);
        CURRENT.set(outer);
        result
    }
}

/// Start `future` as a task of its own on the plugin's reactor, to await
/// later (dropping the handle cancels it). Started inside a subject's
/// scan, it reports as that subject's. Use this rather than wstd's
/// `spawn`, which does not know which subject a future belongs to.
pub fn spawn<F, T>(future: F) -> wstd::runtime::Task<T>
where
    F: Future<Output = T> + 'static,
    T: 'static,
{
    match CURRENT.get() {
        Some(index) => wstd::runtime::spawn(Scoped {
            index,
            inner: Box::pin(future),
        }),
        None => wstd::runtime::spawn(future),
    }
}

/// Call `f` with the host task of `index`, or of the code running: the
/// current one, else the only one of the call.
pub(crate) fn with_task<R>(
    index: Option<usize>,
    f: impl FnOnce(&raw::Task) -> Result<R, ErrorCode>,
) -> Result<R, ErrorCode> {
    TASKS.with_borrow(|tasks| {
        let index = index
            .or(CURRENT.get())
            .or((tasks.len() == 1).then_some(0))
            .ok_or_else(|| {
                ErrorCode::InvalidArgument(
                    "reported outside any subject's scan: report from Plugin::scan, from futures started with wscan_sdk::spawn (not wstd's), or through a Task".into(),
                )
            })?;
        match tasks.get(index).and_then(Option::as_ref) {
            Some(task) => f(task),
            // Its subject was finished already.
            None => Err(ErrorCode::InvalidState),
        }
    })
}

/// Run a plugin's `scan_batch` on the host's tasks, on the wasi:io/poll
/// reactor.
#[doc(hidden)]
pub fn __run_batch<P: Plugin + ?Sized>(tasks: Vec<raw::Task>, options: ScanOptions) {
    let subjects: Vec<Subject> = tasks.iter().map(raw::Task::subject).collect();
    TASKS.set(tasks.into_iter().map(Some).collect());
    let tasks = subjects
        .into_iter()
        .enumerate()
        .map(|(index, subject)| Task { index, subject })
        .collect();
    wstd::runtime::block_on(P::scan_batch(tasks, options));
    // Tasks the plugin kept past its end are dropped: the host records
    // their subjects as failed.
    TASKS.take();
}
