//! `agora`: the broker binary.
//!
//! - `agora serve --master URL` connects to a real Mesos master.
//! - `agora dev` starts the embedded devcluster in this process and the
//!   broker against it: one command gives a working system. It comes with
//!   the default `dev` feature; a production build
//!   (`--no-default-features`) leaves it and the devcluster out.
//!
//! - `agora hash-token` prints the SHA-256 of a token read on stdin, for
//!   `token_sha256` in `[[auth.principals]]`.
//!
//! Both servers print `listening on http://ADDR` (`https://` with TLS; the
//! gRPC address) as their first line on stdout, so scripts and tests can
//! start them on port 0. A bad configuration — including `agora serve`
//! without principals or `--insecure` — exits with code 64 before any port
//! is bound.
//!
//! Each flag's variable (`AGORA_MASTER` for `--master`) is clap's to read
//! and reaches the configuration as that flag; the loader in
//! `agora_broker::config` reads only `AGORA_<SECTION>__<KEY>` variables.
//! Flags' variables are therefore flat, never containing `__` (a test
//! holds every flag to it), so the two kinds cannot name the same thing.

use std::{io::Read, net::SocketAddr, path::PathBuf, process::ExitCode};

use agora_broker::{
    api::server::{Security, SecurityError},
    config::{Config, ConfigError, TokenHash},
    telemetry,
};
use anyhow::Context;
use clap::{Args, Parser, Subcommand, builder::BoolishValueParser};
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
        // Boolish so that `AGORA_INSECURE=1` (or `yes`, `on`) works as unit
        // files write it; clap's default for a flag's variable takes only
        // `true` and `false`.
        #[arg(long, env = "AGORA_INSECURE", value_parser = BoolishValueParser::new())]
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
    #[cfg(feature = "dev")]
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

impl Mode {
    /// The configuration this mode runs with: defaults, the file, the
    /// environment, then this mode's flags. `None` for `hash-token`, which
    /// reads none.
    fn load_config(&self) -> Option<Result<Config, ConfigError>> {
        let (common, masters, framework_id) = match self {
            Mode::Serve {
                common, masters, ..
            } => (common, masters.as_slice(), None),
            Mode::Teardown {
                common,
                masters,
                framework_id,
            } => (common, masters.as_slice(), framework_id.as_ref()),
            #[cfg(feature = "dev")]
            Mode::Dev { common, .. } => (common, [].as_slice(), None),
            Mode::HashToken => return None,
        };
        let mut overrides = common.overrides();
        if let Some(id) = framework_id {
            overrides = overrides.merge(Serialized::default("mesos.framework_id", id));
        }
        if !masters.is_empty() {
            overrides = overrides.merge(Serialized::default("mesos.masters", masters));
        }
        Some(Config::load(common.config.as_deref(), overrides))
    }

