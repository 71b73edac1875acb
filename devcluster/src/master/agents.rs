//! Agents joining and leaving a running cluster: what the master does when
//! an agent registers, and when one is removed (it died, or an operator
//! marked it gone), following `Master::_removeSlave` and
//! `Master::__removeSlave` of Mesos.

use std::time::Duration;

use agora_proto::mesos::v1::framework_info::capability::Type as Capability;
use agora_proto::mesos::v1::scheduler::{Event, event};
use agora_proto::mesos::v1::task_status::Reason;
use agora_proto::mesos::v1::{AgentId, Attribute, ExecutorId, TaskState};

use super::model::{Effect, MAX_COMPLETED_TASKS, Master, event_of};
use super::tasks::{master_status, update_event};
use crate::agent::Agent;
use crate::clock::Now;
use crate::resources::Resources;

/// How an agent leaves the cluster; decides the state its tasks end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The agent died and was removed: every framework sees TASK_LOST with
    /// REASON_AGENT_REMOVED.
    Died,
    /// An operator marked the agent gone (MARK_AGENT_GONE): PARTITION_AWARE
    /// frameworks see TASK_GONE_BY_OPERATOR with
    /// REASON_AGENT_REMOVED_BY_OPERATOR, the others TASK_LOST with
    /// REASON_AGENT_REMOVED.
    Gone,
}

impl Master {
    /// Registers a new agent at `now` with `resources` (revocable ones
    /// included) and `attributes`; its resources are offered at the next
    /// allocation cycle. Returns its id.
    pub(crate) fn add_agent(
        &mut self,
        now: Now,
        resources: Resources,
        attributes: Vec<Attribute>,
        hostname: Option<String>,
    ) -> String {
        let n = self.next_agent;
        self.next_agent += 1;
        let id = format!("{}-S{n}", self.id);
        let hostname = hostname.unwrap_or_else(|| format!("agent-{n}.devcluster"));
        tracing::info!(agent = %id, %hostname, "agent registered");
        let agent = Agent::new(
            id.clone(),
            hostname,
            resources,
            attributes,
            now.unix,
            self.status_update_retry,
        );
        self.agents.insert(id.clone(), agent);
        self.allocation_requested = true;
        id
    }

    /// The ids of the registered agents.
    pub(crate) fn agent_ids(&self) -> Vec<String> {
        self.agents.keys().cloned().collect()
    }

    /// Removes an agent: its live tasks end with a master-generated update
    /// (see [`Removal`]), their processes are killed, its offers are
    /// rescinded, and every connected framework gets a FAILURE event with
    /// the agent id. Returns false for an unknown agent.
    pub(crate) fn remove_agent(&mut self, now: Now, agent_id: &str, removal: Removal) -> bool {
        let Some(agent) = self.agents.remove(agent_id) else {
            return false;
        };
        tracing::info!(agent = %agent_id, ?removal, "removing agent");
        let message = match removal {
            Removal::Died => format!("Agent {} removed: agent lost", agent.hostname),
            Removal::Gone => "Agent has been marked gone".to_string(),
        };
        let keys: Vec<(String, String)> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.agent == agent_id)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.lose_task(now, &key, removal, &message);
        }
        self.executors.retain(|(agent, _, _), _| agent != agent_id);
        let offers: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| o.agent == agent_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in offers {
            self.remove_offer(&id, true);
        }
        let failure = Event {
            failure: Some(event::Failure {
                agent_id: Some(AgentId {
                    value: agent_id.to_string(),
                }),
                executor_id: None,
                status: None,
            }),
            ..event_of(event::Type::Failure)
        };
        let connected: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| f.connection.is_some())
            .map(|f| f.id.clone())
            .collect();
        for framework in connected {
            self.send(&framework, failure.clone());
        }
        if removal == Removal::Gone {
            self.gone_agents.insert(agent_id.to_string());
        }
        true
    }

    /// Ends one task of a removed agent: the agent is gone, so the master
    /// itself reports the terminal state (no uuid, nothing to acknowledge)
    /// and moves the task to its framework's completed tasks.
    fn lose_task(&mut self, now: Now, key: &(String, String), removal: Removal, message: &str) {
        let Some(mut task) = self.tasks.remove(key) else {
            return;
        };
        task.resources_released = true;
        if !task.is_terminal() {
            let partition_aware = self
                .frameworks
                .get(&key.0)
                .is_some_and(|f| f.has(Capability::PartitionAware));
            let (state, reason) = match removal {
                Removal::Gone if partition_aware => (
                    TaskState::TaskGoneByOperator,
                    Reason::AgentRemovedByOperator,
                ),
                _ => (TaskState::TaskLost, Reason::AgentRemoved),
            };
            if !self.simulate {
                self.effects.push(Effect::Kill {
                    framework: key.0.clone(),
                    task: key.1.clone(),
                    grace: Duration::ZERO,
                });
            }
            let mut status = master_status(
                now,
                &key.1,
                Some(&task.agent),
                state,
                reason,
                message.to_string(),
            );
            status.executor_id = task
                .info
                .executor
                .as_ref()
                .map(|e| e.executor_id.value.clone())
                .or_else(|| task.group.clone())
                .map(|value| ExecutorId { value });
            task.state = state;
            task.status_update_state = Some(state);
            task.simulated_end = None;
            task.statuses.push(status.clone());
            self.send(&key.0, update_event(status));
        }
        if let Some(f) = self.frameworks.get_mut(&key.0) {
            f.completed_tasks.push_back(task);
            while f.completed_tasks.len() > MAX_COMPLETED_TASKS {
                f.completed_tasks.pop_front();
            }
        }
    }

    /// Whether an operator marked `agent` gone.
    pub(super) fn is_gone(&self, agent: &str) -> bool {
        self.gone_agents.contains(agent)
    }
}
