//! `agora-bench`: a load generator for Agora over real gRPC.
//!
//! Each scenario starts its own devcluster (simulated agents) and broker as
//! child processes, measures its baselines in the same run, and prints a
//! table (or `--json`) of latency percentiles, rates, broker memory and the
//! issue's targets as ratios against those baselines.
//!
//! ```sh
//! cargo run --release -p agora-bench -- acquire-release --clients 64 --duration 10s
//! ```
//!
//! # Layout
//! - [`scenario`]: acquire-release, short-tasks, scale.
//! - [`baseline`]: the empty tonic RPC and the direct Mesos framework.
//! - [`cluster`]: starting the devcluster and the broker.
//! - [`frontends`]: subscribed frontends and the acquire → release cycle;
//!   [`connections`]: how many of them share a connection.
//! - [`load`]: the closed-loop driver and its measured window.
//! - [`stats`]: HdrHistogram latencies; [`report`]: table and JSON.
//! - [`process`]: child processes and their memory; [`cpu`]: their CPU
//!   time; [`binaries`]: which programs.

mod baseline;
mod binaries;
mod cluster;
mod connections;
mod cpu;
mod floor;
mod frontends;
mod load;
mod process;
mod report;
mod scenario;
mod stats;

use std::{net::SocketAddr, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    binaries::{Binaries, BinaryArgs},
    report::Report,
    scenario::{
        acquire_release::AcquireReleaseArgs, scale::ScaleArgs, short_tasks::ShortTasksArgs,
    },
};

#[derive(Parser)]
#[command(
    name = "agora-bench",
    version,
    about = "Load generator for the Agora broker"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// Print the report as JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    binaries: BinaryArgs,
}

#[derive(Subcommand)]
enum Scenario {
    /// Concurrent frontends loop Acquire(1 slot) → Release on a warm pool.
    AcquireRelease(AcquireReleaseArgs),
    /// Frontends loop Acquire → Launch → TASK_FINISHED → Acknowledge, and a
    /// direct Mesos framework runs the same tasks.
    ShortTasks(ShortTasksArgs),
    /// Many agents, namespaces and frontends: acquire latency and memory.
    Scale(ScaleArgs),
    /// The empty-RPC baseline server (started by the other scenarios).
    #[command(hide = true)]
    EmptyServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli).await {
        Ok(Some(report)) => {
            if cli.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("agora-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the chosen scenario; the baseline server has no report.
async fn run(cli: &Cli) -> anyhow::Result<Option<Report>> {
    let binaries = || Binaries::resolve(&cli.binaries);
    let report = match &cli.scenario {
        Scenario::EmptyServer { listen } => {
            baseline::empty_rpc::serve(*listen).await?;
            return Ok(None);
        }
        Scenario::AcquireRelease(args) => {
            scenario::acquire_release::run(args, &binaries()?).await?
        }
        Scenario::ShortTasks(args) => scenario::short_tasks::run(args, &binaries()?).await?,
        Scenario::Scale(args) => scenario::scale::run(args, &binaries()?).await?,
    };
    Ok(Some(report))
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
