//! The Mesos v1 scheduler HTTP client: the subscription with heartbeat
//! watchdog, redirects and backoff, calls with the stream id, and the
//! conversions between Mesos wire types and the core's domain types. The
//! wire itself (RecordIO framing, protobuf and JSON encodings) is
//! [`agora_proto::wire`], shared with the devcluster.
//!
//! The client speaks the core's language both ways: it takes
//! [`MesosCall`](agora_core::MesosCall)s ([`MesosHandle::send`]) and
//! reports [`MesosEvent`]s, so no Mesos protobuf type reaches the runtime.
//!
//! # Layout
//! - [`request`]: the HTTP requests, built without I/O.
//! - [`subscription`]: the subscription as a state machine, without I/O.
//! - [`client`]: the thin async driver of that machine, and calls (the
//!   only I/O here).
//! - `config` and `event`: what the client is given and what it reports.
//! - [`backoff`]: jittered exponential backoff.
//! - [`convert`]: Mesos types to and from core types.

pub mod backoff;
pub mod client;
mod config;
pub mod convert;
mod event;
pub mod request;
pub mod subscription;

pub use client::{CallError, MesosHandle, start};
pub use config::MesosConfig;
pub use event::MesosEvent;
pub use subscription::SubscriptionError;

/// The encoding the client speaks, chosen in [`MesosConfig::encoding`].
pub use agora_proto::wire::Encoding;
