//! Acquire, hold and release: leases granted from the pool within a
//! namespace's limit, extended within its maximum hold, returned.

use std::time::Duration;

use super::*;
use crate::placement::{Cap, Demand, place};
use crate::resources::Resources;

impl Core {
    /// Leases capacity for `request`, at once from the pool or, when it does
    /// not fit and the request may wait, as soon as offers allow.
    ///
    /// Waiting demand is served first come, first served within a
    /// namespace, except that a request that cannot be served yet does not
    /// hold up later ones (backfill) until it has waited `backfill_window`;
    /// from then on later requests of its namespace wait behind it until it
    /// is served or its own `wait_for` ends. A large gang therefore gets its
    /// capacity eventually, and smaller requests are delayed by it at most
    /// for its `wait_for`, never forever.
    pub(crate) fn acquire(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        session: &SessionId,
        request: AcquireRequest,
    ) -> Result<Outcome<Vec<Lease>>, CoreError> {
        let frontend = self.check_namespace(session, &request.namespace)?;
        self.refuse_if_draining(&frontend)?;
        validate_request(&request)?;
        self.refuse_while_recovering()?;
        if let Some(outcome) = self.recall(now, ticket, &frontend, &request)? {
            return Ok(outcome);
        }
        self.check_quota(&request)?;
        let served = if self.queue_blocked(now, &request.namespace) {
            None
        } else {
            self.grant_or_reclaim(now, &frontend, &request)
        };
        if let Some(leases) = served {
            self.remember(now, &frontend, &request, Some(&leases));
            return Ok(Outcome::Now(leases));
        }
        if request.wait_for.is_zero() {
            return Err(self.no_capacity(&request, Duration::ZERO));
        }
        self.remember(now, &frontend, &request, None);
        self.preempt_for(now, &request);
        let role = self.tenancy.namespaces[&request.namespace].role.clone();
        self.queue.waiting.push_back(Waiting {
            tickets: vec![ticket],
            session: session.clone(),
            frontend,
            since: now,
            deadline: now.after(request.wait_for),
            request,
        });
        self.tenancy.suppressed.remove(&role);
        self.effects
            .push(Effect::Mesos(MesosCall::Revive { roles: vec![role] }));
        self.yield_idle_offers(now);
        Ok(Outcome::Later)
    }

    /// The refusal of `request` after `waited` without capacity: that it
    /// cannot fit the cluster as seen, with the numbers, when that is why.
    pub(super) fn no_capacity(&self, request: &AcquireRequest, waited: Duration) -> CoreError {
        self.accounting
            .capacity
            .why_not(request)
            .unwrap_or(CoreError::NoCapacity { waited })
    }

    /// The session's frontend, when `namespace` is one of the session's.
    pub(super) fn check_namespace(
        &self,
        session: &SessionId,
        namespace: &str,
    ) -> Result<FrontendName, CoreError> {
        let state = self.live_session(session)?;
        if !self.tenancy.namespaces.contains_key(namespace) {
            Err(CoreError::NamespaceNotFound(namespace.to_owned()))
        } else if state.namespaces.contains(namespace) {
            Ok(state.frontend.clone())
        } else {
            Err(CoreError::NamespaceNotSubscribed {
                namespace: namespace.to_owned(),
            })
        }
    }

    /// Refuses a request for regular capacity that the namespace's limit
    /// could never admit now: all its slots for a gang, otherwise its
    /// smallest slot. Requests that may use revocable capacity are capped
    /// slot by slot in placement instead.
    pub(super) fn check_quota(&self, request: &AcquireRequest) -> Result<(), CoreError> {
        if request.revocable != RevocablePolicy::Deny {
            return Ok(());
        }
        let namespace = &self.tenancy.namespaces[&request.namespace];
        let usage = self.usage(&request.namespace);
        let mut gang = Resources::default();
        for slot in &request.slots {
            for _ in 0..slot.count {
                gang.add(&slot.resources);
            }
        }
        let asks: Vec<&Resources> = if request.gang {
            vec![&gang]
        } else {
            request.slots.iter().map(|slot| &slot.resources).collect()
        };
        let refusals: Vec<_> = asks
            .iter()
            .map(|asked| namespace.exceeded_by(&usage, asked))
            .collect();
        match refusals.into_iter().collect::<Option<Vec<_>>>() {
            Some(mut all) => {
                let (resource, asked, used, allowed) = all.remove(0);
                Err(CoreError::QuotaExceeded {
                    namespace: namespace.name.clone(),
                    resource,
                    asked,
                    used,
                    allowed,
                })
            }
            None => Ok(()),
        }
    }

