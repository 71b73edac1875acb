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
//! - [`backoff`]: jittered exponential backoff.
//! - [`convert`]: Mesos types to and from core types.

pub mod backoff;
pub mod client;
pub mod convert;
pub mod request;
pub mod subscription;

pub use client::{CallError, MesosConfig, MesosHandle, start};
pub use subscription::SubscriptionError;

/// The encoding the client speaks, chosen in [`MesosConfig::encoding`].
pub use agora_proto::wire::Encoding;

use agora_core as core;

/// What the client reports to the runtime, in the core's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum MesosEvent {
    /// SUBSCRIBED arrived. `resubscribed` is true after any earlier
    /// subscription: updates may have been missed, so reconcile.
    Subscribed {
        /// The framework id Mesos assigned or confirmed; keep it to fail
        /// over to.
        framework_id: String,
        /// Whether an earlier subscription of this process came before.
        resubscribed: bool,
        /// The roles the SUBSCRIBE carried: roles changed while it was in
        /// flight must still reach Mesos.
        roles: Vec<String>,
    },
    /// The subscription ended; its offers are void. `reason` is the
    /// [`SubscriptionError`] with its sources, as frontends are told it.
    Disconnected {
        /// What ended it, with its causes.
        reason: String,
    },
    /// New offers.
    Offers(Vec<core::Offer>),
    /// An offer is withdrawn.
    Rescind(core::OfferId),
    /// A task's status changed.
    Update(core::StatusUpdate),
    /// An agent is gone, with every task on it.
    AgentLost(core::AgentId),
}
