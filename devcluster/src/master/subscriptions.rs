//! Frameworks and their subscriptions: SUBSCRIBE (new or failing over),
//! the end of a stream and the failover timeout it starts, and removal.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use agora_proto::mesos::v1::scheduler::{Event, call, event};
use agora_proto::mesos::v1::{FrameworkId, FrameworkInfo, TaskState};

use super::call_log::CallRecord;
use super::framework_info::{effective_roles, requested_id, validate_framework_info};
use super::model::{
    Connection, Effect, Framework, MAX_COMPLETED_FRAMEWORKS, MAX_COMPLETED_TASKS, Master,
    error_event, event_of,
};
use crate::clock::Now;

impl Master {
    /// Handles a SUBSCRIBE whose HTTP-level checks passed. The SUBSCRIBED
    /// event (or an ERROR, after which the stream is closed) goes to
    /// `connection`. Returns the framework id on success. The call is
    /// recorded in the framework's [`CallLog`](super::call_log::CallLog)
    /// (a refused one only when it names a framework the master knows).
    pub(crate) fn subscribe(
        &mut self,
        now: Now,
        subscribe: call::Subscribe,
        connection: Connection,
    ) -> Option<String> {
        let stream_id = connection.stream_id.clone();
        let requested = requested_id(&subscribe.framework_info).map(str::to_string);
        let outcome = self.subscribe_framework(now, subscribe, connection);
        let framework = match &outcome {
            Ok(id) => Some(id.clone()),
            Err(_) => requested.filter(|id| self.frameworks.contains_key(id)),
        };
        if let Some(framework) = &framework {
            let record = CallRecord {
                kind: call::Type::Subscribe,
                stream_id: Some(stream_id),
                received: now.unix,
                status: 200,
                error: outcome.as_ref().err().cloned(),
                tasks: Vec::new(),
                refused_tasks: Vec::new(),
            };
            self.calls.record(framework, record);
        }
        outcome.ok()
    }

