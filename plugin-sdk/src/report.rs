//! Stream results to the host while the scan runs.

use crate::bindings::wscan::plugin::report;
use crate::{ErrorCode, Finding, Subject};

/// Report a finding now. Fails with `invalid-argument` when its data is not
/// a JSON object, `limit-exceeded` past the host's per-call cap.
pub fn finding(finding: Finding) -> Result<(), ErrorCode> {
    report::emit_finding(&finding)
}

/// Hand a discovered subject (an address, a service...) to the pipeline, for
/// the plugins that consume it.
pub fn subject(subject: Subject) -> Result<(), ErrorCode> {
    report::emit_subject(&subject)
}
