//! [`Core`]: the broker's state machine. Every method takes the current time
//! and either answers at once or queues [`Effect`]s (Mesos calls, events for
//! sessions, deferred replies) that the runtime drains and carries out in
//! order. Same inputs, same effects: no clock, no randomness, no I/O.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::fair::Standing;
use super::model::*;
use super::namespaces::role_quotas;
use super::placement::{Demand, place};
use super::pool::{Pool, PooledOffer};
use super::resources::Resources;

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

/// Demand waiting for capacity, in arrival order.
#[derive(Debug)]
pub(super) struct Waiting {
    /// The call and any retries with its request id: all get one answer.
    tickets: Vec<Ticket>,
    session: SessionId,
    frontend: FrontendName,
    pub(super) request: AcquireRequest,
    since: Timestamp,
    deadline: Timestamp,
}

/// A request id seen recently, and its leases once granted.
#[derive(Debug)]
pub(super) struct Remembered {
    request: AcquireRequest,
    granted: Option<Vec<Lease>>,
    at: Timestamp,
}

/// Launches on one offer waiting, for `launch_linger`, for the launches of
/// sibling leases on the same offer, so that one ACCEPT carries them all.
#[derive(Debug, Default)]
pub(super) struct PendingAccept {
    /// What the launched leases took from the offer.
    pub(super) taken: Resources,
    pub(super) tasks: Vec<LaunchTask>,
    pub(super) groups: Vec<LaunchGroup>,
    flush_at: Timestamp,
}

impl PendingAccept {
    fn task_ids(&self) -> Vec<TaskId> {
        let grouped = self.groups.iter().flat_map(|g| &g.tasks);
        self.tasks
            .iter()
            .chain(grouped)
            .map(|t| t.task_id.clone())
            .collect()
    }
}

/// A task the runtime launched, as Launch answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Launched {
    pub task_id: TaskId,
    pub client_id: String,
    pub lease: LeaseId,
    pub agent: AgentId,
}

/// A namespace's usage against its quota, for operators.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceUsage {
    pub namespace: Namespace,
    /// Leased and not launched.
    pub leased: Resources,
    /// Held by live tasks.
    pub running: Resources,
    /// The largest share of any resource of the capacity Agora holds,
    /// divided by the namespace's weight.
    pub dominant_share: f64,
    /// Slots of requests waiting for capacity.
    pub waiting_slots: u32,
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
    pub(super) namespaces: BTreeMap<String, Namespace>,
    pub(super) id_prefix: String,
    pub(super) next_id: u64,
    pub(super) offers: Pool,
    pub(super) leases: BTreeMap<LeaseId, LeaseState>,
    pub(super) tasks: BTreeMap<TaskId, TaskRecord>,
    pub(super) frontends: BTreeMap<FrontendName, FrontendState>,
    pub(super) sessions: BTreeMap<SessionId, SessionState>,
    pub(super) waiting: VecDeque<Waiting>,
    pub(super) requests: BTreeMap<(FrontendName, String), Remembered>,
    pub(super) pending_launches: Vec<PendingLaunch>,
    pub(super) accepts: BTreeMap<OfferId, PendingAccept>,
    /// Roles Mesos was told to stop offering.
    pub(super) suppressed: BTreeSet<String>,
    /// Per namespace, what its leases and live tasks hold.
    pub(super) usage: BTreeMap<String, Resources>,
    /// The quota and weights last set in Mesos, to send only changes.
    pub(super) pushed: (Vec<RoleQuota>, Vec<(String, f64)>),
    pub(super) effects: Vec<Effect>,
}

impl Core {
    /// A core with no offers. `id_prefix` makes generated ids unique across
    /// restarts (the runtime passes a random boot id).
    pub fn new(config: CoreConfig, id_prefix: &str) -> Core {
        let namespaces = config
            .namespaces
            .iter()
            .map(|ns| (ns.name.clone(), ns.clone()))
            .collect();
        Core {
            config,
            namespaces,
            id_prefix: id_prefix.to_owned(),
            next_id: 0,
            offers: Pool::default(),
            leases: BTreeMap::new(),
            tasks: BTreeMap::new(),
            frontends: BTreeMap::new(),
            sessions: BTreeMap::new(),
            waiting: VecDeque::new(),
            requests: BTreeMap::new(),
            pending_launches: Vec::new(),
            accepts: BTreeMap::new(),
            suppressed: BTreeSet::new(),
            usage: BTreeMap::new(),
            pushed: (Vec::new(), Vec::new()),
            effects: Vec::new(),
        }
    }

