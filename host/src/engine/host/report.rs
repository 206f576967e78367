//! The `wscan:plugin/report` interface: findings and subjects stream to the
//! scheduler as the plugin reports them. Sending waits when the scheduler is
//! behind, so a flood of findings applies back-pressure instead of memory.

use crate::engine::bindings::ErrorCode;
use crate::engine::bindings::wscan::plugin::report::Host;
use crate::engine::bindings::wscan::plugin::types as wit;
use crate::engine::limits::{MAX_FINDING_DATA_BYTES, MAX_FINDINGS_PER_CALL, MAX_SUBJECTS_PER_CALL};
use crate::engine::state::{Event, HostState};
use crate::model::Finding;

/// Check a finding's fields and turn it into the host's type.
fn validate(finding: wit::Finding) -> Result<Finding, ErrorCode> {
    let invalid = |why: &str| Err(ErrorCode::InvalidArgument(why.to_string()));
    if finding.kind.is_empty() || finding.kind.len() > 64 {
        return invalid("kind must be 1 to 64 characters");
    }
    if finding.data.len() > MAX_FINDING_DATA_BYTES {
        return invalid("data is larger than 1 MiB");
    }
    let data = match serde_json::from_str::<serde_json::Value>(&finding.data) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => return invalid("data must be a JSON object"),
        Err(e) => return Err(ErrorCode::InvalidArgument(format!("data is not JSON: {e}"))),
    };
    Ok(Finding {
        kind: finding.kind,
        severity: finding.severity.into(),
        title: finding.title,
        subject: finding.subject.into(),
        data,
    })
}

impl Host for HostState {
    async fn emit_finding(
        &mut self,
        finding: wit::Finding,
    ) -> wasmtime::Result<Result<(), ErrorCode>> {
        let Some(events) = self.call.events.clone() else {
            return Ok(Err(ErrorCode::AccessDenied(
                "describe() may not report".into(),
            )));
        };
        if self.call.counts.findings >= MAX_FINDINGS_PER_CALL {
            return Ok(Err(ErrorCode::LimitExceeded));
        }
        let finding = match validate(finding) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        self.call.counts.findings += 1;
        let event = Event::Finding {
            unit: self.call.unit,
            plugin: self.call.plugin.clone(),
            finding,
        };
        // The scheduler outlives every call; a closed channel means the scan
        // is being torn down, and the call is about to be dropped anyway.
        let _ = events.send(event).await;
        Ok(Ok(()))
    }

    async fn emit_subject(
        &mut self,
        subject: wit::Subject,
    ) -> wasmtime::Result<Result<(), ErrorCode>> {
        let Some(events) = self.call.events.clone() else {
            return Ok(Err(ErrorCode::AccessDenied(
                "describe() may not report".into(),
            )));
        };
        if self.call.counts.subjects >= MAX_SUBJECTS_PER_CALL {
            return Ok(Err(ErrorCode::LimitExceeded));
        }
        self.call.counts.subjects += 1;
        let _ = events
            .send(Event::Subject {
                unit: self.call.unit,
                plugin: self.call.plugin.clone(),
                subject: subject.into(),
            })
            .await;
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(kind: &str, data: &str) -> wit::Finding {
        wit::Finding {
            kind: kind.into(),
            severity: wit::Severity::Low,
            title: "t".into(),
            subject: wit::Subject::Host("example.test".into()),
            data: data.into(),
        }
    }

    #[test]
    fn data_must_be_a_json_object() {
        assert!(validate(finding("k", r#"{"a":1}"#)).is_ok());
        for bad in ["[1]", "3", "not json", ""] {
            assert!(
                matches!(
                    validate(finding("k", bad)),
                    Err(ErrorCode::InvalidArgument(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn kind_must_be_named() {
        assert!(matches!(
            validate(finding("", "{}")),
            Err(ErrorCode::InvalidArgument(_))
        ));
    }
}
