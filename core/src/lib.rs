//! The broker's brain, pure and synchronous: the pool of offers, leases as
//! slices of offers, task ownership and the routing of statuses to the
//! frontend that owns each task.
//!
//! No tokio, no I/O, no clock: time comes in with every input, and what
//! must happen in the world comes out as [`Effect`]s, in order. That keeps
//! the hard logic fast, testable without sockets, and replayable.
//!
//! # Layout
//! - [`resources`]: fixed-point scalars and port ranges.
//! - [`model`]: ids, offers, leases, tasks, events, effects, errors.
//! - `pool`: the offers held, indexed for placement.
//! - `placement`: constraints and the search for room for each slot.
//! - `leases`: the leases held, indexed by deadline, offer, agent and role.
//! - `tasks`: the tasks launched, live ones indexed, finished ones bounded.
//! - [`engine`]: [`Core`], the state machine.

mod capacity;
pub mod engine;
mod fair;
mod leases;
pub mod model;
mod names;
mod namespaces;
mod placement;
mod pool;
pub mod resources;
mod tasks;

pub use engine::{AgentView, Core, DrainReport, FrontendView, Launched, NamespaceUsage};
pub use model::*;
pub use names::{MAX_NAME_BYTES, check_name};
pub use resources::{InvalidResource, Resources};

#[cfg(test)]
mod tests;
