//! Oversubscription: each agent's revocable estimate, and what happens
//! when it changes. As in Mesos, every outstanding offer of the agent that
//! holds revocable resources is rescinded (its regular resources too), and
//! when the agent's containers use more revocable resources than the new
//! estimate, the QoS step destroys whole executors that use them until
//! the rest fits: all their tasks end TASK_LOST (TASK_GONE for
//! PARTITION_AWARE frameworks) with REASON_CONTAINER_PREEMPTED from the
//! agent, revocable or not.

use std::collections::BTreeMap;
use std::time::Duration;

use agora_proto::mesos::v1::TaskState;
use agora_proto::mesos::v1::framework_info::capability::Type as Capability;
use agora_proto::mesos::v1::task_status::{Reason, Source};

use super::model::{Effect, Master};
use crate::clock::Now;
use crate::resources::Resources;

impl Master {
    /// Sets `agent`'s revocable estimate (resources marked revocable).
    /// Returns false for an unknown agent.
    pub(crate) fn set_revocable(&mut self, now: Now, agent: &str, estimate: Resources) -> bool {
        if !self.agents.contains_key(agent) {
            return false;
        }
        tracing::info!(%agent, "revocable estimate changed");
        let stale: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| o.agent == agent && o.resources.iter().any(|r| r.revocable.is_some()))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.remove_offer(&id, true);
        }
        self.preempt_beyond(now, agent, &estimate);
        let used = self.revocable_in_use(agent);
        if let Some(a) = self.agents.get_mut(agent) {
            let mut total = a.total.filter(|r| r.revocable.is_none());
            total.add_all(&estimate);
            a.total = total;
            let mut free = estimate;
            free.subtract_all(&used);
            let mut available = a.available.filter(|r| r.revocable.is_none());
            available.add_all(&free);
            a.available = available;
        }
        self.allocation_requested = true;
        true
    }

    /// Revocable resources the agent's live tasks use.
    fn revocable_in_use(&self, agent: &str) -> Resources {
        let mut used = Resources::default();
        for task in self
            .tasks
            .values()
            .filter(|t| t.agent == agent && !t.is_terminal())
        {
            used.add_all(&task.resources.filter(|r| r.revocable.is_some()));
        }
        used
    }

    /// The QoS correction: destroys executors using revocable resources,
    /// in id order, until what is left fits in `estimate`.
    fn preempt_beyond(&mut self, now: Now, agent: &str, estimate: &Resources) {
        let mut executors: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        for (key, task) in &self.tasks {
            if task.agent == agent && !task.is_terminal() {
                executors
                    .entry((task.framework.clone(), task.executor.clone()))
                    .or_default()
                    .push(key.clone());
            }
        }
        for ((framework, executor), tasks) in executors {
            if estimate.contains(&self.revocable_in_use(agent)) {
                return;
            }
            let revocable = tasks.iter().any(|key| {
                self.tasks
                    .get(key)
                    .is_some_and(|t| t.resources.iter().any(|r| r.revocable.is_some()))
            });
            if !revocable {
                continue;
            }
            tracing::info!(%framework, %agent, %executor, "QoS correction: preempting the container");
            let state = if self
                .frameworks
                .get(&framework)
                .is_some_and(|f| f.has(Capability::PartitionAware))
            {
                TaskState::TaskGone
            } else {
                TaskState::TaskLost
            };
            for key in tasks {
                if !self.simulate {
                    self.effects.push(Effect::Kill {
                        framework: key.0.clone(),
                        task: key.1.clone(),
                        grace: Duration::ZERO,
                    });
                }
                self.reliable_update(
                    now,
                    &key,
                    (state, Source::Agent),
                    Some(Reason::ContainerPreempted),
                    Some("Container preempted by QoS correction".into()),
                );
            }
        }
    }
}
