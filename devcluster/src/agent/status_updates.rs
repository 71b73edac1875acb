//! An agent's status-update manager: the reliable half of task statuses.
//!
//! Every update an agent generates carries a uuid and is kept per task in
//! order. Only the oldest unacknowledged update of a task is in flight; it
//! is re-sent with exponential backoff (Mesos: 10 s doubling to 10 min)
//! until the scheduler acknowledges its uuid, and only then is the next one
//! forwarded. Pure and synchronous: time comes in as `now`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use agora_proto::mesos::v1::TaskStatus;

/// Identifies a task's update stream: (framework id, task id).
pub type StreamKey = (String, String);

/// Why an acknowledgement was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AckError {
    /// No unacknowledged update exists for that task.
    #[error("no pending status update for task '{task}' of framework '{framework}'")]
    UnknownStream {
        /// Framework id.
        framework: String,
        /// Task id.
        task: String,
    },
    /// The uuid is not the one of the update in flight.
    #[error("unexpected acknowledgement for task '{task}': it does not match the update in flight")]
    UnexpectedUuid {
        /// Task id.
        task: String,
    },
}

#[derive(Debug)]
struct Stream {
    pending: VecDeque<TaskStatus>,
    next_retry: Instant,
    backoff: Duration,
}

/// The per-agent store of unacknowledged updates.
#[derive(Debug)]
pub struct StatusUpdates {
    streams: HashMap<StreamKey, Stream>,
    initial: Duration,
    max: Duration,
}