    /// Grants the request from the pool: every slot of a gang or nothing;
    /// otherwise every slot that fits, `None` when not one does.
    pub(super) fn try_grant(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        request: &AcquireRequest,
    ) -> Option<Vec<Lease>> {
        let namespace = self.tenancy.namespaces.get(&request.namespace)?;
        let mut role = namespace.role.clone();
        let max_hold = self.max_hold(namespace);
        let demand =
            self.accounting
                .demand(namespace, self.sessions.refused(frontend), request, now);
        let mut grants = place(&mut self.offers, &demand);
        let mut borrowed_from = None;
        if grants.is_empty() && request.revocable != RevocablePolicy::Deny {
            for name in self.lenders_for(&request.namespace) {
                let lender = &self.tenancy.namespaces[&name];
                let demand = Demand {
                    role: &lender.role,
                    revocable: RevocablePolicy::Deny,
                    lender: Some(Cap {
                        cap: &lender.lending.max_lent,
                        used: self.accounting.lent.get(&name),
                    }),
                    ..self.accounting.demand(
                        namespace,
                        self.sessions.refused(frontend),
                        request,
                        now,
                    )
                };
                grants = place(&mut self.offers, &demand);
                if !grants.is_empty() {
                    role = lender.role.clone();
                    borrowed_from = Some(name);
                    break;
                }
            }
        }
        if grants.is_empty() {
            return None;
        }
        let hold = request
            .hold_for
            .filter(|h| !h.is_zero())
            .unwrap_or(self.config.default_hold)
            .min(max_hold);
        let mut leases = Vec::with_capacity(grants.len());
        for grant in grants {
            let lease = Lease {
                id: LeaseId(self.ids.fresh("lease")),
                frontend: frontend.clone(),
                namespace: request.namespace.clone(),
                agent: grant.agent,
                role: role.clone(),
                resources: grant.resources,
                revocable: grant.revocable,
                borrowed_from: borrowed_from.clone(),
                expires_at: now.after(hold),
                offer: Some(grant.offer),
            };
            self.accounting
                .charge(&lease.namespace, &lease.resources, Holder::of_lease(&lease));
            self.leases.insert(LeaseState {
                lease: lease.clone(),
                expiring_sent: false,
                rebind_deadline: None,
            });
            leases.push(lease);
        }
        Some(leases)
    }

    /// Namespaces whose idle capacity `borrower` may lease: those that lend
    /// what their own demand does not need, on a role other than its own,
    /// with no demand of their own waiting.
    fn lenders_for(&self, borrower: &str) -> Vec<String> {
        let own_role = self.role_of(borrower);
        self.tenancy
            .namespaces
            .values()
            .filter(|ns| ns.lending.lend_idle && ns.name != borrower)
            .filter(|ns| Some(ns.role.as_str()) != own_role)
            .filter(|ns| {
                let role = Some(ns.role.as_str());
                !self
                    .queue
                    .waiting
                    .iter()
                    .any(|w| self.role_of(&w.request.namespace) == role)
            })
            .map(|ns| ns.name.clone())
            .collect()
    }

    /// Serves `request`, taking back, if that is what it takes, capacity
    /// its namespace lent and that is leased but not launched, one lease at
    /// a time (newest first) so that no more is reclaimed than needed.
    /// Nothing is reclaimed unless all of it would serve the request.
    pub(super) fn grant_or_reclaim(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        request: &AcquireRequest,
    ) -> Option<Vec<Lease>> {
        if let Some(leases) = self.try_grant(now, frontend, request) {
            return Some(leases);
        }
        let lent = self.unlaunched_loans(&request.namespace);
        if lent.is_empty() || !self.would_serve_without(now, frontend, request, &lent) {
            return None;
        }
        for id in lent {
            self.lose_lease(
                &id,
                LeaseLostReason::Reclaimed,
                format!("namespace {} needs the capacity it lent", request.namespace),
            );
            if let Some(leases) = self.try_grant(now, frontend, request) {
                return Some(leases);
            }
        }
        None
    }

