//! What the client is told: where the masters are, who to be there, and
//! how patiently to keep the subscription.

use std::time::Duration;

use agora_proto::{mesos::v1::FrameworkInfo, wire::Encoding};

use super::backoff::Backoff;

/// How to reach Mesos and who to be there.
#[derive(Debug, Clone)]
pub struct MesosConfig {
    /// Base URLs of masters (`http://host:5050`), tried in turn; at least
    /// one.
    pub masters: Vec<String>,
    /// How calls and events are encoded on the wire (protobuf by default).
    pub encoding: Encoding,
    /// The framework to subscribe as; `id` set to resume an existing one.
    pub framework_info: FrameworkInfo,
    /// Silence for this many heartbeat intervals means the stream is dead.
    pub missed_heartbeats: u32,
    /// Limit on a call's round trip and on waiting for SUBSCRIBED.
    pub request_timeout: Duration,
    /// The delays between attempts to subscribe.
    pub backoff: Backoff,
    /// HTTP basic credentials (principal, secret); never logged.
    pub credentials: Option<(String, String)>,
}
