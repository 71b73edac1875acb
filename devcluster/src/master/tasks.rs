//! Tasks on agents: launching, the statuses agents generate, their
//! reliable delivery and acknowledgement, and what terminal states free.

use std::time::Duration;

use agora_proto::mesos::v1::framework_info::capability::Type as Capability;
use agora_proto::mesos::v1::scheduler::{Event, event};
use agora_proto::mesos::v1::task_status::{Reason, Source};
use agora_proto::mesos::v1::{AgentId, ExecutorId, TaskState, TaskStatus};

use super::model::{Effect, MAX_COMPLETED_TASKS, Master, Task, event_of, is_terminal, random_uuid};
use crate::agent::process::{LaunchSpec, ProcessEvent};
use crate::agent::simulated;
use crate::clock::Now;

/// The command executor's default grace between SIGTERM and SIGKILL.
const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// A master-generated status at `now`: source MASTER, no uuid, never
/// acknowledged.
pub(super) fn master_status(
    now: Now,
    task_id: &str,
    agent: Option<&str>,
    state: TaskState,
    reason: Reason,
    message: String,
) -> TaskStatus {
    TaskStatus {
        task_id: agora_proto::mesos::v1::TaskId {
            value: task_id.to_string(),
        },
        state: state as i32,
        message: Some(message),
        source: Some(Source::Master as i32),
        reason: Some(reason as i32),
        agent_id: agent.map(|a| AgentId {
            value: a.to_string(),
        }),
        timestamp: Some(now.unix),
        ..Default::default()
    }
}

pub(super) fn update_event(status: TaskStatus) -> Event {
    Event {
        update: Some(event::Update { status }),
        ..event_of(event::Type::Update)
    }
}

impl Master {
    /// Records a launched task and starts it (STARTING now; RUNNING once
    /// its process runs, or at once when simulated).
    pub(super) fn start_task(&mut self, now: Now, mut task: Task) {
        let key = (task.framework.clone(), task.info.task_id.value.clone());
        let command = task
            .info
            .command
            .clone()
            .or_else(|| task.info.executor.as_ref().and_then(|e| e.command.clone()))
            .unwrap_or_default();
        if self.simulate {
            let plan = simulated::plan(Some(&command));
            task.simulated_exit = plan.exit_code;
            task.simulated_end = Some(now.instant + plan.duration);
        }
        let spec = LaunchSpec {
            framework: task.framework.clone(),
            task: key.1.clone(),
            agent: task.agent.clone(),
            executor: task.executor.clone(),
            command,
            sandbox: self
                .work_dir
                .join(&task.agent)
                .join(&task.framework)
                .join(&key.1),
        };
        self.tasks.insert(key.clone(), task);
        self.agent_update(now, &key, TaskState::TaskStarting, None, None);
        if self.simulate {
            self.agent_update(now, &key, TaskState::TaskRunning, None, None);
        } else {
            self.effects.push(Effect::Launch(spec));
        }
    }

    /// A status generated on the task's agent (by its executor): kept by
    /// the agent's status-update manager and forwarded reliably.
    pub(super) fn agent_update(
        &mut self,
        now: Now,
        key: &(String, String),
        state: TaskState,
        reason: Option<Reason>,
        message: Option<String>,
    ) {
        self.reliable_update(now, key, (state, Source::Executor), reason, message);
    }

