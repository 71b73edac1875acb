//! Scenario 2, short tasks: on a devcluster of simulated agents, `clients`
//! frontends loop Acquire → Launch a trivial task → wait for TASK_FINISHED →
//! Acknowledge. The same tasks are first run by two direct Mesos frameworks
//! on the same devcluster, one that keeps every offer and one that declines
//! offers it cannot use at once (each torn down before the next starts, so
//! all see the whole cluster), and submit → TASK_RUNNING is compared.
//!
//! "Submit" is the moment a worker decides to run a task: before Acquire
//! through Agora, before handing the task to the direct framework's queue.

use std::time::{Duration, Instant};

use agora_client::{Acquire, Events, Frontend, Slot, Task, api};
use anyhow::{Context, bail};
use clap::Args;

use super::WindowArgs;
use crate::{
    baseline::direct::{Direct, IdleOffers},
    binaries::Binaries,
    cluster::{self, ClusterArgs, Store},
    cpu::Metered,
    floor,
    frontends::{self, SLOT_CPUS, SLOT_MEM_MB},
    load::{self, Run, Window},
    process::Process,
    report::{Measured, MemorySample, Report, Target},
    stats::Recorder,
};

/// The trivial task: the simulated agent runs it and reports it finished.
const COMMAND: &str = "true";
/// How long one task may take from submit to TASK_FINISHED.
const TASK_TIMEOUT: Duration = Duration::from_secs(30);

const ACQUIRE: &str = "acquire";
const LAUNCH: &str = "launch";
const TO_RUNNING: &str = "submit -> TASK_RUNNING";
const TO_FINISHED: &str = "submit -> TASK_FINISHED";
const ACKNOWLEDGE: &str = "acknowledge";

/// The synced writes a task waits for, one after the other, through a
/// broker with a durable store: its lease (Acquire), itself (Launch), and
/// each of its three status updates, which Mesos sends one at a time, each
/// once the one before is acknowledged, which waits for its record.
const DURABLE_WAITS: u32 = 5;

/// What the floor's synced write appends: one page of the store's file.
const SYNCED_PAGE: usize = 4096;

/// Flags of the short-tasks scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct ShortTasksArgs {
    /// Concurrent frontends (and concurrent submitters to the direct
    /// framework).
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Simulated agents.
    #[arg(long, default_value_t = 100)]
    pub agents: usize,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Starts a devcluster, runs the direct framework's loop and tears it down,
/// then starts a broker on the same devcluster and runs the loop through it.
pub(crate) async fn run(args: &ShortTasksArgs, binaries: &Binaries) -> anyhow::Result<Report> {
    let window = args.window.window();
    let clients = args.clients;
    let devcluster = cluster::devcluster(binaries, &args.cluster, args.agents).await?;

    let mut directs = Vec::new();
    for (idle_offers, name) in [
        (IdleOffers::Keep, "direct framework, keeps every offer"),
        (
            IdleOffers::Decline,
            "direct framework, declines idle offers",
        ),
    ] {
        let direct = Direct::subscribe(devcluster.url(), idle_offers).await?;
        let metered = [devcluster.metered("devcluster")?, Metered::this()];
        let run = measure_direct(&direct, clients, window, &metered).await?;
        direct.teardown().await?;
        let steps = [TO_RUNNING, TO_FINISHED];
        directs.push(Measured::new(name, clients, window.duration, &run, &steps));
    }

    let (agora, memory) =
        through_agora(args, binaries, &devcluster, Store::Memory, "through Agora").await?;
    drop(devcluster);
    // A fresh cluster, so that no task or framework of the first broker is
    // in the way of the second.
    let devcluster = cluster::devcluster(binaries, &args.cluster, args.agents).await?;
    let (durable, _) = through_agora(
        args,
        binaries,
        &devcluster,
        Store::File,
        "through Agora, store in a file",
    )
    .await?;

    let synced = floor::synced_write(&binaries.log_dir, SYNCED_PAGE).await?;
    let best = floor::best_ratio(agora.ops_per_sec, clients, DURABLE_WAITS, synced);
    let ratio = durable.ops_per_sec / agora.ops_per_sec;
    let mut targets = targets(&directs, &agora);
    targets.push(Target::at_least(
        "tasks per second, file store / in memory",
        ratio,
        0.8,
        "x",
    ));
    targets.push(Target::at_least(
        format!(
            "  its floor: {DURABLE_WAITS} synced writes a task (p50 {}µs)",
            synced.as_micros()
        ),
        best,
        0.8,
        "x",
    ));
    targets.push(Target::at_least(
        "  file store / its floor (the rest is Agora's)",
        ratio / best,
        0.8,
        "x",
    ));
    Ok(Report {
        scenario: "short-tasks",
        settings: window
            .settings(clients, args.agents)
            .into_iter()
            .chain([(
                "allocation_interval",
                humantime::format_duration(args.cluster.allocation_interval).to_string(),
            )])
            .collect(),
        loops: directs.into_iter().chain([agora, durable]).collect(),
        memory: vec![memory],
        targets,
    })
}

/// Starts a broker keeping its records in `store` on `devcluster` and
/// runs the loop through it, as the loop called `name`.
async fn through_agora(
    args: &ShortTasksArgs,
    binaries: &Binaries,
    devcluster: &Process,
    store: Store,
    name: &str,
) -> anyhow::Result<(Measured, MemorySample)> {
    let broker = cluster::warm_broker(
        binaries,
        &args.cluster,
        devcluster.url(),
        args.agents,
        store,
    )
    .await?;
    let metered = [
        broker.metered("broker")?,
        devcluster.metered("devcluster")?,
        Metered::this(),
    ];
    let window = args.window.window();
    let run = measure_agora(broker.url(), args.clients, window, &metered).await?;
    let measured = Measured::new(
        name,
        args.clients,
        window.duration,
        &run,
        &[ACQUIRE, LAUNCH, TO_RUNNING, TO_FINISHED, ACKNOWLEDGE],
    );
    let memory = MemorySample {
        process: "broker",
        when: "after the loop".into(),
        memory: broker.memory()?,
    };
    Ok((measured, memory))
}

