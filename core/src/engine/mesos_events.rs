//! What Mesos tells the core: subscriptions, offers, rescinds, lost
//! agents, status updates, refused launches.

use super::*;
use crate::pool::PooledOffer;

impl Core {
    /// The framework is subscribed with `roles`. A fresh subscription
    /// suppresses no role; roles that changed while it was in flight are
    /// updated; after a resubscription every live task is reconciled, since
    /// updates may have been missed while away.
    pub(crate) fn mesos_subscribed(
        &mut self,
        now: Timestamp,
        resubscribed: bool,
        roles: &[String],
    ) {
        self.tenancy.suppressed.clear();
        self.roles_changed(roles.to_vec());
        self.tenancy.pushed = Default::default();
        self.push_quota();
        if !resubscribed && self.recovery.is_none() {
            return;
        }
        let tasks: Vec<(TaskId, AgentId)> = self
            .tasks
            .values()
            .filter(|t| !t.state.is_terminal())
            .map(|t| (t.id.clone(), t.agent.clone()))
            .collect();
        if !tasks.is_empty() {
            self.effects
                .push(Effect::Mesos(MesosCall::Reconcile { tasks }));
        }
        self.resend_kills();
        self.reconcile_after_restart(now);
    }

    /// The subscription is gone, and with it every outstanding offer. Leases
    /// wait for their agents' next offers, as after a sibling launch;
    /// launches not yet sent never will be.
    pub(crate) fn mesos_disconnected(&mut self, now: Timestamp) {
        for offer in self.offers.clear() {
            self.drop_pending_accept(&offer, "the connection to Mesos was lost");
        }
        let deadline = now.after(self.config.rebind_timeout);
        for id in self.leases.bound() {
            self.leases.update(&id, |state| {
                state.lease.offer = None;
                state.rebind_deadline = Some(deadline);
            });
        }
    }

    /// New offers: first they re-bind leases waiting on their agent, then
    /// they join the pool and serve waiting demand. Leases on an agent whose
    /// hostname or attributes changed are lost: they were placed by
    /// constraints on what the agent was.
    pub(crate) fn offers(&mut self, now: Timestamp, offers: Vec<Offer>) {
        for offer in offers {
            self.accounting.capacity.saw(&offer);
            let on_agent = self.leases.on_agent(&offer.agent.id);
            self.lose_leases_where(
                on_agent,
                |lease| lease.agent != offer.agent,
                LeaseLostReason::AgentChanged,
                &format!(
                    "agent {} changed its hostname or attributes",
                    offer.agent.id
                ),
            );
            let mut free = [offer.resources.clone(), offer.revocable.clone()];
            for id in self.leases.on_agent(&offer.agent.id) {
                self.leases.update(&id, |state| {
                    let lease = &mut state.lease;
                    let waiting_here = lease.offer.is_none() && lease.role == offer.role;
                    let bag = &mut free[usize::from(lease.revocable)];
                    if waiting_here && bag.subtract(&lease.resources) {
                        lease.offer = Some(offer.id.clone());
                        state.rebind_deadline = None;
                    }
                });
            }
            let [free, free_revocable] = free;
            self.offers.insert(PooledOffer {
                offer,
                free,
                free_revocable,
                received_at: now,
            });
        }
        self.retry_launches(now);
        self.serve_waiting(now);
        self.yield_idle_offers(now);
    }

    /// Mesos took an offer back: it leaves the pool, launches waiting on it
    /// are dropped and its leases are lost.
    pub(crate) fn rescind(&mut self, offer: &OfferId) {
        if self.offers.remove(offer).is_some() {
            self.drop_pending_accept(offer, &format!("Mesos rescinded offer {offer}"));
            let bound = self.leases.bound_to(offer);
            self.lose_leases_where(
                bound,
                |_| true,
                LeaseLostReason::OfferRescinded,
                &format!("Mesos rescinded offer {offer}"),
            );
        }
    }

