//! `agora`: the broker binary.
//!
//! - `agora serve --master URL` connects to a real Mesos master.
//! - `agora dev` starts the embedded devcluster in this process and the
//!   broker against it: one command gives a working system.
//!
//! - `agora hash-token` prints the SHA-256 of a token read on stdin, for
//!   `token_sha256` in `[[auth.principals]]`.
//!
//! Both servers print `listening on http://ADDR` (`https://` with TLS; the
//! gRPC address) as their first line on stdout, so scripts and tests can
//! start them on port 0. A bad configuration — including `agora serve`
//! without principals or `--insecure` — exits with code 64 before any port
//! is bound.

use std::{io::Read, net::SocketAddr, path::PathBuf, process::ExitCode};

use agora_broker::{
    api::{auth::TokenHash, server::Security},
    config::Config,
    telemetry,
};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use figment::{Figment, providers::Serialized};
use tokio::net::TcpListener;

/// Exit code for a configuration error (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(
    name = "agora",
    version,
    about = "One Mesos framework, many schedulers"
)]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Broker for a real Mesos master.
    Serve {
        /// Mesos master URL; repeat for several masters.
        #[arg(long = "master", env = "AGORA_MASTER", value_delimiter = ',')]
        masters: Vec<String>,
        /// Let every caller in without authentication (all namespaces,
        /// admin). Only for trusted networks and tests.
        #[arg(long, env = "AGORA_INSECURE")]
        insecure: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Retire the framework for good: Mesos kills all its tasks.
    Teardown {
        /// Mesos master URL; repeat for several masters.
        #[arg(long = "master", env = "AGORA_MASTER", value_delimiter = ',')]
        masters: Vec<String>,
        /// The framework to tear down (else mesos.framework_id).
        #[arg(long, env = "AGORA_FRAMEWORK_ID")]
        framework_id: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Broker plus an embedded devcluster, for trying Agora out.
    Dev {
        /// Number of devcluster agents.
        #[arg(long, default_value_t = 3)]
        agents: usize,
        /// Resources of each agent, in Mesos's syntax.
        #[arg(long, default_value = "cpus:4;mem:8192;disk:20000;ports:[31000-32000]")]
        agent_resources: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Print the SHA-256 (hex) of the token read on stdin, for
    /// `token_sha256` in `[[auth.principals]]`.
    HashToken,
}

#[derive(Args)]
struct CommonArgs {
    /// gRPC listen address.
    #[arg(long, env = "AGORA_LISTEN")]
    listen: Option<SocketAddr>,
    /// TOML configuration file.
    #[arg(long, env = "AGORA_CONFIG")]
    config: Option<PathBuf>,
    /// OTLP/gRPC endpoint to export spans to (e.g. Jaeger).
    #[arg(long, env = "AGORA_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// Log format on stderr.
    #[arg(long, env = "AGORA_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// Mesos wire encoding.
    #[arg(long, env = "AGORA_MESOS_ENCODING", value_parser = ["protobuf", "json"])]
    mesos_encoding: Option<String>,
}

impl CommonArgs {
    /// The flags that were given, as the top configuration layer.
    fn overrides(&self) -> Figment {
        let mut layer = Figment::new();
        if let Some(listen) = self.listen {
            layer = layer.merge(Serialized::default("listen", listen));
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            layer = layer.merge(Serialized::default("telemetry.otlp_endpoint", endpoint));
        }
        if let Some(format) = &self.log_format {
            layer = layer.merge(Serialized::default("telemetry.log_format", format));
        }
        if let Some(encoding) = &self.mesos_encoding {
            layer = layer.merge(Serialized::default("mesos.encoding", encoding));
        }
        layer
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (common, masters) = match &cli.command {
        Mode::Serve {
            common, masters, ..
        }
        | Mode::Teardown {
            common, masters, ..
        } => (common, Some(masters.clone())),
        Mode::Dev { common, .. } => (common, None),
        Mode::HashToken => return hash_token(),
    };
    let mut overrides = common.overrides();
    if let Mode::Teardown {
        framework_id: Some(id),
        ..
    } = &cli.command
    {
        overrides = overrides.merge(Serialized::default("mesos.framework_id", id));
    }
    if let Some(masters) = masters.filter(|m| !m.is_empty()) {
        overrides = overrides.merge(Serialized::default("mesos.masters", masters));
    }
    let config = match Config::load(common.config.as_deref(), overrides) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("agora: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let open = match &cli.command {
        Mode::Serve { insecure, .. } => Some(*insecure),
        Mode::Dev { .. } => Some(true),
        Mode::Teardown { .. } | Mode::HashToken => None,
    };
    let security = match open.map(|open| Security::from_config(&config, open)) {
        Some(Ok(security)) => Some(security),
        Some(Err(error)) => {
            eprintln!("agora: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
        None => None,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("agora: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config, security)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("agora: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a token on stdin and prints its hash; the token is never echoed.
fn hash_token() -> ExitCode {
    let mut token = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut token) {
        eprintln!("agora: cannot read the token on stdin: {error}");
        return ExitCode::FAILURE;
    }
    let token = token.trim_end_matches(['\r', '\n']);
    if token.trim().is_empty() {
        eprintln!(
            "agora: give the token on stdin, e.g. `openssl rand -hex 32 | tee token | agora hash-token`"
        );
        return ExitCode::from(EXIT_CONFIG);
    }
    println!("{}", TokenHash::of(token).to_hex());
    ExitCode::SUCCESS
}

async fn run(mode: Mode, mut config: Config, security: Option<Security>) -> anyhow::Result<()> {
    let telemetry = telemetry::init(&config.telemetry)?;
    let dev_cluster = match mode {
        Mode::HashToken => anyhow::bail!("agora hash-token needs no runtime"),
        Mode::Teardown { .. } => {
            let framework = agora_broker::teardown(&config).await;
            telemetry.shutdown();
            println!("framework {} torn down", framework?);
            return Ok(());
        }
        Mode::Serve { .. } => None,
        Mode::Dev {
            agents,
            agent_resources,
            ..
        } => {
            let cluster = start_devcluster(agents, agent_resources).await?;
            config.mesos.masters = vec![cluster.url()];
            Some(cluster)
        }
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let security = security.context("a server mode has its security settings")?;
    let scheme = if security.tls.is_some() {
        "https"
    } else {
        "http"
    };
    println!("listening on {scheme}://{address}");
    if let Some(cluster) = &dev_cluster {
        println!("authentication is off (agora dev): every caller may use every namespace");
        println!("devcluster (Mesos-compatible master) at {}", cluster.url());
    } else if security.authenticator.is_open() {
        tracing::warn!(
            "authentication is off (--insecure): every caller may use every namespace and the Admin service"
        );
    } else if security.tls.is_none() {
        tracing::warn!("no [tls] configured: bearer tokens cross the network in plaintext");
    }
    tracing::info!(
        %address,
        masters = ?config.mesos.masters,
        encoding = ?config.mesos.encoding,
        "agora starting"
    );
    let result = agora_broker::run(config, security, listener, shutdown_signal()).await;
    if let Some(cluster) = dev_cluster
        && let Err(error) = cluster.shutdown().await
    {
        tracing::warn!(%error, "the devcluster did not shut down cleanly");
    }
    telemetry.shutdown();
    Ok(result?)
}

async fn start_devcluster(
    agents: usize,
    agent_resources: String,
) -> anyhow::Result<devcluster::Cluster> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the devcluster's port")?;
    let config = devcluster::Config {
        agents,
        agent_resources,
        ..Default::default()
    };
    devcluster::Cluster::start(config, listener)
        .await
        .context("cannot start the devcluster")
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler succeeds at start");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