impl StatusUpdates {
    /// A manager retrying first after `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            streams: HashMap::new(),
            initial,
            max: max.max(initial),
        }
    }

    /// Queues `status`; returns it when it must be forwarded now (nothing
    /// else of that task is in flight).
    pub fn update(
        &mut self,
        key: StreamKey,
        status: TaskStatus,
        now: Instant,
    ) -> Option<TaskStatus> {
        let initial = self.initial;
        let stream = self.streams.entry(key).or_insert_with(|| Stream {
            pending: VecDeque::new(),
            next_retry: now + initial,
            backoff: initial,
        });
        stream.pending.push_back(status);
        if stream.pending.len() == 1 {
            stream.next_retry = now + initial;
            stream.backoff = initial;
            return stream.pending.front().cloned();
        }
        None
    }

    /// Applies an acknowledgement. On success returns the acknowledged
    /// update and the next one to forward now, if any.
    pub fn acknowledge(
        &mut self,
        key: &StreamKey,
        uuid: &[u8],
        now: Instant,
    ) -> Result<(TaskStatus, Option<TaskStatus>), AckError> {
        let stream = self
            .streams
            .get_mut(key)
            .ok_or_else(|| AckError::UnknownStream {
                framework: key.0.clone(),
                task: key.1.clone(),
            })?;
        let matches = stream
            .pending
            .front()
            .is_some_and(|front| front.uuid.as_deref() == Some(uuid));
        if !matches {
            return Err(AckError::UnexpectedUuid {
                task: key.1.clone(),
            });
        }
        let acked = stream
            .pending
            .pop_front()
            .expect("front exists: it matched");
        let next = stream.pending.front().cloned();
        if next.is_none() {
            self.streams.remove(key);
        } else {
            stream.next_retry = now + self.initial;
            stream.backoff = self.initial;
        }
        Ok((acked, next))
    }

    /// The updates whose retry is due at `now`; each is rescheduled with a
    /// doubled backoff (capped).
    pub fn due(&mut self, now: Instant) -> Vec<(StreamKey, TaskStatus)> {
        let mut out = Vec::new();
        for (key, stream) in &mut self.streams {
            if stream.next_retry <= now
                && let Some(front) = stream.pending.front()
            {
                out.push((key.clone(), front.clone()));
                stream.backoff = (stream.backoff * 2).min(self.max);
                stream.next_retry = now + stream.backoff;
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Starts the retries of `framework`'s streams over: the update in
    /// flight of each, to send now, each retried next after the first
    /// interval again. What a Mesos agent's status update manager does
    /// when the master tells the agent that the framework subscribed again
    /// (`Slave::updateFramework` calls `resume()`: "immediately resend any
    /// pending updates").
    pub fn resume(&mut self, framework: &str, now: Instant) -> Vec<(StreamKey, TaskStatus)> {
        let mut out = Vec::new();
        for (key, stream) in &mut self.streams {
            if key.0 == framework
                && let Some(front) = stream.pending.front()
            {
                out.push((key.clone(), front.clone()));
                stream.backoff = self.initial;
                stream.next_retry = now + self.initial;
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// When the next retry is due, if any update is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.streams.values().map(|s| s.next_retry).min()
    }

    /// Whether any update of the task is still unacknowledged.
    pub fn has_pending(&self, key: &StreamKey) -> bool {
        self.streams.contains_key(key)
    }

    /// Forgets every stream of a framework (it was removed).
    pub fn remove_framework(&mut self, framework: &str) {
        self.streams.retain(|key, _| key.0 != framework);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::mesos::v1::{TaskId, TaskState};

    fn status(state: TaskState, uuid: u8) -> TaskStatus {
        TaskStatus {
            task_id: TaskId { value: "t".into() },
            state: state as i32,
            uuid: Some(vec![uuid; 16]),
            ..Default::default()
        }
    }

    fn key() -> StreamKey {
        ("fw".into(), "t".into())
    }

    #[test]
    fn resuming_resends_the_frameworks_updates_in_flight_and_starts_their_retries_over() {
        let start = Instant::now();
        let mut updates = StatusUpdates::new(Duration::from_secs(1), Duration::from_secs(600));
        updates.update(key(), status(TaskState::TaskStarting, 1), start);
        updates.update(key(), status(TaskState::TaskRunning, 2), start);
        let other = ("other".to_string(), "t".to_string());
        updates.update(other, status(TaskState::TaskRunning, 3), start);
        // Retried twice: the next retry is 4 s away.
        let later = start + Duration::from_secs(3);
        assert_eq!(updates.due(start + Duration::from_secs(1)).len(), 2);
        assert_eq!(updates.due(later).len(), 2);

        let resumed = updates.resume("fw", later);
        assert_eq!(resumed.len(), 1, "{resumed:?}");
        assert_eq!(resumed[0].1.uuid, Some(vec![1; 16]), "the update in flight");
        let due = updates.due(later + Duration::from_secs(1));
        assert_eq!(due.len(), 1, "only fw's retries start over: {due:?}");
        assert_eq!(due[0].0, key());
    }

    #[test]
    fn only_one_update_per_task_is_in_flight() {
        let now = Instant::now();
        let mut updates = StatusUpdates::new(Duration::from_secs(10), Duration::from_secs(600));
        let first = updates.update(key(), status(TaskState::TaskStarting, 1), now);
        assert_eq!(first.unwrap().state, TaskState::TaskStarting as i32);
        assert!(
            updates
                .update(key(), status(TaskState::TaskRunning, 2), now)
                .is_none()
        );
        assert!(
            updates
                .update(key(), status(TaskState::TaskFinished, 3), now)
                .is_none()
        );

        assert_eq!(
            updates.acknowledge(&key(), &[2; 16], now),
            Err(AckError::UnexpectedUuid { task: "t".into() })
        );
        let (_, next) = updates.acknowledge(&key(), &[1; 16], now).unwrap();
        assert_eq!(next.unwrap().state, TaskState::TaskRunning as i32);
        let (_, next) = updates.acknowledge(&key(), &[2; 16], now).unwrap();
        assert_eq!(next.unwrap().state, TaskState::TaskFinished as i32);
        let (acked, next) = updates.acknowledge(&key(), &[3; 16], now).unwrap();
        assert_eq!(acked.state, TaskState::TaskFinished as i32);
        assert!(next.is_none());
        assert!(!updates.has_pending(&key()));
        assert!(matches!(
            updates.acknowledge(&key(), &[3; 16], now),
            Err(AckError::UnknownStream { .. })
        ));
    }

    #[test]
    fn retries_with_doubling_backoff_up_to_the_cap() {
        let start = Instant::now();
        let mut updates = StatusUpdates::new(Duration::from_secs(10), Duration::from_secs(35));
        updates.update(key(), status(TaskState::TaskRunning, 1), start);
        assert!(updates.due(start + Duration::from_secs(9)).is_empty());
        let mut retries = Vec::new();
        let mut now = start;
        while now < start + Duration::from_secs(120) {
            now += Duration::from_secs(1);
            if !updates.due(now).is_empty() {
                retries.push((now - start).as_secs());
            }
        }
        // 10, then +20, then +35 (capped) each time.
        assert_eq!(retries, vec![10, 30, 65, 100]);
        assert_eq!(
            updates.next_deadline(),
            Some(start + Duration::from_secs(135))
        );
    }

    #[test]
    fn an_acknowledgement_resets_the_backoff_for_the_next_update() {
        let start = Instant::now();
        let mut updates = StatusUpdates::new(Duration::from_secs(1), Duration::from_secs(600));
        updates.update(key(), status(TaskState::TaskRunning, 1), start);
        updates.update(key(), status(TaskState::TaskFinished, 2), start);
        assert_eq!(updates.due(start + Duration::from_secs(1)).len(), 1);
        assert_eq!(updates.due(start + Duration::from_secs(3)).len(), 1);
        let later = start + Duration::from_secs(4);
        updates.acknowledge(&key(), &[1; 16], later).unwrap();
        assert_eq!(
            updates.next_deadline(),
            Some(later + Duration::from_secs(1))
        );
        updates.remove_framework("fw");
        assert_eq!(updates.next_deadline(), None);
    }
}
