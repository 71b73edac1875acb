//! The broker's configuration: built-in defaults, then a TOML file, then
//! `AGORA_<SECTION>__<KEY>` environment variables, then command-line flags —
//! each layer overriding the one before. Everything is validated into typed
//! values before any port is bound, so a bad setting fails at start, not at
//! the first request.
//!
//! # Environment variables
//!
//! Two kinds of `AGORA_*` variables share the prefix, told apart by their
//! shape:
//!
//! - `AGORA_<SECTION>__<KEY>` (a double underscore) sets a key of the file,
//!   e.g. `AGORA_MESOS__FRAMEWORK_NAME` for `framework_name` under
//!   `[mesos]`. This loader reads these and only these; one that names no
//!   key (`AGORA_MESOS__FRAMWORK_NAME`) is refused, naming the variable, as
//!   a typo in the file is: it was clearly meant for the configuration.
//! - A flat `AGORA_<NAME>` belongs to a flag of `agora` (`AGORA_MASTER` is
//!   `--master`; clap reads it, and `main` passes it in as an override) or
//!   to another program entirely (`AGORA_VERSION` set by a container
//!   image, `AGORA_TOKEN` for a client). This loader never reads them, so
//!   a flag's variable cannot collide with a key, and a variable the
//!   broker knows nothing about cannot stop it.
//!
//! Top-level keys have no section and so no variable: `listen` is the
//! `--listen` flag's (`AGORA_LISTEN`), and namespaces come from the file or
//! from the Admin service.

use std::{
    collections::{BTreeMap, HashSet},
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment, Metadata, Profile, Provider,
    providers::{Env, Format, Serialized, Toml},
    value::{Dict, Map},
};
use serde::{Deserialize, Serialize};

use agora_core::{CoreConfig, Lending, Namespace, Resources};

mod principals;

pub use principals::{BadTokenHash, PrincipalSettings, TokenHash};

/// Everything `agora serve` and `agora dev` need to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the gRPC API listens.
    pub listen: SocketAddr,
    /// The Mesos masters and the framework Agora subscribes as.
    pub mesos: MesosSettings,
    /// Namespaces known at start; each maps to one Mesos role. Those put or
    /// deleted at run time through Admin are kept in the store and win.
    pub namespaces: Vec<NamespaceSettings>,
    /// Role prefix, pool, leases and sessions: the broker's own policies.
    pub broker: BrokerSettings,
    /// Where runtime changes to namespaces are kept.
    pub store: StoreSettings,
    /// Log format, trace export and the metrics port.
    pub telemetry: TelemetrySettings,
    /// Who may call the broker and what each caller may do.
    pub auth: AuthSettings,
    /// TLS for the gRPC API; plaintext when absent.
    pub tls: Option<TlsSettings>,
}

/// How Agora reaches Mesos and presents itself as a framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MesosSettings {
    /// Master URLs, tried in turn; redirects lead to the leader.
    pub masters: Vec<String>,
    /// Wire encoding of calls and events.
    pub encoding: WireEncoding,
    /// The framework's name as Mesos shows it.
    pub framework_name: String,
    /// The Unix user tasks run as unless they say otherwise.
    pub user: String,
    /// The framework principal, for masters that authenticate frameworks.
    pub principal: Option<String>,
    /// The principal's secret (HTTP basic authentication); never logged.
    pub secret: Option<Secret>,
    /// A framework id to resume, so a restarted broker keeps its tasks.
    pub framework_id: Option<String>,
    /// How long Mesos keeps the framework's tasks while Agora is away.
    #[serde(with = "humantime_serde")]
    pub failover_timeout: Duration,
    /// Set each namespace role's quota (guarantee and limit) and weight in
    /// Mesos through the operator API, so that Mesos and Agora agree.
    pub push_quota: bool,
}

/// Mesos's two encodings of the scheduler API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireEncoding {
    /// Binary protobuf (`application/x-protobuf`), the default.
    Protobuf,
    /// JSON (`application/json`), readable when debugging the wire.
    Json,
}

