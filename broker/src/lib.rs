//! The Agora broker: one Mesos framework connection shared by many frontend
//! schedulers over gRPC.
//!
//! The library holds everything; the `agora` binary only parses flags,
//! starts telemetry and calls [`run`]. Tests and `agora dev` call [`run`]
//! the same way, with an already-bound listener.
//!
//! # Layout
//! - the sans-IO brain — pool, leases, tasks, status routing — is the
//!   `agora-core` crate, which cannot do I/O because it depends on nothing
//!   that can.
//! - [`mesos`]: the Mesos v1 scheduler HTTP client.
//! - [`runtime`]: the loop that owns the core and carries out its effects.
//! - [`replica`]: standby until elected, then recovery and the runtime.
//! - [`store`]: what must survive a restart or a failover (namespaces
//!   changed at run time), in redb or etcd, and the leader election.
//! - [`api`]: the tonic services, conversions and error mapping.
//! - [`config`]: layered configuration.
//! - [`telemetry`]: logs and OTLP traces.

pub mod api;
pub mod config;
pub mod mesos;
pub mod replica;
pub mod runtime;
pub mod store;
pub mod telemetry;

use std::{collections::BTreeMap, future::Future, time::Duration};

use agora_proto::mesos::v1::{FrameworkId, FrameworkInfo, framework_info::capability};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};

use crate::{
    api::{
        admin::AdminService,
        broker::BrokerService,
        leadership::Role,
        server::{Readiness, Security, ServeError},
    },
    config::{Config, ConfigError, WireEncoding},
    mesos::{Encoding, MesosConfig, backoff::Backoff},
    replica::Replica,
    store::{Store, StoreError},
};
use agora_core::{CoreConfig, Namespace};

/// Serves the broker on `listener` until `shutdown` resolves, letting in
/// the callers `security` authenticates. With an etcd store the replica
/// first stands by (see [`replica`]) until it is elected. The Mesos
/// subscription is kept in the background; health reports SERVING only
/// while it is live. The framework is not torn down on shutdown: Mesos
/// keeps its tasks for the failover timeout, for the next start.
pub async fn run(
    config: Config,
    security: Security,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let store = Store::open(&config.store).await?;
    let election = store.election();
    let advertised = advertised_url(&config, &listener, &security);
    let (commands, commands_rx) = mpsc::channel(runtime::COMMAND_QUEUE);
    let (subscribed_tx, subscribed) = watch::channel(false);
    let first_role = match election {
        Some(_) => Role::Standby { leader: None },
        None => Role::Leader,
    };
    let (role_tx, role) = watch::channel(first_role);
    let admin = AdminService::new(commands.clone(), config.broker.role_prefix.clone());
    let broker = BrokerService::new(
        commands.clone(),
        config.broker.heartbeat_interval,
        subscribed.clone(),
    );
    let readiness = Readiness { subscribed, role };
    let serving = api::server::serve(
        broker,
        admin,
        security,
        listener,
        readiness,
        commands.clone(),
        shutdown,
    );
    let replica = Replica {
        config: &config,
        commands,
        commands_rx,
        subscribed: subscribed_tx,
        role: role_tx,
    };
    tokio::select! {
        served = serving => Ok(served?),
        failed = replica.run(store, election, &advertised) => Err(failed),
    }
}

/// The address standbys send callers to while this replica leads:
/// `broker.advertise_url`, else the address the listener is bound to.
fn advertised_url(config: &Config, listener: &TcpListener, security: &Security) -> String {
    if let Some(url) = &config.broker.advertise_url {
        return url.clone();
    }
    let scheme = if security.tls.is_some() {
        "https"
    } else {
        "http"
    };
    match listener.local_addr() {
        Ok(address) => format!("{scheme}://{address}"),
        Err(_) => format!("{scheme}://{}", config.listen),
    }
}

