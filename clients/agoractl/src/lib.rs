//! `agoractl`, the operator's command line for Agora, in kubectl's habits:
//! `get`, `describe`, `top`, `put`, `delete`, `drain` and `why`, each over
//! the `agora.v1.Admin` service; `-o table|wide|json|yaml`; `--watch`;
//! credentials from flags, the environment or a config file; and exit codes
//! a script can test (see [`Failure`]).
//!
//! It only reads and calls the Admin API: whatever it shows, the broker
//! answered. JSON and YAML are the API's answers in the protobuf JSON
//! mapping, so they can be fed to other tools (and `put namespace -f` takes
//! a namespace in the same form back).
//!
//! # Layout
//! - [`cli`]: the command line (clap derive).
//! - [`config`]: where the broker is and how to prove who we are: flags,
//!   then `AGORA_*` variables, then the config file.
//! - [`commands`]: each command, from its arguments to the calls made and
//!   the [`output::Output`] shown.
//! - [`render`]: the API's answers as table rows (pure, unit-tested).
//! - [`output`]: tables, and protobuf messages as JSON or YAML.
//! - [`Failure`]: how a run failed, and the exit code it ends with.

pub mod cli;
pub mod commands;
pub mod config;
pub mod output;
pub mod render;

use std::fmt;

use agora_client::failed_in_transport;

/// How a run failed; each kind has its exit code (0 is success).
#[derive(Debug)]
pub enum Failure {
    /// The broker answered the call with an error status: exit code 1.
    Refused(tonic::Status),
    /// The command line, a config file or an input file is wrong: exit
    /// code 2 (as clap's own usage errors).
    Usage(anyhow::Error),
    /// The broker could not be reached: exit code 3.
    Connect(anyhow::Error),
}

impl Failure {
    /// The process's exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Connect(_) => 3,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused(status) => f.write_str(&render::status(status)),
            Failure::Usage(error) => write!(f, "error: {error:#}"),
            // The client's error already names the address and the root
            // cause; its chain would repeat them.
            Failure::Connect(error) => write!(f, "error: {error}"),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Failure {
        if failed_in_transport(&status) {
            Failure::Connect(anyhow::anyhow!(
                "cannot connect: the connection to the broker failed: {}",
                status.message()
            ))
        } else {
            Failure::Refused(status)
        }
    }
}

/// A usage failure with `message`.
pub fn usage(message: impl fmt::Display) -> Failure {
    Failure::Usage(anyhow::anyhow!("{message}"))
}