/// A namespace declared in the configuration file. Amounts are by Mesos
/// resource name (`cpus`, `mem` in MB, `disk` in MB, `gpus`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSettings {
    /// What frontends acquire in and Admin calls it by; unique.
    pub name: String,
    /// The Mesos role; `role_prefix` + name when unset.
    #[serde(default)]
    pub role: Option<String>,
    /// Capacity served first, before fair sharing.
    #[serde(default)]
    pub guarantee: BTreeMap<String, f64>,
    /// Leases plus running tasks never exceed this; unnamed resources are
    /// unlimited.
    #[serde(default)]
    pub limit: BTreeMap<String, f64>,
    /// Relative share under weighted dominant-resource fairness.
    #[serde(default = "one")]
    pub weight: f64,
    /// The longest a lease may be held; `broker.max_hold` when unset.
    #[serde(default, with = "humantime_serde")]
    pub max_hold: Option<Duration>,
    /// Whether idle allocation is lent to other namespaces.
    #[serde(default)]
    pub lend: Lend,
    /// The most lent out at once; unnamed resources are not capped.
    #[serde(default)]
    pub max_lent: BTreeMap<String, f64>,
    /// How long a borrower has to give capacity back when reclaimed.
    #[serde(default, with = "humantime_serde")]
    pub reclaim_grace: Option<Duration>,
    /// Cap on borrowed plus revocable capacity in use.
    #[serde(default)]
    pub max_borrowed: BTreeMap<String, f64>,
}

fn one() -> f64 {
    1.0
}

/// A namespace's lending policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lend {
    /// Lend nothing (the default).
    #[default]
    None,
    /// Lend what the namespace's own demand does not need.
    Idle,
}

impl NamespaceSettings {
    /// A namespace with only a name: role from the prefix, no quota.
    pub fn named(name: &str) -> NamespaceSettings {
        NamespaceSettings {
            name: name.to_owned(),
            role: None,
            guarantee: BTreeMap::new(),
            limit: BTreeMap::new(),
            weight: 1.0,
            max_hold: None,
            lend: Lend::None,
            max_lent: BTreeMap::new(),
            reclaim_grace: None,
            max_borrowed: BTreeMap::new(),
        }
    }

    /// The namespace as the core enforces it, its role defaulted from
    /// `role_prefix`; refused with the field and reason when invalid.
    pub fn to_core(&self, role_prefix: &str) -> Result<Namespace, ConfigError> {
        let field = |what: &str| format!("namespaces.{}.{what}", self.name);
        let amounts = |what: &str, map: &BTreeMap<String, f64>| {
            Resources::from_scalars(map.iter().map(|(k, v)| (k.as_str(), *v)), []).map_err(
                |invalid| ConfigError::Invalid {
                    field: field(what),
                    reason: invalid.to_string(),
                },
            )
        };
        let namespace = Namespace {
            name: self.name.clone(),
            role: self
                .role
                .clone()
                .unwrap_or_else(|| format!("{role_prefix}{}", self.name)),
            guarantee: amounts("guarantee", &self.guarantee)?,
            limit: amounts("limit", &self.limit)?,
            weight: self.weight,
            max_hold: self.max_hold,
            lending: Lending {
                lend_idle: self.lend == Lend::Idle,
                max_lent: amounts("max_lent", &self.max_lent)?,
                reclaim_grace: self.reclaim_grace.unwrap_or_default(),
            },
            max_borrowed: amounts("max_borrowed", &self.max_borrowed)?,
        };
        namespace.validate().map_err(|error| ConfigError::Invalid {
            field: field("role"),
            reason: error.to_string(),
        })?;
        Ok(namespace)
    }
}

/// Where state that must survive a restart is kept: an embedded file for a
/// single replica, or etcd for several replicas with one elected leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// The embedded database file; in memory (lost on restart) when unset
    /// and `etcd` is unset too. Excludes `etcd`.
    pub path: Option<PathBuf>,
    /// `[store.etcd]`: keep state in etcd and elect the leader among
    /// replicas there. Excludes `path`.
    pub etcd: Option<EtcdSettings>,
}

/// The etcd cluster that replicas share for their state and their election.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtcdSettings {
    /// Client URLs of the etcd members, such as `http://10.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// What every key of this Agora cluster starts with, so that several
    /// clusters can share one etcd.
    pub prefix: String,
    /// The TTL of the leader's election lease, in whole seconds: a leader
    /// cut off from etcd stops within it, and a standby takes over after
    /// it. Shorter fails over faster but makes a slow etcd depose leaders.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
}

