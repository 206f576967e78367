//! The `wscan:plugin/report` interface: the `task` of each subject of a
//! call, through which its findings and subjects reach the scheduler. A
//! call of one subject streams them as they come (sending waits when the
//! scheduler is behind, so a flood of findings applies back-pressure
//! instead of memory); a batch holds each subject's until it is finished.

use crate::engine::CallError;
use crate::engine::bindings::ErrorCode;
use crate::engine::bindings::wscan::plugin::report::{Host, HostTask};
use crate::engine::bindings::wscan::plugin::types as wit;
use crate::engine::limits::{
    MAX_FINDING_DATA_BYTES, MAX_FINDINGS_PER_CALL, MAX_HELD_BYTES, MAX_HELD_EVENTS,
    MAX_SUBJECTS_PER_CALL,
};
use crate::engine::state::{Event, HostState};
use crate::model::Finding;
use wasmtime::component::Resource;

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

/// What holding one event costs beyond its text: the event itself, the
/// queue's slot, the plugin's name behind its `Arc`.
const HELD_EVENT_BYTES: usize = 256;

/// The text a subject carries (names, a service's banner).
fn subject_text_len(subject: &wit::Subject) -> usize {
    let len = |text: &Option<String>| text.as_ref().map_or(0, String::len);
    match subject {
        wit::Subject::Host(name) => name.len(),
        wit::Subject::Address(address) => len(&address.host),
        wit::Subject::Service(service) => {
            len(&service.host) + len(&service.name) + len(&service.banner)
        }
    }
}

/// The `task` resource: the index of its subject in the call's
/// [`TaskState`]s, where its state stays after the plugin lets go of it.
pub struct TaskHandle(pub usize);

impl Host for HostState {}

impl HostState {
    /// The task `this` stands for, unless it is finished.
    fn open_task(&mut self, this: &Resource<TaskHandle>) -> wasmtime::Result<Option<usize>> {
        let index = self.table.get(this)?.0;
        Ok((!self.call.tasks[index].finished).then_some(index))
    }

    /// Send `event` of task `index` on, or hold it while the call has other
    /// tasks (see [`TaskState::held`](crate::engine::state::TaskState::held)).
    /// `size` is what holding it costs, roughly, in bytes.
    async fn report(&mut self, index: usize, event: Event, size: usize) {
        let alone = self.call.tasks.len() == 1;
        let task = &mut self.call.tasks[index];
        task.held.push_back((event, size));
        task.held_bytes += size;
        self.call.held_bytes += size;
        if alone || task.streamed {
            return self.flush(index).await;
        }
        if task.held.len() >= MAX_HELD_EVENTS {
            // A subject this prolific would hold memory without bound: it
            // streams from now on, and is not run again if the call fails.
            task.streamed = true;
            return self.flush(index).await;
        }
        // Many subjects each under the count may still hold too much
        // together (findings of 1 MiB): the largest holders stream, on the
        // same terms, until the call is back under its cap.
        while self.call.held_bytes > MAX_HELD_BYTES {
            let Some(largest) = (0..self.call.tasks.len())
                .filter(|&i| !self.call.tasks[i].held.is_empty())
                .max_by_key(|&i| (self.call.tasks[i].held_bytes, std::cmp::Reverse(i)))
            else {
                break;
            };
            self.call.tasks[largest].streamed = true;
            self.flush(largest).await;
            if !self.call.tasks[largest].held.is_empty() {
                // The scan is being torn down (see `flush`).
                break;
            }
        }
    }

    /// Send task `index`'s events on. Each leaves the task only once the
    /// channel has room for it, so a call stopped while it waits loses
    /// none: the caller flushes the rest.
    pub async fn flush(&mut self, index: usize) {
        let Some(sender) = self.call.events.clone() else {
            return;
        };
        while !self.call.tasks[index].held.is_empty() {
            // A subject waits for a place among the derived subjects first
            // (see `ScanContext::derived`): nothing leaves the task until
            // it has one.
            let needs_place = matches!(
                self.call.tasks[index].held.front(),
                Some((Event::Subject { permit: None, .. }, _))
            );
            if needs_place && let Some(scan) = self.call.scan.clone() {
                let place = scan.blocked.acquire(&scan.derived).await;
                if let Some((Event::Subject { permit, .. }, _)) =
                    self.call.tasks[index].held.front_mut()
                {
                    *permit = place;
                }
            }
            // The scheduler outlives every call; a closed channel means the
            // scan is being torn down, and the call is about to be dropped.
            let Ok(permit) = sender.reserve().await else {
                return;
            };
            let task = &mut self.call.tasks[index];
            if let Some((event, size)) = task.held.pop_front() {
                task.held_bytes -= size;
                self.call.held_bytes -= size;
                permit.send(event);
            }
        }
    }

