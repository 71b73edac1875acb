//! Resource arithmetic over Mesos `Resource` protos: the pool an agent has,
//! what an offer holds, what a task uses.
//!
//! Resources are kept in the pre-refinement format (`role` is `*` or the
//! reservation role) with one entry per (name, type, role, revocable);
//! `allocation_info` is not part of the value and is stripped on entry.
//! Scalars are rounded to three decimals as Mesos does.
//!
//! # Layout
//! - `bag`: [`Resources`] and its arithmetic.
//! - `role`: role names, and which roles may use a reservation.
//! - `parse`: Mesos's text syntax for resources and attributes.

mod bag;
mod parse;
mod role;

pub use bag::{Resources, round_scalar, value_text};
pub use parse::{ParseError, parse_attributes, parse_resources};
pub use role::{is_valid_role, reservation_role, usable_by};
