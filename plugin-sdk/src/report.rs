//! Stream results to the host while the scan runs.
//!
//! They belong to the subject whose scan is running: inside
//! [`Plugin::scan`](crate::Plugin::scan), and in futures it starts with
//! [`spawn`](crate::spawn).

use crate::plugin::with_task;
use crate::{ErrorCode, Finding, Subject};

/// Report a finding now. Fails with `invalid-argument` when its data is not
/// a JSON object (or when called outside any subject's scan),
/// `limit-exceeded` past the host's cap for one subject, `invalid-state`
/// once the subject's scan has ended.
pub fn finding(finding: Finding) -> Result<(), ErrorCode> {
    with_task(None, |task| task.emit_finding(&finding))
}

/// Hand a discovered subject (an address, a service...) to the pipeline, for
/// the plugins that consume it.
pub fn subject(subject: Subject) -> Result<(), ErrorCode> {
    with_task(None, |task| task.emit_subject(&subject))
}
