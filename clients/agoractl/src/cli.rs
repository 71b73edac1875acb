//! The command line. Connection options and `-o` are global: they may come
//! before or after the command, as with kubectl.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Operate an Agora broker: namespaces and their quota, usage, frontends,
/// leases, tasks, agents, reclaims, and why requests wait.
#[derive(Debug, Parser)]
#[command(name = "agoractl", version, about, long_about = None)]
#[command(after_help = "\
Exit codes: 0 ok; 1 the broker refused the call (its gRPC status and reason are printed); \
2 usage error (bad arguments, config or input file); 3 cannot connect to the broker.

Credentials come from flags, then AGORA_* variables, then the config file \
(--config, AGORACTL_CONFIG, or ~/.config/agora/agoractl.toml when it exists).")]
pub struct Cli {
    /// Connection and output options.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The broker's gRPC URL [default: http://127.0.0.1:50051].
    #[arg(long, short = 's', env = "AGORA_SERVER", global = true)]
    pub server: Option<String>,
    /// A bearer token (prefer --token-file: a flag shows in `ps`).
    #[arg(long, env = "AGORA_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the bearer token (surrounding whitespace ignored).
    #[arg(long, env = "AGORA_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// PEM of the CA that signed the broker's certificate: use TLS.
    #[arg(long, env = "AGORA_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS (with --key).
    #[arg(long, env = "AGORA_CERT", global = true)]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, env = "AGORA_KEY", global = true)]
    pub key: Option<PathBuf>,
    /// The name to verify in the broker's certificate, when not the host of
    /// --server.
    #[arg(long, env = "AGORA_TLS_DOMAIN", global = true)]
    pub tls_domain: Option<String>,
    /// A TOML file with any of: server, token, token_file, ca, cert, key,
    /// tls_domain (relative paths are relative to the file).
    #[arg(long, env = "AGORACTL_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
    /// How long to wait for the connection and for each answer.
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
}

/// How answers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, the most useful ones.
    Table,
    /// Aligned columns, every one.
    Wide,
    /// The API's answer in the protobuf JSON mapping.
    Json,
    /// The same as YAML.
    Yaml,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List resources of one kind.
    Get(Get),
    /// Show one namespace in full: quota, weight, usage, borrowing and
    /// lending, and the demand waiting in it.
    Describe {
        /// What to describe.
        #[command(subcommand)]
        what: Describe,
    },
    /// Live usage against quota, per namespace.
    Top(Top),
    /// Create or replace a namespace from a YAML or JSON file.
    Put {
        /// What to put.
        #[command(subcommand)]
        what: Put,
    },
    /// Delete a namespace (refused while it holds anything).
    Delete {
        /// What to delete.
        #[command(subcommand)]
        what: Delete,
    },
    /// Drain a frontend: refuse its acquires and take its leases back.
    Drain {
        /// What to drain.
        #[command(subcommand)]
        what: Drain,
    },
    /// Why waiting requests wait: quota, capacity, constraints, gang,
    /// queue.
    Why(Why),
}

/// `get KIND`.
#[derive(Debug, Args)]
pub struct Get {
    /// The kind to list.
    #[arg(value_enum)]
    pub kind: Kind,
    /// Only this one (namespaces and frontends), by name.
    pub name: Option<String>,
    /// Only this namespace's leases, tasks, reclaims or waiting requests.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Only this frontend's leases, tasks or waiting requests.
    #[arg(long, short = 'f')]
    pub frontend: Option<String>,
    /// Tasks: only live ones (not in a terminal state).
    #[arg(long)]
    pub live: bool,
    /// Keep listing every --interval until interrupted.
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// How often --watch asks again.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// The kinds `get` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Namespaces with their quota and weight.
    #[value(alias = "namespace", alias = "ns")]
    Namespaces,
    /// Frontends the broker knows.
    #[value(alias = "frontend", alias = "fe")]
    Frontends,
    /// Every frontend's leases.
    #[value(alias = "lease")]
    Leases,
    /// Every frontend's tasks.
    #[value(alias = "task")]
    Tasks,
    /// Agents Agora holds capacity of.
    #[value(alias = "agent")]
    Agents,
    /// Recent reclaims of lent capacity.
    #[value(alias = "reclaim")]
    Reclaims,
    /// Acquire calls waiting for capacity.
    #[value(alias = "requests")]
    Waiting,
}

/// `describe ...`.
#[derive(Debug, Subcommand)]
pub enum Describe {
    /// One namespace.
    #[command(alias = "ns")]
    Namespace {
        /// Its name.
        name: String,
    },
}

/// `top`.
#[derive(Debug, Args)]
pub struct Top {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Keep showing every --interval until interrupted.
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// How often --watch asks again.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// `put ...`.
#[derive(Debug, Subcommand)]
pub enum Put {
    /// A namespace, as `get namespace NAME -o yaml` shows one.
    #[command(alias = "ns")]
    Namespace {
        /// The file, YAML or JSON; `-` reads standard input.
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
}

/// `delete ...`.
#[derive(Debug, Subcommand)]
pub enum Delete {
    /// A namespace.
    #[command(alias = "ns")]
    Namespace {
        /// Its name.
        name: String,
    },
}

/// `drain ...`.
#[derive(Debug, Subcommand)]
pub enum Drain {
    /// A frontend.
    #[command(alias = "fe")]
    Frontend {
        /// Its name.
        name: String,
        /// Also ask Mesos to kill its live tasks.
        #[arg(long, conflicts_with = "undo")]
        kill_tasks: bool,
        /// Lift the drain instead: it may acquire again.
        #[arg(long)]
        undo: bool,
    },
}

/// `why`.
#[derive(Debug, Args)]
pub struct Why {
    /// The frontend whose waiting requests to explain; every frontend's
    /// when left out.
    pub frontend: Option<String>,
    /// Only the request with this request id.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Only requests in this namespace.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
}

/// A duration such as `500ms`, `2s`, `1m` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 2s, 1m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("2d").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn options_go_before_or_after_the_command() {
        let cli = Cli::try_parse_from([
            "agoractl",
            "-o",
            "json",
            "get",
            "ns",
            "--server",
            "http://x:1",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Format::Json);
        assert_eq!(cli.global.server.as_deref(), Some("http://x:1"));
        assert!(matches!(
            cli.command,
            Command::Get(Get {
                kind: Kind::Namespaces,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["agoractl", "get", "pods"]).is_err());
    }
}
