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
//! - [`engine`]: [`Core`], the state machine.

pub mod engine;
pub mod model;
pub mod resources;

pub use engine::{AgentView, Core, Launched};
pub use model::*;
pub use resources::{InvalidResource, Resources};

#[cfg(test)]
mod tests;