    /// Takes the effects queued so far, oldest first. Before they leave,
    /// each role's offer suppression is brought in line with its demand, so
    /// that every input ends with Mesos asked for exactly what is needed.
    pub fn drain_effects(&mut self) -> Vec<Effect> {
        self.settle_suppression();
        std::mem::take(&mut self.effects)
    }

    /// The Mesos roles of all namespaces, for the framework subscription.
    pub fn roles(&self) -> Vec<String> {
        self.namespaces
            .values()
            .map(|ns| ns.role.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn role_of(&self, namespace: &str) -> Option<&str> {
        self.namespaces.get(namespace).map(|ns| ns.role.as_str())
    }

    /// What a namespace's leases and live tasks hold now.
    pub fn usage(&self, namespace: &str) -> Resources {
        self.usage.get(namespace).cloned().unwrap_or_default()
    }

    fn charge(&mut self, namespace: &str, resources: &Resources) {
        self.usage
            .entry(namespace.to_owned())
            .or_default()
            .add(resources);
    }

    fn credit(&mut self, namespace: &str, resources: &Resources) {
        if let Some(usage) = self.usage.get_mut(namespace) {
            usage.subtract(resources);
        }
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
        if let Some(unknown) = namespaces
            .iter()
            .find(|ns| !self.namespaces.contains_key(*ns))
        {
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
    /// unless the frontend holds them from another live session. Its
    /// waiting demand is answered at once: nobody is there to take it.
    pub fn end_session(&mut self, now: Timestamp, session: &SessionId) {
        if let Some(state) = self.sessions.get_mut(session) {
            state.ended_at.get_or_insert(now);
            if let Some(frontend) = self.frontends.get_mut(&state.frontend) {
                frontend.sessions.remove(session);
            }
        }
        let (gone, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| &w.session == session);
        self.waiting = kept;
        for waiting in gone {
            self.answer_waiting(waiting, Err(CoreError::SessionNotFound(session.clone())));
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

    // ----- namespaces ------------------------------------------------------

    /// Every namespace, by name.
    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.namespaces.values()
    }

    /// One namespace.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.get(name)
    }

    /// Checks that `namespace` may be put, changing nothing, so that the
    /// runtime can persist it before it takes effect.
    pub fn check_put_namespace(&self, namespace: &Namespace) -> Result<(), CoreError> {
        namespace.validate()?;
        match self.namespaces.get(&namespace.name) {
            Some(old) if old.role != namespace.role => {
                self.check_unused(&namespace.name, "so its role cannot change")
            }
            _ => Ok(()),
        }
    }

    /// Creates or replaces a namespace. When the set of roles changes, the
    /// framework's roles are updated in Mesos (UPDATE_FRAMEWORK: no
    /// resubscription, no task touched).
    pub fn put_namespace(&mut self, namespace: Namespace) -> Result<(), CoreError> {
        self.check_put_namespace(&namespace)?;
        let roles = self.roles();
        self.namespaces.insert(namespace.name.clone(), namespace);
        self.roles_changed(roles);
        self.push_quota();
        Ok(())
    }

    /// Checks that a namespace exists and holds nothing, changing nothing.
    pub fn check_delete_namespace(&self, name: &str) -> Result<(), CoreError> {
        if !self.namespaces.contains_key(name) {
            return Err(CoreError::NamespaceNotFound(name.to_owned()));
        }
        self.check_unused(name, "so it cannot be deleted")
    }

    /// Removes a namespace that holds nothing; its role leaves the
    /// framework when no other namespace uses it.
    pub fn delete_namespace(&mut self, name: &str) -> Result<Namespace, CoreError> {
        self.check_delete_namespace(name)?;
        let roles = self.roles();
        let removed = self
            .namespaces
            .remove(name)
            .ok_or_else(|| CoreError::NamespaceNotFound(name.to_owned()))?;
        self.roles_changed(roles);
        self.push_quota();
        Ok(removed)
    }

    /// Refuses while the namespace has leases, live tasks or waiting demand.
    fn check_unused(&self, name: &str, consequence: &str) -> Result<(), CoreError> {
        let leases = self
            .leases
            .values()
            .filter(|s| s.lease.namespace == name)
            .count();
        let tasks = self
            .tasks
            .values()
            .filter(|t| t.namespace == name && !t.state.is_terminal())
            .count();
        let waiting = self
            .waiting
            .iter()
            .filter(|w| w.request.namespace == name)
            .count();
        if leases + tasks + waiting == 0 {
            return Ok(());
        }
        Err(CoreError::NamespaceInUse {
            namespace: name.to_owned(),
            what: format!(
                "{leases} leases, {tasks} live tasks and {waiting} waiting requests, {consequence}"
            ),
        })
    }

    /// With `push_quota`, sets in Mesos the quota of each top-level role and
    /// the weight of each role, where they changed since the last push;
    /// roles no longer used get theirs reset.
    fn push_quota(&mut self) {
        if !self.config.push_quota {
            return;
        }
        let quotas = role_quotas(self.namespaces.values());
        let mut weights: BTreeMap<String, f64> = BTreeMap::new();
        for namespace in self.namespaces.values() {
            *weights.entry(namespace.role.clone()).or_default() += namespace.weight;
        }
        let weights: Vec<(String, f64)> = weights.into_iter().collect();
        let (old_quotas, old_weights) =
            std::mem::replace(&mut self.pushed, (quotas.clone(), weights.clone()));
        let resets = old_quotas
            .iter()
            .filter(|old| quotas.iter().all(|q| q.role != old.role))
            .map(|old| RoleQuota {
                role: old.role.clone(),
                guarantee: Resources::default(),
                limit: Resources::default(),
            });
        let changed: Vec<RoleQuota> = quotas
            .iter()
            .filter(|q| !old_quotas.contains(q))
            .cloned()
            .chain(resets)
            .collect();
        if !changed.is_empty() {
            self.effects
                .push(Effect::Mesos(MesosCall::UpdateQuota { quotas: changed }));
        }
        let resets = old_weights
            .iter()
            .filter(|(old, _)| weights.iter().all(|(role, _)| role != old))
            .map(|(old, _)| (old.clone(), 1.0));
        let changed: Vec<(String, f64)> = weights
            .iter()
            .filter(|w| !old_weights.contains(w))
            .cloned()
            .chain(resets)
            .collect();
        if !changed.is_empty() {
            self.effects
                .push(Effect::Mesos(MesosCall::UpdateWeights { weights: changed }));
        }
    }

    /// Tells Mesos the framework's roles when they differ from `before`.
    fn roles_changed(&mut self, before: Vec<String>) {
        let roles = self.roles();
        if roles == before {
            return;
        }
        self.suppressed.retain(|role| roles.contains(role));
        self.effects.push(Effect::Mesos(MesosCall::UpdateFramework {
            roles,
            suppressed_roles: self.suppressed.iter().cloned().collect(),
        }));
    }

    // ----- acquire, hold, release -----------------------------------------

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
    pub fn acquire(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        session: &SessionId,
        request: AcquireRequest,
    ) -> Result<Outcome<Vec<Lease>>, CoreError> {
        let frontend = self.check_namespace(session, &request.namespace)?;
        validate_request(&request)?;
        if let Some(outcome) = self.recall(now, ticket, &frontend, &request)? {
            return Ok(outcome);
        }
        self.check_quota(&request)?;
        let served = if self.queue_blocked(now, &request.namespace) {
            None
        } else {
            self.try_grant(now, &frontend, &request)
        };
        if let Some(leases) = served {
            self.remember(now, &frontend, &request, Some(&leases));
            return Ok(Outcome::Now(leases));
        }
        if request.wait_for.is_zero() {
            return Err(CoreError::NoCapacity {
                waited: Duration::ZERO,
            });
        }
        self.remember(now, &frontend, &request, None);
        let role = self.namespaces[&request.namespace].role.clone();
        self.waiting.push_back(Waiting {
            tickets: vec![ticket],
            session: session.clone(),
            frontend,
            since: now,
            deadline: now.after(request.wait_for),
            request,
        });
        self.suppressed.remove(&role);
        self.effects
            .push(Effect::Mesos(MesosCall::Revive { roles: vec![role] }));
        self.yield_idle_offers(now);
        Ok(Outcome::Later)
    }

    /// The session's frontend, when `namespace` is one of the session's.
    fn check_namespace(
        &self,
        session: &SessionId,
        namespace: &str,
    ) -> Result<FrontendName, CoreError> {
        let state = self.live_session(session)?;
        if !self.namespaces.contains_key(namespace) {
            Err(CoreError::NamespaceNotFound(namespace.to_owned()))
        } else if state.namespaces.contains(namespace) {
            Ok(state.frontend.clone())
        } else {
            Err(CoreError::NamespaceNotSubscribed {
                namespace: namespace.to_owned(),
            })
        }
    }

    /// Refuses a request the namespace's limit could never admit now: all
    /// its slots for a gang, otherwise its smallest slot.
    fn check_quota(&self, request: &AcquireRequest) -> Result<(), CoreError> {
        let namespace = &self.namespaces[&request.namespace];
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

    /// A retry of a request id seen before: the same leases, or a place
    /// beside the original among the waiting. `None` for a new request.
    fn recall(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        frontend: &FrontendName,
        request: &AcquireRequest,
    ) -> Result<Option<Outcome<Vec<Lease>>>, CoreError> {
        let Some(request_id) = &request.request_id else {
            return Ok(None);
        };
        let key = (frontend.clone(), request_id.clone());
        let Some(remembered) = self.requests.get_mut(&key) else {
            return Ok(None);
        };
        if !remembered.request.same_ask(request) {
            return Err(CoreError::RequestIdReused {
                request_id: request_id.clone(),
            });
        }
        remembered.at = now;
        if let Some(granted) = &remembered.granted {
            let current = granted
                .iter()
                .map(|lease| {
                    self.leases
                        .get(&lease.id)
                        .map_or_else(|| lease.clone(), |s| s.lease.clone())
                })
                .collect();
            return Ok(Some(Outcome::Now(current)));
        }
        let original = self
            .waiting
            .iter_mut()
            .find(|w| &w.frontend == frontend && w.request.request_id.as_ref() == Some(request_id));
        Ok(original.map(|waiting| {
            waiting.tickets.push(ticket);
            Outcome::Later
        }))
    }

    /// Keeps a request id for retries, with its leases once granted.
    fn remember(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        request: &AcquireRequest,
        granted: Option<&[Lease]>,
    ) {
        if let Some(request_id) = &request.request_id {
            self.requests.insert(
                (frontend.clone(), request_id.clone()),
                Remembered {
                    request: request.clone(),
                    granted: granted.map(<[Lease]>::to_vec),
                    at: now,
                },
            );
        }
    }

    /// Whether a request of `namespace` that waited past the backfill
    /// window holds up newer ones.
    fn queue_blocked(&self, now: Timestamp, namespace: &str) -> bool {
        let window = self.config.backfill_window;
        self.waiting
            .iter()
            .any(|w| w.request.namespace == namespace && w.since.after(window) <= now)
    }

    /// Grants the request from the pool: every slot of a gang or nothing;
    /// otherwise every slot that fits, `None` when not one does.
    fn try_grant(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        request: &AcquireRequest,
    ) -> Option<Vec<Lease>> {
        let namespace = self.namespaces.get(&request.namespace)?;
        let role = namespace.role.clone();
        let max_hold = self.max_hold(namespace);
        let demand = demand_for(
            namespace,
            &self.usage,
            &self.frontends,
            frontend,
            request,
            now,
        );
        let grants = place(&mut self.offers, &demand);
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
                id: LeaseId(self.fresh_id("lease")),
                frontend: frontend.clone(),
                namespace: request.namespace.clone(),
                agent: grant.agent,
                role: role.clone(),
                resources: grant.resources,
                expires_at: now.after(hold),
                offer: Some(grant.offer),
            };
            self.charge(&lease.namespace, &lease.resources);
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

    /// The longest a lease of `namespace` may be held.
    fn max_hold(&self, namespace: &Namespace) -> Duration {
        namespace.max_hold.unwrap_or(self.config.max_hold)
    }

    /// Answers every caller of a waiting request; a request id is kept with
    /// its leases, or forgotten when the request failed.
    fn answer_waiting(&mut self, waiting: Waiting, result: Result<Vec<Lease>, CoreError>) {
        if let Some(request_id) = &waiting.request.request_id {
            let key = (waiting.frontend.clone(), request_id.clone());
            match &result {
                Ok(leases) => {
                    if let Some(remembered) = self.requests.get_mut(&key) {
                        remembered.granted = Some(leases.clone());
                    }
                }
                Err(_) => {
                    self.requests.remove(&key);
                }
            }
        }
        for ticket in waiting.tickets {
            self.effects.push(Effect::AcquireDone {
                ticket,
                result: result.clone(),
            });
        }
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

    /// Extends leases to `now + hold_for`, capped by their namespace's
    /// maximum hold.
    pub fn hold(
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
                .and_then(|s| self.namespaces.get(&s.lease.namespace))
                .map_or(self.config.max_hold, |ns| self.max_hold(ns));
            if let Some(state) = self.leases.get_mut(id) {
                state.lease.expires_at = now.after(hold_for.min(max_hold));
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
        if let Some(offer) = &state.lease.offer {
            self.offers.give_back(offer, &state.lease.resources);
        }
        self.credit(&state.lease.namespace, &state.lease.resources);
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

    /// Records the tasks and adds them to their offers' pending ACCEPTs;
    /// the launches were checked and every lease is bound. An offer that no
    /// other lease shares is accepted at once; one with siblings waits up to
    /// `launch_linger` for their launches.
    fn execute_launch(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        launches: Vec<(LeaseId, Work)>,
    ) -> Vec<Launched> {
        let mut launched = Vec::new();
        let mut offers = BTreeSet::new();
        for (lease_id, work) in launches {
            let Some(LeaseState { lease, .. }) = self.leases.remove(&lease_id) else {
                continue;
            };
            let Some(offer) = lease.offer.clone() else {
                continue;
            };
            self.credit(&lease.namespace, &lease.resources);
            match work {
                Work::Task(spec) => {
                    let task = self.record_task(frontend, &lease, spec, &mut launched);
                    self.pending_accept(now, &offer).tasks.push(task);
                }
                Work::Group(specs) => {
                    let executor_id = format!(
                        "{}.{}.{}",
                        lease.namespace,
                        frontend,
                        self.fresh_id("group")
                    );
                    let tasks: Vec<LaunchTask> = specs
                        .into_iter()
                        .map(|spec| self.record_task(frontend, &lease, spec, &mut launched))
                        .collect();
                    let executor = group_executor_resources();
                    if let Some(first) = tasks.first().and_then(|t| self.tasks.get_mut(&t.task_id))
                    {
                        first.resources.add(&executor);
                    }
                    self.charge(&lease.namespace, &executor);
                    let group = LaunchGroup {
                        executor_id,
                        agent_id: lease.agent.id.clone(),
                        role: lease.role.clone(),
                        executor_resources: executor,
                        tasks,
                    };
                    self.pending_accept(now, &offer).groups.push(group);
                }
            }
            self.pending_accept(now, &offer).taken.add(&lease.resources);
            offers.insert(offer);
        }
        for offer in offers {
            if !self
                .leases
                .values()
                .any(|s| s.lease.offer.as_ref() == Some(&offer))
            {
                self.flush_accept(now, &offer);
            }
        }
        launched
    }

    /// The offer's pending ACCEPT, opened now if there is none.
    fn pending_accept(&mut self, now: Timestamp, offer: &OfferId) -> &mut PendingAccept {
        let flush_at = now.after(self.config.launch_linger);
        self.accepts
            .entry(offer.clone())
            .or_insert_with(|| PendingAccept {
                flush_at,
                ..PendingAccept::default()
            })
    }

    /// Sends an offer's pending ACCEPT. Mesos consumes the whole offer, so
    /// sibling leases wait for the agent's next offer (Mesos re-offers the
    /// leftover at once because the ACCEPT refuses for zero seconds).
    fn flush_accept(&mut self, now: Timestamp, offer: &OfferId) {
        let Some(pending) = self.accepts.remove(offer) else {
            return;
        };
        self.offers.remove(offer);
        let deadline = now.after(self.config.rebind_timeout);
        for state in self.leases.values_mut() {
            if state.lease.offer.as_ref() == Some(offer) {
                state.lease.offer = None;
                state.rebind_deadline = Some(deadline);
            }
        }
        self.effects.push(Effect::Mesos(MesosCall::Accept {
            offer_ids: vec![offer.clone()],
            tasks: pending.tasks,
            groups: pending.groups,
            refuse_seconds: 0.0,
        }));
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
        self.charge(&lease.namespace, &spec.resources);
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

    /// The framework is subscribed with `roles`. A fresh subscription
    /// suppresses no role; roles that changed while it was in flight are
    /// updated; after a resubscription every live task is reconciled, since
    /// updates may have been missed while away.
    pub fn mesos_subscribed(&mut self, resubscribed: bool, roles: &[String]) {
        self.suppressed.clear();
        self.roles_changed(roles.to_vec());
        self.pushed = Default::default();
        self.push_quota();
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
    /// wait for their agents' next offers, as after a sibling launch;
    /// launches not yet sent never will be.
    pub fn mesos_disconnected(&mut self, now: Timestamp) {
        for offer in self.offers.clear() {
            self.drop_pending_accept(&offer, "the connection to Mesos was lost");
        }
        let deadline = now.after(self.config.rebind_timeout);
        for state in self.leases.values_mut() {
            if state.lease.offer.take().is_some() {
                state.rebind_deadline = Some(deadline);
            }
        }
    }

    /// New offers: first they re-bind leases waiting on their agent, then
    /// they join the pool and serve waiting demand. Leases on an agent whose
    /// hostname or attributes changed are lost: they were placed by
    /// constraints on what the agent was.
    pub fn offers(&mut self, now: Timestamp, offers: Vec<Offer>) {
        for offer in offers {
            self.lose_leases_where(
                |lease| lease.agent.id == offer.agent.id && lease.agent != offer.agent,
                LeaseLostReason::AgentChanged,
                &format!(
                    "agent {} changed its hostname or attributes",
                    offer.agent.id
                ),
            );
            let mut free = offer.resources.clone();
            for state in self.leases.values_mut() {
                let waiting_here = state.lease.offer.is_none()
                    && state.lease.agent.id == offer.agent.id
                    && state.lease.role == offer.role;
                if waiting_here && free.subtract(&state.lease.resources) {
                    state.lease.offer = Some(offer.id.clone());
                    state.rebind_deadline = None;
                }
            }
            self.offers.insert(PooledOffer {
                offer,
                free,
                received_at: now,
            });
        }
        self.retry_launches(now);
        self.serve_waiting(now);
        self.yield_idle_offers(now);
    }

    /// Mesos took an offer back: it leaves the pool, launches waiting on it
    /// are dropped and its leases are lost.
    pub fn rescind(&mut self, offer: &OfferId) {
        if self.offers.remove(offer).is_some() {
            self.drop_pending_accept(offer, &format!("Mesos rescinded offer {offer}"));
            self.lose_leases_where(
                |lease| lease.offer.as_ref() == Some(offer),
                LeaseLostReason::OfferRescinded,
                &format!("Mesos rescinded offer {offer}"),
            );
        }
    }

    /// An agent left the cluster: its offers and leases are gone.
    pub fn agent_lost(&mut self, agent: &AgentId) {
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
        self.lose_leases_where(
            |lease| &lease.agent.id == agent,
            LeaseLostReason::AgentGone,
            &format!("agent {agent} is gone"),
        );
    }

    /// Launches waiting to be accepted on an offer that is gone never reach
    /// Mesos: their tasks end as `Dropped`.
    fn drop_pending_accept(&mut self, offer: &OfferId, reason: &str) {
        if let Some(pending) = self.accepts.remove(offer) {
            self.accept_failed(&pending.task_ids(), reason);
        }
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
    /// (when it carries a uuid), then delivered to the owning frontend. A
    /// terminal state is final: a later update of the same task (a stale
    /// retry, a reconciliation answer) is acknowledged and goes no further.
    pub fn status_update(&mut self, update: StatusUpdate) {
        let owned = self
            .tasks
            .get_mut(&update.task_id)
            .filter(|record| !record.state.is_terminal())
            .map(|record| {
                record.state = update.state;
                record.reason = update.reason.clone();
                record.message = update.message.clone();
                record.timestamp = update.timestamp;
                if let Some(agent) = &update.agent_id {
                    record.agent = agent.clone();
                }
                record.clone()
            });
        if let Some(record) = owned.as_ref().filter(|r| r.state.is_terminal()) {
            self.credit(&record.namespace, &record.resources);
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
            self.credit(&record.namespace, &record.resources);
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
    /// timeouts, launches that lingered long enough, waits that ran out,
    /// ended sessions past their grace, pool offers past their time to live
    /// (declined back to Mesos) and request ids past their memory.
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
        let due: Vec<OfferId> = self
            .accepts
            .iter()
            .filter(|(_, pending)| pending.flush_at <= now)
            .map(|(offer, _)| offer.clone())
            .collect();
        for offer in due {
            self.flush_accept(now, &offer);
        }
        self.retry_launches(now);
        self.end_sessions_past_grace(now);
        self.expire_waits(now);
        self.serve_waiting(now);
        self.yield_idle_offers(now);
        self.decline_stale_offers(now);
        let memory = self.config.request_memory;
        self.requests
            .retain(|_, r| r.granted.is_none() || r.at.after(memory) > now);
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
        let (expired, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.deadline <= now);
        self.waiting = kept;
        for waiting in expired {
            let waited = waiting.request.wait_for;
            self.answer_waiting(waiting, Err(CoreError::NoCapacity { waited }));
        }
    }

    /// Serves waiting requests, namespace by namespace in fair-share order
    /// (recomputed after every grant, since usage changed), each
    /// namespace's in arrival order by the backfill rule of
    /// [`Core::acquire`]. A request that could not be served is not tried
    /// again in the same call: serving others only takes capacity away.
    fn serve_waiting(&mut self, now: Timestamp) {
        let window = self.config.backfill_window;
        let mut failed: BTreeSet<Ticket> = BTreeSet::new();
        'serve: loop {
            for namespace in self.fair_order() {
                let mut index = 0;
                while index < self.waiting.len() {
                    let waiting = &self.waiting[index];
                    let ticket = waiting.tickets[0];
                    if waiting.request.namespace != namespace || failed.contains(&ticket) {
                        index += 1;
                        continue;
                    }
                    let Some(waiting) = self.waiting.remove(index) else {
                        break;
                    };
                    if let Some(leases) = self.try_grant(now, &waiting.frontend, &waiting.request) {
                        self.answer_waiting(waiting, Ok(leases));
                        continue 'serve;
                    }
                    failed.insert(ticket);
                    let blocks = waiting.since.after(window) <= now;
                    self.waiting.insert(index, waiting);
                    if blocks {
                        break;
                    }
                    index += 1;
                }
            }
            break;
        }
    }

    /// The capacity shares are measured against: what Agora holds in its
    /// pool plus what its namespaces use.
    fn capacity(&self) -> Resources {
        let mut capacity = self.offers.total_free().clone();
        for usage in self.usage.values() {
            capacity.add(usage);
        }
        capacity
    }

    /// Namespaces with waiting demand, in the order fair share serves them.
    fn fair_order(&self) -> Vec<String> {
        let waiting: BTreeSet<&str> = self
            .waiting
            .iter()
            .map(|w| w.request.namespace.as_str())
            .collect();
        let capacity = self.capacity();
        let mut standings: Vec<(Standing, &str)> = waiting
            .into_iter()
            .filter_map(|name| {
                let namespace = self.namespaces.get(name)?;
                Some((Standing::of(namespace, &self.usage(name), &capacity), name))
            })
            .collect();
        standings.sort_by(|(a, a_name), (b, b_name)| a.serve_before(b).then(a_name.cmp(b_name)));
        standings
            .into_iter()
            .map(|(_, name)| name.to_owned())
            .collect()
    }

    /// Declines pool offers past `pool_ttl` that nothing holds: not leased,
    /// no launch pending, no waiting demand of their role that could use
    /// them, and not among the `warm_pool` newest offers of their role.
    fn decline_stale_offers(&mut self, now: Timestamp) {
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
    fn demand_could_use(&self, now: Timestamp, pooled: &PooledOffer) -> bool {
        self.roles_that_could_use(now, pooled)
            .any(|role| role == pooled.offer.role)
    }

    /// The roles of waiting requests that could put a slot on the offer's
    /// agent, were its free resources offered to them.
    fn roles_that_could_use<'a>(
        &'a self,
        now: Timestamp,
        pooled: &'a PooledOffer,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.waiting.iter().filter_map(move |waiting| {
            let namespace = self.namespaces.get(&waiting.request.namespace)?;
            let demand = demand_for(
                namespace,
                &self.usage,
                &self.frontends,
                &waiting.frontend,
                &waiting.request,
                now,
            );
            demand
                .could_use(&pooled.offer.agent, &pooled.free)
                .then_some(namespace.role.as_str())
        })
    }

    /// Idle offers that another role's waiting demand could use go back to
    /// Mesos at once, warm pool or not: held for a role that does not need
    /// them, they would keep the capacity from the role that does. Mesos's
    /// refuse filter is per role, so the agent can be offered to the
    /// waiting role at the next allocation.
    fn yield_idle_offers(&mut self, now: Timestamp) {
        if self.waiting.is_empty() {
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
    fn held_offers(&self) -> BTreeSet<OfferId> {
        self.leases
            .values()
            .filter_map(|s| s.lease.offer.clone())
            .chain(self.accepts.keys().cloned())
            .collect()
    }

    /// Takes offers out of the pool and declines them.
    fn decline(&mut self, offer_ids: Vec<OfferId>) {
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
    /// holds fewer than `warm_pool` offers.
    fn settle_suppression(&mut self) {
        for role in self.roles() {
            let demand = self
                .waiting
                .iter()
                .any(|w| self.role_of(&w.request.namespace) == Some(role.as_str()));
            let rebinding = self
                .leases
                .values()
                .any(|s| s.lease.offer.is_none() && s.lease.role == role);
            let wants = demand || rebinding || self.offers.count(&role) < self.config.warm_pool;
            if wants && self.suppressed.remove(&role) {
                self.effects
                    .push(Effect::Mesos(MesosCall::Revive { roles: vec![role] }));
            } else if !wants && self.suppressed.insert(role.clone()) {
                self.effects
                    .push(Effect::Mesos(MesosCall::Suppress { roles: vec![role] }));
            }
        }
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
            .iter()
            .map(|p| Some(p.received_at.after(self.config.pool_ttl)));
        let accepts = self.accepts.values().map(|p| Some(p.flush_at));
        let waits = self.waiting.iter().map(|w| Some(w.deadline));
        let sessions = self
            .sessions
            .values()
            .map(|s| s.ended_at.map(|t| t.after(self.config.session_grace)));
        leases
            .chain(offers)
            .chain(accepts)
            .chain(waits)
            .chain(sessions)
            .flatten()
            .min()
    }

    // ----- views --------------------------------------------------------

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
        if let Some(name) = name.filter(|n| !self.namespaces.contains_key(*n)) {
            return Err(CoreError::NamespaceNotFound(name.to_owned()));
        }
        let capacity = self.capacity();
        let report = self
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
                let mut running = usage.clone();
                running.subtract(&leased);
                let waiting_slots = self
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
                    dominant_share: Standing::of(ns, &usage, &capacity).weighted_share,
                    waiting_slots,
                }
            })
            .collect();
        Ok(report)
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

/// What placement must respect for `request` of `frontend` in `namespace`.
/// A free function over the fields it reads, so that the pool can be
/// borrowed mutably beside it.
fn demand_for<'a>(
    namespace: &'a Namespace,
    usage: &'a BTreeMap<String, Resources>,
    frontends: &'a BTreeMap<FrontendName, FrontendState>,
    frontend: &FrontendName,
    request: &'a AcquireRequest,
    now: Timestamp,
) -> Demand<'a> {
    Demand {
        role: &namespace.role,
        slots: &request.slots,
        constraints: &request.constraints,
        gang: request.gang,
        refused: frontends.get(frontend).map(|f| &f.refused_agents),
        now,
        limit: &namespace.limit,
        usage: usage.get(&namespace.name),
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

fn validate_request(request: &AcquireRequest) -> Result<(), CoreError> {
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