    /// An agent left the cluster: its offers and leases are gone.
    pub(crate) fn agent_lost(&mut self, agent: &AgentId) {
        self.accounting.capacity.forget(agent);
        let offers: Vec<OfferId> = self
            .offers
            .iter()
            .filter(|pooled| &pooled.offer.agent.id == agent)
            .map(|pooled| pooled.offer.id.clone())
            .collect();
        for offer in &offers {
            self.offers.remove(offer);
            self.drop_pending_accept(offer, &format!("agent {agent} is gone"));
        }
        let on_agent = self.leases.on_agent(agent);
        self.lose_leases_where(
            on_agent,
            |_| true,
            LeaseLostReason::AgentGone,
            &format!("agent {agent} is gone"),
        );
    }

    /// Launches waiting to be accepted on an offer that is gone never reach
    /// Mesos: their tasks end as `Dropped`.
    pub(super) fn drop_pending_accept(&mut self, offer: &OfferId, reason: &str) {
        if let Some(pending) = self.launches.accepts.remove(offer) {
            self.accept_failed(&pending.task_ids(), reason);
        }
    }

    /// Ends every lease among `candidates` that matches `which`, returning
    /// what is still backed by an offer to the pool and telling each holder
    /// why.
    pub(super) fn lose_leases_where(
        &mut self,
        candidates: Vec<LeaseId>,
        which: impl Fn(&Lease) -> bool,
        reason: LeaseLostReason,
        message: &str,
    ) {
        let lost: Vec<LeaseId> = candidates
            .into_iter()
            .filter(|id| self.leases.get(id).is_some_and(|s| which(&s.lease)))
            .collect();
        for id in lost {
            self.lose_lease(&id, reason, message.to_owned());
        }
    }

    /// A task status from Mesos: recorded first, then acknowledged to Mesos
    /// (when it carries a uuid), then delivered to the owning frontend. A
    /// terminal state is final: a later update of the same task (a stale
    /// retry, a reconciliation answer) is acknowledged and goes no further.
    /// A live task the core does not know is adopted (see `durability`).
    pub(crate) fn status_update(&mut self, now: Timestamp, update: StatusUpdate) {
        self.settled(&update.task_id);
        if self.tasks.get(&update.task_id).is_none() {
            self.adopt(now, &update);
        }
        let owned = self.tasks.update_live(&update.task_id, |record| {
            record.state = update.state;
            record.reason = update.reason.clone();
            record.message = update.message.clone();
            record.timestamp = update.timestamp;
            if let Some(agent) = &update.agent_id {
                record.agent = agent.clone();
            }
        });
        if let Some(record) = owned.as_ref().filter(|r| r.state.is_terminal()) {
            self.accounting.credit(
                &record.namespace,
                &record.resources,
                Holder::of_task(record),
            );
        }
        if let (Some(uuid), Some(agent_id)) = (update.uuid, update.agent_id) {
            self.effects.push(Effect::Mesos(MesosCall::Acknowledge {
                agent_id,
                task_id: update.task_id,
                uuid,
            }));
        }
        if let Some(record) = owned {
            let frontend = record.frontend.clone();
            self.notify(&frontend, FrontendEvent::TaskStatus(Box::new(record)));
        }
    }

    /// Mesos did not take an ACCEPT: its tasks never started. They end as
    /// `Dropped` and their frontends are told why.
    pub(crate) fn accept_failed(&mut self, tasks: &[TaskId], reason: &str) {
        for task in tasks {
            if self.tasks.get(task).map(|t| t.state) != Some(TaskState::Staging) {
                continue;
            }
            let Some(record) = self.tasks.update_live(task, |record| {
                record.state = TaskState::Dropped;
                record.message = Some(format!("the launch did not reach Mesos: {reason}"));
            }) else {
                continue;
            };
            self.accounting.credit(
                &record.namespace,
                &record.resources,
                Holder::of_task(&record),
            );
            let frontend = record.frontend.clone();
            self.notify(&frontend, FrontendEvent::TaskStatus(Box::new(record)));
        }
    }
}

#[cfg(test)]
mod tests;
