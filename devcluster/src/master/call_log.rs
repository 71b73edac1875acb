//! The devcluster's own record of the scheduler calls each framework sent,
//! so that a test can check what a framework did: which calls, from which
//! connection (its `Mesos-Stream-Id`), when, how the master answered, and
//! which tasks an ACCEPT asked to launch (and which of them it refused)
//! or a KILL named. A real master keeps no such
//! record; it is served at `GET /devcluster/calls`.
//!
//! Calls that fail the static checks of the HTTP layer (a body that does
//! not decode, a missing payload) never reach the master and are not
//! recorded; nor are calls naming a framework the master does not know.

use std::collections::{BTreeMap, VecDeque};

use agora_proto::mesos::v1::scheduler::call;
use agora_proto::mesos::v1::{TaskState, TaskStatus, task_status::Reason};
use serde_json::{Value, json};

/// How many frameworks have a record; the one whose last call is oldest
/// loses its record when another framework's first call comes.
pub(super) const FRAMEWORKS: usize = 100;

/// One call as the master received and answered it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CallRecord {
    /// The call's type.
    pub(super) kind: call::Type,
    /// The `Mesos-Stream-Id` the call came with; for a SUBSCRIBE, the id
    /// of the stream it opened.
    pub(super) stream_id: Option<String>,
    /// Unix time the master handled it.
    pub(super) received: f64,
    /// The HTTP status of the answer.
    pub(super) status: u16,
    /// Why it was refused, when it was.
    pub(super) error: Option<String>,
    /// The ids of the tasks an ACCEPT asked to launch, or the task a KILL
    /// named.
    pub(super) tasks: Vec<String>,
    /// The statuses the master sent instead of launching tasks of an
    /// ACCEPT (invalid offers, a task beyond what the offers hold, ...).
    pub(super) refused_tasks: Vec<TaskStatus>,
}

/// The recent calls of one framework.
#[derive(Debug, Default)]
struct FrameworkCalls {
    calls: VecDeque<CallRecord>,
    /// Calls dropped to keep the record bounded.
    dropped: u64,
}

/// The recent calls of every framework.
#[derive(Debug)]
pub(super) struct CallLog {
    frameworks: BTreeMap<String, FrameworkCalls>,
    per_framework: usize,
    max_frameworks: usize,
}

impl CallLog {
    /// An empty record keeping `per_framework` calls of at most
    /// `max_frameworks` frameworks.
    pub(super) fn new(per_framework: usize, max_frameworks: usize) -> Self {
        Self {
            frameworks: BTreeMap::new(),
            per_framework,
            max_frameworks,
        }
    }

    /// Records a call of `framework`.
    pub(super) fn record(&mut self, framework: &str, record: CallRecord) {
        if !self.frameworks.contains_key(framework) && self.frameworks.len() >= self.max_frameworks
        {
            let stalest = self
                .frameworks
                .iter()
                .min_by(|a, b| last_call(a.1).total_cmp(&last_call(b.1)))
                .map(|(id, _)| id.clone());
            if let Some(id) = stalest {
                self.frameworks.remove(&id);
            }
        }
        let calls = self.frameworks.entry(framework.to_owned()).or_default();
        calls.calls.push_back(record);
        while calls.calls.len() > self.per_framework {
            calls.calls.pop_front();
            calls.dropped += 1;
        }
    }

    /// The record as `GET /devcluster/calls` serves it:
    /// `{"calls_per_framework": N, "frameworks": {"<id>": {"dropped": n,
    /// "calls": [{"type", "stream_id", "received", "status", "error"?,
    /// "tasks"?, "refused_tasks"?}, ...]}}}`, oldest call first.
    pub(super) fn to_json(&self) -> Value {
        let frameworks: serde_json::Map<String, Value> = self
            .frameworks
            .iter()
            .map(|(id, calls)| {
                let list: Vec<Value> = calls.calls.iter().map(record_json).collect();
                (
                    id.clone(),
                    json!({ "dropped": calls.dropped, "calls": list }),
                )
            })
            .collect();
        json!({
            "calls_per_framework": self.per_framework,
            "frameworks": frameworks,
        })
    }
}

fn last_call(calls: &FrameworkCalls) -> f64 {
    calls.calls.back().map_or(f64::NEG_INFINITY, |c| c.received)
}