    /// Who may call the server modes; `None` for the modes that serve
    /// nothing. `agora dev` is always open; `agora serve` only with
    /// `--insecure`.
    fn security(&self, config: &Config) -> Option<Result<Security, SecurityError>> {
        let open = match self {
            Mode::Serve { insecure, .. } => *insecure,
            #[cfg(feature = "dev")]
            Mode::Dev { .. } => true,
            Mode::Teardown { .. } | Mode::HashToken => return None,
        };
        Some(Security::from_config(config, open))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(loaded) = cli.command.load_config() else {
        return hash_token();
    };
    let config = match loaded {
        Ok(config) => config,
        Err(error) => {
            eprintln!("agora: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let security = match cli.command.security(&config) {
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

async fn run(mode: Mode, config: Config, security: Option<Security>) -> anyhow::Result<()> {
    let telemetry = telemetry::init(&config.telemetry)?;
    let result = match mode {
        Mode::HashToken => anyhow::bail!("agora hash-token needs no runtime"),
        Mode::Teardown { .. } => {
            let framework = agora_broker::teardown(&config).await;
            telemetry.shutdown();
            println!("framework {} torn down", framework?);
            return Ok(());
        }
        Mode::Serve { .. } => serve(config, security, None).await,
        #[cfg(feature = "dev")]
        Mode::Dev {
            agents,
            agent_resources,
            ..
        } => dev(config, security, agents, agent_resources).await,
    };
    telemetry.shutdown();
    result
}

/// Binds the gRPC port, announces it and runs the broker until a signal.
/// `devcluster` is the embedded master's URL under `agora dev`, announced
/// after the address (which stays the first line, for scripts) in place of
/// the warnings `agora serve` gives about its security.
async fn serve(
    config: Config,
    security: Option<Security>,
    devcluster: Option<&str>,
) -> anyhow::Result<()> {
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
    if let Some(devcluster) = devcluster {
        println!("authentication is off (agora dev): every caller may use every namespace");
        println!("devcluster (Mesos-compatible master) at {devcluster}");
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
    Ok(agora_broker::run(config, security, listener, shutdown_signal()).await?)
}

/// `agora dev`: the broker against a devcluster started in this process,
/// stopped again once the broker has.
#[cfg(feature = "dev")]
async fn dev(
    mut config: Config,
    security: Option<Security>,
    agents: usize,
    agent_resources: String,
) -> anyhow::Result<()> {
    let cluster = start_devcluster(agents, agent_resources).await?;
    config.mesos.masters = vec![cluster.url()];
    let result = serve(config, security, Some(&cluster.url())).await;
    if let Err(error) = cluster.shutdown().await {
        tracing::warn!(%error, "the devcluster did not shut down cleanly");
    }
    result
}

#[cfg(feature = "dev")]
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
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error, which is large"
)]
mod tests {
    use super::*;
    use agora_broker::config::{ENV_NESTING, ENV_PREFIX, LogFormat, WireEncoding};
    use clap::CommandFactory;
    use figment::Jail;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// What a variable's value must have changed once `agora` has parsed
    /// its flags and loaded its configuration.
    type Effect = fn(&Mode, &Config) -> bool;

    /// A value for every variable `agora <mode> --help` advertises, and its
    /// effect. `AGORA_CONFIG` names the file [`CONFIG_FILE`] that the jail
    /// holds.
    const ADVERTISED: [(&str, &str, Effect); 8] = [
        ("AGORA_CONFIG", "agora.toml", |_, config| {
            config.mesos.framework_name == "from-agora-config"
        }),
        (
            "AGORA_MASTER",
            "http://m1:5050,http://m2:5050",
            |_, config| config.mesos.masters == ["http://m1:5050", "http://m2:5050"],
        ),
        (
            "AGORA_INSECURE",
            "true",
            |mode, config| matches!(mode.security(config), Some(Ok(security)) if security.authenticator.is_open()),
        ),
        (
            "AGORA_OTLP_ENDPOINT",
            "http://collector:4317",
            |_, config| config.telemetry.otlp_endpoint.as_deref() == Some("http://collector:4317"),
        ),
        ("AGORA_LOG_FORMAT", "json", |_, config| {
            config.telemetry.log_format == LogFormat::Json
        }),
        ("AGORA_MESOS_ENCODING", "json", |_, config| {
            config.mesos.encoding == WireEncoding::Json
        }),
        ("AGORA_FRAMEWORK_ID", "framework-1", |_, config| {
            config.mesos.framework_id.as_deref() == Some("framework-1")
        }),
        ("AGORA_LISTEN", "127.0.0.1:7001", |_, config| {
            config.listen == SocketAddr::from(([127, 0, 0, 1], 7001))
        }),
    ];

    const CONFIG_FILE: &str = "[mesos]\nframework_name = \"from-agora-config\"\n";

    /// Each mode and the variables its flags advertise in `--help`.
    fn advertised() -> Vec<(String, String)> {
        Cli::command()
            .get_subcommands()
            .flat_map(|mode| {
                mode.get_arguments()
                    .filter_map(|arg| arg.get_env())
                    .map(|variable| {
                        let variable = variable.to_str().expect("variable names are ASCII");
                        (mode.get_name().to_owned(), variable.to_owned())
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Parses `agora <mode>` and loads its configuration in a jail whose
    /// environment holds only `variables` (and a file for `AGORA_CONFIG`).
    fn load_with(mode: &str, variables: &[(&str, &str)]) -> (Mode, Result<Config, String>) {
        let mut loaded = None;
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("agora.toml", CONFIG_FILE)?;
            for (variable, value) in variables {
                jail.set_env(variable, value);
            }
            let cli = Cli::try_parse_from(["agora", mode])
                .unwrap_or_else(|error| panic!("agora {mode} with {variables:?}: {error}"));
            let config = cli
                .command
                .load_config()
                .expect("a mode with a configuration")
                .map_err(|error| error.to_string());
            loaded = Some((cli.command, config));
            Ok(())
        });
        loaded.expect("the jail ran")
    }

    #[test]
    fn every_advertised_variable_has_a_case_below() {
        let advertised = advertised();
        assert!(!advertised.is_empty());
        for (mode, variable) in advertised {
            assert!(
                ADVERTISED.iter().any(|(known, ..)| *known == variable),
                "`agora {mode}` advertises {variable}: add it to ADVERTISED"
            );
        }
    }

    #[test]
    fn advertised_variables_are_flat_so_they_never_name_a_configuration_key() {
        for (mode, variable) in advertised() {
            assert!(
                variable.starts_with(ENV_PREFIX) && !variable.contains(ENV_NESTING),
                "`agora {mode}` advertises {variable}"
            );
        }
    }

    /// One case per mode and variable; every failing case is reported, not
    /// only the first.
    #[test]
    fn every_advertised_variable_takes_effect_in_each_mode_that_advertises_it() {
        let mut failures = Vec::new();
        for (mode, variable) in advertised() {
            let (_, value, effect) = ADVERTISED
                .iter()
                .find(|(known, ..)| *known == variable)
                .expect("every_advertised_variable_has_a_case_below");
            match load_with(&mode, &[(&variable, value)]) {
                (_, Err(error)) => failures.push(format!("agora {mode} with {variable}: {error}")),
                (parsed, Ok(config)) if !effect(&parsed, &config) => {
                    failures.push(format!("agora {mode} ignored {variable}={value}"));
                }
                _ => {}
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// Unit files and container specs spell booleans in many ways; a value
    /// that is none of them is refused, not read as `false`.
    #[test]
    fn insecure_takes_the_usual_spellings_of_a_boolean() {
        for (value, insecure) in [
            ("true", Some(true)),
            ("1", Some(true)),
            ("yes", Some(true)),
            ("on", Some(true)),
            ("false", Some(false)),
            ("0", Some(false)),
            ("no", Some(false)),
            ("off", Some(false)),
            ("maybe", None),
        ] {
            Jail::expect_with(|jail| {
                jail.clear_env();
                jail.set_env("AGORA_INSECURE", value);
                let parsed = Cli::try_parse_from(["agora", "serve"]).map(|cli| cli.command);
                match (parsed, insecure) {
                    (Ok(Mode::Serve { insecure: got, .. }), Some(want)) => {
                        assert_eq!(got, want, "AGORA_INSECURE={value}");
                    }
                    (Err(_), None) => {}
                    (Ok(_), _) | (Err(_), Some(_)) => panic!("AGORA_INSECURE={value}"),
                }
                Ok(())
            });
        }
        let cli = Cli::try_parse_from(["agora", "serve", "--insecure"]).unwrap();
        assert!(matches!(cli.command, Mode::Serve { insecure: true, .. }));
    }

    #[test]
    fn a_flags_variable_wins_over_the_key_it_sets() {
        let (_, config) = load_with(
            "serve",
            &[
                ("AGORA_MESOS_ENCODING", "json"),
                ("AGORA_MESOS__ENCODING", "protobuf"),
            ],
        );
        assert_eq!(config.unwrap().mesos.encoding, WireEncoding::Json);
    }

    #[test]
    fn all_advertised_variables_and_unrelated_ones_together() {
        let mut variables: Vec<(&str, &str)> = ADVERTISED
            .iter()
            .map(|(variable, value, _)| (*variable, *value))
            .collect();
        variables.extend([("AGORA_UNRELATED", "x"), ("AGORA_VERSION", "1.2")]);
        for mode in [
            "serve",
            #[cfg(feature = "dev")]
            "dev",
            "teardown",
        ] {
            let (parsed, config) = load_with(mode, &variables);
            let config = config.unwrap_or_else(|error| panic!("agora {mode}: {error}"));
            for (variable, _, effect) in ADVERTISED {
                let advertised = advertised().contains(&(mode.to_owned(), variable.to_owned()));
                if advertised {
                    assert!(effect(&parsed, &config), "agora {mode}: {variable}");
                }
            }
        }
    }
}
