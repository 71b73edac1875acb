//! What the core shows of itself: the answers of views and of commands
//! that report (Launch, drains), apart from the state they are read from.

use serde::{Deserialize, Serialize};

use crate::model::{Agent, AgentId, FrontendName, LeaseId, Namespace, TaskId, Timestamp};
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
