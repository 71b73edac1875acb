//! The broker's brain, pure and synchronous: the pool of offers, leases as
//! slices of offers, task ownership and the routing of statuses to the
//! frontend that owns each task.
//!
//! No tokio, no I/O, no clock: one entry, [`Core::handle`], takes each
//! [`Input`] with the time it happened, and what must happen in the world
//! comes out as [`Effect`]s, in order. Inputs are serialisable data and the
//! core takes nothing from anywhere else, so a recorded input sequence
//! replays to the same state (`tests/replay.rs`). That keeps the hard logic
//! fast, testable without sockets, and durable by replay.
//!
//! # Layout
//! - [`protocol`]: the interface — inputs, requests, answers, effects.
//! - [`resources`]: fixed-point scalars and port ranges.
//! - [`model`]: ids, offers, leases, tasks, events, Mesos calls, errors.
//! - [`views`]: what reads and reports show of the core.
//! - [`durable`]: what survives a crash, and the changes the runtime
//!   writes.
//! - `pool`: the offers held, indexed for placement.
//! - `placement`: constraints and the search for room for each slot.
//! - `leases`: the leases held, indexed by deadline, offer, agent and role.
//! - `tasks`: the tasks launched, live ones indexed, finished ones bounded.
//! - [`engine`]: [`Core`], the state machine.

mod capacity;
pub mod durable;
pub mod engine;
mod fair;
mod leases;
pub mod model;
mod names;
mod namespaces;
mod placement;
mod pool;
pub mod protocol;
pub mod resources;
mod tasks;
pub mod views;

pub use engine::Core;
pub use model::*;
pub use names::{MAX_NAME_BYTES, check_name};
pub use protocol::{Answer, Effect, Input, MesosInput, Request};
pub use resources::{InvalidResource, Resources};
pub use views::{
    AgentView, DrainReport, FrontendView, Launched, NamespaceUsage, WaitReason, WaitingFilter,
    WaitingView,
};

#[cfg(test)]
mod invariants;
#[cfg(test)]
mod testing;