    /// A status the agent sends reliably (with a uuid), from `source`:
    /// the executor, or the agent itself (QoS preemption).
    pub(super) fn reliable_update(
        &mut self,
        now: Now,
        key: &(String, String),
        (state, source): (TaskState, Source),
        reason: Option<Reason>,
        message: Option<String>,
    ) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        if task.is_terminal() {
            return;
        }
        let status = TaskStatus {
            task_id: task.info.task_id.clone(),
            state: state as i32,
            message,
            source: Some(source as i32),
            reason: reason.map(|r| r as i32),
            agent_id: Some(AgentId {
                value: task.agent.clone(),
            }),
            executor_id: Some(ExecutorId {
                value: task.executor.clone(),
            }),
            timestamp: Some(now.unix),
            uuid: Some(random_uuid(&mut self.rng).as_bytes().to_vec()),
            ..Default::default()
        };
        task.state = state;
        task.statuses.push(status.clone());
        if is_terminal(state) {
            task.simulated_end = None;
        }
        let agent = task.agent.clone();
        let group = task.group.clone();
        if is_terminal(state)
            && let Some(mut task) = self.tasks.remove(key)
        {
            self.release_task_resources(&mut task);
            self.tasks.insert(key.clone(), task);
            if let Some(executor) = &group
                && matches!(state, TaskState::TaskFailed | TaskState::TaskKilled)
            {
                self.kill_group_siblings(now, key, &agent, executor);
            }
        }
        let forward = self
            .agents
            .get_mut(&agent)
            .and_then(|a| a.updates.update(key.clone(), status, now.instant));
        if let Some(status) = forward {
            self.forward(status, &key.0);
        }
    }

    /// Hands an agent's update to the framework (if connected; otherwise
    /// the agent's retries bring it later).
    fn forward(&mut self, status: TaskStatus, framework: &str) {
        let key = (framework.to_string(), status.task_id.value.clone());
        if let Some(task) = self.tasks.get_mut(&key) {
            task.status_update_state = TaskState::try_from(status.state).ok();
        }
        self.send(framework, update_event(status));
    }

    /// `framework` subscribed again: every agent resends its pending
    /// updates at once and starts their retries over, as a Mesos agent
    /// does when the master tells it of the framework's new subscription
    /// (see [`StatusUpdates::resume`](crate::agent::status_updates::StatusUpdates::resume)).
    /// Without it an update whose acknowledgement died with the framework's
    /// last connection waits out its backoff, which after a few failovers
    /// is longer than a minute.
    pub(super) fn resume_status_updates(&mut self, now: Now, framework: &str) {
        let mut pending = Vec::new();
        for agent in self.agents.values_mut() {
            pending.extend(agent.updates.resume(framework, now.instant));
        }
        for (_, status) in pending {
            self.forward(status, framework);
        }
    }

    pub(super) fn retry_status_updates(&mut self, now: Now) {
        let mut due = Vec::new();
        for agent in self.agents.values_mut() {
            due.extend(agent.updates.due(now.instant));
        }
        for ((framework, _), status) in due {
            tracing::debug!(%framework, task = %status.task_id.value, "retrying status update");
            self.forward(status, &framework);
        }
    }

    /// Applies an ACKNOWLEDGE: the next update of the task may go, and a
    /// task whose terminal update is acknowledged is forgotten.
    pub(super) fn acknowledge(
        &mut self,
        now: Now,
        framework: &str,
        agent: &str,
        task_id: &str,
        uuid: &[u8],
    ) {
        let key = (framework.to_string(), task_id.to_string());
        let Some(a) = self.agents.get_mut(agent) else {
            tracing::warn!(%framework, %agent, task = %task_id, "acknowledgement for an unknown agent");
            return;
        };
        match a.updates.acknowledge(&key, uuid, now.instant) {
            Err(error) => {
                tracing::warn!(%framework, task = %task_id, %error, "ignoring acknowledgement")
            }
            Ok((acked, next)) => {
                if let Some(next) = next {
                    self.forward(next, framework);
                }
                let terminal = TaskState::try_from(acked.state).is_ok_and(is_terminal);
                if terminal
                    && !self
                        .agents
                        .get(agent)
                        .is_some_and(|a| a.updates.has_pending(&key))
                {
                    self.complete_task(&key);
                }
            }
        }
    }

    /// Moves a terminal task to its framework's completed tasks.
    fn complete_task(&mut self, key: &(String, String)) {
        let Some(mut task) = self.tasks.remove(key) else {
            return;
        };
        self.release_task_resources(&mut task);
        if let Some(f) = self.frameworks.get_mut(&key.0) {
            f.completed_tasks.push_back(task);
            while f.completed_tasks.len() > MAX_COMPLETED_TASKS {
                f.completed_tasks.pop_front();
            }
        }
    }

    /// Returns a task's resources (and its group executor's, when the
    /// group is done) to the agent. Idempotent.
    pub(super) fn release_task_resources(&mut self, task: &mut Task) {
        if task.resources_released {
            return;
        }
        task.resources_released = true;
        if let Some(agent) = self.agents.get_mut(&task.agent) {
            agent.available.add_all(&task.resources);
        }
        if let Some(executor_id) = &task.group {
            let key = (
                task.agent.clone(),
                task.framework.clone(),
                executor_id.clone(),
            );
            let done = self.executors.get_mut(&key).is_some_and(|executor| {
                executor.tasks.retain(|t| *t != task.info.task_id.value);
                executor.tasks.is_empty()
            });
            if done && let Some(executor) = self.executors.remove(&key) {
                if let Some(agent) = self.agents.get_mut(&task.agent) {
                    agent.available.add_all(&executor.resources);
                }
                let failure = Event {
                    failure: Some(event::Failure {
                        agent_id: Some(AgentId {
                            value: task.agent.clone(),
                        }),
                        executor_id: Some(ExecutorId {
                            value: executor_id.clone(),
                        }),
                        status: Some(0),
                    }),
                    ..event_of(event::Type::Failure)
                };
                self.send(&task.framework, failure);
            }
        }
    }

    fn kill_group_siblings(
        &mut self,
        now: Now,
        key: &(String, String),
        agent: &str,
        executor: &str,
    ) {
        let siblings: Vec<(String, String)> = self
            .tasks
            .iter()
            .filter(|(k, t)| {
                *k != key
                    && t.agent == agent
                    && t.group.as_deref() == Some(executor)
                    && !t.is_terminal()
            })
            .map(|(k, _)| k.clone())
            .collect();
        for sibling in siblings {
            self.kill_task(now, &sibling, None);
        }
    }

    /// Kills a live task the way its executor would: TASK_KILLING first
    /// for frameworks that understand it, then the process is stopped (or
    /// the simulated task ends) and TASK_KILLED follows.
    pub(super) fn kill_task(&mut self, now: Now, key: &(String, String), grace: Option<Duration>) {
        let killing_state = self
            .frameworks
            .get(&key.0)
            .is_some_and(|f| f.has(Capability::TaskKillingState));
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        if task.is_terminal() {
            return;
        }
        let first_kill = !task.killing;
        task.killing = true;
        let grace = grace
            .or_else(|| {
                task.info
                    .kill_policy
                    .as_ref()
                    .and_then(|p| p.grace_period.as_ref())
                    .map(|d| Duration::from_nanos(u64::try_from(d.nanoseconds).unwrap_or(0)))
            })
            .unwrap_or(DEFAULT_KILL_GRACE);
        if first_kill && killing_state {
            self.agent_update(now, key, TaskState::TaskKilling, None, None);
        }
        if self.simulate {
            self.agent_update(
                now,
                key,
                TaskState::TaskKilled,
                None,
                Some("Command terminated with signal Terminated".into()),
            );
        } else {
            self.effects.push(Effect::Kill {
                framework: key.0.clone(),
                task: key.1.clone(),
                grace,
            });
        }
    }

    /// What a task's process did.
    pub(crate) fn process_event(
        &mut self,
        now: Now,
        framework: &str,
        task: &str,
        event: ProcessEvent,
    ) {
        let key = (framework.to_string(), task.to_string());
        let killing = self.tasks.get(&key).is_some_and(|t| t.killing);
        match event {
            ProcessEvent::Running => {
                self.agent_update(now, &key, TaskState::TaskRunning, None, None);
            }
            ProcessEvent::LaunchFailed(message) => self.agent_update(
                now,
                &key,
                TaskState::TaskFailed,
                Some(Reason::ContainerLaunchFailed),
                Some(message),
            ),
            ProcessEvent::Exited { code, signal } => {
                let (state, message) = match (code, signal) {
                    _ if killing => (
                        TaskState::TaskKilled,
                        match signal {
                            Some(s) => format!("Command terminated with signal {}", signal_name(s)),
                            None => format!("Command exited with status {}", code.unwrap_or(0)),
                        },
                    ),
                    (Some(0), _) => (
                        TaskState::TaskFinished,
                        "Command exited with status 0".into(),
                    ),
                    (Some(code), _) => (
                        TaskState::TaskFailed,
                        format!("Command exited with status {code}"),
                    ),
                    (None, Some(s)) => (
                        TaskState::TaskFailed,
                        format!("Command terminated with signal {}", signal_name(s)),
                    ),
                    (None, None) => (TaskState::TaskFailed, "Command ended".into()),
                };
                let reason =
                    (state == TaskState::TaskFailed).then_some(Reason::CommandExecutorFailed);
                self.agent_update(now, &key, state, reason, Some(message));
            }
        }
    }

    pub(super) fn advance_simulated(&mut self, now: Now) {
        let due: Vec<((String, String), i32)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.simulated_end.is_some_and(|end| end <= now.instant))
            .map(|(k, t)| (k.clone(), t.simulated_exit))
            .collect();
        for (key, exit) in due {
            if let Some(task) = self.tasks.get_mut(&key) {
                task.simulated_end = None;
            }
            let (state, reason) = if exit == 0 {
                (TaskState::TaskFinished, None)
            } else {
                (TaskState::TaskFailed, Some(Reason::CommandExecutorFailed))
            };
            self.agent_update(
                now,
                &key,
                state,
                reason,
                Some(format!("Command exited with status {exit}")),
            );
        }
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGTERM => "Terminated".into(),
        libc::SIGKILL => "Killed".into(),
        libc::SIGINT => "Interrupt".into(),
        other => format!("{other}"),
    }
}
