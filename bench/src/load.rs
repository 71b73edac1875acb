//! The closed-loop driver shared by every scenario and baseline: `clients`
//! workers each set themselves up (connect, subscribe), wait until all are
//! ready, then loop their operation until the window ends. Only operations
//! that start after the warm-up and finish before the end are counted, so
//! connection setup and the first cold calls never reach the figures. The
//! CPU time of the metered processes is read over the same window.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio::{
    sync::{Barrier, watch},
    task::JoinSet,
};

use crate::{
    cpu::{self, Metered},
    stats::Recorder,
};

/// How long a run warms up and then measures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub warmup: Duration,
    pub duration: Duration,
}

impl Window {
    /// The settings every report names: load, cluster size and window;
    /// a scenario adds its own.
    pub(crate) fn settings(&self, clients: usize, agents: usize) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("clients", clients.to_string()),
            ("agents", agents.to_string()),
            (
                "duration",
                humantime::format_duration(self.duration).to_string(),
            ),
            (
                "warmup",
                humantime::format_duration(self.warmup).to_string(),
            ),
        ])
    }
}

/// Pause after a failed operation, so a broken system is not hammered.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// The shared clock of one run, fixed when every worker is ready.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    measure_from: Instant,
    end: Instant,
}

impl Clock {
    /// Whether workers should start another operation.
    pub(crate) fn running(&self) -> bool {
        Instant::now() < self.end
    }

    /// Whether an operation that started at `started` and finished now
    /// falls inside the measured window.
    pub(crate) fn counts(&self, started: Instant) -> bool {
        started >= self.measure_from && Instant::now() <= self.end
    }

    /// Accounts for one operation of a loop that started at `started` and
    /// just ended: a success inside the window is counted and returned for
    /// its latencies to be recorded; a failure inside it is counted as an
    /// error; every failure is followed by a short pause.
    pub(crate) async fn settle<T>(
        &self,
        recorder: &mut Recorder,
        started: Instant,
        result: anyhow::Result<T>,
    ) -> Option<T> {
        let counted = self.counts(started);
        match result {
            Ok(value) if counted => {
                recorder.ops += 1;
                Some(value)
            }
            Ok(_) => None,
            Err(error) => {
                if counted {
                    recorder.error(&error);
                }
                tokio::time::sleep(ERROR_PAUSE).await;
                None
            }
        }
    }
}

/// Handed to each worker: wait on it once set up to learn the clock.
pub(crate) struct Gate {
    barrier: Arc<Barrier>,
    clock: watch::Receiver<Option<Clock>>,
}

impl Gate {
    /// Reports this worker ready and waits for the run to start.
    pub(crate) async fn ready(mut self) -> Clock {
        self.barrier.wait().await;
        let clock = self.clock.wait_for(Option::is_some).await;
        clock
            .ok()
            .and_then(|clock| *clock)
            .expect("the driver sets the clock before it drops the sender")
    }
}

/// What one run measured.
#[derive(Debug)]
pub(crate) struct Run {
    /// Every worker's samples, merged.
    pub recorded: Recorder,
    /// CPU time each metered process used in the measured window.
    pub cpu: Vec<(&'static str, Duration)>,
}

/// Runs `clients` workers; `worker(index, gate)` sets itself up, calls
/// [`Gate::ready`], loops while [`Clock::running`] and returns what it
/// recorded. A worker that fails before it is ready fails the run.
pub(crate) async fn run<F, Fut>(
    clients: usize,
    window: Window,
    metered: &[Metered],
    worker: F,
) -> anyhow::Result<Run>
where
    F: Fn(usize, Gate) -> Fut,
    Fut: Future<Output = anyhow::Result<Recorder>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(clients + 1));
    let (clock_tx, clock_rx) = watch::channel(None);
    let mut workers = JoinSet::new();
    for index in 0..clients {
        let gate = Gate {
            barrier: barrier.clone(),
            clock: clock_rx.clone(),
        };
        workers.spawn(worker(index, gate));
    }
    tokio::select! {
        _ = barrier.wait() => {}
        Some(early) = workers.join_next() => {
            early.context("a worker panicked during setup")??;
            anyhow::bail!("a worker finished before the run started");
        }
    }
    let measure_from = Instant::now() + window.warmup;
    let end = measure_from + window.duration;
    clock_tx.send_replace(Some(Clock { measure_from, end }));
    tokio::time::sleep_until(measure_from.into()).await;
    let before = cpu_times(metered)?;
    tokio::time::sleep_until(end.into()).await;
    let after = cpu_times(metered)?;
    let mut recorded = Recorder::new();
    while let Some(done) = workers.join_next().await {
        recorded.merge(done.context("a worker panicked")??);
    }
    let cpu = metered
        .iter()
        .zip(before.iter().zip(after))
        .map(|(process, (before, after))| (process.name, after.saturating_sub(*before)))
        .collect();
    Ok(Run { recorded, cpu })
}

fn cpu_times(metered: &[Metered]) -> anyhow::Result<Vec<Duration>> {
    metered.iter().map(|m| cpu::cpu_time(m.pid)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_only_the_measured_window() {
        let window = Window {
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(100),
        };
        let run = run(3, window, &[Metered::this()], |_, gate| async move {
            let clock = gate.ready().await;
            let mut recorder = Recorder::new();
            while clock.running() {
                let started = Instant::now();
                tokio::time::sleep(Duration::from_millis(10)).await;
                if clock.counts(started) {
                    recorder.ops += 1;
                    recorder.record("sleep", started.elapsed());
                }
            }
            Ok(recorder)
        })
        .await
        .unwrap();
        let recorded = run.recorded;
        assert_eq!(run.cpu.len(), 1);
        // About 10 sleeps fit in 100 ms per worker; warm-up ones are not counted.
        assert!((15..=33).contains(&recorded.ops), "{}", recorded.ops);
        assert!(recorded.latency("sleep").unwrap().p50_us >= 10_000.0);
    }

    #[tokio::test]
    async fn a_worker_failing_in_setup_fails_the_run() {
        let window = Window {
            warmup: Duration::ZERO,
            duration: Duration::from_millis(10),
        };
        let error = run(2, window, &[], |index, gate| async move {
            if index == 1 {
                anyhow::bail!("cannot connect");
            }
            gate.ready().await;
            Ok(Recorder::new())
        })
        .await
        .unwrap_err();
        assert!(error.to_string().contains("cannot connect"), "{error}");
    }
}
