//! Time as the master sees it. The master and the allocator never read a
//! clock: each step gets a [`Now`], read once by the runtime at the edge
//! (the step that holds the master's lock), so that their decisions
//! follow from their inputs alone and tests choose the time they run at.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The time one step of the master happens at, on both of the clocks it
/// needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Now {
    /// Monotonic: what deadlines count from (heartbeats, failover, offer
    /// and refuse timeouts, status-update retries, simulated tasks), so
    /// that a change to the system clock moves none of them.
    pub(crate) instant: Instant,
    /// Seconds since the Unix epoch: what Mesos reports as timestamps
    /// (task statuses, registration times, `/state`).
    pub(crate) unix: f64,
}

impl Now {
    /// Reads both clocks. The monotonic one is tokio's, so that a test
    /// that pauses tokio's time moves the master's deadlines with it.
    pub(crate) fn read() -> Self {
        Self {
            instant: tokio::time::Instant::now().into_std(),
            unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}
