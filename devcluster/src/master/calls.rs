//! Every scheduler call except SUBSCRIBE: static validation, the
//! framework and stream-id checks, and the call's effect, with the HTTP
//! outcome Mesos gives (202, or 200 for UPDATE_FRAMEWORK).

use std::collections::BTreeSet;
use std::time::Duration;

use agora_proto::mesos::v1::framework_info::capability::Type as Capability;
use agora_proto::mesos::v1::scheduler::{Call, call};
use agora_proto::mesos::v1::task_status::Reason;
use agora_proto::mesos::v1::{FrameworkId, TaskState, TaskStatus};

use super::call_log::CallRecord;
use super::framework_info::{effective_roles, validate_framework_info};
use super::model::{Master, Task};
use super::tasks::{master_status, update_event};
use crate::clock::Now;

/// How a call succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallOutcome {
    /// `202 Accepted`: queued.
    Accepted,
    /// `200 OK`: applied (UPDATE_FRAMEWORK).
    Applied,
}

impl CallOutcome {
    /// The HTTP status of the answer.
    pub(crate) fn http_status(self) -> u16 {
        match self {
            CallOutcome::Accepted => 202,
            CallOutcome::Applied => 200,
        }
    }
}

/// Why a call was refused, with the HTTP status Mesos uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallError {
    /// `400 Bad Request`.
    #[error("{0}")]
    BadRequest(String),
    /// `403 Forbidden`.
    #[error("{0}")]
    Forbidden(String),
    /// `501 Not Implemented`.
    #[error("{0}")]
    NotImplemented(String),
}

impl CallError {
    /// The HTTP status of the answer.
    pub(crate) fn http_status(&self) -> u16 {
        match self {
            CallError::BadRequest(_) => 400,
            CallError::Forbidden(_) => 403,
            CallError::NotImplemented(_) => 501,
        }
    }
}

/// The value of an optional framework id: Mesos compares ids by value,
/// and an unset one has the value "".
fn id_value(id: Option<&FrameworkId>) -> &str {
    id.map_or("", |id| id.value.as_str())
}