/// `clients` submitters running one task at a time each on the direct
/// framework.
async fn measure_direct(
    direct: &Direct,
    clients: usize,
    window: Window,
    metered: &[Metered],
) -> anyhow::Result<Run> {
    let direct = direct.clone();
    load::run(clients, window, metered, move |_, gate| {
        let direct = direct.clone();
        async move {
            let clock = gate.ready().await;
            let mut recorder = Recorder::new();
            while clock.running() {
                let submitted = Instant::now();
                let result = direct.run_task(SLOT_CPUS, SLOT_MEM_MB, COMMAND).await;
                if let Some(times) = clock.settle(&mut recorder, submitted, result).await {
                    recorder.record(TO_RUNNING, times.running - submitted);
                    recorder.record(TO_FINISHED, times.finished - submitted);
                }
            }
            Ok(recorder)
        }
    })
    .await
}

/// `clients` frontends each looping one short task at a time through the
/// broker.
async fn measure_agora(
    url: &str,
    clients: usize,
    window: Window,
    metered: &[Metered],
) -> anyhow::Result<Run> {
    let url = url.to_owned();
    load::run(clients, window, metered, move |index, gate| {
        let url = url.clone();
        async move {
            let name = format!("bench-tasks-{index}");
            let (mut frontend, mut events) = frontends::subscribe(&url, &name, "default").await?;
            let clock = gate.ready().await;
            let mut recorder = Recorder::new();
            let mut task = 0u64;
            while clock.running() {
                task += 1;
                let submitted = Instant::now();
                let result = timeout_cycle(&mut frontend, &mut events, task).await;
                if let Some(steps) = clock.settle(&mut recorder, submitted, result).await {
                    steps.record(&mut recorder, submitted);
                }
            }
            Ok(recorder)
        }
    })
    .await
}

/// When each step of one task's cycle ended.
struct Steps {
    acquired: Instant,
    launched: Instant,
    running: Instant,
    finished: Instant,
    acknowledged: Instant,
}

impl Steps {
    fn record(&self, recorder: &mut Recorder, submitted: Instant) {
        recorder.record(ACQUIRE, self.acquired - submitted);
        recorder.record(LAUNCH, self.launched - self.acquired);
        recorder.record(TO_RUNNING, self.running - submitted);
        recorder.record(TO_FINISHED, self.finished - submitted);
        recorder.record(ACKNOWLEDGE, self.acknowledged - self.finished);
    }
}

async fn timeout_cycle(
    frontend: &mut Frontend,
    events: &mut Events,
    task: u64,
) -> anyhow::Result<Steps> {
    tokio::time::timeout(TASK_TIMEOUT, cycle(frontend, events, task))
        .await
        .with_context(|| format!("task {task} did not finish within {TASK_TIMEOUT:?}"))?
}

/// Acquire → Launch → TASK_RUNNING → TASK_FINISHED → Acknowledge.
async fn cycle(frontend: &mut Frontend, events: &mut Events, task: u64) -> anyhow::Result<Steps> {
    let request = Acquire::new("default")
        .slot(Slot::new(SLOT_CPUS, SLOT_MEM_MB))
        .wait_for(TASK_TIMEOUT);
    let leases = frontend.acquire(request).await.context("acquire")?;
    let acquired = Instant::now();
    let lease = leases.first().context("acquire answered no lease")?;
    let spec = Task::shell(&format!("t{task}"), COMMAND).resources(SLOT_CPUS, SLOT_MEM_MB);
    let launched_task = frontend.launch(&lease.id, spec).await.context("launch")?;
    let launched = Instant::now();
    let mut running = None;
    loop {
        let Some((sequence, status)) = events.next_task_status().await? else {
            bail!("the broker closed the event stream");
        };
        if status.task_id != launched_task.task_id {
            continue;
        }
        let state = api::TaskState::try_from(status.state).unwrap_or(api::TaskState::Unspecified);
        match state {
            api::TaskState::Running => running = Some(Instant::now()),
            api::TaskState::Finished => {
                let finished = Instant::now();
                frontend
                    .acknowledge(sequence)
                    .await
                    .context("acknowledge")?;
                return Ok(Steps {
                    acquired,
                    launched,
                    running: running.unwrap_or(finished),
                    finished,
                    acknowledged: Instant::now(),
                });
            }
            api::TaskState::Staging | api::TaskState::Starting => {}
            other => bail!(
                "task {} ended in {other:?}: {} {}",
                status.task_id,
                status.reason,
                status.message
            ),
        }
    }
}

/// The targets: p50 submit → TASK_RUNNING within 10 ms and faster
/// than a direct framework, compared with each of them.
fn targets(directs: &[Measured], agora: &Measured) -> Vec<Target> {
    let mut targets = Vec::new();
    if let Some(agora) = agora.step(TO_RUNNING) {
        targets.push(Target::at_most(
            "Agora submit -> TASK_RUNNING p50",
            agora.p50_us / 1_000.0,
            10.0,
            "ms",
        ));
        for direct in directs {
            if let Some(step) = direct.step(TO_RUNNING) {
                targets.push(Target::at_most(
                    format!("Agora / {} p50", direct.name),
                    agora.p50_us / step.p50_us,
                    1.0,
                    "x",
                ));
            }
        }
    }
    targets
}
