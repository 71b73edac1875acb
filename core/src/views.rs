//! What the core shows of itself: the answers of views and of commands
//! that report (Launch, drains), apart from the state they are read from.

use serde::{Deserialize, Serialize};

use crate::model::{
    Agent, AgentId, FrontendName, LeaseId, Namespace, RevocablePolicy, TaskId, Timestamp,
};
use crate::resources::Resources;

/// A task the runtime launched, as Launch answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launched {
    /// The Mesos task id Agora generated; statuses, Kill and Reconcile
    /// name the task by it.
    pub task_id: TaskId,
    /// The frontend's own id for the task, from its
    /// [`TaskSpec`](crate::TaskSpec).
    pub client_id: String,
    /// The lease the task was launched on, which the launch ended.
    pub lease: LeaseId,
    /// The agent the task starts on.
    pub agent: AgentId,
}

/// A namespace's usage against its quota, for operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamespaceUsage {
    /// The namespace as configured, quota included.
    pub namespace: Namespace,
    /// Leased and not launched.
    pub leased: Resources,
    /// Held by live tasks.
    pub running: Resources,
    /// Revocable or borrowed from other namespaces, leased or running
    /// (included in `leased` and `running`; not counted against quota).
    pub borrowed: Resources,
    /// Of its own capacity, what other namespaces borrow now.
    pub lent: Resources,
    /// The largest share of any resource of the capacity Agora holds,
    /// divided by the namespace's weight.
    pub dominant_share: f64,
    /// Slots of requests waiting for capacity.
    pub waiting_slots: u32,
}

/// An agent and what Agora holds of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    /// As its pooled offers or its leases describe it.
    pub agent: Agent,
    /// The regular resources of its pooled offers that no lease holds.
    pub pooled: Resources,
    /// What leases on it hold, revocable resources included.
    pub leased: Resources,
}

/// A frontend as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontendView {
    /// The name it subscribes under.
    pub name: FrontendName,
    /// The namespaces of its live sessions; of its latest Subscribe when
    /// none is live.
    pub namespaces: Vec<String>,
    /// Live sessions.
    pub sessions: usize,
    /// Leases it holds.
    pub leases: usize,
    /// Its tasks not yet in a terminal state.
    pub live_tasks: usize,
    /// Events not acknowledged yet, replayed when it subscribes again.
    pub unacknowledged_events: usize,
    /// Acquires waiting for capacity.
    pub waiting_requests: usize,
    /// The time asked about while a session is live; otherwise when its
    /// last session ended.
    pub last_seen: Timestamp,
    /// Since when it is drained.
    pub draining_since: Option<Timestamp>,
    /// When it will be forgotten unless it subscribes again first; `None`
    /// while it holds anything, has a live session or is drained.
    pub forget_at: Option<Timestamp>,
}

impl FrontendView {
    /// Whether a drain has taken everything it will take: no lease, no
    /// live task and no waiting request left.
    pub fn drained(&self) -> bool {
        self.draining_since.is_some()
            && self.leases == 0
            && self.live_tasks == 0
            && self.waiting_requests == 0
    }
}

/// What one drain did, and where the frontend stands after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainReport {
    /// Leases taken back by this drain (each holder told `Drained`).
    pub leases_released: usize,
    /// Waiting acquires refused by this drain.
    pub requests_refused: usize,
    /// Live tasks Mesos was asked to kill by this drain.
    pub tasks_killed: usize,
    /// The frontend after the drain; [`FrontendView::drained`] tells
    /// whether the drain is complete.
    pub frontend: FrontendView,
}

/// Which waiting requests an operator asks about; `None` admits any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingFilter {
    /// Only those in this namespace.
    pub namespace: Option<String>,
    /// Only those of this frontend.
    pub frontend: Option<String>,
    /// Only the one with this request id.
    pub request_id: Option<String>,
    /// At most this many, the oldest first.
    pub max: usize,
}

impl Default for WaitingFilter {
    /// Every waiting request, however many.
    fn default() -> WaitingFilter {
        WaitingFilter {
            namespace: None,
            frontend: None,
            request_id: None,
            max: usize::MAX,
        }
    }
}

/// An Acquire waiting for capacity, and why it waits, for operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingView {
    /// The frontend that asked.
    pub frontend: FrontendName,
    /// The namespace it asked in.
    pub namespace: String,
    /// The frontend's request id, when it gave one.
    pub request_id: Option<String>,
    /// Its place among the waiting requests of its namespace, from 1.
    pub position: usize,
    /// Slots asked, every count counted.
    pub slots: u32,
    /// What all its slots together ask (specific ports included, counts
    /// of any ports not).
    pub asked: Resources,
    /// All slots or none.
    pub gang: bool,
    /// Whether revocable or borrowed capacity may serve it.
    pub revocable: RevocablePolicy,
    /// How many placement constraints it carries.
    pub constraints: usize,
    /// When it began to wait.
    pub since: Timestamp,
    /// When it is refused unless served first.
    pub deadline: Timestamp,
    /// What it waits for, from the core's state at the time asked; at
    /// least one.
    pub reasons: Vec<WaitReason>,
}

