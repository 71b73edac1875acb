//! [`Core`]: the broker's state machine. Everything reaches it through
//! [`Core::handle`] with the time it happened, and everything it decides
//! comes out as [`Effect`]s (Mesos calls, events for sessions, replies),
//! which the runtime carries out in order. Same inputs, same effects: no
//! clock, no randomness, no I/O. Reads (`views`) take `&self` and are no
//! inputs: they change nothing, so nothing needs to record them.
//!
//! The state and sessions live here; `handle` dispatches each input to the
//! concern that decides it, each in a file of its own: `acquire` (leases),
//! `demand` (waiting requests and fair share), `launch` (tasks),
//! `mesos_events`, `upkeep` (time and the pool), `tenancy` (namespaces),
//! `frontends` (drains and forgetting), `reclaim`, `views` and `waiting`
//! (why demand waits).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::capacity::SeenCapacity;
use super::leases::{LeaseBook, LeaseState};
use super::model::*;
use super::placement::Demand;
use super::pool::Pool;
use super::protocol::{Answer, Effect};
use super::resources::Resources;
use super::tasks::TaskBook;
use super::views::{AgentView, DrainReport, FrontendView, Launched, NamespaceUsage};

mod acquire;
mod demand;
mod durability;
mod frontends;
mod handle;
mod launch;
mod mesos_events;
mod reclaim;
mod tenancy;
mod upkeep;
mod views;
mod waiting;

/// How a request that may have to wait (Acquire, Launch) was answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome<T> {
    /// Answered at once.
    Now(T),
    /// Queued; an [`Effect::Reply`] with the caller's ticket answers it
    /// later.
    Later,
}

/// What the core keeps of one frontend name, from its first Subscribe until
/// it is forgotten (see `frontends`).
#[derive(Debug, Default)]
pub(super) struct FrontendState {
    pub(super) next_sequence: u64,
    /// Events not yet acknowledged, oldest first.
    pub(super) outbox: VecDeque<(u64, FrontendEvent)>,
    /// Its live sessions.
    pub(super) sessions: BTreeSet<SessionId>,
    /// Agents this frontend released with `refuse_for`, until when.
    pub(super) refused_agents: BTreeMap<AgentId, Timestamp>,
    /// The principal that subscribed under this name first. The name is
    /// theirs for as long as the core remembers it: its tasks and events
    /// belong to the name, so whoever took it over would take them too.
    pub(super) owner: Option<String>,
    /// The namespaces of its latest Subscribe, shown while no session is
    /// live.
    pub(super) namespaces: BTreeSet<String>,
    /// When its last live session ended.
    pub(super) last_seen: Timestamp,
    /// Since when an operator has drained it: its acquires are refused
    /// until the drain is undone.
    pub(super) draining: Option<Timestamp>,
    /// When it is forgotten if it still holds nothing then; its key in
    /// [`Core::forgettable`].
    pub(super) forget_at: Option<Timestamp>,
    /// The last sequence whose event the journal has handed out.
    pub(super) journaled: u64,
    /// The last acknowledged sequence the journal has handed out.
    pub(super) journaled_acknowledged: u64,
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
    pub(super) frontend: FrontendName,
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
    /// What the launched regular leases took from the offer.
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

/// How a use of capacity is accounted: on revocable resources, and
/// borrowed from which namespace.
#[derive(Debug, Clone, Copy)]
pub(super) struct Holder<'a> {
    pub(super) revocable: bool,
    pub(super) lender: Option<&'a str>,
}

