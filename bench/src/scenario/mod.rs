//! The scenarios: each starts its own processes, runs its baselines and its
//! loops in the same run, and returns a [`Report`](crate::report::Report).
//!
//! # Layout
//! - [`acquire_release`]: concurrent frontends cycling Acquire → Release on
//!   a warm pool, against the empty-RPC baseline.
//! - [`short_tasks`]: Acquire → Launch → TASK_FINISHED → Acknowledge on
//!   simulated agents, against a direct Mesos framework.
//! - [`scale`]: thousands of agents, many namespaces and frontends; acquire
//!   latency and broker memory.

pub(crate) mod acquire_release;
pub(crate) mod scale;
pub(crate) mod short_tasks;

use std::time::Duration;

use clap::Args;

use crate::load::Window;

/// How long each measured loop runs.
#[derive(Debug, Clone, Args)]
pub(crate) struct WindowArgs {
    /// Measured time of each loop (baselines included).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured time before it, for connections and caches to settle.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
}

impl WindowArgs {
    pub(crate) fn window(&self) -> Window {
        Window {
            warmup: self.warmup,
            duration: self.duration,
        }
    }
}