/// One thing a waiting request waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WaitReason {
    /// Larger than the cluster as Agora has seen it: it waits in vain
    /// until agents with more join.
    CannotFit {
        /// The part that cannot fit: `slots[i]`, `slots` or
        /// `constraints[i]`.
        field: String,
        /// What it needs more of.
        resource: String,
        /// How much it needs.
        asked: f64,
        /// The most Agora has seen.
        available: f64,
    },
    /// The offers Agora holds for the namespace's role have room for
    /// fewer slots than it needs to be served (all for a gang, one
    /// otherwise), whatever the constraints: it waits for offers.
    Capacity {
        /// The role whose offers were searched.
        role: String,
        /// Slots the pool has room for, constraints aside.
        fit: u32,
        /// Slots it needs to be served.
        needed: u32,
    },
    /// The pool has room, but not on agents that meet its constraints
    /// (or that its frontend did not refuse with `refuse_for`).
    Constraints {
        /// Slots the pool has room for, constraints aside.
        fit_anywhere: u32,
        /// Slots with room on agents that meet the constraints.
        fit_constrained: u32,
        /// Slots it needs to be served.
        needed: u32,
    },
    /// The namespace's limit (regular capacity) leaves no room for it:
    /// it waits for the namespace's own leases and tasks to end.
    Quota {
        /// The first resource over the limit.
        resource: String,
        /// What the request asks of it (all slots of a gang, else its
        /// smallest slot).
        asked: f64,
        /// What the namespace uses now.
        used: f64,
        /// The limit.
        allowed: f64,
    },
    /// The namespace's `max_borrowed` leaves no room for it on revocable
    /// or borrowed capacity.
    BorrowCap {
        /// The first resource over the cap.
        resource: String,
        /// What the request asks of it.
        asked: f64,
        /// Revocable and borrowed use of the namespace now.
        used: f64,
        /// The cap.
        allowed: f64,
    },
    /// A gang takes all its slots at once or none: only `fit` of
    /// `needed` have room together now.
    Gang {
        /// Slots with room now, every rule applied.
        fit: u32,
        /// Slots of the gang.
        needed: u32,
    },
    /// An older request of the namespace has waited past the backfill
    /// window: later ones wait behind it.
    Queue {
        /// The frontend of the request ahead.
        ahead: FrontendName,
        /// Since when that request waits.
        since: Timestamp,
    },
    /// Nothing holds it back now: it is served on the broker's next turn
    /// (fair share between namespaces decides the order).
    Ready,
}

impl WaitReason {
    /// A short name for the kind of reason, as operators filter on it.
    pub fn kind(&self) -> &'static str {
        match self {
            WaitReason::CannotFit { .. } => "cannot-fit",
            WaitReason::Capacity { .. } => "capacity",
            WaitReason::Constraints { .. } => "constraints",
            WaitReason::Quota { .. } => "quota",
            WaitReason::BorrowCap { .. } => "borrow-cap",
            WaitReason::Gang { .. } => "gang",
            WaitReason::Queue { .. } => "queue",
            WaitReason::Ready => "ready",
        }
    }
}

impl std::fmt::Display for WaitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitReason::CannotFit {
                field,
                resource,
                asked,
                available,
            } => write!(
                f,
                "{field} needs {asked} {resource}, more than the {available} Agora has seen: \
                 it cannot fit until more capacity joins"
            ),
            WaitReason::Capacity { role, fit, needed } => write!(
                f,
                "the offers held for role {role:?} have room for {fit} of the {needed} \
                 slot(s) it needs: waiting for offers"
            ),
            WaitReason::Constraints {
                fit_anywhere,
                fit_constrained,
                needed,
            } => write!(
                f,
                "{fit_anywhere} slot(s) have room in the pool but only {fit_constrained} on \
                 agents meeting its constraints (and not refused); it needs {needed}"
            ),
            WaitReason::Quota {
                resource,
                asked,
                used,
                allowed,
            } => write!(
                f,
                "the namespace's limit: it asks {asked} {resource}, the namespace uses \
                 {used} of {allowed}"
            ),
            WaitReason::BorrowCap {
                resource,
                asked,
                used,
                allowed,
            } => write!(
                f,
                "the namespace's max_borrowed: it asks {asked} {resource}, the namespace \
                 borrows {used} of {allowed}"
            ),
            WaitReason::Gang { fit, needed } => write!(
                f,
                "a gang of {needed} slots takes all or none: {fit} fit together now"
            ),
            WaitReason::Queue { ahead, .. } => write!(
                f,
                "behind an older request of frontend {ahead} that has waited past the \
                 backfill window"
            ),
            WaitReason::Ready => write!(f, "nothing holds it back: it is served next turn"),
        }
    }
}
