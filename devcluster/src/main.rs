//! `devcluster`: a Mesos-compatible master with agents, standalone.
//!
//! Prints `listening on http://<ip>:<port>` as its first stdout line once
//! bound (port 0 allowed), logs to stderr (`RUST_LOG`), and shuts down
//! gracefully on SIGINT or SIGTERM, killing task processes. Killed any
//! other way, its task processes die with it.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use devcluster::{Config, parse_duration};

/// A Mesos-compatible master with agents (v1 scheduler HTTP API).
#[derive(Debug, Parser)]
#[command(name = "devcluster", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "DEVCLUSTER_LISTEN", default_value = "127.0.0.1:5050")]
    listen: SocketAddr,
    /// Number of agents.
    #[arg(long, env = "DEVCLUSTER_AGENTS", default_value_t = 1)]
    agents: usize,
    /// Resources of each agent, Mesos syntax.
    #[arg(
        long,
        env = "DEVCLUSTER_AGENT_RESOURCES",
        default_value = "cpus:4;mem:8192;disk:20000;ports:[31000-32000]"
    )]
    agent_resources: String,
    /// Attributes of each agent, Mesos syntax (e.g. "rack:r1;zone:a").
    #[arg(long, env = "DEVCLUSTER_AGENT_ATTRIBUTES", default_value = "")]
    agent_attributes: String,
    /// Revocable (oversubscribed) estimate of each agent, Mesos syntax
    /// (e.g. "cpus:4;mem:2048"); offered only to REVOCABLE_RESOURCES
    /// frameworks.
    #[arg(long, env = "DEVCLUSTER_AGENT_REVOCABLE", default_value = "")]
    agent_revocable: String,
    /// Simulate tasks instead of running processes.
    #[arg(long, env = "DEVCLUSTER_SIMULATE")]
    simulate: bool,
    /// Period of allocation cycles (e.g. 500ms, 1s).
    #[arg(long, env = "DEVCLUSTER_ALLOCATION_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    allocation_interval: Duration,
    /// Period of HEARTBEAT events.
    #[arg(long, env = "DEVCLUSTER_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// First retry of an unacknowledged status update (doubles up to 10 min).
    #[arg(long, env = "DEVCLUSTER_STATUS_UPDATE_RETRY", default_value = "10s", value_parser = parse_duration)]
    status_update_retry: Duration,
    /// Rescind offers not answered within this, e.g. 2s (Mesos
    /// `--offer_timeout`; default: never).
    #[arg(long, env = "DEVCLUSTER_OFFER_TIMEOUT", value_parser = parse_duration)]
    offer_timeout: Option<Duration>,
    /// Directory for task sandboxes (default: a fresh temp directory).
    #[arg(long, env = "DEVCLUSTER_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// Hostname the master reports.
    #[arg(long, env = "DEVCLUSTER_HOSTNAME", default_value = "localhost")]
    hostname: String,
    /// Scheduler calls of each framework kept for `GET /devcluster/calls`.
    #[arg(long, env = "DEVCLUSTER_CALLS_KEPT", default_value_t = 10_000)]
    calls_kept: usize,
}

impl Args {
    fn config(self) -> Config {
        Config {
            agents: self.agents,
            agent_resources: self.agent_resources,
            agent_attributes: self.agent_attributes,
            agent_revocable: self.agent_revocable,
            simulate: self.simulate,
            allocation_interval: self.allocation_interval,
            heartbeat_interval: self.heartbeat_interval,
            status_update_retry_interval: self.status_update_retry,
            offer_timeout: self.offer_timeout,
            work_dir: self.work_dir,
            hostname: self.hostname,
            calls_kept: self.calls_kept,
            ..Config::default()
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("devcluster: {error:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let listen = args.listen;
    let config = args.config();
    // Validate before binding, so a bad flag never opens a port.
    config.check().context("invalid configuration")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{address}")?;
    stdout.flush()?;
    drop(stdout);
    devcluster::run(config, listener, shutdown_signal()).await?;
    Ok(())
}
