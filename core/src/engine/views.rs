//! What the core shows: agents, usage, a frontend's leases and tasks.

use std::collections::BTreeMap;

use super::*;
use crate::fair::Standing;
use crate::resources::Resources;

impl Core {
    /// Agents with offers or leases, and what Agora holds of each.
    pub fn agents(&self) -> Vec<AgentView> {
        let mut views: BTreeMap<AgentId, AgentView> = BTreeMap::new();
        for pooled in self.offers.iter() {
            let view = views
                .entry(pooled.offer.agent.id.clone())
                .or_insert_with(|| empty_view(&pooled.offer.agent));
            view.pooled.add(&pooled.free);
        }
        for state in self.leases.values() {
            let view = views
                .entry(state.lease.agent.id.clone())
                .or_insert_with(|| empty_view(&state.lease.agent));
            view.leased.add(&state.lease.resources);
        }
        views.into_values().collect()
    }

    /// Each namespace's usage against its quota and its fair-share
    /// standing; one namespace when `name` is given.
    pub fn usage_report(&self, name: Option<&str>) -> Result<Vec<NamespaceUsage>, CoreError> {
        if let Some(name) = name.filter(|n| !self.tenancy.namespaces.contains_key(*n)) {
            return Err(CoreError::NamespaceNotFound(name.to_owned()));
        }
        let capacity = self.capacity();
        let report = self
            .tenancy
            .namespaces
            .values()
            .filter(|ns| name.is_none_or(|n| n == ns.name))
            .map(|ns| {
                let mut leased = Resources::default();
                for state in self
                    .leases
                    .values()
                    .filter(|s| s.lease.namespace == ns.name)
                {
                    leased.add(&state.lease.resources);
                }
                let usage = self.usage(&ns.name);
                let borrowed = self
                    .accounting
                    .revocable_usage
                    .get(&ns.name)
                    .cloned()
                    .unwrap_or_default();
                let mut running = usage.clone();
                running.add(&borrowed);
                running.subtract(&leased);
                let waiting_slots = self
                    .queue
                    .waiting
                    .iter()
                    .filter(|w| w.request.namespace == ns.name)
                    .flat_map(|w| &w.request.slots)
                    .map(|slot| slot.count)
                    .sum();
                NamespaceUsage {
                    namespace: ns.clone(),
                    leased,
                    running,
                    borrowed,
                    lent: self
                        .accounting
                        .lent
                        .get(&ns.name)
                        .cloned()
                        .unwrap_or_default(),
                    dominant_share: Standing::of(ns, &usage, &capacity).weighted_share,
                    waiting_slots,
                }
            })
            .collect();
        Ok(report)
    }

    /// Every lease of every frontend, for operators: only those of
    /// `namespace` and of `frontend` when given.
    pub fn all_leases(&self, namespace: Option<&str>, frontend: Option<&str>) -> Vec<Lease> {
        self.leases
            .values()
            .map(|s| &s.lease)
            .filter(|l| namespace.is_none_or(|ns| l.namespace == ns))
            .filter(|l| frontend.is_none_or(|f| l.frontend.0 == f))
            .cloned()
            .collect()
    }

    /// Every task the core remembers, of every frontend, for operators:
    /// only those of `namespace` and of `frontend` when given, and only
    /// live ones (not in a terminal state) with `live_only`.
    pub fn all_tasks(
        &self,
        namespace: Option<&str>,
        frontend: Option<&str>,
        live_only: bool,
    ) -> Vec<TaskRecord> {
        self.tasks
            .values()
            .filter(|t| namespace.is_none_or(|ns| t.namespace == ns))
            .filter(|t| frontend.is_none_or(|f| t.frontend.0 == f))
            .filter(|t| !live_only || !t.state.is_terminal())
            .cloned()
            .collect()
    }

    /// The session's frontend's leases, optionally of one namespace.
    pub fn leases_of(
        &self,
        session: &SessionId,
        namespace: Option<&str>,
    ) -> Result<Vec<Lease>, CoreError> {
        let frontend = self.frontend_of(session)?;
        Ok(self
            .leases
            .values()
            .map(|s| &s.lease)
            .filter(|l| l.frontend == frontend && namespace.is_none_or(|ns| l.namespace == ns))
            .cloned()
            .collect())
    }

    /// The session's frontend's tasks, optionally of one namespace.
    pub fn tasks_of(
        &self,
        session: &SessionId,
        namespace: Option<&str>,
    ) -> Result<Vec<TaskRecord>, CoreError> {
        let frontend = self.frontend_of(session)?;
        Ok(self
            .tasks
            .values()
            .filter(|t| t.frontend == frontend && namespace.is_none_or(|ns| t.namespace == ns))
            .cloned()
            .collect())
    }
}

fn empty_view(agent: &Agent) -> AgentView {
    AgentView {
        agent: agent.clone(),
        pooled: Resources::default(),
        leased: Resources::default(),
    }
}

#[cfg(test)]
mod tests;
