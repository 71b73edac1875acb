//! The passing of time and the pool's upkeep: expiries, declines of
//! stale or unneeded offers, suppression of roles that need no offers.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::pool::PooledOffer;

impl Core {
    /// Everything due by `now`: expiry warnings and expiries, rebind
    /// timeouts, launches that lingered long enough, waits that ran out,
    /// ended sessions past their grace, pool offers past their time to live
    /// (declined back to Mesos), request ids past their memory and
    /// frontends that held nothing for the frontend retention.
    pub(crate) fn tick(&mut self, now: Timestamp) {
        self.last_tick = now;
        self.settle_if_due(now);
        let notice = self.config.expiring_notice;
        let mut warnings = Vec::new();
        let mut expired = Vec::new();
        let mut rebind_timeouts = Vec::new();
        for id in self.leases.due(now) {
            let Some(state) = self.leases.get(&id) else {
                continue;
            };
            if state.lease.expires_at <= now {
                expired.push(id);
            } else if state.rebind_deadline.is_some_and(|d| d <= now) {
                rebind_timeouts.push(id);
            } else if !state.expiring_sent && state.lease.expires_at <= now.after(notice) {
                let warned = self.leases.update(&id, |state| {
                    state.expiring_sent = true;
                    state.lease.clone()
                });
                warnings.extend(warned);
            }
        }
        for lease in warnings {
            self.notify(
                &lease.frontend,
                FrontendEvent::LeaseExpiring {
                    lease: lease.id,
                    expires_at: lease.expires_at,
                },
            );
        }
        for id in expired {
            self.lose_lease(
                &id,
                LeaseLostReason::Expired,
                "not launched or held in time".into(),
            );
        }
        for id in rebind_timeouts {
            self.lose_lease(
                &id,
                LeaseLostReason::RebindTimeout,
                "the agent did not offer this slice again in time".into(),
            );
        }
        let due: Vec<OfferId> = self
            .launches
            .accepts
            .iter()
            .filter(|(_, pending)| pending.flush_at <= now)
            .map(|(offer, _)| offer.clone())
            .collect();
        for offer in due {
            self.flush_accept(now, &offer);
        }
        self.retry_launches(now);
        self.enforce_reclaims(now);
        self.end_sessions_past_grace(now);
        self.expire_waits(now);
        self.serve_waiting(now);
        self.yield_idle_offers(now);
        self.decline_stale_offers(now);
        let memory = self.config.request_memory;
        self.queue
            .requests
            .retain(|_, r| r.granted.is_none() || r.at.after(memory) > now);
        self.forget_idle_frontends(now);
    }

