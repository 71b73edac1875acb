//! [`Core`]: the broker's state machine. Every method takes the current time
//! and either answers at once or queues [`Effect`]s (Mesos calls, events for
//! sessions, deferred replies) that the runtime drains and carries out in
//! order. Same inputs, same effects: no clock, no randomness, no I/O.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::model::*;
use super::resources::Resources;

/// An offer in the pool and what of it is not leased.
/// Fields are visible to the sibling tests, which check invariants on them.
#[derive(Debug, Clone)]
pub(super) struct PooledOffer {
    pub(super) offer: Offer,
    pub(super) free: Resources,
    pub(super) received_at: Timestamp,
}

#[derive(Debug, Clone)]
pub(super) struct LeaseState {
    pub(super) lease: Lease,
    pub(super) expiring_sent: bool,
    /// Set while the lease waits for its agent's next offer.
    pub(super) rebind_deadline: Option<Timestamp>,
}

#[derive(Debug, Default)]
pub(super) struct FrontendState {
    pub(super) next_sequence: u64,
    /// Events not yet acknowledged, oldest first.
    pub(super) outbox: VecDeque<(u64, FrontendEvent)>,
    pub(super) sessions: BTreeSet<SessionId>,
    /// Agents this frontend released with `refuse_for`, until when.
    pub(super) refused_agents: BTreeMap<AgentId, Timestamp>,
}

#[derive(Debug)]
pub(super) struct SessionState {
    frontend: FrontendName,
    namespaces: BTreeSet<String>,
    /// When the stream ended; its leases go after the session grace.
    ended_at: Option<Timestamp>,
}

/// A launch waiting for its leases to be bound to offers again.
#[derive(Debug)]
pub(super) struct PendingLaunch {
    ticket: Ticket,
    session: SessionId,
    launches: Vec<(LeaseId, Work)>,
}

#[derive(Debug)]
pub(super) struct Waiting {
    ticket: Ticket,
    session: SessionId,
    request: AcquireRequest,
    deadline: Timestamp,
}

/// A task the runtime launched, as Launch answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Launched {
    pub task_id: TaskId,
    pub client_id: String,
    pub lease: LeaseId,
    pub agent: AgentId,
}

/// An agent and what Agora holds of it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentView {
    pub agent: Agent,
    pub pooled: Resources,
    pub leased: Resources,
}

/// The broker's brain; see the module docs.
#[derive(Debug)]
pub struct Core {
    pub(super) config: CoreConfig,
    pub(super) roles: BTreeMap<String, String>,
    pub(super) id_prefix: String,
    pub(super) next_id: u64,
    pub(super) offers: BTreeMap<OfferId, PooledOffer>,
    pub(super) leases: BTreeMap<LeaseId, LeaseState>,
    pub(super) tasks: BTreeMap<TaskId, TaskRecord>,
    pub(super) frontends: BTreeMap<FrontendName, FrontendState>,
    pub(super) sessions: BTreeMap<SessionId, SessionState>,
    pub(super) waiting: VecDeque<Waiting>,
    pub(super) pending_launches: Vec<PendingLaunch>,
    pub(super) effects: Vec<Effect>,
}

impl Core {
    /// A core with no offers. `id_prefix` makes generated ids unique across
    /// restarts (the runtime passes a random boot id).
    pub fn new(config: CoreConfig, id_prefix: &str) -> Core {
        let roles = config.namespaces.iter().cloned().collect();
        Core {
            config,
            roles,
            id_prefix: id_prefix.to_owned(),
            next_id: 0,
            offers: BTreeMap::new(),
            leases: BTreeMap::new(),
            tasks: BTreeMap::new(),
            frontends: BTreeMap::new(),
            sessions: BTreeMap::new(),
            waiting: VecDeque::new(),
            pending_launches: Vec::new(),
            effects: Vec::new(),
        }
    }

