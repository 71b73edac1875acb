//! The Mesos v1 scheduler HTTP client: the subscription with heartbeat
//! watchdog, redirects and backoff, calls with the stream id, and the
//! conversions between Mesos wire types and the core's domain types. The
//! wire itself (RecordIO framing, protobuf and JSON encodings) is
//! [`agora_proto::wire`], shared with the devcluster.
//!
//! # Layout
//! - [`backoff`]: jittered exponential backoff.
//! - [`client`]: the subscription loop and calls (the only I/O here).
//! - [`convert`]: Mesos types to and from core types.

pub mod backoff;
pub mod client;
pub mod convert;

/// The encoding the client speaks, chosen in [`MesosConfig::encoding`].
pub use agora_proto::wire::Encoding;
pub use client::{CallError, MesosConfig, MesosEvent, MesosHandle, start};
