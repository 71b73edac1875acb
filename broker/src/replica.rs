//! A replica's life. With the embedded store there is one replica and it
//! leads from the start. With etcd, several replicas share the store and
//! one leads: each stands by (its API refuses calls, naming the leader)
//! until it wins the election, then recovers from the store, subscribes to
//! Mesos and serves. A leader that may have lost its leadership stops the
//! process at once: its store is already fenced, and stopping is what keeps
//! it from sending anything more to Mesos. Run under a supervisor, it comes
//! back as a standby.

use std::future::pending;

use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};
use tracing::info;

use crate::{
    RunError,
    api::leadership::Role,
    config::Config,
    runtime::{self, Command},
    store::{Election, Leadership, Store},
    telemetry,
};
use agora_core::Core;

/// What the replica hands the API when it starts to lead.
pub(crate) struct Replica<'a> {
    pub(crate) config: &'a Config,
    /// For the metrics page, which reads the core.
    pub(crate) commands: mpsc::Sender<Command>,
    /// Taken by the runtime once this replica leads.
    pub(crate) commands_rx: mpsc::Receiver<Command>,
    /// Whether the Mesos subscription is live, for health and the API.
    pub(crate) subscribed: watch::Sender<bool>,
    /// Standby or leader, for the API.
    pub(crate) role: watch::Sender<Role>,
}

impl Replica<'_> {
    /// Stands by until elected (at once without an election), then leads
    /// until the leadership is lost or the runtime fails; returns why.
    pub(crate) async fn run(
        self,
        store: Store,
        election: Option<Election>,
        advertised: &str,
    ) -> RunError {
        let leadership = match election {
            Some(election) => Some(self.stand_by(&election, advertised).await),
            None => None,
        };
        let store = leadership.as_ref().map_or(store, Leadership::store);
        match self.lead(store, leadership).await {
            Ok(never) => match never {},
            Err(error) => error,
        }
    }

    /// Campaigns while telling callers where the leader is.
    async fn stand_by(&self, election: &Election, advertised: &str) -> Leadership {
        info!(advertised, "standing by until elected leader");
        let follow = tokio::spawn(follow_leader(election.observe(), self.role.clone()));
        let leadership = election.campaign(advertised).await;
        follow.abort();
        // No longer pointing at the last leader seen, which is gone; not
        // serving either until recovered.
        self.role.send_replace(Role::Standby { leader: None });
        info!(
            advertised,
            term = leadership.fence().revision(),
            "elected leader"
        );
        leadership
    }

    /// Recovers from `store`, starts the runtime and Mesos, opens the API,
    /// and waits for the end of the leadership or of the runtime.
    async fn lead(
        self,
        store: Store,
        leadership: Option<Leadership>,
    ) -> Result<std::convert::Infallible, RunError> {
        let config = self.config;
        let namespaces = super::namespaces_at_start(config, &store).await?;
        let durable = runtime::load(&store).await?;
        let framework_id = match &config.mesos.framework_id {
            Some(configured) => Some(configured.clone()),
            None => runtime::framework_id(&store).await?,
        };
        info!(
            framework_id = framework_id.as_deref().unwrap_or("(new)"),
            frontends = durable.frontends.len(),
            tasks = durable.tasks.len(),
            leases = durable.leases.len(),
            "recovering from the store"
        );
        let core = Core::new(super::core_config(config, namespaces), &super::boot_id());
        let mesos_config = super::mesos_config(config, core.roles(), framework_id.clone());
        let recovery = runtime::Recovery {
            store,
            durable,
            framework_id,
            journaling: config.store.path.is_some() || config.store.etcd.is_some(),
        };
        let (mesos, runtime) = runtime::start(core, recovery, mesos_config, self.commands_rx);
        tokio::spawn(forward(mesos.subscribed(), self.subscribed));
        if let Some(address) = config.telemetry.metrics_listen {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| RunError::Metrics { address, source })?;
            info!(address = ?listener.local_addr().ok(), "metrics served at /metrics");
            tokio::spawn(telemetry::metrics::serve(listener, self.commands));
        }
        self.role.send_replace(Role::Leader);
        let lost = async {
            match &leadership {
                Some(leadership) => leadership.lost().await,
                None => pending().await,
            }
        };
        tokio::select! {
            reason = lost => Err(RunError::LeadershipLost(reason)),
            stopped = runtime => match stopped {
                // The runtime ends cleanly only once the server has
                // stopped, which ends `run` first.
                Ok(Ok(())) => pending().await,
                Ok(Err(error)) => Err(error.into()),
                Err(panicked) => std::panic::resume_unwind(panicked.into_panic()),
            },
        }
    }
}

/// Keeps a standby's role naming the leader the election reports.
async fn follow_leader(mut leader: watch::Receiver<Option<String>>, role: watch::Sender<Role>) {
    loop {
        let current = leader.borrow_and_update().clone();
        role.send_replace(Role::Standby { leader: current });
        if leader.changed().await.is_err() {
            return;
        }
    }
}

/// Copies `from` into `to` until either side is gone.
async fn forward(mut from: watch::Receiver<bool>, to: watch::Sender<bool>) {
    loop {
        to.send_replace(*from.borrow_and_update());
        if from.changed().await.is_err() {
            return;
        }
    }
}
