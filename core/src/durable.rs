//! What of the core survives a crash, and how it reaches the store.
//!
//! The core keeps everything in memory; what a frontend or the quota
//! depends on must also be in a store, written before any effect of the
//! input that changed it leaves the broker (a Mesos ACKNOWLEDGE, a reply, an
//! event). So the core notes which durable records each input touches, and
//! the runtime takes them as [`Change`]s after each batch of inputs, writes
//! them, and only then carries out the batch's effects.
//!
//! Durable: frontends (owner, namespaces, sequence counter, drain), their
//! unacknowledged events, every live task, the ids of the leases held (to
//! tell their holders they are lost: Mesos rescinds every offer when a
//! framework fails over), and recent reclaims. Not durable: offers, the
//! leases themselves, sessions and waiting requests, which die with the
//! framework connection or the caller's connection anyway.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{FrontendEvent, FrontendName, LeaseId, Reclaim, TaskId, TaskRecord, Timestamp};

/// What of a frontend survives a restart, beside its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontendRecord {
    /// Its stable name.
    pub name: FrontendName,
    /// The principal that owns the name; `None` for a frontend adopted
    /// from a task id that no store knew.
    pub owner: Option<String>,
    /// The namespaces of its latest Subscribe.
    pub namespaces: Vec<String>,
    /// The sequence of its latest event: numbering goes on from here, so
    /// that `resume_after` keeps its meaning across a restart.
    pub next_sequence: u64,
    /// Since when an operator has drained it.
    pub draining: Option<Timestamp>,
}

/// A lease held: after a restart its holder is told it is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The lease.
    pub id: LeaseId,
    /// Its holder.
    pub frontend: FrontendName,
}

/// A reclaim decided, and whether its deadline was enforced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReclaimRecord {
    /// The decision.
    pub reclaim: Reclaim,
    /// Whether its surviving tasks were killed.
    pub enforced: bool,
}

/// One change to the durable records, in the order the runtime must write
/// them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// A frontend was created or changed.
    Frontend(FrontendRecord),
    /// A frontend was forgotten, with every record under its name.
    FrontendGone(FrontendName),
    /// A frontend's new event, not acknowledged yet.
    Event {
        /// Whose.
        frontend: FrontendName,
        /// Its sequence number.
        sequence: u64,
        /// What happened.
        event: FrontendEvent,
    },
    /// A frontend acknowledged its events up to `through`: they go.
    Acknowledged {
        /// Whose.
        frontend: FrontendName,
        /// The last sequence let go.
        through: u64,
    },
    /// A live task was launched or changed.
    Task(Box<TaskRecord>),
    /// A task ended (its final status is an event of its frontend's) or
    /// was forgotten.
    TaskGone(TaskId),
    /// A lease was granted.
    Lease(LeaseRecord),
    /// A lease was launched, released or lost.
    LeaseGone(LeaseId),
    /// The recent reclaims, all of them (there are a bounded few).
    Reclaims(Vec<ReclaimRecord>),
}

/// Every durable record: what a store holds once every [`Change`] is
/// written, and what recovery starts from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Durable {
    /// Frontends by name.
    pub frontends: BTreeMap<FrontendName, FrontendRecord>,
    /// Unacknowledged events by frontend and sequence.
    pub events: BTreeMap<FrontendName, BTreeMap<u64, FrontendEvent>>,
    /// Live tasks by id.
    pub tasks: BTreeMap<TaskId, TaskRecord>,
    /// Leases held, by id.
    pub leases: BTreeMap<LeaseId, LeaseRecord>,
    /// Recent reclaims, oldest first.
    pub reclaims: Vec<ReclaimRecord>,
}

impl Durable {
    /// Applies `change` as a store would: what the runtime writes, in
    /// memory. Tests hold it against [`crate::Core::durable`].
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Frontend(record) => {
                self.frontends.insert(record.name.clone(), record);
            }
            Change::FrontendGone(name) => {
                self.frontends.remove(&name);
                self.events.remove(&name);
            }
            Change::Event {
                frontend,
                sequence,
                event,
            } => {
                self.events
                    .entry(frontend)
                    .or_default()
                    .insert(sequence, event);
            }
            Change::Acknowledged { frontend, through } => {
                if let Some(events) = self.events.get_mut(&frontend) {
                    *events = events.split_off(&(through + 1));
                    if events.is_empty() {
                        self.events.remove(&frontend);
                    }
                }
            }
            Change::Task(record) => {
                self.tasks.insert(record.id.clone(), *record);
            }
            Change::TaskGone(id) => {
                self.tasks.remove(&id);
            }
            Change::Lease(record) => {
                self.leases.insert(record.id.clone(), record);
            }
            Change::LeaseGone(id) => {
                self.leases.remove(&id);
            }
            Change::Reclaims(reclaims) => self.reclaims = reclaims,
        }
    }
}
