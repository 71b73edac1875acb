//! What Agora's figures are divided by, measured in the same run on the
//! same machine and transport.
//!
//! # Layout
//! - [`empty_rpc`]: an empty tonic unary RPC (`grpc.health.v1.Health/Check`
//!   on a bare tonic server in its own process).
//! - [`direct`]: a Mesos framework that launches the short tasks itself,
//!   without Agora.

pub(crate) mod direct;
pub(crate) mod empty_rpc;
