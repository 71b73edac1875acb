//! The master's state machine: frameworks and their subscriptions, offers,
//! tasks, and the agents' side of task statuses.
//!
//! It is synchronous and owns no I/O: time comes in as `now` (a
//! [`Now`](crate::clock::Now), read by the runtime; no method reads a
//! clock), events go out through each subscription's unbounded channel
//! (Mesos never applies back-pressure to a subscriber), and work for the
//! outside world (starting or killing a process) is queued as
//! [`Effect`]s that the runtime drains after each step. The runtime keeps
//! it behind a std mutex that is never held across an `.await`.
//!
//! # Layout
//! - `model`: the state every step works on, and the types the runtime
//!   sees ([`Master`], [`Effect`], [`Connection`]).
//! - `subscriptions`, `offers`, `timers`: frameworks subscribing, failing
//!   over and leaving; allocation cycles and offers; what falls due.
//! - `calls`, `accept`, `tasks`: the scheduler calls, ACCEPT and task
//!   launches, task statuses and their reliable delivery.
//! - `call_log`: the devcluster's own record of each framework's calls
//!   (`GET /devcluster/calls`).
//! - `agents`, `oversubscription`: agents joining and leaving, revocable
//!   estimates and preemption.
//! - `operator`, `roles`, `state`: the operator API, role accounting,
//!   `/state`.
//!
//! The modules use one another directly, never through the re-exports
//! here, so that their dependencies go one way.

mod accept;
mod agents;
mod call_log;
mod calls;
mod framework_info;
mod model;
mod offers;
mod operator;
mod oversubscription;
mod roles;
mod state;
mod subscriptions;
mod tasks;
#[cfg(test)]
mod tests;
mod timers;

pub(crate) use agents::Removal;
pub use calls::validate_call;
pub use model::VERSION;
pub(crate) use model::{Connection, Effect, Master};
pub(crate) use operator::OperatorError;
pub use operator::validate_operator_call;