fn record_json(record: &CallRecord) -> Value {
    let mut value = json!({
        "type": record.kind.as_str_name(),
        "stream_id": record.stream_id,
        "received": record.received,
        "status": record.status,
    });
    if let Some(error) = &record.error {
        value["error"] = json!(error);
    }
    if !record.tasks.is_empty() {
        value["tasks"] = json!(record.tasks);
    }
    if !record.refused_tasks.is_empty() {
        let refused: Vec<Value> = record
            .refused_tasks
            .iter()
            .map(|status| {
                json!({
                    "task_id": status.task_id.value,
                    "state": TaskState::try_from(status.state)
                        .map_or("TASK_UNKNOWN", |s| s.as_str_name()),
                    "reason": status
                        .reason
                        .and_then(|r| Reason::try_from(r).ok())
                        .map_or("", |r| r.as_str_name()),
                    "message": status.message.clone().unwrap_or_default(),
                })
            })
            .collect();
        value["refused_tasks"] = json!(refused);
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(kind: call::Type, received: f64) -> CallRecord {
        CallRecord {
            kind,
            stream_id: Some("s1".into()),
            received,
            status: 202,
            error: None,
            tasks: Vec::new(),
            refused_tasks: Vec::new(),
        }
    }

    #[test]
    fn keeps_the_latest_calls_of_each_framework_and_counts_the_dropped() {
        let mut log = CallLog::new(2, 10);
        log.record("f1", call(call::Type::Subscribe, 1.0));
        log.record("f1", call(call::Type::Accept, 2.0));
        log.record("f1", call(call::Type::Decline, 3.0));
        log.record("f2", call(call::Type::Subscribe, 4.0));
        let json = log.to_json();
        let f1 = &json["frameworks"]["f1"];
        assert_eq!(f1["dropped"], 1);
        let kinds: Vec<&str> = f1["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["ACCEPT", "DECLINE"]);
        assert_eq!(json["frameworks"]["f2"]["calls"][0]["received"], 4.0);
        assert_eq!(json["calls_per_framework"], 2);
    }

    #[test]
    fn a_record_of_no_calls_counts_them_all_as_dropped() {
        let mut log = CallLog::new(0, 10);
        log.record("f", call(call::Type::Subscribe, 1.0));
        log.record("f", call(call::Type::Revive, 2.0));
        let json = log.to_json();
        assert_eq!(json["frameworks"]["f"]["dropped"], 2);
        assert_eq!(json["frameworks"]["f"]["calls"], json!([]));
    }

    #[test]
    fn the_framework_quiet_the_longest_loses_its_record_first() {
        let mut log = CallLog::new(10, 2);
        log.record("old", call(call::Type::Subscribe, 1.0));
        log.record("busy", call(call::Type::Subscribe, 2.0));
        log.record("old", call(call::Type::Revive, 5.0));
        log.record("busy", call(call::Type::Revive, 3.0));
        log.record("new", call(call::Type::Subscribe, 6.0));
        let json = log.to_json();
        let ids: Vec<&String> = json["frameworks"].as_object().unwrap().keys().collect();
        assert_eq!(ids, ["new", "old"]);
    }

    #[test]
    fn errors_and_refused_launches_are_shown_only_when_there_are_some() {
        let mut log = CallLog::new(10, 10);
        log.record("f", call(call::Type::Accept, 1.0));
        let refused = TaskStatus {
            task_id: agora_proto::mesos::v1::TaskId { value: "t1".into() },
            state: TaskState::TaskError as i32,
            reason: Some(Reason::TaskInvalid as i32),
            message: Some("Task uses more resources".into()),
            ..Default::default()
        };
        log.record(
            "f",
            CallRecord {
                status: 400,
                error: Some("bad".into()),
                tasks: vec!["t1".into()],
                refused_tasks: vec![refused],
                ..call(call::Type::Accept, 2.0)
            },
        );
        let json = log.to_json();
        let calls = &json["frameworks"]["f"]["calls"];
        assert!(calls[0].get("error").is_none());
        assert!(calls[0].get("refused_tasks").is_none());
        assert!(calls[0].get("tasks").is_none());
        assert_eq!(calls[1]["error"], "bad");
        assert_eq!(calls[1]["tasks"], json!(["t1"]));
        assert_eq!(
            calls[1]["refused_tasks"][0],
            json!({
                "task_id": "t1",
                "state": "TASK_ERROR",
                "reason": "REASON_TASK_INVALID",
                "message": "Task uses more resources",
            })
        );
    }
}