    /// [`Master::subscribe`] without the record; why it was refused.
    fn subscribe_framework(
        &mut self,
        now: Now,
        subscribe: call::Subscribe,
        connection: Connection,
    ) -> Result<String, String> {
        let info = subscribe.framework_info;
        let refuse = |connection: Connection, message: String| {
            tracing::info!(%message, "refusing subscription");
            let _ = connection.events.send(error_event(&message));
            Err(message)
        };
        if let Err(message) = validate_framework_info(&info, &subscribe.suppressed_roles) {
            return refuse(connection, message);
        }
        let requested = requested_id(&info).map(str::to_string);
        if let Some(id) = &requested
            && self.removed_frameworks.contains(id)
        {
            return refuse(connection, "Framework has been removed".into());
        }
        let roles = effective_roles(&info);
        let suppressed: BTreeSet<String> = subscribe.suppressed_roles.into_iter().collect();
        let id = match requested {
            Some(id) if self.frameworks.contains_key(&id) => {
                self.failover(now, &id, info, roles, suppressed, connection);
                id
            }
            requested => {
                let id = requested.unwrap_or_else(|| {
                    self.next_framework += 1;
                    format!("{}-{:04}", self.id, self.next_framework - 1)
                });
                let mut info = info;
                info.id = Some(FrameworkId { value: id.clone() });
                tracing::info!(framework = %id, name = %info.name, ?roles, "framework subscribed");
                self.frameworks.insert(
                    id.clone(),
                    Framework {
                        id: id.clone(),
                        info,
                        roles,
                        suppressed,
                        connection: Some(connection),
                        next_heartbeat: None,
                        failover_deadline: None,
                        registered_time: now.unix,
                        reregistered_time: None,
                        unregistered_time: None,
                        completed_tasks: VecDeque::new(),
                    },
                );
                id
            }
        };
        let subscribed = Event {
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId { value: id.clone() },
                heartbeat_interval_seconds: Some(self.heartbeat_interval.as_secs_f64()),
                master_info: Some(self.info.clone()),
            }),
            ..event_of(event::Type::Subscribed)
        };
        self.send(&id, subscribed);
        self.resume_status_updates(now, &id);
        if let Some(framework) = self.frameworks.get_mut(&id) {
            framework.next_heartbeat = Some(now.instant + self.heartbeat_interval);
        }
        self.allocation_requested = true;
        Ok(id)
    }

    fn failover(
        &mut self,
        now: Now,
        id: &str,
        mut info: FrameworkInfo,
        roles: Vec<String>,
        suppressed: BTreeSet<String>,
        connection: Connection,
    ) {
        self.drop_offers_of(id, false);
        let framework = self.frameworks.get_mut(id).expect("caller checked");
        if let Some(old) = framework.connection.take() {
            tracing::info!(framework = %id, "framework failed over: closing the old stream");
            let _ = old.events.send(error_event("Framework failed over"));
        }
        // Mesos ignores changes to `user` and `checkpoint` on re-subscribe.
        info.user = framework.info.user.clone();
        info.checkpoint = framework.info.checkpoint;
        framework.info = info;
        framework.roles = roles;
        framework.suppressed = suppressed;
        framework.connection = Some(connection);
        framework.failover_deadline = None;
        framework.reregistered_time = Some(now.unix);
        framework.unregistered_time = None;
    }

    /// The subscription with `stream_id` ended (the client went away or the
    /// master closed it). Starts the failover timeout if it was current.
    pub(crate) fn disconnected(&mut self, now: Now, framework: &str, stream_id: &str) {
        let Some(f) = self.frameworks.get_mut(framework) else {
            return;
        };
        if f.connection
            .as_ref()
            .is_none_or(|c| c.stream_id != stream_id)
        {
            return;
        }
        f.connection = None;
        f.next_heartbeat = None;
        f.unregistered_time = Some(now.unix);
        let timeout = f.info.failover_timeout.unwrap_or(0.0).max(0.0);
        let timeout = Duration::try_from_secs_f64(timeout).unwrap_or(Duration::MAX);
        f.failover_deadline = Some(
            now.instant
                .checked_add(timeout)
                .unwrap_or(now.instant + Duration::from_secs(1 << 40)),
        );
        tracing::info!(%framework, failover_timeout = ?timeout, "framework disconnected");
        self.drop_offers_of(framework, false);
    }

    /// Removes a framework at `now`: kills its tasks, drops its offers and
    /// filters, closes its stream and retires its id.
    pub(super) fn remove_framework(&mut self, now: Now, framework: &str) {
        let Some(mut f) = self.frameworks.remove(framework) else {
            return;
        };
        tracing::info!(%framework, "removing framework");
        self.drop_offers_of(framework, false);
        let keys: Vec<(String, String)> = self
            .tasks
            .keys()
            .filter(|(fw, _)| fw == framework)
            .cloned()
            .collect();
        for key in keys {
            if let Some(mut task) = self.tasks.remove(&key) {
                if !task.is_terminal() {
                    self.effects.push(Effect::Kill {
                        framework: key.0.clone(),
                        task: key.1.clone(),
                        grace: Duration::ZERO,
                    });
                    self.release_task_resources(&mut task);
                    task.state = TaskState::TaskKilled;
                }
                f.completed_tasks.push_back(task);
            }
        }
        let executors: Vec<_> = self
            .executors
            .keys()
            .filter(|(_, fw, _)| fw == framework)
            .cloned()
            .collect();
        for key in executors {
            if let Some(executor) = self.executors.remove(&key)
                && let Some(agent) = self.agents.get_mut(&key.0)
            {
                agent.available.add_all(&executor.resources);
            }
        }
        for agent in self.agents.values_mut() {
            agent.updates.remove_framework(framework);
        }
        self.allocator.filters.remove_framework(framework);
        f.connection = None;
        f.unregistered_time.get_or_insert(now.unix);
        while f.completed_tasks.len() > MAX_COMPLETED_TASKS {
            f.completed_tasks.pop_front();
        }
        self.removed_frameworks.insert(framework.to_string());
        self.completed_frameworks.push_back(f);
        while self.completed_frameworks.len() > MAX_COMPLETED_FRAMEWORKS {
            self.completed_frameworks.pop_front();
        }
    }

    /// Closes every subscription stream (shutdown); frameworks stay known.
    pub(crate) fn close_all_streams(&mut self) {
        for f in self.frameworks.values_mut() {
            f.connection = None;
            f.next_heartbeat = None;
        }
    }
}
