//! The Mesos v1 scheduler HTTP client: RecordIO framing, protobuf and JSON
//! encodings, the subscription with heartbeat watchdog, redirects and
//! backoff, calls with the stream id, and the conversions between Mesos
//! wire types and the core's domain types.
//!
//! # Layout
//! - [`recordio`]: incremental framing of the event stream.
//! - [`codec`]: protobuf / JSON encodings of calls and events.
//! - [`backoff`]: jittered exponential backoff.
//! - [`client`]: the subscription loop and calls (the only I/O here).
//! - [`convert`]: Mesos types to and from core types.

pub mod backoff;
pub mod client;
pub mod codec;
pub mod convert;
pub mod recordio;

pub use client::{CallError, MesosConfig, MesosEvent, MesosHandle, start};
pub use codec::Encoding;
