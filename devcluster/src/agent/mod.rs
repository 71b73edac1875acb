//! Agents: the hosts of a devcluster. Each has an id, a hostname,
//! resources and attributes, runs tasks (as processes, or simulated) and
//! owns a status-update manager that delivers their statuses reliably.

mod lifeline;
pub mod process;
pub mod simulated;
mod spawner;
pub mod status_updates;

use std::time::Duration;

use agora_proto::mesos::v1::Attribute;

use crate::resources::{ParseError, Resources, parse_attributes, parse_resources};
use status_updates::StatusUpdates;

/// An agent to add to a running cluster. Unset fields take the cluster's
/// configured agent resources and attributes and a generated hostname.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Resources, Mesos syntax (`cpus:2;mem:1024;cpus(batch):4`).
    pub resources: Option<String>,
    /// Attributes, Mesos syntax (`rack:r1;zone:a`).
    pub attributes: Option<String>,
    /// Hostname (default `agent-<n>.devcluster`).
    pub hostname: Option<String>,
    /// Revocable (oversubscribed) estimate, Mesos syntax (`cpus:2`).
    pub revocable: Option<String>,
}

/// Why an agent could not be added or removed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgentError {
    /// The resources do not parse.
    #[error("invalid agent resources: {0}")]
    Resources(#[source] ParseError),
    /// The attributes do not parse.
    #[error("invalid agent attributes: {0}")]
    Attributes(#[source] ParseError),
    /// The revocable estimate does not parse or holds reservations.
    #[error("invalid revocable resources: {0}")]
    Revocable(String),
    /// The hostname is empty.
    #[error("the agent hostname must not be empty")]
    EmptyHostname,
    /// No registered agent has this id.
    #[error("Agent '{0}' not found")]
    NotFound(String),
}

/// An [`AgentSpec`] with its strings parsed.
#[derive(Debug, Clone)]
pub(crate) struct ParsedSpec {
    pub resources: Option<Resources>,
    pub attributes: Option<Vec<Attribute>>,
    pub hostname: Option<String>,
    pub revocable: Option<Resources>,
}

impl AgentSpec {
    /// Parses the resource, attribute and revocable strings.
    pub(crate) fn parse(&self) -> Result<ParsedSpec, AgentError> {
        let resources = self
            .resources
            .as_deref()
            .map(parse_resources)
            .transpose()
            .map_err(AgentError::Resources)?;
        let attributes = self
            .attributes
            .as_deref()
            .map(parse_attributes)
            .transpose()
            .map_err(AgentError::Attributes)?;
        let revocable = self
            .revocable
            .as_deref()
            .map(crate::config::parse_revocable)
            .transpose()
            .map_err(AgentError::Revocable)?;
        if self
            .hostname
            .as_deref()
            .is_some_and(|h| h.trim().is_empty())
        {
            return Err(AgentError::EmptyHostname);
        }
        Ok(ParsedSpec {
            resources,
            attributes,
            hostname: self.hostname.clone(),
            revocable,
        })
    }
}

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