/// The checks Mesos runs on any call before looking at the framework:
/// type and payload present, ids consistent, acknowledged uuids 16 bytes.
pub fn validate_call(call: &Call) -> Result<(), String> {
    let kind = call.r#type.ok_or("Expecting 'type' to be present")?;
    let kind = call::Type::try_from(kind).unwrap_or(call::Type::Unknown);
    let missing = |name: &str| Err(format!("Expecting '{name}' to be present"));
    if kind == call::Type::Subscribe {
        let Some(subscribe) = &call.subscribe else {
            return missing("subscribe");
        };
        if id_value(subscribe.framework_info.id.as_ref()) != id_value(call.framework_id.as_ref()) {
            return Err("'framework_id' differs from 'subscribe.framework_info.id'".into());
        }
        return Ok(());
    }
    if call.framework_id.is_none() {
        return missing("framework_id");
    }
    match kind {
        call::Type::Accept if call.accept.is_none() => missing("accept"),
        call::Type::Decline if call.decline.is_none() => missing("decline"),
        call::Type::AcceptInverseOffers if call.accept_inverse_offers.is_none() => {
            missing("accept_inverse_offers")
        }
        call::Type::DeclineInverseOffers if call.decline_inverse_offers.is_none() => {
            missing("decline_inverse_offers")
        }
        call::Type::Kill if call.kill.is_none() => missing("kill"),
        call::Type::Shutdown if call.shutdown.is_none() => missing("shutdown"),
        call::Type::Acknowledge => match &call.acknowledge {
            None => missing("acknowledge"),
            Some(ack) if ack.uuid.len() != 16 => Err(format!(
                "Not a valid UUID: expected 16 bytes, got {}",
                ack.uuid.len()
            )),
            Some(_) => Ok(()),
        },
        call::Type::Reconcile if call.reconcile.is_none() => missing("reconcile"),
        call::Type::Message if call.message.is_none() => missing("message"),
        call::Type::Request if call.request.is_none() => missing("request"),
        call::Type::UpdateFramework => match &call.update_framework {
            None => missing("update_framework"),
            Some(update)
                if id_value(update.framework_info.id.as_ref())
                    != id_value(call.framework_id.as_ref()) =>
            {
                Err("'framework_id' differs from 'update_framework.framework_info.id'".into())
            }
            Some(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The ids of the tasks an ACCEPT asks to launch, alone or in groups.
fn launched_ids(accept: &call::Accept) -> Vec<String> {
    let tasks = accept.operations.iter().flat_map(|operation| {
        let alone = operation.launch.iter().flat_map(|l| &l.task_infos);
        let grouped = operation
            .launch_group
            .iter()
            .flat_map(|g| &g.task_group.tasks);
        alone.chain(grouped)
    });
    tasks.map(|task| task.task_id.value.clone()).collect()
}

impl Master {
    /// Handles a validated non-SUBSCRIBE call that came with the
    /// `Mesos-Stream-Id` header value `stream_id`, and records it in the
    /// framework's [`CallLog`](super::call_log::CallLog).
    pub(crate) fn call(
        &mut self,
        now: Now,
        call: Call,
        stream_id: Option<&str>,
    ) -> Result<CallOutcome, CallError> {
        let framework = call
            .framework_id
            .as_ref()
            .map(|id| id.value.clone())
            .unwrap_or_default();
        let kind = call
            .r#type
            .and_then(|t| call::Type::try_from(t).ok())
            .unwrap_or(call::Type::Unknown);
        let known = self.frameworks.contains_key(&framework);
        let tasks = match (&call.accept, &call.kill) {
            (Some(accept), _) => launched_ids(accept),
            (None, Some(kill)) => vec![kill.task_id.value.clone()],
            (None, None) => Vec::new(),
        };
        let mut refused_tasks = Vec::new();
        let outcome = self.dispatch(now, &framework, kind, call, stream_id, &mut refused_tasks);
        if known {
            let record = CallRecord {
                kind,
                stream_id: stream_id.map(str::to_owned),
                received: now.unix,
                status: outcome
                    .as_ref()
                    .map_or_else(CallError::http_status, |o| o.http_status()),
                error: outcome.as_ref().err().map(ToString::to_string),
                tasks,
                refused_tasks,
            };
            self.calls.record(&framework, record);
        }
        outcome
    }

    /// [`Master::call`] without the record; the statuses of launches an
    /// ACCEPT refused go to `refused_tasks`.
    fn dispatch(
        &mut self,
        now: Now,
        framework: &str,
        kind: call::Type,
        call: Call,
        stream_id: Option<&str>,
        refused_tasks: &mut Vec<TaskStatus>,
    ) -> Result<CallOutcome, CallError> {
        let Some(f) = self.frameworks.get(framework) else {
            return Err(CallError::BadRequest("Framework cannot be found".into()));
        };
        let Some(connection) = &f.connection else {
            return Err(CallError::Forbidden("Framework is not subscribed".into()));
        };
        let Some(stream_id) = stream_id else {
            return Err(CallError::BadRequest(
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header".into(),
            ));
        };
        if stream_id != connection.stream_id {
            return Err(CallError::BadRequest(format!(
                "The stream ID '{stream_id}' included in this request didn't match the stream ID currently associated with framework ID {framework}"
            )));
        }
        tracing::debug!(%framework, call = ?kind, "scheduler call");
        match kind {
            call::Type::Teardown => {
                self.remove_framework(now, framework);
            }
            call::Type::Accept => {
                *refused_tasks = self.accept(now, framework, call.accept.unwrap_or_default());
            }
            call::Type::Decline => {
                self.decline(now, framework, call.decline.unwrap_or_default());
            }
            call::Type::Revive => {
                let roles = call.revive.map(|r| r.roles).unwrap_or_default();
                self.revive(framework, roles);
            }
            call::Type::Suppress => {
                let roles = call.suppress.map(|r| r.roles).unwrap_or_default();
                self.suppress(framework, roles);
            }
            call::Type::Kill => {
                let kill = call.kill.unwrap_or_default();
                self.kill(now, framework, kill);
            }
            call::Type::Shutdown => {
                let shutdown = call.shutdown.unwrap_or_default();
                self.shutdown_executor(
                    now,
                    framework,
                    &shutdown.agent_id.value,
                    &shutdown.executor_id.value,
                );
            }
            call::Type::Acknowledge => {
                let ack = call.acknowledge.unwrap_or_default();
                self.acknowledge(
                    now,
                    framework,
                    &ack.agent_id.value,
                    &ack.task_id.value,
                    &ack.uuid,
                );
            }
            call::Type::Reconcile => {
                let tasks = call.reconcile.unwrap_or_default().tasks;
                self.reconcile(now, framework, tasks);
            }
            call::Type::UpdateFramework => {
                let update = call.update_framework.unwrap_or_default();
                self.update_framework(framework, update)?;
                return Ok(CallOutcome::Applied);
            }
            call::Type::Message
            | call::Type::Request
            | call::Type::AcceptInverseOffers
            | call::Type::DeclineInverseOffers
            | call::Type::AcknowledgeOperationStatus
            | call::Type::ReconcileOperations => {
                // Nothing to do: no custom executors receive messages, the
                // allocator ignores requests (as Mesos's does), there are no
                // inverse offers and no operations with feedback.
            }
            call::Type::Subscribe => {
                return Err(CallError::BadRequest("Unexpected 'SUBSCRIBE' call".into()));
            }
            call::Type::Unknown => {
                return Err(CallError::NotImplemented("Unknown call type".into()));
            }
        }
        Ok(CallOutcome::Accepted)
    }

    /// Resolves a REVIVE/SUPPRESS role list (empty = all the framework's
    /// roles); `None` if any role is not one of the framework's, in which
    /// case Mesos drops the whole call.
    fn resolve_roles(&self, framework: &str, roles: Vec<String>) -> Option<Vec<String>> {
        let f = self.frameworks.get(framework)?;
        if roles.is_empty() {
            return Some(f.roles.clone());
        }
        if let Some(bad) = roles.iter().find(|r| !f.roles.contains(r)) {
            tracing::warn!(%framework, role = %bad, "dropping call naming a role the framework is not subscribed to");
            return None;
        }
        Some(roles)
    }

    fn revive(&mut self, framework: &str, roles: Vec<String>) {
        let Some(roles) = self.resolve_roles(framework, roles) else {
            return;
        };
        if let Some(f) = self.frameworks.get_mut(framework) {
            for role in &roles {
                f.suppressed.remove(role);
            }
        }
        self.allocator.filters.clear_roles(framework, &roles);
        self.allocation_requested = true;
    }

    fn suppress(&mut self, framework: &str, roles: Vec<String>) {
        let Some(roles) = self.resolve_roles(framework, roles) else {
            return;
        };
        if let Some(f) = self.frameworks.get_mut(framework) {
            f.suppressed.extend(roles);
        }
    }

    fn kill(&mut self, now: Now, framework: &str, kill: call::Kill) {
        let key = (framework.to_string(), kill.task_id.value.clone());
        let Some(task) = self.tasks.get(&key) else {
            tracing::info!(%framework, task = %key.1, "kill of an unknown task: reconciling it");
            self.reconcile(
                now,
                framework,
                vec![call::reconcile::Task {
                    task_id: kill.task_id,
                    agent_id: kill.agent_id,
                }],
            );
            return;
        };
        if kill
            .agent_id
            .as_ref()
            .is_some_and(|a| a.value != task.agent)
        {
            tracing::warn!(%framework, task = %key.1, "kill names another agent than the task's");
            return;
        }
        let grace = kill
            .kill_policy
            .and_then(|p| p.grace_period)
            .map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)));
        self.kill_task(now, &key, grace);
    }

    fn shutdown_executor(&mut self, now: Now, framework: &str, agent: &str, executor: &str) {
        let keys: Vec<(String, String)> = self
            .tasks
            .iter()
            .filter(|(k, t)| k.0 == framework && t.agent == agent && t.executor == executor)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.kill_task(now, &key, None);
        }
    }

    /// Answers RECONCILE (explicit when `tasks` is non-empty, else
    /// implicit) with master-generated updates: REASON_RECONCILIATION,
    /// source MASTER, no uuid.
    pub(super) fn reconcile(
        &mut self,
        now: Now,
        framework: &str,
        tasks: Vec<call::reconcile::Task>,
    ) {
        let partition_aware = self
            .frameworks
            .get(framework)
            .is_some_and(|f| f.has(Capability::PartitionAware));
        let latest = |task: &Task| {
            let state = task.status_update_state.unwrap_or(task.state);
            let mut status = master_status(
                now,
                &task.info.task_id.value,
                Some(&task.agent),
                state,
                Reason::Reconciliation,
                "Reconciliation: Latest task state".into(),
            );
            status.executor_id = task
                .group
                .as_ref()
                .map(|e| agora_proto::mesos::v1::ExecutorId { value: e.clone() });
            status
        };
        let mut answers = Vec::new();
        if tasks.is_empty() {
            answers.extend(
                self.tasks
                    .values()
                    .filter(|t| t.framework == framework)
                    .map(latest),
            );
        } else {
            for t in tasks {
                let key = (framework.to_string(), t.task_id.value.clone());
                let agent = t.agent_id.as_ref().map(|a| a.value.clone());
                let status = match self.tasks.get(&key) {
                    Some(task) => latest(task),
                    None => match agent.as_deref() {
                        Some(agent) if self.is_gone(agent) => master_status(
                            now,
                            &t.task_id.value,
                            Some(agent),
                            if partition_aware {
                                TaskState::TaskGoneByOperator
                            } else {
                                TaskState::TaskLost
                            },
                            Reason::Reconciliation,
                            "Reconciliation: Task is gone".into(),
                        ),
                        Some(agent) if self.agents.contains_key(agent) => master_status(
                            now,
                            &t.task_id.value,
                            Some(agent),
                            if partition_aware {
                                TaskState::TaskGone
                            } else {
                                TaskState::TaskLost
                            },
                            Reason::Reconciliation,
                            "Reconciliation: Task is unknown to the agent".into(),
                        ),
                        agent => master_status(
                            now,
                            &t.task_id.value,
                            agent,
                            if partition_aware {
                                TaskState::TaskUnknown
                            } else {
                                TaskState::TaskLost
                            },
                            Reason::Reconciliation,
                            "Reconciliation: Task is unknown".into(),
                        ),
                    },
                };
                answers.push(status);
            }
        }
        for status in answers {
            self.send(framework, update_event(status));
        }
    }

    fn update_framework(
        &mut self,
        framework: &str,
        update: call::UpdateFramework,
    ) -> Result<(), CallError> {
        let info = update.framework_info;
        validate_framework_info(&info, &update.suppressed_roles).map_err(CallError::BadRequest)?;
        let f = self
            .frameworks
            .get(framework)
            .expect("caller checked the framework");
        if info.user != f.info.user {
            return Err(CallError::BadRequest(
                "Updating 'FrameworkInfo.user' is unsupported".into(),
            ));
        }
        if info.principal != f.info.principal {
            return Err(CallError::BadRequest(
                "Changing framework's principal is not allowed".into(),
            ));
        }
        if info.checkpoint.unwrap_or(false) != f.info.checkpoint.unwrap_or(false) {
            return Err(CallError::BadRequest(
                "Updating 'FrameworkInfo.checkpoint' is unsupported".into(),
            ));
        }
        let roles = effective_roles(&info);
        let suppressed: BTreeSet<String> = update.suppressed_roles.into_iter().collect();
        let removed: Vec<String> = f
            .roles
            .iter()
            .filter(|r| !roles.contains(r))
            .cloned()
            .collect();
        let unsuppressed: Vec<String> = f
            .suppressed
            .iter()
            .filter(|r| !suppressed.contains(*r))
            .cloned()
            .collect();
        let stale: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| o.framework == framework && removed.contains(&o.role))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.remove_offer(&id, true);
        }
        self.allocator.filters.clear_roles(framework, &unsuppressed);
        self.allocator.filters.clear_roles(framework, &removed);
        let f = self.frameworks.get_mut(framework).expect("still there");
        f.info = info;
        f.roles = roles;
        f.suppressed = suppressed;
        tracing::info!(%framework, roles = ?f.roles, "framework updated");
        self.allocation_requested = true;
        Ok(())
    }
}