    pub(super) fn end_sessions_past_grace(&mut self, now: Timestamp) {
        let grace = self.config.session_grace;
        let gone: Vec<SessionId> = self
            .sessions
            .open
            .iter()
            .filter(|(_, s)| s.ended_at.is_some_and(|t| t.after(grace) <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for session in gone {
            let Some(state) = self.sessions.open.remove(&session) else {
                continue;
            };
            let frontend_live = self
                .sessions
                .frontends
                .get(&state.frontend)
                .is_some_and(|f| !f.sessions.is_empty());
            if frontend_live {
                continue;
            }
            let held = self.leases.of_frontend(&state.frontend);
            self.lose_leases_where(
                held,
                |_| true,
                LeaseLostReason::SessionEnded,
                "the frontend had no live session for the session grace",
            );
        }
    }

    /// Declines pool offers past `pool_ttl` that nothing holds: not leased,
    /// no launch pending, no waiting demand of their role that could use
    /// them, and not among the `warm_pool` newest offers of their role.
    pub(super) fn decline_stale_offers(&mut self, now: Timestamp) {
        let ttl = self.config.pool_ttl;
        let held = self.held_offers();
        let mut idle: Vec<&PooledOffer> = self
            .offers
            .iter()
            .filter(|pooled| !held.contains(&pooled.offer.id))
            .collect();
        idle.sort_by(|a, b| (b.received_at, &b.offer.id).cmp(&(a.received_at, &a.offer.id)));
        let mut warm: BTreeMap<&str, usize> = BTreeMap::new();
        let mut stale = Vec::new();
        for pooled in idle {
            let kept = warm.entry(&pooled.offer.role).or_default();
            if *kept < self.config.warm_pool {
                *kept += 1;
            } else if pooled.received_at.after(ttl) <= now && !self.demand_could_use(now, pooled) {
                stale.push(pooled.offer.id.clone());
            }
        }
        self.decline(stale);
    }

    /// Whether a waiting request of the offer's role could put a slot on it.
    pub(super) fn demand_could_use(&self, now: Timestamp, pooled: &PooledOffer) -> bool {
        self.roles_that_could_use(now, pooled)
            .any(|role| role == pooled.offer.role)
    }

    /// The roles of waiting requests that could put a slot on the offer's
    /// agent, were its free resources offered to them.
    pub(super) fn roles_that_could_use<'a>(
        &'a self,
        now: Timestamp,
        pooled: &'a PooledOffer,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.queue.waiting.iter().filter_map(move |waiting| {
            let namespace = self.tenancy.namespaces.get(&waiting.request.namespace)?;
            let demand = self.accounting.demand(
                namespace,
                self.sessions.refused(&waiting.frontend),
                &waiting.request,
                now,
            );
            demand.could_use(pooled).then_some(namespace.role.as_str())
        })
    }

    /// Idle offers that another role's waiting demand could use go back to
    /// Mesos at once, warm pool or not: held for a role that does not need
    /// them, they would keep the capacity from the role that does. Mesos's
    /// refuse filter is per role, so the agent can be offered to the
    /// waiting role at the next allocation.
    pub(super) fn yield_idle_offers(&mut self, now: Timestamp) {
        if self.queue.waiting.is_empty() {
            return;
        }
        let held = self.held_offers();
        let yielded: Vec<OfferId> = self
            .offers
            .iter()
            .filter(|pooled| !held.contains(&pooled.offer.id))
            .filter(|pooled| {
                let mut roles = self.roles_that_could_use(now, pooled);
                let wanted_elsewhere = roles.any(|role| role != pooled.offer.role);
                wanted_elsewhere && !self.demand_could_use(now, pooled)
            })
            .map(|pooled| pooled.offer.id.clone())
            .collect();
        self.decline(yielded);
    }

    /// Offers that leases or pending launches hold.
    pub(super) fn held_offers(&self) -> BTreeSet<OfferId> {
        self.leases
            .held_offers()
            .chain(self.launches.accepts.keys())
            .cloned()
            .collect()
    }

    /// Takes offers out of the pool and declines them.
    pub(super) fn decline(&mut self, offer_ids: Vec<OfferId>) {
        if offer_ids.is_empty() {
            return;
        }
        for id in &offer_ids {
            self.offers.remove(id);
        }
        self.effects.push(Effect::Mesos(MesosCall::Decline {
            offer_ids,
            refuse_seconds: self.config.decline_refuse.as_secs_f64(),
        }));
    }

    /// Suppresses each role that needs no offers and revives each that
    /// does again. A role needs offers while demand of it waits, while a
    /// lease of it waits for its agent's next offer, or while its pool
    /// holds fewer than `warm_pool` offers. A role whose leases a launch
    /// just stranded is revived even when it was not suppressed: that makes
    /// Mesos allocate at once instead of at its next allocation run.
    pub(super) fn settle_suppression(&mut self) {
        let stranded = std::mem::take(&mut self.tenancy.stranded);
        for role in self.roles() {
            let demand = self
                .queue
                .waiting
                .iter()
                .any(|w| self.role_of(&w.request.namespace) == Some(role.as_str()));
            let rebinding = self.leases.any_unbound(&role);
            let wants = demand || rebinding || self.offers.count(&role) < self.config.warm_pool;
            let suppressed = self.tenancy.suppressed.contains(&role);
            if wants && (suppressed || rebinding && stranded.contains(&role)) {
                self.tenancy.suppressed.remove(&role);
                self.effects
                    .push(Effect::Mesos(MesosCall::Revive { roles: vec![role] }));
            } else if !wants && self.tenancy.suppressed.insert(role.clone()) {
                self.effects
                    .push(Effect::Mesos(MesosCall::Suppress { roles: vec![role] }));
            }
        }
    }

    /// When an [`Input::Tick`](crate::Input::Tick) next has something to
    /// do; `None` while nothing is due.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let leases = self.leases.next_deadline();
        // Offers kept past their time to live at the last tick (warm, held
        // or wanted) are looked at again at the next tick for any reason;
        // waking for them now would only spin.
        let ttl = self.config.pool_ttl;
        let ttl_millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let arrived_after = self.last_tick.0.checked_sub(ttl_millis);
        let offers = self
            .offers
            .first_arrival_after(arrived_after.map(Timestamp))
            .map(|arrived| arrived.after(ttl));
        let accepts = self.launches.accepts.values().map(|p| Some(p.flush_at));
        let reclaims = self
            .reclaims
            .iter()
            .filter(|state| !state.enforced)
            .map(|state| Some(state.reclaim.deadline));
        let waits = self.queue.waiting.iter().map(|w| Some(w.deadline));
        let sessions = self
            .sessions
            .open
            .values()
            .map(|s| s.ended_at.map(|t| t.after(self.config.session_grace)));
        [leases, offers, self.next_forget(), self.settle_deadline()]
            .into_iter()
            .chain(accepts)
            .chain(reclaims)
            .chain(waits)
            .chain(sessions)
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests;