/// Why the broker could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A configured namespace is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened or read at start.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The durable records an earlier run stored do not read back.
    #[error(transparent)]
    Journal(#[from] runtime::JournalError),
    /// The runtime stopped: the store refused a write.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// This replica led and may no longer: it stops at once, so that it
    /// sends nothing more to Mesos, and is restarted to stand by.
    #[error("the leadership was lost, so this replica stops: {0}")]
    LeadershipLost(#[from] store::Lost),
    /// A namespace that `Admin` stored in an earlier run fails this run's
    /// checks (a newer Agora may check more).
    #[error("stored namespace {name:?} is no longer valid: {reason}")]
    StoredNamespace {
        /// Which namespace.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `telemetry.metrics_listen` could not be bound, usually because the
    /// port is taken.
    #[error("cannot serve metrics on {address}: {source}")]
    Metrics {
        /// The configured `telemetry.metrics_listen`.
        address: std::net::SocketAddr,
        /// The bind failure.
        source: std::io::Error,
    },
    /// The gRPC server could not start or failed while serving.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The configured namespaces, then what Admin put or deleted at run time,
/// which wins.
async fn namespaces_at_start(config: &Config, store: &Store) -> Result<Vec<Namespace>, RunError> {
    let mut namespaces: BTreeMap<String, Namespace> = config
        .core_namespaces()?
        .into_iter()
        .map(|ns| (ns.name.clone(), ns))
        .collect();
    let stored = store.namespaces().await?;
    for put in stored.put {
        let invalid = |reason: String| RunError::StoredNamespace {
            name: put.name.clone(),
            reason,
        };
        let namespace = api::namespace::from_api(&put, &config.broker.role_prefix)
            .map_err(|status| invalid(status.message().to_owned()))?;
        namespace
            .validate()
            .map_err(|error| invalid(error.to_string()))?;
        namespaces.insert(namespace.name.clone(), namespace);
    }
    for deleted in stored.deleted {
        namespaces.remove(&deleted);
    }
    Ok(namespaces.into_values().collect())
}

fn core_config(config: &Config, namespaces: Vec<Namespace>) -> CoreConfig {
    let broker = &config.broker;
    CoreConfig {
        namespaces,
        pool_ttl: broker.pool_ttl,
        decline_refuse: broker.decline_refuse,
        default_hold: broker.default_hold,
        max_hold: broker.max_hold,
        expiring_notice: broker.expiring_notice,
        session_grace: broker.session_grace,
        rebind_timeout: broker.rebind_timeout,
        warm_pool: broker.warm_pool,
        launch_linger: broker.launch_linger,
        backfill_window: broker.backfill_window,
        request_memory: broker.request_memory,
        completed_tasks: broker.completed_tasks,
        frontend_retention: broker.frontend_retention,
        push_quota: config.mesos.push_quota,
    }
}

/// Why the framework could not be torn down.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    /// Neither the configuration nor the store names a framework id.
    #[error(
        "set mesos.framework_id (or --framework-id): the store names no framework to tear down"
    )]
    NoFrameworkId,
    /// The store, where a run recorded its framework id, cannot be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store's framework id record does not read back.
    #[error(transparent)]
    Journal(#[from] runtime::JournalError),
    /// A configured namespace is invalid, so the framework's roles are
    /// unknown.
    #[error(transparent)]
    Config(ConfigError),
    /// No master confirmed the subscription within the wait carried:
    /// check `mesos.masters` and that the framework id is still registered.
    #[error("could not subscribe as the framework within {0:?}")]
    NotSubscribed(Duration),
    /// The master refused the TEARDOWN call or could not be reached.
    #[error(transparent)]
    Call(#[from] mesos::CallError),
}

/// Retires the framework for good: Mesos kills all its tasks and will never
/// accept its id again. For operators decommissioning an Agora; a normal
/// shutdown never does this. The framework is the configured one, else the
/// one the store recorded.
pub async fn teardown(config: &Config) -> Result<String, TeardownError> {
    let framework_id = match &config.mesos.framework_id {
        Some(id) => id.clone(),
        None => {
            let store = Store::open(&config.store).await?;
            runtime::framework_id(&store)
                .await?
                .ok_or(TeardownError::NoFrameworkId)?
        }
    };
    let roles = config
        .core_namespaces()
        .map_err(TeardownError::Config)?
        .into_iter()
        .map(|ns| ns.role)
        .collect();
    let mesos_config = mesos_config(config, roles, Some(framework_id.clone()));
    let wait = mesos_config.request_timeout;
    let (handle, mut events, _subscription) = mesos::start(mesos_config);
    let subscribed = async {
        while let Some(event) = events.recv().await {
            if matches!(event, mesos::MesosEvent::Subscribed { .. }) {
                return true;
            }
        }
        false
    };
    if !tokio::time::timeout(wait, subscribed)
        .await
        .unwrap_or(false)
    {
        return Err(TeardownError::NotSubscribed(wait));
    }
    handle.call(mesos::client::teardown_call()).await?;
    Ok(framework_id)
}

/// How to reach Mesos as `config` says, subscribing with `roles` as the
/// framework `framework_id` (the configured or stored one; `None` for a new
/// framework).
fn mesos_config(config: &Config, roles: Vec<String>, framework_id: Option<String>) -> MesosConfig {
    let mesos = &config.mesos;
    let capabilities = [
        capability::Type::MultiRole,
        capability::Type::PartitionAware,
        capability::Type::TaskKillingState,
        capability::Type::RevocableResources,
    ]
    .into_iter()
    .map(|kind| agora_proto::mesos::v1::framework_info::Capability {
        r#type: Some(kind as i32),
    })
    .collect();
    MesosConfig {
        masters: mesos
            .masters
            .iter()
            .map(|m| m.trim_end_matches('/').to_owned())
            .collect(),
        encoding: match mesos.encoding {
            WireEncoding::Protobuf => Encoding::Protobuf,
            WireEncoding::Json => Encoding::Json,
        },
        framework_info: FrameworkInfo {
            user: mesos.user.clone(),
            name: mesos.framework_name.clone(),
            id: framework_id.map(|value| FrameworkId { value }),
            failover_timeout: Some(mesos.failover_timeout.as_secs_f64()),
            checkpoint: Some(true),
            roles,
            principal: mesos.principal.clone(),
            capabilities,
            ..Default::default()
        },
        missed_heartbeats: 5,
        request_timeout: Duration::from_secs(30),
        backoff: Backoff::default(),
        credentials: mesos
            .principal
            .clone()
            .zip(mesos.secret.as_ref().map(|s| s.expose().to_owned())),
    }
}

/// A random id for this start of the broker, so lease and task ids never
/// repeat across restarts.
fn boot_id() -> String {
    format!("{:08x}", rand::random::<u32>())
}