    /// The leases others hold, not launched yet, on capacity `owner` lent,
    /// newest first: what goes back before any borrowed task is stopped.
    pub(super) fn unlaunched_loans(&self, owner: &str) -> Vec<LeaseId> {
        self.leases
            .iter()
            .rev()
            .filter(|(_, s)| s.lease.borrowed_from.as_deref() == Some(owner))
            .filter(|(_, s)| s.lease.offer.is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Whether `request` could be served were the `leases` back in the
    /// pool; a dry run on a copy of the pool.
    pub(super) fn would_serve_without(
        &self,
        now: Timestamp,
        frontend: &FrontendName,
        request: &AcquireRequest,
        leases: &[LeaseId],
    ) -> bool {
        let Some(namespace) = self.tenancy.namespaces.get(&request.namespace) else {
            return false;
        };
        let mut pool = self.offers.clone();
        for state in leases.iter().filter_map(|id| self.leases.get(id)) {
            if let Some(offer) = &state.lease.offer {
                pool.give_back(offer, &state.lease.resources, state.lease.revocable);
            }
        }
        let demand =
            self.accounting
                .demand(namespace, self.sessions.refused(frontend), request, now);
        !place(&mut pool, &demand).is_empty()
    }

    /// The longest a lease of `namespace` may be held.
    pub(super) fn max_hold(&self, namespace: &Namespace) -> Duration {
        namespace.max_hold.unwrap_or(self.config.max_hold)
    }

    /// Leases of the session's frontend, all or an error naming the first
    /// that is not its own (indistinguishable from one that does not exist).
    pub(super) fn owned_leases(
        &self,
        session: &SessionId,
        lease_ids: &[LeaseId],
    ) -> Result<FrontendName, CoreError> {
        let frontend = self.frontend_of(session)?;
        if lease_ids.is_empty() {
            return Err(invalid("lease_ids", "name at least one lease"));
        }
        for id in lease_ids {
            match self.leases.get(id) {
                Some(state) if state.lease.frontend == frontend => {}
                _ => return Err(CoreError::LeaseNotFound(id.clone())),
            }
        }
        Ok(frontend)
    }

    /// Extends leases to `now + hold_for`, capped by their namespace's
    /// maximum hold.
    pub(crate) fn hold(
        &mut self,
        now: Timestamp,
        session: &SessionId,
        lease_ids: &[LeaseId],
        hold_for: Duration,
    ) -> Result<Vec<Lease>, CoreError> {
        self.owned_leases(session, lease_ids)?;
        let mut held = Vec::with_capacity(lease_ids.len());
        for id in lease_ids {
            let max_hold = self
                .leases
                .get(id)
                .and_then(|s| self.tenancy.namespaces.get(&s.lease.namespace))
                .map_or(self.config.max_hold, |ns| self.max_hold(ns));
            let held_lease = self.leases.update(id, |state| {
                state.lease.expires_at = now.after(hold_for.min(max_hold));
                state.expiring_sent = false;
                state.lease.clone()
            });
            held.extend(held_lease);
        }
        Ok(held)
    }

    /// Returns leases to the pool; their agents are not leased to this
    /// frontend again for `refuse_for`.
    pub(crate) fn release(
        &mut self,
        now: Timestamp,
        session: &SessionId,
        lease_ids: &[LeaseId],
        refuse_for: Duration,
    ) -> Result<(), CoreError> {
        let frontend = self.owned_leases(session, lease_ids)?;
        for id in lease_ids {
            if let Some(state) = self.leases.get(id) {
                let agent = state.lease.agent.id.clone();
                if !refuse_for.is_zero()
                    && let Some(f) = self.sessions.frontends.get_mut(&frontend)
                {
                    f.refused_agents.insert(agent, now.after(refuse_for));
                }
            }
            self.return_lease(id);
        }
        self.serve_waiting(now);
        Ok(())
    }

    /// Removes a lease, giving its resources back to its offer.
    pub(super) fn return_lease(&mut self, id: &LeaseId) -> Option<Lease> {
        let state = self.leases.remove(id)?;
        let lease = &state.lease;
        if let Some(offer) = &lease.offer {
            self.offers
                .give_back(offer, &lease.resources, lease.revocable);
        }
        self.accounting
            .credit(&lease.namespace, &lease.resources, Holder::of_lease(lease));
        Some(state.lease)
    }

    pub(super) fn lose_lease(&mut self, id: &LeaseId, reason: LeaseLostReason, message: String) {
        if let Some(lease) = self.return_lease(id) {
            self.notify(
                &lease.frontend,
                FrontendEvent::LeaseLost {
                    lease: lease.id,
                    reason,
                    message,
                },
            );
        }
    }
}

pub(super) fn validate_request(request: &AcquireRequest) -> Result<(), CoreError> {
    if request.slots.is_empty() {
        return Err(invalid("slots", "ask for at least one slot"));
    }
    for (index, slot) in request.slots.iter().enumerate() {
        if slot.count == 0 {
            return Err(invalid(
                &format!("slots[{index}].count"),
                "must be at least 1",
            ));
        }
        if slot.resources.is_empty() && slot.port_count == 0 {
            return Err(invalid(
                &format!("slots[{index}].resources"),
                "ask for some resources",
            ));
        }
    }
    for (index, constraint) in request.constraints.iter().enumerate() {
        constraint.validate(index)?;
    }
    if request
        .request_id
        .as_deref()
        .is_some_and(|id| id.trim().is_empty())
    {
        return Err(invalid(
            "request_id",
            "leave it unset or give a non-blank id",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