impl<'a> Holder<'a> {
    pub(super) fn of_lease(lease: &'a Lease) -> Holder<'a> {
        Holder {
            revocable: lease.revocable,
            lender: lease.borrowed_from.as_deref(),
        }
    }

    pub(super) fn of_task(task: &'a TaskRecord) -> Holder<'a> {
        Holder {
            revocable: task.revocable,
            lender: task.borrowed_from.as_deref(),
        }
    }
}

/// A reclaim decided, and whether its deadline was enforced.
#[derive(Debug)]
pub(super) struct ReclaimState {
    pub(super) reclaim: Reclaim,
    pub(super) enforced: bool,
}

/// The broker's brain; see the module docs. Its state is grouped by job,
/// so that one concern can be borrowed mutably beside others read.
#[derive(Debug)]
pub struct Core {
    pub(super) config: CoreConfig,
    pub(super) ids: Ids,
    pub(super) tenancy: Tenancy,
    pub(super) sessions: Sessions,
    pub(super) accounting: Accounting,
    pub(super) offers: Pool,
    pub(super) leases: LeaseBook,
    pub(super) queue: Queue,
    pub(super) tasks: TaskBook,
    pub(super) launches: Launches,
    /// Recent decisions to take lent capacity back from running tasks.
    pub(super) reclaims: VecDeque<ReclaimState>,
    /// When [`Core::tick`] last ran: pool offers whose time to live ended
    /// by then were considered and kept (warm, held or wanted).
    pub(super) last_tick: Timestamp,
    /// The durable records touched since the runtime last took them.
    pub(super) journal: durability::Journal,
    /// Set after a restart until Mesos has reported the restored tasks.
    pub(super) recovery: Option<durability::Recovery>,
    pub(super) effects: Vec<Effect>,
}

/// Generated ids: unique across restarts by their prefix (the runtime
/// passes a random boot id), deterministic within a run by the counter.
#[derive(Debug)]
pub(super) struct Ids {
    pub(super) prefix: String,
    pub(super) next: u64,
}

impl Ids {
    fn fresh(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("{kind}-{}-{}", self.prefix, self.next)
    }
}

/// Namespaces, and what Mesos was last told of their roles.
#[derive(Debug, Default)]
pub(super) struct Tenancy {
    pub(super) namespaces: BTreeMap<String, Namespace>,
    /// Roles Mesos was told to stop offering.
    pub(super) suppressed: BTreeSet<String>,
    /// Roles with leases stranded by a sibling's ACCEPT since the effects
    /// were last drained: they are revived, so their agents come back now.
    pub(super) stranded: BTreeSet<String>,
    /// The quota and weights last set in Mesos, to send only changes.
    pub(super) pushed: (Vec<RoleQuota>, Vec<(String, f64)>),
}

/// Frontends by name, and the sessions open.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    pub(super) frontends: BTreeMap<FrontendName, FrontendState>,
    /// Frontends that held nothing when their last session ended, by when
    /// they are forgotten unless they subscribe again first.
    pub(super) forgettable: BTreeSet<(Timestamp, FrontendName)>,
    pub(super) open: BTreeMap<SessionId, SessionState>,
}

impl Sessions {
    /// The agents `frontend` released with `refuse_for`, until when.
    pub(super) fn refused(&self, frontend: &FrontendName) -> Option<&BTreeMap<AgentId, Timestamp>> {
        self.frontends.get(frontend).map(|f| &f.refused_agents)
    }
}

/// What each namespace holds, lends and borrows, and the most the cluster
/// has offered.
#[derive(Debug, Default)]
pub(super) struct Accounting {
    /// Per namespace, what its leases and live tasks hold.
    pub(super) usage: BTreeMap<String, Resources>,
    /// Per namespace, the revocable resources its leases and tasks hold,
    /// kept apart: quota limits never count them, `max_borrowed` does.
    pub(super) revocable_usage: BTreeMap<String, Resources>,
    /// Per lending namespace, what others' leases and tasks borrow of it.
    pub(super) lent: BTreeMap<String, Resources>,
    /// The most each agent has offered: what tells a request that cannot
    /// fit from one that waits for a busy cluster.
    pub(super) capacity: SeenCapacity,
}

impl Accounting {
    fn usage_map(&mut self, revocable: bool) -> &mut BTreeMap<String, Resources> {
        if revocable {
            &mut self.revocable_usage
        } else {
            &mut self.usage
        }
    }

    /// Counts `resources` as held by `namespace`: revocable or borrowed use
    /// apart from regular use, and borrowed use also as lent by the lender.
    pub(super) fn charge(&mut self, namespace: &str, resources: &Resources, holder: Holder) {
        self.usage_map(holder.revocable || holder.lender.is_some())
            .entry(namespace.to_owned())
            .or_default()
            .add(resources);
        if let Some(lender) = holder.lender {
            self.lent
                .entry(lender.to_owned())
                .or_default()
                .add(resources);
        }
    }

    /// Undoes [`Accounting::charge`].
    pub(super) fn credit(&mut self, namespace: &str, resources: &Resources, holder: Holder) {
        if let Some(usage) = self
            .usage_map(holder.revocable || holder.lender.is_some())
            .get_mut(namespace)
        {
            usage.subtract(resources);
        }
        if let Some(lent) = holder.lender.and_then(|lender| self.lent.get_mut(lender)) {
            lent.subtract(resources);
        }
    }

    /// What placement must respect for `request` in `namespace`, beside
    /// the agents its frontend refused. It borrows the accounting only, so
    /// that the pool can be borrowed mutably beside it.
    pub(super) fn demand<'a>(
        &'a self,
        namespace: &'a Namespace,
        refused: Option<&'a BTreeMap<AgentId, Timestamp>>,
        request: &'a AcquireRequest,
        now: Timestamp,
    ) -> Demand<'a> {
        Demand {
            role: &namespace.role,
            slots: &request.slots,
            constraints: &request.constraints,
            gang: request.gang,
            refused,
            now,
            limit: &namespace.limit,
            usage: self.usage.get(&namespace.name),
            revocable: request.revocable,
            max_revocable: &namespace.max_borrowed,
            revocable_usage: self.revocable_usage.get(&namespace.name),
            lender: None,
        }
    }
}

/// Acquires waiting for capacity, and the request ids remembered.
#[derive(Debug, Default)]
pub(super) struct Queue {
    pub(super) waiting: VecDeque<Waiting>,
    pub(super) requests: BTreeMap<(FrontendName, String), Remembered>,
}

