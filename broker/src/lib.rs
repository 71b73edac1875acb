//! The Agora broker: one Mesos framework connection shared by many frontends.

pub mod core;