    /// End task `index` with `result`: its held events, then its `Done`,
    /// go to the scheduler. A task already ended only sends what is left.
    pub async fn end_task(&mut self, index: usize, result: Result<(), CallError>) {
        let task = &mut self.call.tasks[index];
        if !task.finished {
            task.finished = true;
            let done = Event::Done {
                unit: task.unit,
                plugin: self.call.plugin.clone(),
                result,
                elapsed: self.call.started.elapsed(),
            };
            task.held.push_back((done, 0));
        }
        self.flush(index).await;
    }
}

impl HostTask for HostState {
    async fn subject(&mut self, this: Resource<TaskHandle>) -> wasmtime::Result<wit::Subject> {
        let index = self.table.get(&this)?.0;
        Ok(wit::Subject::from(&self.call.tasks[index].subject))
    }

    async fn emit_finding(
        &mut self,
        this: Resource<TaskHandle>,
        finding: wit::Finding,
    ) -> wasmtime::Result<Result<(), ErrorCode>> {
        if self.call.events.is_none() {
            return Ok(Err(ErrorCode::AccessDenied(
                "describe() may not report".into(),
            )));
        }
        let Some(index) = self.open_task(&this)? else {
            return Ok(Err(ErrorCode::InvalidState));
        };
        let task = &mut self.call.tasks[index];
        if task.findings >= MAX_FINDINGS_PER_CALL {
            return Ok(Err(ErrorCode::LimitExceeded));
        }
        // What the held event costs: its strings, and its data parsed
        // (a JSON tree is a few times its text).
        let size =
            HELD_EVENT_BYTES + finding.kind.len() + finding.title.len() + 2 * finding.data.len();
        let finding = match validate(finding) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        task.findings += 1;
        let event = Event::Finding {
            unit: task.unit,
            plugin: self.call.plugin.clone(),
            finding,
        };
        self.report(index, event, size).await;
        Ok(Ok(()))
    }

    async fn emit_subject(
        &mut self,
        this: Resource<TaskHandle>,
        subject: wit::Subject,
    ) -> wasmtime::Result<Result<(), ErrorCode>> {
        if self.call.events.is_none() {
            return Ok(Err(ErrorCode::AccessDenied(
                "describe() may not report".into(),
            )));
        }
        let Some(index) = self.open_task(&this)? else {
            return Ok(Err(ErrorCode::InvalidState));
        };
        let task = &mut self.call.tasks[index];
        if task.subjects >= MAX_SUBJECTS_PER_CALL {
            return Ok(Err(ErrorCode::LimitExceeded));
        }
        task.subjects += 1;
        let size = HELD_EVENT_BYTES + subject_text_len(&subject);
        let event = Event::Subject {
            unit: task.unit,
            plugin: self.call.plugin.clone(),
            subject: subject.into(),
            permit: None,
        };
        self.report(index, event, size).await;
        Ok(Ok(()))
    }

    async fn finish(
        &mut self,
        task: Resource<TaskHandle>,
        outcome: Result<(), String>,
    ) -> wasmtime::Result<()> {
        let index = self.delete(task)?.0;
        self.end_task(index, outcome.map_err(CallError::Failed))
            .await;
        Ok(())
    }

    async fn drop(&mut self, task: Resource<TaskHandle>) -> wasmtime::Result<()> {
        let index = self.delete(task)?.0;
        let dropped =
            CallError::Failed("the plugin dropped this subject's task without finishing it".into());
        self.end_task(index, Err(dropped)).await;
        Ok(())
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