impl Default for EtcdSettings {
    fn default() -> Self {
        EtcdSettings {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "/agora/".into(),
            lease_ttl: Duration::from_secs(5),
        }
    }
}

/// The shortest lease etcd grants with its default timings; it rounds a
/// shorter TTL up to this, which would make failover slower than configured.
const MIN_LEASE_TTL: Duration = Duration::from_secs(2);

/// Timings of the broker's own policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerSettings {
    /// Prefix of the Mesos role of a namespace without an explicit role.
    pub role_prefix: String,
    /// How long an unleased offer stays in the pool before it is declined.
    #[serde(with = "humantime_serde")]
    pub pool_ttl: Duration,
    /// How long Mesos keeps a declined offer's agent away from Agora.
    #[serde(with = "humantime_serde")]
    pub decline_refuse: Duration,
    /// Lease duration when an Acquire does not ask for one.
    #[serde(with = "humantime_serde")]
    pub default_hold: Duration,
    /// The longest a lease may be held before launch.
    #[serde(with = "humantime_serde")]
    pub max_hold: Duration,
    /// How long before expiry a holder is warned.
    #[serde(with = "humantime_serde")]
    pub expiring_notice: Duration,
    /// How long a dropped session's leases survive, for a reconnect.
    #[serde(with = "humantime_serde")]
    pub session_grace: Duration,
    /// How long a sibling slice waits for its agent's next offer after
    /// another slice of the same offer was launched.
    #[serde(with = "humantime_serde")]
    pub rebind_timeout: Duration,
    /// Unleased offers a namespace's role keeps past `pool_ttl`, so that
    /// acquires are answered from memory; a role with a full warm pool and
    /// no waiting demand is suppressed in Mesos.
    pub warm_pool: usize,
    /// How long a launch on an offer shared with other leases waits for
    /// their launches, so that one ACCEPT carries them all.
    #[serde(with = "humantime_serde")]
    pub launch_linger: Duration,
    /// How long a waiting request lets later, smaller requests of its
    /// namespace be served first; after that they wait behind it.
    #[serde(with = "humantime_serde")]
    pub backfill_window: Duration,
    /// How long an Acquire's request_id is remembered for retries.
    #[serde(with = "humantime_serde")]
    pub request_memory: Duration,
    /// Finished tasks remembered for ListTasks and Reconcile, like Mesos's
    /// `--max_completed_tasks_per_framework`; the oldest are forgotten.
    pub completed_tasks: usize,
    /// How long a frontend that holds nothing (no session, lease, live
    /// task, unacknowledged event or waiting request) and is not drained is
    /// remembered after its last session ended; then its name is
    /// forgotten and free for any principal.
    #[serde(with = "humantime_serde")]
    pub frontend_retention: Duration,
    /// How often a session's stream carries a heartbeat.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// The gRPC URL standbys send callers to while this replica leads,
    /// such as `https://agora-1.example.com:50051`; the address `listen`
    /// is bound to when unset, which is right only when it is reachable
    /// by that address (not `0.0.0.0`).
    pub advertise_url: Option<String>,
}

/// Logs and traces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// OTLP/gRPC collector (e.g. Jaeger at `http://127.0.0.1:4317`); spans
    /// are exported only when set.
    pub otlp_endpoint: Option<String>,
    /// Human-readable text (the default) or one JSON object per line.
    pub log_format: LogFormat,
    /// Where Prometheus metrics are served (`GET /metrics`); off when unset.
    pub metrics_listen: Option<SocketAddr>,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event, coloured at a terminal.
    Text,
    /// One JSON object per event, for a log collector.
    Json,
}

/// The principals that may call the broker. `agora serve` refuses to start
/// with none unless `--insecure` is given: a broker that launches arbitrary
/// commands on a cluster must not be open by accident.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// `[[auth.principals]]`: each with a name, its credentials, its
    /// namespaces and whether it is an admin.
    pub principals: Vec<PrincipalSettings>,
}

/// The server's certificate and, to verify client certificates, a CA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain of the server.
    pub cert: PathBuf,
    /// PEM private key of the server.
    pub key: PathBuf,
    /// PEM CA certificate(s); when set, clients must present a certificate
    /// it signed, and its subject CN names their principal.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: also accept clients without a certificate (they
    /// then authenticate with a bearer token).
    #[serde(default)]
    pub client_cert_optional: bool,
}

