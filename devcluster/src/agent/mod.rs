//! Agents: the hosts of a devcluster. Each has an id, a hostname,
//! resources and attributes, runs tasks (as processes, or simulated) and
//! owns a status-update manager that delivers their statuses reliably.

pub mod process;
pub mod simulated;
pub mod status_updates;

use std::time::Duration;

use agora_proto::mesos::v1::Attribute;

use crate::resources::Resources;
use status_updates::StatusUpdates;

/// One agent as the master sees it, with its status-update manager.
#[derive(Debug)]
pub struct Agent {
    /// Agent id (`<master id>-S<n>`).
    pub id: String,
    /// Hostname (`agent-<n>.devcluster`).
    pub hostname: String,
    /// Everything the agent has.
    pub total: Resources,
    /// What is neither offered nor used by tasks or executors.
    pub available: Resources,
    /// Agent attributes.
    pub attributes: Vec<Attribute>,
    /// Registration time, seconds since the epoch.
    pub registered_time: f64,
    /// Unacknowledged status updates of the agent's tasks.
    pub updates: StatusUpdates,
}

impl Agent {
    /// A fresh agent with all of `resources` available.
    pub fn new(
        id: String,
        hostname: String,
        resources: Resources,
        attributes: Vec<Attribute>,
        registered_time: f64,
        retry: (Duration, Duration),
    ) -> Self {
        Self {
            id,
            hostname,
            available: resources.clone(),
            total: resources,
            attributes,
            registered_time,
            updates: StatusUpdates::new(retry.0, retry.1),
        }
    }
}
