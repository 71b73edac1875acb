//! The runtime around the master: the driver loop that fires timers and
//! allocation cycles, the HTTP server, and graceful shutdown. The state
//! they share (and effect execution) is in `shared`.
//!
//! Shutdown, step by step: stop accepting connections; close every
//! subscription stream (so HTTP connections can finish); kill every task
//! process group; wait for the server to drain; stop the driver; remove
//! the sandbox directory if the cluster created it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::agent::process::ProcessRunner;
use crate::agent::{AgentError, AgentSpec};
use crate::clock::Now;
use crate::config::{Config, ConfigError, Validated};
use crate::master::Master;
use crate::shared::Shared;

/// Why a devcluster could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Binding, serving or preparing the work directory failed.
    #[error("devcluster I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The cluster's task ended abnormally.
    #[error("devcluster task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Fires the master's timers and runs allocation cycles: periodically
/// every `allocation_interval`, and at once when a step asked for one.
async fn drive(
    shared: Arc<Shared>,
    interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut next_allocation = tokio::time::Instant::now();
    loop {
        let now = tokio::time::Instant::now();
        let deadline = shared.step_quietly(|master, step_now| {
            master.tick(step_now);
            if now >= next_allocation || master.allocation_requested() {
                master.allocate(step_now);
                next_allocation = now + interval;
            }
            master.next_deadline()
        });
        let wake_at = deadline
            .map(tokio::time::Instant::from_std)
            .map_or(next_allocation, |d| d.min(next_allocation));
        tokio::select! {
            _ = tokio::time::sleep_until(wake_at) => {}
            _ = shared.stepped() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Runs a devcluster on `listener` until `shutdown` completes, then shuts
/// down gracefully (task processes are killed).
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let validated = config.validate()?;
    serve(validated, listener, shutdown).await
}

/// A cluster's state before it serves: the master behind its lock, and
/// the sandbox directory (removed at shutdown when the cluster made it).
struct Prepared {
    shared: Arc<Shared>,
    work_dir: std::path::PathBuf,
    owns_work_dir: bool,
    allocation_interval: std::time::Duration,
}

fn prepare(validated: Validated, address: SocketAddr) -> Result<Prepared, Error> {
    let (work_dir, owns_work_dir) = match &validated.config.work_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("devcluster-{}", uuid::Uuid::new_v4())),
            true,
        ),
    };
    if !validated.config.simulate {
        std::fs::create_dir_all(&work_dir)?;
    }
    let master = Master::new(
        Now::read(),
        rand::random(),
        &validated,
        address,
        work_dir.clone(),
    );
    tracing::info!(%address, agents = validated.config.agents, simulate = validated.config.simulate, "devcluster master started");
    let shared = Arc::new(Shared::new(
        master,
        ProcessRunner::new()?,
        (
            validated.resources,
            validated.attributes,
            validated.revocable,
        ),
        address,
    ));
    Ok(Prepared {
        shared,
        work_dir,
        owns_work_dir,
        allocation_interval: validated.config.allocation_interval,
    })
}

async fn serve(
    validated: Validated,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let prepared = prepare(validated, listener.local_addr()?)?;
    serve_prepared(prepared, listener, shutdown).await
}

async fn serve_prepared(
    prepared: Prepared,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let Prepared {
        shared,
        work_dir,
        owns_work_dir,
        allocation_interval,
    } = prepared;
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = tokio::spawn(drive(Arc::clone(&shared), allocation_interval, stop_rx));
    let closing = Arc::clone(&shared);
    let app = crate::http::router(Arc::clone(&shared));
    // Events and call answers are small writes that must leave at once, as
    // a Mesos master's do: without TCP_NODELAY, Nagle's algorithm holds an
    // event back until the previous one's delayed ACK (up to 40 ms).
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("devcluster shutting down");
            closing.step(|master, _| master.close_all_streams());
            closing.kill_all();
        })
        .await;
    shared.kill_all();
    let _ = stop_tx.send(true);
    driver.await?;
    if owns_work_dir {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    served?;
    Ok(())
}

/// A devcluster running in the background of the current tokio runtime.
pub struct Cluster {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl Cluster {
    /// Validates `config` and starts serving on `listener` (bind it to port
    /// 0 in tests). Dropping the handle also shuts the cluster down.
    pub async fn start(config: Config, listener: TcpListener) -> Result<Self, Error> {
        let validated = config.validate()?;
        let address = listener.local_addr()?;
        let prepared = prepare(validated, address)?;
        let shared = Arc::clone(&prepared.shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_prepared(prepared, listener, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            address,
            shared,
            stop: Some(stop),
            task,
        })
    }

    /// The address the master listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The master's base URL, `http://ip:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Adds an agent (real-process or simulated, like the others); its
    /// resources are offered at the next allocation cycle. Returns its id.
    pub fn add_agent(&self, spec: &AgentSpec) -> Result<String, AgentError> {
        self.shared.add_agent(spec)
    }

    /// Removes an agent as if it died: its offers are rescinded, its live
    /// tasks end in TASK_LOST (REASON_AGENT_REMOVED) and every subscribed
    /// framework gets a FAILURE event naming the agent.
    pub fn remove_agent(&self, id: &str) -> Result<(), AgentError> {
        self.shared.remove_agent(id)
    }

    /// Changes an agent's revocable estimate (Mesos syntax, e.g.
    /// `cpus:2;mem:512`; empty for none): its offers holding revocable
    /// resources are rescinded, and executors using more revocable
    /// resources than the new estimate are preempted (their tasks end
    /// TASK_LOST, REASON_CONTAINER_PREEMPTED).
    pub fn set_revocable(&self, id: &str, estimate: &str) -> Result<(), AgentError> {
        self.shared.set_revocable(id, estimate)
    }

    /// The ids of the registered agents, in order.
    pub fn agents(&self) -> Vec<String> {
        self.shared.step(|master, _| master.agent_ids())
    }

    /// Shuts down gracefully: streams closed, task processes killed.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await?
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