/// Launches not sent yet: waiting for their leases to rebind, or lingering
/// for siblings on the same offer.
#[derive(Debug, Default)]
pub(super) struct Launches {
    pub(super) pending: Vec<PendingLaunch>,
    pub(super) accepts: BTreeMap<OfferId, PendingAccept>,
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
        let completed_tasks = config.completed_tasks;
        let expiring_notice = config.expiring_notice;
        Core {
            config,
            ids: Ids {
                prefix: id_prefix.to_owned(),
                next: 0,
            },
            tenancy: Tenancy {
                namespaces,
                ..Tenancy::default()
            },
            sessions: Sessions::default(),
            accounting: Accounting::default(),
            offers: Pool::default(),
            leases: LeaseBook::new(expiring_notice),
            queue: Queue::default(),
            tasks: TaskBook::new(completed_tasks),
            launches: Launches::default(),
            reclaims: VecDeque::new(),
            last_tick: Timestamp::default(),
            journal: durability::Journal::default(),
            recovery: None,
            effects: Vec::new(),
        }
    }

    /// Takes the effects queued so far, oldest first. Before they leave,
    /// each role's offer suppression is brought in line with its demand, so
    /// that every input ends with Mesos asked for exactly what is needed.
    pub(crate) fn drain_effects(&mut self) -> Vec<Effect> {
        self.settle_suppression();
        std::mem::take(&mut self.effects)
    }

    /// The Mesos roles of all namespaces, for the framework subscription.
    pub fn roles(&self) -> Vec<String> {
        self.tenancy
            .namespaces
            .values()
            .map(|ns| ns.role.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn role_of(&self, namespace: &str) -> Option<&str> {
        self.tenancy
            .namespaces
            .get(namespace)
            .map(|ns| ns.role.as_str())
    }

    /// What a namespace's leases and live tasks hold now.
    pub fn usage(&self, namespace: &str) -> Resources {
        self.accounting
            .usage
            .get(namespace)
            .cloned()
            .unwrap_or_default()
    }

    /// Opens a session for `frontend` in `namespaces`, as `principal`, and
    /// replays its unacknowledged events after `resume_after`. The first
    /// principal to subscribe under a name owns it until the frontend is
    /// forgotten; any other is refused.
    pub(crate) fn subscribe(
        &mut self,
        frontend: FrontendName,
        principal: &str,
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
            .find(|ns| !self.tenancy.namespaces.contains_key(*ns))
        {
            return Err(CoreError::NamespaceNotFound(unknown.clone()));
        }
        let owner = self
            .sessions
            .frontends
            .get(&frontend)
            .and_then(|f| f.owner.as_deref());
        if owner.is_some_and(|owner| owner != principal) {
            return Err(CoreError::FrontendTaken { frontend });
        }
        self.unschedule_forget(&frontend);
        let session = SessionId(self.ids.fresh("session"));
        let namespaces: BTreeSet<String> = namespaces.into_iter().collect();
        self.sessions.open.insert(
            session.clone(),
            SessionState {
                frontend: frontend.clone(),
                namespaces: namespaces.clone(),
                ended_at: None,
            },
        );
        self.touch_frontend(&frontend);
        let state = self.sessions.frontends.entry(frontend).or_default();
        state.owner.get_or_insert_with(|| principal.to_owned());
        state.namespaces = namespaces;
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
    /// waiting demand is answered at once: nobody is there to take it. A
    /// frontend left with nothing at all is forgotten after the retention.
    pub(crate) fn end_session(&mut self, now: Timestamp, session: &SessionId) {
        let mut ended = None;
        if let Some(state) = self.sessions.open.get_mut(session)
            && state.ended_at.is_none()
        {
            state.ended_at = Some(now);
            if let Some(frontend) = self.sessions.frontends.get_mut(&state.frontend) {
                frontend.sessions.remove(session);
                frontend.last_seen = now;
            }
            ended = Some(state.frontend.clone());
        }
        let (gone, kept) = std::mem::take(&mut self.queue.waiting)
            .into_iter()
            .partition(|w| &w.session == session);
        self.queue.waiting = kept;
        for waiting in gone {
            self.answer_waiting(waiting, Err(CoreError::SessionNotFound(session.clone())));
        }
        self.retry_launches(now);
        if let Some(frontend) = ended {
            self.schedule_forget(now, &frontend);
        }
    }

    fn live_session(&self, session: &SessionId) -> Result<&SessionState, CoreError> {
        self.sessions
            .open
            .get(session)
            .filter(|s| s.ended_at.is_none())
            .ok_or_else(|| CoreError::SessionNotFound(session.clone()))
    }

    /// The frontend of a live session.
    pub fn frontend_of(&self, session: &SessionId) -> Result<FrontendName, CoreError> {
        Ok(self.live_session(session)?.frontend.clone())
    }

    /// Appends an event to the frontend's outbox and delivers it to each of
    /// its live sessions.
    fn notify(&mut self, frontend: &FrontendName, event: FrontendEvent) {
        self.touch_frontend(frontend);
        let state = self.sessions.frontends.entry(frontend.clone()).or_default();
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
}

fn invalid(field: &str, reason: &str) -> CoreError {
    CoreError::InvalidRequest {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}