    /// Takes the effects queued so far, oldest first.
    pub fn drain_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The Mesos roles of all namespaces, for the framework subscription.
    pub fn roles(&self) -> Vec<String> {
        self.roles
            .values()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn fresh_id(&mut self, kind: &str) -> String {
        self.next_id += 1;
        format!("{kind}-{}-{}", self.id_prefix, self.next_id)
    }

    // ----- sessions -------------------------------------------------------

    /// Opens a session for `frontend` in `namespaces` and replays its
    /// unacknowledged events after `resume_after`.
    pub fn subscribe(
        &mut self,
        frontend: FrontendName,
        namespaces: Vec<String>,
        resume_after: u64,
    ) -> Result<SessionId, CoreError> {
        if frontend.0.trim().is_empty() {
            return Err(invalid("frontend", "name the frontend"));
        }
        if namespaces.is_empty() {
            return Err(invalid("namespaces", "name at least one namespace"));
        }
        if let Some(unknown) = namespaces.iter().find(|ns| !self.roles.contains_key(*ns)) {
            return Err(CoreError::NamespaceNotFound(unknown.clone()));
        }
        let session = SessionId(self.fresh_id("session"));
        self.sessions.insert(
            session.clone(),
            SessionState {
                frontend: frontend.clone(),
                namespaces: namespaces.into_iter().collect(),
                ended_at: None,
            },
        );
        let state = self.frontends.entry(frontend).or_default();
        state.sessions.insert(session.clone());
        let replay: Vec<Effect> = state
            .outbox
            .iter()
            .filter(|(sequence, _)| *sequence > resume_after)
            .map(|(sequence, event)| Effect::Deliver {
                session: session.clone(),
                sequence: *sequence,
                event: event.clone(),
            })
            .collect();
        self.effects.extend(replay);
        Ok(session)
    }

    /// The session's stream ended; its leases are released after the grace
    /// unless the frontend holds them from another live session.
    pub fn end_session(&mut self, now: Timestamp, session: &SessionId) {
        if let Some(state) = self.sessions.get_mut(session) {
            state.ended_at.get_or_insert(now);
            if let Some(frontend) = self.frontends.get_mut(&state.frontend) {
                frontend.sessions.remove(session);
            }
        }
        let waiting: Vec<Ticket> = self
            .waiting
            .iter()
            .filter(|w| &w.session == session)
            .map(|w| w.ticket)
            .collect();
        self.waiting.retain(|w| &w.session != session);
        for ticket in waiting {
            self.effects.push(Effect::AcquireDone {
                ticket,
                result: Err(CoreError::SessionNotFound(session.clone())),
            });
        }
        self.retry_launches(now);
    }

    fn live_session(&self, session: &SessionId) -> Result<&SessionState, CoreError> {
        self.sessions
            .get(session)
            .filter(|s| s.ended_at.is_none())
            .ok_or_else(|| CoreError::SessionNotFound(session.clone()))
    }

    /// The frontend of a live session.
    pub fn frontend_of(&self, session: &SessionId) -> Result<FrontendName, CoreError> {
        Ok(self.live_session(session)?.frontend.clone())
    }

    // ----- acquire, hold, release -----------------------------------------

    /// Leases capacity for `request`, at once from the pool or, when it does
    /// not fit and the request may wait, as soon as offers allow.
    pub fn acquire(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        session: &SessionId,
        request: AcquireRequest,
    ) -> Result<Outcome<Vec<Lease>>, CoreError> {
        let state = self.live_session(session)?;
        if !state.namespaces.contains(&request.namespace) {
            return Err(if self.roles.contains_key(&request.namespace) {
                CoreError::NamespaceNotSubscribed {
                    namespace: request.namespace,
                }
            } else {
                CoreError::NamespaceNotFound(request.namespace)
            });
        }
        validate_slots(&request.slots)?;
        if let Some(leases) = self.try_grant(now, session, &request) {
            return Ok(Outcome::Now(leases));
        }
        if request.wait_for.is_zero() {
            return Err(CoreError::NoCapacity {
                waited: Duration::ZERO,
            });
        }
        let role = self.roles[&request.namespace].clone();
        self.waiting.push_back(Waiting {
            ticket,
            session: session.clone(),
            deadline: now.after(request.wait_for),
            request,
        });
        self.effects
            .push(Effect::Mesos(MesosCall::Revive { roles: vec![role] }));
        Ok(Outcome::Later)
    }

    /// Grants every slot of `request` or nothing.
    fn try_grant(
        &mut self,
        now: Timestamp,
        session: &SessionId,
        request: &AcquireRequest,
    ) -> Option<Vec<Lease>> {
        let frontend = self.sessions.get(session)?.frontend.clone();
        let role = self.roles.get(&request.namespace)?.clone();
        let refused = self
            .frontends
            .get(&frontend)
            .map(|f| f.refused_agents.clone())
            .unwrap_or_default();
        let mut scratch: BTreeMap<OfferId, Resources> = self
            .offers
            .iter()
            .filter(|(_, pooled)| pooled.offer.role == role)
            .filter(|(_, pooled)| {
                refused
                    .get(&pooled.offer.agent.id)
                    .is_none_or(|until| *until <= now)
            })
            .map(|(id, pooled)| (id.clone(), pooled.free.clone()))
            .collect();
        let mut grants = Vec::new();
        for slot in &request.slots {
            for _ in 0..slot.count {
                let (offer, granted) = scratch.iter().find_map(|(offer, free)| {
                    carve(free, slot).map(|granted| (offer.clone(), granted))
                })?;
                let free = scratch.get_mut(&offer)?;
                free.subtract(&granted);
                grants.push((offer, granted));
            }
        }
        let hold = request
            .hold_for
            .filter(|h| !h.is_zero())
            .unwrap_or(self.config.default_hold)
            .min(self.config.max_hold);
        let mut leases = Vec::with_capacity(grants.len());
        for (offer_id, resources) in grants {
            let pooled = self.offers.get_mut(&offer_id)?;
            pooled.free.subtract(&resources);
            let lease = Lease {
                id: LeaseId(String::new()),
                frontend: frontend.clone(),
                namespace: request.namespace.clone(),
                agent: pooled.offer.agent.clone(),
                role: role.clone(),
                resources,
                expires_at: now.after(hold),
                offer: Some(offer_id),
            };
            let lease = Lease {
                id: LeaseId(self.fresh_id("lease")),
                ..lease
            };
            self.leases.insert(
                lease.id.clone(),
                LeaseState {
                    lease: lease.clone(),
                    expiring_sent: false,
                    rebind_deadline: None,
                },
            );
            leases.push(lease);
        }
        Some(leases)
    }

    /// Leases of the session's frontend, all or an error naming the first
    /// that is not its own (indistinguishable from one that does not exist).
    fn owned_leases(
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

    /// Extends leases to `now + hold_for`, capped by the maximum hold.
    pub fn hold(
        &mut self,
        now: Timestamp,
        session: &SessionId,
        lease_ids: &[LeaseId],
        hold_for: Duration,
    ) -> Result<Vec<Lease>, CoreError> {
        self.owned_leases(session, lease_ids)?;
        let expires_at = now.after(hold_for.min(self.config.max_hold));
        let mut held = Vec::with_capacity(lease_ids.len());
        for id in lease_ids {
            if let Some(state) = self.leases.get_mut(id) {
                state.lease.expires_at = expires_at;
                state.expiring_sent = false;
                held.push(state.lease.clone());
            }
        }
        Ok(held)
    }

    /// Returns leases to the pool; their agents are not leased to this
    /// frontend again for `refuse_for`.
    pub fn release(
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
                    && let Some(f) = self.frontends.get_mut(&frontend)
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
    fn return_lease(&mut self, id: &LeaseId) -> Option<Lease> {
        let state = self.leases.remove(id)?;
        if let Some(offer) = &state.lease.offer
            && let Some(pooled) = self.offers.get_mut(offer)
        {
            pooled.free.add(&state.lease.resources);
        }
        Some(state.lease)
    }

    fn lose_lease(&mut self, id: &LeaseId, reason: LeaseLostReason, message: String) {
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

    // ----- launch, kill, acknowledge, reconcile ---------------------------

    /// Starts tasks on leases. All launches are checked before anything
    /// changes; launches on one offer go out in one ACCEPT. A lease whose
    /// sibling slice was just launched waits for its agent's next offer: the
    /// launch is then answered later, by [`Effect::LaunchDone`].
    pub fn launch(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        session: &SessionId,
        launches: Vec<(LeaseId, Work)>,
    ) -> Result<Outcome<Vec<Launched>>, CoreError> {
        let (frontend, bound) = self.check_launches(session, &launches)?;
        if bound {
            return Ok(Outcome::Now(self.execute_launch(now, &frontend, launches)));
        }
        self.pending_launches.push(PendingLaunch {
            ticket,
            session: session.clone(),
            launches,
        });
        Ok(Outcome::Later)
    }

    /// Everything a launch must satisfy; also whether every lease is bound
    /// to an offer now.
    fn check_launches(
        &self,
        session: &SessionId,
        launches: &[(LeaseId, Work)],
    ) -> Result<(FrontendName, bool), CoreError> {
        let lease_ids: Vec<LeaseId> = launches.iter().map(|(lease, _)| lease.clone()).collect();
        let frontend = self.owned_leases(session, &lease_ids)?;
        let mut asked: BTreeMap<&LeaseId, Resources> = BTreeMap::new();
        let mut client_ids = BTreeSet::new();
        let mut bound = true;
        for (lease_id, work) in launches {
            let state = &self.leases[lease_id];
            bound &= state.lease.offer.is_some();
            if work.tasks().is_empty() {
                return Err(invalid("task_group.tasks", "a task group needs tasks"));
            }
            for spec in work.tasks() {
                if spec.client_id.trim().is_empty() {
                    return Err(invalid("task.id", "give the task an id"));
                }
                let live_duplicate = self.tasks.values().any(|t| {
                    t.frontend == frontend
                        && t.client_id == spec.client_id
                        && !t.state.is_terminal()
                });
                if live_duplicate || !client_ids.insert(spec.client_id.clone()) {
                    return Err(CoreError::DuplicateTask {
                        client_id: spec.client_id.clone(),
                    });
                }
            }
            let total = asked.entry(lease_id).or_default();
            total.add(&work.resources());
            if let Some(short) = state.lease.resources.shortfall(total) {
                return Err(CoreError::TaskExceedsLease {
                    lease: lease_id.clone(),
                    resource: short.resource,
                    asked: short.asked,
                    available: short.available,
                });
            }
        }
        Ok((frontend, bound))
    }

    /// Records the tasks and queues one ACCEPT per offer; the launches were
    /// checked and every lease is bound.
    fn execute_launch(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        launches: Vec<(LeaseId, Work)>,
    ) -> Vec<Launched> {
        let lease_ids: BTreeSet<LeaseId> =
            launches.iter().map(|(lease, _)| lease.clone()).collect();
        let mut accepts: BTreeMap<OfferId, (Vec<LaunchTask>, Vec<LaunchGroup>)> = BTreeMap::new();
        let mut launched = Vec::new();
        for (lease_id, work) in launches {
            let lease = self.leases[&lease_id].lease.clone();
            let Some(offer) = lease.offer.clone() else {
                continue;
            };
            let (tasks, groups) = accepts.entry(offer).or_default();
            match work {
                Work::Task(spec) => {
                    tasks.push(self.record_task(frontend, &lease, spec, &mut launched))
                }
                Work::Group(specs) => {
                    let executor_id = format!(
                        "{}.{}.{}",
                        lease.namespace,
                        frontend,
                        self.fresh_id("group")
                    );
                    let tasks = specs
                        .into_iter()
                        .map(|spec| self.record_task(frontend, &lease, spec, &mut launched))
                        .collect();
                    groups.push(LaunchGroup {
                        executor_id,
                        agent_id: lease.agent.id.clone(),
                        role: lease.role.clone(),
                        executor_resources: group_executor_resources(),
                        tasks,
                    });
                }
            }
        }
        for (offer_id, (tasks, groups)) in accepts {
            self.consume_offer(now, &offer_id, &lease_ids);
            self.effects.push(Effect::Mesos(MesosCall::Accept {
                offer_ids: vec![offer_id],
                tasks,
                groups,
                refuse_seconds: 0.0,
            }));
        }
        launched
    }

    /// Records ownership of one task before it is launched.
    fn record_task(
        &mut self,
        frontend: &FrontendName,
        lease: &Lease,
        spec: TaskSpec,
        launched: &mut Vec<Launched>,
    ) -> LaunchTask {
        let task_id = TaskId(format!(
            "{}.{}.{}.{}",
            lease.namespace,
            frontend,
            spec.client_id,
            self.fresh_id("t")
        ));
        self.tasks.insert(
            task_id.clone(),
            TaskRecord {
                id: task_id.clone(),
                client_id: spec.client_id.clone(),
                frontend: frontend.clone(),
                namespace: lease.namespace.clone(),
                agent: lease.agent.id.clone(),
                lease: lease.id.clone(),
                resources: spec.resources.clone(),
                state: TaskState::Staging,
                reason: None,
                message: None,
                timestamp: None,
            },
        );
        launched.push(Launched {
            task_id: task_id.clone(),
            client_id: spec.client_id.clone(),
            lease: lease.id.clone(),
            agent: lease.agent.id.clone(),
        });
        LaunchTask {
            task_id,
            agent_id: lease.agent.id.clone(),
            role: lease.role.clone(),
            spec,
        }
    }

    /// Launches that waited for their leases to be re-bound: each is carried
    /// out once all its leases are bound, or refused once one is gone.
    fn retry_launches(&mut self, now: Timestamp) {
        let pending = std::mem::take(&mut self.pending_launches);
        for launch in pending {
            let result = match self.check_launches(&launch.session, &launch.launches) {
                Ok((frontend, true)) => Ok(self.execute_launch(now, &frontend, launch.launches)),
                Ok((_, false)) => {
                    self.pending_launches.push(launch);
                    continue;
                }
                Err(error) => Err(error),
            };
            self.effects.push(Effect::LaunchDone {
                ticket: launch.ticket,
                result,
            });
        }
    }

    /// An ACCEPT consumes the whole offer: launched leases end, sibling
    /// leases wait for the agent's next offer (Mesos re-offers the leftover
    /// at once because the ACCEPT refuses for zero seconds).
    fn consume_offer(&mut self, now: Timestamp, offer: &OfferId, launched: &BTreeSet<LeaseId>) {
        self.offers.remove(offer);
        let deadline = now.after(self.config.rebind_timeout);
        let on_offer: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, s)| s.lease.offer.as_ref() == Some(offer))
            .map(|(id, _)| id.clone())
            .collect();
        for id in on_offer {
            if launched.contains(&id) {
                self.leases.remove(&id);
            } else if let Some(state) = self.leases.get_mut(&id) {
                state.lease.offer = None;
                state.rebind_deadline = Some(deadline);
            }
        }
    }

    /// Asks Mesos to kill the frontend's tasks; unknown ids change nothing.
    pub fn kill(
        &mut self,
        session: &SessionId,
        task_ids: &[TaskId],
        grace: Option<Duration>,
    ) -> Result<(), CoreError> {
        let frontend = self.frontend_of(session)?;
        let records = self.owned_tasks(&frontend, task_ids)?;
        for record in records.into_iter().filter(|r| !r.state.is_terminal()) {
            self.effects.push(Effect::Mesos(MesosCall::Kill {
                task_id: record.id,
                agent_id: record.agent,
                grace,
            }));
        }
        Ok(())
    }

    fn owned_tasks(
        &self,
        frontend: &FrontendName,
        task_ids: &[TaskId],
    ) -> Result<Vec<TaskRecord>, CoreError> {
        task_ids
            .iter()
            .map(|id| match self.tasks.get(id) {
                Some(record) if &record.frontend == frontend => Ok(record.clone()),
                _ => Err(CoreError::TaskNotFound(id.clone())),
            })
            .collect()
    }

    /// Drops the frontend's events up to `up_to_sequence` from its outbox.
    pub fn acknowledge(
        &mut self,
        session: &SessionId,
        up_to_sequence: u64,
    ) -> Result<(), CoreError> {
        let frontend = self.frontend_of(session)?;
        if let Some(state) = self.frontends.get_mut(&frontend) {
            while state
                .outbox
                .front()
                .is_some_and(|(sequence, _)| *sequence <= up_to_sequence)
            {
                state.outbox.pop_front();
            }
        }
        Ok(())
    }

    /// Asks Mesos for fresh statuses of the frontend's tasks (every live one
    /// when `task_ids` is empty) and answers with what is recorded.
    pub fn reconcile(
        &mut self,
        session: &SessionId,
        task_ids: &[TaskId],
    ) -> Result<Vec<TaskRecord>, CoreError> {
        let frontend = self.frontend_of(session)?;
        let records = if task_ids.is_empty() {
            self.tasks
                .values()
                .filter(|t| t.frontend == frontend && !t.state.is_terminal())
                .cloned()
                .collect()
        } else {
            self.owned_tasks(&frontend, task_ids)?
        };
        let tasks: Vec<(TaskId, AgentId)> = records
            .iter()
            .filter(|r| !r.state.is_terminal())
            .map(|r| (r.id.clone(), r.agent.clone()))
            .collect();
        if !tasks.is_empty() {
            self.effects
                .push(Effect::Mesos(MesosCall::Reconcile { tasks }));
        }
        Ok(records)
    }

    // ----- Mesos events ----------------------------------------------------

    /// The framework is subscribed; after a resubscription every live task is
    /// reconciled, since updates may have been missed while away.
    pub fn mesos_subscribed(&mut self, resubscribed: bool) {
        if !resubscribed {
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
    }

    /// The subscription is gone, and with it every outstanding offer. Leases
    /// wait for their agents' next offers, as after a sibling launch.
    pub fn mesos_disconnected(&mut self, now: Timestamp) {
        self.offers.clear();
        let deadline = now.after(self.config.rebind_timeout);
        for state in self.leases.values_mut() {
            if state.lease.offer.take().is_some() {
                state.rebind_deadline = Some(deadline);
            }
        }
    }

    /// New offers: first they re-bind leases waiting on their agent, then
    /// they join the pool and serve waiting demand.
    pub fn offers(&mut self, now: Timestamp, offers: Vec<Offer>) {
        for offer in offers {
            let mut pooled = PooledOffer {
                free: offer.resources.clone(),
                offer,
                received_at: now,
            };
            for state in self.leases.values_mut() {
                let waiting_here = state.lease.offer.is_none()
                    && state.lease.agent.id == pooled.offer.agent.id
                    && state.lease.role == pooled.offer.role;
                if waiting_here && pooled.free.subtract(&state.lease.resources) {
                    state.lease.offer = Some(pooled.offer.id.clone());
                    state.lease.agent = pooled.offer.agent.clone();
                    state.rebind_deadline = None;
                }
            }
            self.offers.insert(pooled.offer.id.clone(), pooled);
        }
        self.retry_launches(now);
        self.serve_waiting(now);
    }

    /// Mesos took an offer back: it leaves the pool and its leases are lost.
    pub fn rescind(&mut self, offer: &OfferId) {
        if self.offers.remove(offer).is_some() {
            self.lose_leases_where(
                |lease| lease.offer.as_ref() == Some(offer),
                LeaseLostReason::OfferRescinded,
                &format!("Mesos rescinded offer {offer}"),
            );
        }
    }

    /// An agent left the cluster: its offers and leases are gone.
    pub fn agent_lost(&mut self, agent: &AgentId) {
        self.offers
            .retain(|_, pooled| &pooled.offer.agent.id != agent);
        self.lose_leases_where(
            |lease| &lease.agent.id == agent,
            LeaseLostReason::AgentGone,
            &format!("agent {agent} is gone"),
        );
    }

    /// Ends every lease matching `which`, returning what is still backed by
    /// an offer to the pool and telling each holder why.
    fn lose_leases_where(
        &mut self,
        which: impl Fn(&Lease) -> bool,
        reason: LeaseLostReason,
        message: &str,
    ) {
        let lost: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, s)| which(&s.lease))
            .map(|(id, _)| id.clone())
            .collect();
        for id in lost {
            self.lose_lease(&id, reason, message.to_owned());
        }
    }

    /// A task status from Mesos: recorded first, then acknowledged to Mesos
    /// (when it carries a uuid), then delivered to the owning frontend.
    pub fn status_update(&mut self, update: StatusUpdate) {
        let owned = self.tasks.get_mut(&update.task_id).map(|record| {
            record.state = update.state;
            record.reason = update.reason.clone();
            record.message = update.message.clone();
            record.timestamp = update.timestamp;
            if let Some(agent) = &update.agent_id {
                record.agent = agent.clone();
            }
            record.clone()
        });
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
    pub fn accept_failed(&mut self, tasks: &[TaskId], reason: &str) {
        for task in tasks {
            let Some(record) = self.tasks.get_mut(task) else {
                continue;
            };
            if record.state != TaskState::Staging {
                continue;
            }
            record.state = TaskState::Dropped;
            record.message = Some(format!("the launch did not reach Mesos: {reason}"));
            let record = record.clone();
            let frontend = record.frontend.clone();
            self.notify(&frontend, FrontendEvent::TaskStatus(Box::new(record)));
        }
    }

    /// Appends an event to the frontend's outbox and delivers it to each of
    /// its live sessions.
    fn notify(&mut self, frontend: &FrontendName, event: FrontendEvent) {
        let state = self.frontends.entry(frontend.clone()).or_default();
        state.next_sequence += 1;
        let sequence = state.next_sequence;
        state.outbox.push_back((sequence, event.clone()));
        for session in &state.sessions {
            self.effects.push(Effect::Deliver {
                session: session.clone(),
                sequence,
                event: event.clone(),
            });
        }
    }

    // ----- time -------------------------------------------------------------

    /// Everything due by `now`: expiry warnings and expiries, rebind
    /// timeouts, waits that ran out, ended sessions past their grace, and
    /// pool offers past their time to live (declined back to Mesos).
    pub fn tick(&mut self, now: Timestamp) {
        let notice = self.config.expiring_notice;
        let mut warnings = Vec::new();
        let mut expired = Vec::new();
        let mut rebind_timeouts = Vec::new();
        for (id, state) in &mut self.leases {
            if state.lease.expires_at <= now {
                expired.push(id.clone());
            } else if state.rebind_deadline.is_some_and(|d| d <= now) {
                rebind_timeouts.push(id.clone());
            } else if !state.expiring_sent && state.lease.expires_at <= now.after(notice) {
                state.expiring_sent = true;
                warnings.push(state.lease.clone());
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
        self.retry_launches(now);
        self.end_sessions_past_grace(now);
        self.expire_waits(now);
        self.serve_waiting(now);
        self.decline_stale_offers(now);
    }

    fn end_sessions_past_grace(&mut self, now: Timestamp) {
        let grace = self.config.session_grace;
        let gone: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.ended_at.is_some_and(|t| t.after(grace) <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for session in gone {
            let Some(state) = self.sessions.remove(&session) else {
                continue;
            };
            let frontend_live = self
                .frontends
                .get(&state.frontend)
                .is_some_and(|f| !f.sessions.is_empty());
            if frontend_live {
                continue;
            }
            self.lose_leases_where(
                |lease| lease.frontend == state.frontend,
                LeaseLostReason::SessionEnded,
                "the frontend had no live session for the session grace",
            );
        }
    }

    fn expire_waits(&mut self, now: Timestamp) {
        while let Some(index) = self.waiting.iter().position(|w| w.deadline <= now) {
            let Some(waiting) = self.waiting.remove(index) else {
                break;
            };
            self.effects.push(Effect::AcquireDone {
                ticket: waiting.ticket,
                result: Err(CoreError::NoCapacity {
                    waited: waiting.request.wait_for,
                }),
            });
        }
    }

    /// Serves waiting requests in arrival order, each that fits now.
    fn serve_waiting(&mut self, now: Timestamp) {
        let mut still = VecDeque::with_capacity(self.waiting.len());
        while let Some(waiting) = self.waiting.pop_front() {
            match self.try_grant(now, &waiting.session, &waiting.request) {
                Some(leases) => self.effects.push(Effect::AcquireDone {
                    ticket: waiting.ticket,
                    result: Ok(leases),
                }),
                None => still.push_back(waiting),
            }
        }
        self.waiting = still;
    }

    fn decline_stale_offers(&mut self, now: Timestamp) {
        let ttl = self.config.pool_ttl;
        let leased: BTreeSet<&OfferId> = self
            .leases
            .values()
            .filter_map(|s| s.lease.offer.as_ref())
            .collect();
        let stale: Vec<OfferId> = self
            .offers
            .iter()
            .filter(|(id, pooled)| pooled.received_at.after(ttl) <= now && !leased.contains(id))
            .map(|(id, _)| id.clone())
            .collect();
        if stale.is_empty() {
            return;
        }
        for id in &stale {
            self.offers.remove(id);
        }
        self.effects.push(Effect::Mesos(MesosCall::Decline {
            offer_ids: stale,
            refuse_seconds: self.config.decline_refuse.as_secs_f64(),
        }));
    }

    /// When [`Core::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let notice = self.config.expiring_notice;
        let leases = self.leases.values().flat_map(|s| {
            let warn = (!s.expiring_sent).then(|| {
                Timestamp(
                    s.lease
                        .expires_at
                        .0
                        .saturating_sub(notice.as_millis() as u64),
                )
            });
            [Some(s.lease.expires_at), s.rebind_deadline, warn]
        });
        let offers = self
            .offers
            .values()
            .map(|p| Some(p.received_at.after(self.config.pool_ttl)));
        let waits = self.waiting.iter().map(|w| Some(w.deadline));
        let sessions = self
            .sessions
            .values()
            .map(|s| s.ended_at.map(|t| t.after(self.config.session_grace)));
        leases
            .chain(offers)
            .chain(waits)
            .chain(sessions)
            .flatten()
            .min()
    }

    // ----- views --------------------------------------------------------

    /// Agents with offers or leases, and what Agora holds of each.
    pub fn agents(&self) -> Vec<AgentView> {
        let mut views: BTreeMap<AgentId, AgentView> = BTreeMap::new();
        for pooled in self.offers.values() {
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

fn invalid(field: &str, reason: &str) -> CoreError {
    CoreError::InvalidRequest {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

fn validate_slots(slots: &[Slot]) -> Result<(), CoreError> {
    if slots.is_empty() {
        return Err(invalid("slots", "ask for at least one slot"));
    }
    for (index, slot) in slots.iter().enumerate() {
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
    Ok(())
}

/// What `slot` would take from `free`: its resources plus the lowest free
/// ports it asks a count of; `None` when it does not fit.
fn carve(free: &Resources, slot: &Slot) -> Option<Resources> {
    if !free.contains(&slot.resources) {
        return None;
    }
    let mut granted = slot.resources.clone();
    if slot.port_count > 0 {
        granted.add(&free.pick_ports(slot.port_count, &slot.resources)?);
    }
    Some(granted)
}