/// A secret that never appears in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            mesos: MesosSettings::default(),
            namespaces: vec![NamespaceSettings::named("default")],
            broker: BrokerSettings::default(),
            store: StoreSettings::default(),
            telemetry: TelemetrySettings::default(),
            auth: AuthSettings::default(),
            tls: None,
        }
    }
}

impl Default for MesosSettings {
    fn default() -> Self {
        MesosSettings {
            masters: vec!["http://127.0.0.1:5050".into()],
            encoding: WireEncoding::Protobuf,
            framework_name: "agora".into(),
            user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            principal: None,
            secret: None,
            framework_id: None,
            failover_timeout: Duration::from_secs(7 * 24 * 3600),
            push_quota: false,
        }
    }
}

/// The core's own defaults, so that there is one place for each.
impl Default for BrokerSettings {
    fn default() -> Self {
        let core = CoreConfig::default();
        BrokerSettings {
            role_prefix: String::new(),
            pool_ttl: core.pool_ttl,
            decline_refuse: core.decline_refuse,
            default_hold: core.default_hold,
            max_hold: core.max_hold,
            expiring_notice: core.expiring_notice,
            session_grace: core.session_grace,
            rebind_timeout: core.rebind_timeout,
            warm_pool: core.warm_pool,
            launch_linger: core.launch_linger,
            backfill_window: core.backfill_window,
            request_memory: core.request_memory,
            completed_tasks: core.completed_tasks,
            frontend_retention: core.frontend_retention,
            heartbeat_interval: Duration::from_secs(10),
            advertise_url: None,
        }
    }
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: None,
            log_format: LogFormat::Text,
            metrics_listen: None,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read or parsed, or a key, variable or flag is
    /// unknown or of the wrong type; the message names which.
    #[error("cannot read the configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// The values parse but do not make sense together.
    #[error("invalid configuration: {field}: {reason}")]
    Invalid {
        /// The dotted key to fix, such as `mesos.masters`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The prefix of Agora's own environment variables, flags' and keys' alike.
pub const ENV_PREFIX: &str = "AGORA_";

/// What joins a section and its key in a configuration variable's name.
/// Flags' variables never contain it, which is what keeps the two apart.
pub const ENV_NESTING: &str = "__";

/// The configuration keys given in the environment, as
/// `AGORA_<SECTION>__<KEY>` (see the module documentation for why flat
/// `AGORA_<NAME>` variables are not among them).
///
/// A provider of its own rather than a bare [`Env`] so that an error names
/// the variable to fix (`AGORA_MESOS__FRAMWORK_NAME`) instead of a dotted
/// key path.
#[derive(Debug, Clone, Copy)]
pub struct ConfigEnv;

impl ConfigEnv {
    fn variables() -> Env {
        Env::prefixed(ENV_PREFIX)
            .filter(|name| name.as_str().contains(ENV_NESTING))
            .split(ENV_NESTING)
    }
}

impl Provider for ConfigEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("the environment").interpolater(|_: &Profile, keys: &[&str]| {
            format!(
                "{ENV_PREFIX}{}",
                keys.join(ENV_NESTING).to_ascii_uppercase()
            )
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Self::variables().data()
    }
}

impl Config {
    /// Layers the defaults, the TOML file at `file` (if any),
    /// `AGORA_<SECTION>__<KEY>` variables ([`ConfigEnv`]), then `overrides`
    /// (the flags), and validates.
    pub fn load(file: Option<&Path>, overrides: Figment) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(ConfigEnv)
            .merge(overrides)
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: field.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.mesos.masters.is_empty() {
            return invalid("mesos.masters", "name at least one master URL");
        }
        if let Some(bad) = self.mesos.masters.iter().find(|m| !is_http_url(m)) {
            return invalid(
                "mesos.masters",
                &format!("{bad:?} is not an http(s) URL such as http://127.0.0.1:5050"),
            );
        }
        if self.mesos.secret.is_some() && self.mesos.principal.is_none() {
            return invalid("mesos.secret", "a secret needs mesos.principal");
        }
        if self.namespaces.is_empty() {
            return invalid("namespaces", "declare at least one namespace");
        }
        let mut names: Vec<&str> = self.namespaces.iter().map(|n| n.name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return invalid("namespaces", &format!("{:?} is declared twice", pair[0]));
        }
        self.core_namespaces()?;
        if self.broker.default_hold > self.broker.max_hold {
            return invalid("broker.default_hold", "must not exceed broker.max_hold");
        }
        if self.broker.heartbeat_interval.is_zero() {
            return invalid("broker.heartbeat_interval", "must be positive");
        }
        self.validate_store()?;
        self.validate_auth()
    }

    /// One place for the state, and an etcd that can be reached and fenced.
    fn validate_store(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: field.to_owned(),
                reason: reason.to_owned(),
            })
        };
        let Some(etcd) = &self.store.etcd else {
            return Ok(());
        };
        if self.store.path.is_some() {
            return invalid(
                "store.etcd",
                "excludes store.path: state is kept either in etcd or in one file",
            );
        }
        if etcd.endpoints.is_empty() {
            return invalid("store.etcd.endpoints", "name at least one etcd endpoint");
        }
        if let Some(bad) = etcd.endpoints.iter().find(|e| !is_http_url(e)) {
            return invalid(
                "store.etcd.endpoints",
                &format!("{bad:?} is not an http(s) URL such as http://127.0.0.1:2379"),
            );
        }
        if etcd.prefix.is_empty() {
            return invalid(
                "store.etcd.prefix",
                "must not be empty, so that the cluster's keys are told apart, e.g. \"/agora/\"",
            );
        }
        if etcd.lease_ttl < MIN_LEASE_TTL || etcd.lease_ttl.subsec_nanos() != 0 {
            return invalid(
                "store.etcd.lease_ttl",
                "must be whole seconds (etcd's leases are), at least 2s",
            );
        }
        Ok(())
    }

    /// Principals must be told apart by name, token and certificate
    /// subject, and each must have a way to authenticate.
    fn validate_auth(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, reason: String| {
            Err(ConfigError::Invalid {
                field: field.to_owned(),
                reason,
            })
        };
        let client_ca = self.tls.as_ref().is_some_and(|t| t.client_ca.is_some());
        if let Some(tls) = &self.tls
            && tls.client_cert_optional
            && tls.client_ca.is_none()
        {
            return invalid(
                "tls.client_cert_optional",
                "only means something with tls.client_ca".into(),
            );
        }
        let (mut names, mut subjects, mut tokens) = (HashSet::new(), HashSet::new(), Vec::new());
        for principal in &self.auth.principals {
            let name = &principal.name;
            if name.trim().is_empty() {
                return invalid("auth.principals.name", "give every principal a name".into());
            }
            if !names.insert(name) {
                return invalid(
                    "auth.principals.name",
                    format!("{name:?} is declared twice"),
                );
            }
            if principal.token_sha256.is_none() && principal.tls_subject.is_none() {
                return invalid(
                    "auth.principals",
                    format!("{name:?} needs token_sha256 or tls_subject to authenticate with"),
                );
            }
            if let Some(subject) = &principal.tls_subject {
                if !client_ca {
                    return invalid(
                        "auth.principals.tls_subject",
                        format!(
                            "{name:?} has a tls_subject, which needs tls.client_ca to verify client certificates"
                        ),
                    );
                }
                if !subjects.insert(subject) {
                    return invalid(
                        "auth.principals.tls_subject",
                        format!("{subject:?} names two principals"),
                    );
                }
            }
            if let Some(token) = &principal.token_sha256 {
                if tokens.contains(&token) {
                    return invalid(
                        "auth.principals.token_sha256",
                        format!("{name:?} shares its token with another principal"),
                    );
                }
                tokens.push(token);
            }
        }
        Ok(())
    }

    /// The configured namespaces as the core enforces them, in
    /// declaration order.
    pub fn core_namespaces(&self) -> Result<Vec<Namespace>, ConfigError> {
        self.namespaces
            .iter()
            .map(|ns| ns.to_core(&self.broker.role_prefix))
            .collect()
    }
}

