//! What the client reports to the runtime: Mesos's events in the core's
//! terms, and the subscription's own changes.

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
    /// subscription's error with its sources, as frontends are told it.
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
