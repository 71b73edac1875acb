//! What a devcluster is made of and how fast its clocks tick.

use std::path::PathBuf;
use std::time::Duration;

use agora_proto::mesos::v1::Attribute;

use crate::resources::{ParseError, Resources, parse_attributes, parse_resources};

/// Configuration of a devcluster. `Config::default()` is one agent shaped
/// like the CLI's defaults, with Mesos's default timings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of agents.
    pub agents: usize,
    /// Each agent's resources, Mesos syntax (`cpus:4;mem:8192;ports:[...]`).
    pub agent_resources: String,
    /// Each agent's attributes, Mesos syntax (`rack:r1;zone:a`).
    pub agent_attributes: String,
    /// Each agent's revocable (oversubscribed) estimate, Mesos syntax
    /// (`cpus:4;mem:2048`); empty for none. Offered only to frameworks with
    /// REVOCABLE_RESOURCES.
    pub agent_revocable: String,
    /// Run no processes: tasks are simulated (see [`crate::agent::simulated`]).
    pub simulate: bool,
    /// Period of the batch allocator (Mesos `--allocation_interval`, 1 s).
    pub allocation_interval: Duration,
    /// Period of HEARTBEAT events (Mesos: 15 s).
    pub heartbeat_interval: Duration,
    /// First retry of an unacknowledged status update (Mesos: 10 s).
    pub status_update_retry_interval: Duration,
    /// Cap of the status-update retry backoff (Mesos: 10 min).
    pub status_update_retry_max: Duration,
    /// Rescind offers not answered within this (Mesos `--offer_timeout`,
    /// unset by default).
    pub offer_timeout: Option<Duration>,
    /// Where task sandboxes go; a fresh directory under the system temp
    /// directory when unset.
    pub work_dir: Option<PathBuf>,
    /// Hostname reported for the master (and in `/state`).
    pub hostname: String,
    /// How many scheduler calls of each framework the devcluster's record
    /// keeps (`GET /devcluster/calls`); older ones are dropped.
    pub calls_kept: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            agents: 1,
            agent_resources: "cpus:4;mem:8192;disk:20000;ports:[31000-32000]".into(),
            agent_attributes: String::new(),
            agent_revocable: String::new(),
            simulate: false,
            allocation_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(15),
            status_update_retry_interval: Duration::from_secs(10),
            status_update_retry_max: Duration::from_secs(600),
            offer_timeout: None,
            work_dir: None,
            hostname: "localhost".into(),
            calls_kept: 10_000,
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `agent_resources` does not parse.
    #[error("invalid agent resources: {0}")]
    Resources(#[source] ParseError),
    /// `agent_attributes` does not parse.
    #[error("invalid agent attributes: {0}")]
    Attributes(#[source] ParseError),
    /// `agent_revocable` does not parse or holds reservations.
    #[error("invalid agent revocable resources: {0}")]
    Revocable(String),
    /// An interval is zero.
    #[error("{0} must be greater than zero")]
    ZeroInterval(&'static str),
}

/// A configuration whose strings have been parsed.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    pub config: Config,
    pub resources: Resources,
    pub attributes: Vec<Attribute>,
    pub revocable: Resources,
}

impl Config {
    /// Checks the configuration without starting anything.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.clone().validate().map(|_| ())
    }

    /// Parses the resource and attribute strings and checks the intervals.
    pub(crate) fn validate(self) -> Result<Validated, ConfigError> {
        let resources = parse_resources(&self.agent_resources).map_err(ConfigError::Resources)?;
        let attributes =
            parse_attributes(&self.agent_attributes).map_err(ConfigError::Attributes)?;
        let revocable = parse_revocable(&self.agent_revocable).map_err(ConfigError::Revocable)?;
        for (name, value) in [
            ("allocation_interval", self.allocation_interval),
            ("heartbeat_interval", self.heartbeat_interval),
            (
                "status_update_retry_interval",
                self.status_update_retry_interval,
            ),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroInterval(name));
            }
        }
        if self.offer_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::ZeroInterval("offer_timeout"));
        }
        Ok(Validated {
            config: self,
            resources,
            attributes,
            revocable,
        })
    }
}

/// Parses a revocable estimate (`cpus:4;mem:2048`) into revocable
/// resources; reservations are refused.
pub(crate) fn parse_revocable(text: &str) -> Result<Resources, String> {
    parse_resources(text)
        .map_err(|e| e.to_string())?
        .into_revocable()
        .ok_or_else(|| "revocable resources cannot be reserved".to_string())
}

/// Parses durations like `500ms`, `1s`, `2.5s`, `10m`, `1h` (a bare number
/// is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 500ms, 1s or 2m"))?;
    let seconds = match unit.trim() {
        "ns" => number / 1e9,
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "" | "s" => number,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        other => return Err(format!("unknown unit '{other}' in '{text}'")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("'{text}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("1parsec").is_err());
    }

    #[test]
    fn validation_reports_bad_strings() {
        let config = Config {
            agent_resources: "cpus:x".into(),
            ..Config::default()
        };
        assert!(matches!(config.validate(), Err(ConfigError::Resources(_))));
        let config = Config {
            heartbeat_interval: Duration::ZERO,
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::ZeroInterval("heartbeat_interval"))
        ));
        let config = Config {
            offer_timeout: Some(Duration::ZERO),
            ..Config::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ConfigError::ZeroInterval("offer_timeout"))
        ));
    }
}
