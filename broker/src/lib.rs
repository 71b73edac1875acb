//! The Agora broker: one Mesos framework connection shared by many frontend
//! schedulers over gRPC.

pub mod api;
pub mod config;
pub mod core;
pub mod mesos;
pub mod telemetry;