/// Whether `url` is an http(s) URL with something after the scheme.
fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "https://".len()
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error, which is large"
)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in_jail(toml: &str, overrides: Figment) -> Result<Config, String> {
        let mut result = Err(String::new());
        Jail::expect_with(|jail| {
            jail.create_file("agora.toml", toml)?;
            result =
                Config::load(Some(Path::new("agora.toml")), overrides).map_err(|e| e.to_string());
            Ok(())
        });
        result
    }

    #[test]
    fn file_then_env_then_flags() {
        let mut seen = None;
        Jail::expect_with(|jail| {
            jail.create_file(
                "agora.toml",
                r#"
                listen = "127.0.0.1:7000"
                [mesos]
                masters = ["http://m1:5050"]
                framework_name = "from-file"
                [broker]
                pool_ttl = "2s"
                "#,
            )?;
            jail.set_env("AGORA_MESOS__FRAMEWORK_NAME", "from-env");
            let flags = Figment::from(Serialized::default("listen", "127.0.0.1:7001"));
            seen = Some(Config::load(Some(Path::new("agora.toml")), flags).unwrap());
            Ok(())
        });
        let config = seen.unwrap();
        assert_eq!(config.listen, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(config.mesos.framework_name, "from-env");
        assert_eq!(config.mesos.masters, vec!["http://m1:5050".to_owned()]);
        assert_eq!(config.broker.pool_ttl, Duration::from_secs(2));
    }

    #[test]
    fn refuses_bad_settings_naming_the_field() {
        for (toml, field) in [
            ("[mesos]\nmasters = []", "mesos.masters"),
            ("[mesos]\nmasters = [\"m1:5050\"]", "mesos.masters"),
            ("[mesos]\nsecret = \"s\"", "mesos.secret"),
            ("namespaces = []", "namespaces"),
            (
                "[[namespaces]]\nname = \"a\"\n[[namespaces]]\nname = \"a\"",
                "namespaces",
            ),
            (
                "[broker]\ndefault_hold = \"10m\"\nmax_hold = \"1m\"",
                "broker.default_hold",
            ),
            ("[store]\npath = \"a.redb\"\n[store.etcd]", "store.etcd"),
            ("[store.etcd]\nendpoints = []", "store.etcd.endpoints"),
            (
                "[store.etcd]\nendpoints = [\"127.0.0.1:2379\"]",
                "store.etcd.endpoints",
            ),
            ("[store.etcd]\nprefix = \"\"", "store.etcd.prefix"),
            ("[store.etcd]\nlease_ttl = \"1s\"", "store.etcd.lease_ttl"),
            (
                "[store.etcd]\nlease_ttl = \"2500ms\"",
                "store.etcd.lease_ttl",
            ),
            ("[store.etcd]\nendpoint = [\"http://e:2379\"]", "endpoint"),
        ] {
            let error = load_in_jail(toml, Figment::new()).unwrap_err();
            assert!(error.contains(field), "{toml:?} gave {error}");
        }
    }

    #[test]
    fn reads_the_etcd_store() {
        let mut seen = None;
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "agora.toml",
                r#"
                [store.etcd]
                endpoints = ["http://e1:2379", "http://e2:2379"]
                prefix = "/prod/agora/"
                "#,
            )?;
            jail.set_env("AGORA_STORE__ETCD__LEASE_TTL", "3s");
            seen = Some(Config::load(Some(Path::new("agora.toml")), Figment::new()).unwrap());
            Ok(())
        });
        let store = seen.unwrap().store;
        assert_eq!(store.path, None);
        assert_eq!(
            store.etcd,
            Some(EtcdSettings {
                endpoints: vec!["http://e1:2379".into(), "http://e2:2379".into()],
                prefix: "/prod/agora/".into(),
                lease_ttl: Duration::from_secs(3),
            })
        );
    }

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn reads_principals_and_tls() {
        let toml = format!(
            r#"
            [[auth.principals]]
            name = "ci"
            token_sha256 = "{HASH}"
            namespaces = ["default"]
            [[auth.principals]]
            name = "ops"
            tls_subject = "ops"
            admin = true
            [tls]
            cert = "server.pem"
            key = "server.key"
            client_ca = "ca.pem"
            "#
        );
        let config = load_in_jail(&toml, Figment::new()).unwrap();
        let [ci, ops] = &config.auth.principals[..] else {
            panic!("two principals, got {:?}", config.auth.principals);
        };
        assert_eq!(ci.token_sha256, Some(TokenHash::of("abc")));
        assert_eq!(ci.namespaces, vec!["default".to_owned()]);
        assert!(!ci.admin);
        assert_eq!(ops.tls_subject.as_deref(), Some("ops"));
        assert!(ops.admin && ops.namespaces.is_empty());
        let tls = config.tls.unwrap();
        assert_eq!(tls.client_ca, Some(PathBuf::from("ca.pem")));
        assert!(!format!("{ci:?}").contains(&HASH[..8]));
    }

    #[test]
    fn refuses_principals_that_cannot_be_told_apart_or_cannot_authenticate() {
        let tls = "[tls]\ncert = \"c\"\nkey = \"k\"\nclient_ca = \"ca\"\n";
        let principal = |body: &str| format!("[[auth.principals]]\n{body}\n");
        for (toml, field) in [
            (principal("name = \"ci\""), "auth.principals"),
            (
                principal(&format!("name = \"ci\"\ntoken_sha256 = \"{}\"", &HASH[2..])),
                "token_sha256",
            ),
            (
                principal(&format!("name = \"\"\ntoken_sha256 = \"{HASH}\"")),
                "auth.principals.name",
            ),
            (
                principal(&format!("name = \"a\"\ntoken_sha256 = \"{HASH}\""))
                    + &principal("name = \"a\"\ntls_subject = \"a\"")
                    + tls,
                "auth.principals.name",
            ),
            (
                principal(&format!("name = \"a\"\ntoken_sha256 = \"{HASH}\""))
                    + &principal(&format!("name = \"b\"\ntoken_sha256 = \"{HASH}\"")),
                "auth.principals.token_sha256",
            ),
            (
                principal("name = \"a\"\ntls_subject = \"x\"")
                    + &principal("name = \"b\"\ntls_subject = \"x\"")
                    + tls,
                "auth.principals.tls_subject",
            ),
            (
                principal("name = \"a\"\ntls_subject = \"x\""),
                "tls.client_ca",
            ),
            (
                "[tls]\ncert = \"c\"\nkey = \"k\"\nclient_cert_optional = true".to_owned(),
                "tls.client_cert_optional",
            ),
        ] {
            let error = load_in_jail(&toml, Figment::new()).unwrap_err();
            assert!(error.contains(field), "{toml:?} gave {error}");
        }
    }

    /// Flat `AGORA_*` names: the variables of `agora`'s flags (clap reads
    /// them), and names other programs put in the environment. Neither is a
    /// configuration key.
    const FLAT_VARIABLES: [(&str, &str); 11] = [
        ("AGORA_CONFIG", "agora.toml"),
        ("AGORA_MASTER", "http://m1:5050,http://m2:5050"),
        ("AGORA_INSECURE", "true"),
        ("AGORA_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ("AGORA_LOG_FORMAT", "json"),
        ("AGORA_MESOS_ENCODING", "json"),
        ("AGORA_FRAMEWORK_ID", "framework-1"),
        ("AGORA_LISTEN", "127.0.0.1:7001"),
        ("AGORA_VERSION", "1.2"),
        ("AGORA_UNRELATED", "x"),
        ("AGORA_TOKEN", "secret"),
    ];

    #[test]
    fn flat_variables_are_left_to_flags_and_other_programs() {
        for (variable, value) in FLAT_VARIABLES {
            Jail::expect_with(|jail| {
                jail.clear_env();
                jail.set_env(variable, value);
                let config = Config::load(None, Figment::new())
                    .unwrap_or_else(|error| panic!("{variable}={value}: {error}"));
                assert_eq!(config, Config::default(), "{variable}={value}");
                Ok(())
            });
        }
    }

    #[test]
    fn all_flat_variables_at_once_leave_the_file_in_charge() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("agora.toml", "listen = \"127.0.0.1:7000\"")?;
            for (variable, value) in FLAT_VARIABLES {
                jail.set_env(variable, value);
            }
            let config = Config::load(Some(Path::new("agora.toml")), Figment::new()).unwrap();
            assert_eq!(config.listen, "127.0.0.1:7000".parse().unwrap());
            Ok(())
        });
    }

    #[test]
    fn nested_variables_set_the_keys_they_name() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env(
                "AGORA_MESOS__MASTERS",
                "[\"http://m1:5050\", \"http://m2:5050\"]",
            );
            jail.set_env("AGORA_MESOS__ENCODING", "json");
            jail.set_env("AGORA_MESOS__FRAMEWORK_ID", "framework-1");
            jail.set_env("AGORA_BROKER__WARM_POOL", "7");
            jail.set_env("AGORA_TELEMETRY__LOG_FORMAT", "json");
            jail.set_env("AGORA_TELEMETRY__OTLP_ENDPOINT", "http://127.0.0.1:4317");
            jail.set_env("AGORA_STORE__PATH", "/var/lib/agora/agora.redb");
            let config = Config::load(None, Figment::new()).unwrap();
            assert_eq!(config.mesos.masters, ["http://m1:5050", "http://m2:5050"]);
            assert_eq!(config.mesos.encoding, WireEncoding::Json);
            assert_eq!(config.mesos.framework_id.as_deref(), Some("framework-1"));
            assert_eq!(config.broker.warm_pool, 7);
            assert_eq!(config.telemetry.log_format, LogFormat::Json);
            assert_eq!(
                config.telemetry.otlp_endpoint.as_deref(),
                Some("http://127.0.0.1:4317")
            );
            assert_eq!(
                config.store.path,
                Some(PathBuf::from("/var/lib/agora/agora.redb"))
            );
            Ok(())
        });
    }

    #[test]
    fn nested_variables_that_do_not_fit_are_refused_naming_the_variable() {
        // A typo in the section is named up to the section.
        for (variable, value, found, named) in [
            (
                "AGORA_MESOS__FRAMWORK_NAME",
                "x",
                "framwork_name",
                "AGORA_MESOS__FRAMWORK_NAME",
            ),
            ("AGORA_MESSOS__USER", "x", "messos", "AGORA_MESSOS"),
            (
                "AGORA_BROKER__POOL__TTL",
                "1s",
                "pool",
                "AGORA_BROKER__POOL",
            ),
            (
                "AGORA_BROKER__WARM_POOL",
                "many",
                "many",
                "AGORA_BROKER__WARM_POOL",
            ),
        ] {
            Jail::expect_with(|jail| {
                jail.clear_env();
                jail.set_env(variable, value);
                let error = Config::load(None, Figment::new())
                    .expect_err(variable)
                    .to_string();
                assert!(error.contains(found), "{variable} gave {error}");
                assert!(error.contains(named), "{variable} gave {error}");
                Ok(())
            });
        }
    }

    #[test]
    fn refuses_unknown_keys() {
        let error = load_in_jail("[mesos]\nmaster = \"http://x\"", Figment::new()).unwrap_err();
        assert!(error.contains("master"), "{error}");
    }

    #[test]
    fn never_prints_the_secret() {
        let settings = MesosSettings {
            secret: Some(Secret("hunter2".into())),
            ..Default::default()
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn namespace_roles_use_the_prefix_unless_given() {
        let config = Config {
            namespaces: vec![
                NamespaceSettings::named("a"),
                NamespaceSettings {
                    role: Some("eng/b".into()),
                    ..NamespaceSettings::named("b")
                },
            ],
            broker: BrokerSettings {
                role_prefix: "agora-".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let roles: Vec<String> = config
            .core_namespaces()
            .unwrap()
            .into_iter()
            .map(|ns| ns.role)
            .collect();
        assert_eq!(roles, ["agora-a", "eng/b"]);
    }

    #[test]
    fn namespace_quota_is_read_and_checked() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "agora.toml",
                r#"
                [[namespaces]]
                name = "batch"
                guarantee = { cpus = 4 }
                limit = { cpus = 8, mem = 16384 }
                weight = 3
                max_hold = "1m"
                lend = "idle"
                "#,
            )?;
            let config = Config::load(Some(Path::new("agora.toml")), Figment::new()).unwrap();
            let batch = &config.core_namespaces().unwrap()[0];
            assert_eq!(batch.limit.scalar("mem"), 16384.0);
            assert_eq!(batch.weight, 3.0);
            assert!(batch.lending.lend_idle);
            jail.create_file(
                "bad.toml",
                r#"
                [[namespaces]]
                name = "batch"
                role = "/batch"
                "#,
            )?;
            let error = Config::load(Some(Path::new("bad.toml")), Figment::new()).unwrap_err();
            assert!(
                error.to_string().contains("start or end with '/'"),
                "{error}"
            );
            Ok(())
        });
    }
}
