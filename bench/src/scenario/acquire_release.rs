//! Scenario 1, acquire-release: `clients` frontends, each on its own
//! connection, loop Acquire(1 slot) → Release against a warm pool. Acquire
//! is served from memory, so its latency divided by an empty RPC's is
//! Agora's own cost per call; cycles per second is its throughput.
//!
//! Also measured: Health/Check on the broker itself, which splits Agora's
//! cost into its server stack (the same for any call) and the trip through
//! the core; and the same loop again on a fresh cluster with the broker's
//! store in a file, synced before each batch's answers leave, which is
//! what durability costs.

use clap::Args;

use super::WindowArgs;
use crate::{
    baseline::empty_rpc,
    binaries::Binaries,
    cluster::{self, ClusterArgs, Store},
    connections::Connections,
    cpu::Metered,
    frontends,
    load::{self, Window},
    process::Process,
    report::{Measured, MemorySample, Report, Target},
};

/// Flags of the acquire-release scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct AcquireReleaseArgs {
    /// Concurrent frontends.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Simulated agents backing the pool.
    #[arg(long, default_value_t = 4)]
    pub agents: usize,
    /// Frontends sharing each HTTP/2 connection (and Check loops, in the
    /// baselines); 1 gives every frontend its own.
    #[arg(long, default_value_t = 1)]
    pub frontends_per_connection: usize,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Measures the empty-RPC baseline, then starts a devcluster and a broker,
/// waits for a warm pool and measures Health/Check on the broker and the
/// acquire-release loop.
pub(crate) async fn run(args: &AcquireReleaseArgs, binaries: &Binaries) -> anyhow::Result<Report> {
    let window = args.window.window();
    let clients = args.clients;

    let per_connection = args.frontends_per_connection;
    let empty = empty_rpc::baseline(binaries, clients, per_connection, window).await?;

    let (health, cycles, memory) = {
        let (devcluster, broker) = start_warm(args, binaries, Store::Memory).await?;
        let metered = [
            broker.metered("broker")?,
            devcluster.metered("devcluster")?,
            Metered::this(),
        ];
        let health =
            empty_rpc::measure(broker.url(), clients, per_connection, window, metered[0]).await?;
        let health = Measured::new(
            "Health/Check on the broker",
            clients,
            window.duration,
            &health,
            &[empty_rpc::STEP],
        );
        let cycles = measure(
            "acquire-release",
            broker.url(),
            clients,
            per_connection,
            window,
            &metered,
        )
        .await?;
        let memory = MemorySample {
            process: "broker",
            when: "after the loops".into(),
            memory: broker.memory()?,
        };
        (health, cycles, memory)
    };
    let durable = {
        let (devcluster, broker) = start_warm(args, binaries, Store::File).await?;
        let metered = [
            broker.metered("broker")?,
            devcluster.metered("devcluster")?,
            Metered::this(),
        ];
        measure(
            "acquire-release, store in a file",
            broker.url(),
            clients,
            per_connection,
            window,
            &metered,
        )
        .await?
    };

    let mut targets = targets(&empty, &cycles, clients);
    targets.extend(durable_vs_memory(&cycles, &durable));
    Ok(Report {
        scenario: "acquire-release",
        settings: window
            .settings(clients, args.agents)
            .into_iter()
            .chain([
                ("agent_resources", args.cluster.agent_resources.clone()),
                ("frontends_per_connection", per_connection.to_string()),
            ])
            .collect(),
        loops: vec![empty, health, cycles, durable],
        memory: vec![memory],
        targets,
    })
}

/// A devcluster and a broker keeping its records in `store`, once the
/// broker has pooled an offer from every agent.
async fn start_warm(
    args: &AcquireReleaseArgs,
    binaries: &Binaries,
    store: Store,
) -> anyhow::Result<(Process, Process)> {
    let devcluster = cluster::devcluster(binaries, &args.cluster, args.agents).await?;
    let broker = cluster::warm_broker(
        binaries,
        &args.cluster,
        devcluster.url(),
        args.agents,
        store,
    )
    .await?;
    Ok((devcluster, broker))
}

/// What the file store costs: acquire p50 within 1.2× and at least 0.8 of
/// the cycles per second of the broker that keeps its store in memory.
fn durable_vs_memory(memory: &Measured, durable: &Measured) -> Vec<Target> {
    let mut targets = Vec::new();
    if let (Some(memory), Some(durable)) = (
        memory.step(frontends::ACQUIRE),
        durable.step(frontends::ACQUIRE),
    ) {
        targets.push(Target::at_most(
            "acquire p50, file store / in memory",
            durable.p50_us / memory.p50_us,
            1.2,
            "x",
        ));
    }
    targets.push(Target::at_least(
        "cycles per second, file store / in memory",
        durable.ops_per_sec / memory.ops_per_sec,
        0.8,
        "x",
    ));
    targets
}

/// `clients` frontends cycling acquire → release in `default`,
/// `per_connection` of them on each connection.
async fn measure(
    name: &str,
    url: &str,
    clients: usize,
    per_connection: usize,
    window: Window,
    metered: &[Metered],
) -> anyhow::Result<Measured> {
    let connections =
        Connections::open(clients, per_connection, || frontends::connect(url)).await?;
    let run = load::run(clients, window, metered, move |index, gate| {
        let client = connections.get(index);
        async move {
            let name = format!("bench-ar-{index}");
            let mut frontend = frontends::subscribe_drained(client, &name, "default").await?;
            let clock = gate.ready().await;
            Ok(frontends::acquire_release(&mut frontend, "default", clock).await)
        }
    })
    .await?;
    Ok(Measured::new(
        name,
        clients,
        window.duration,
        &run,
        &[frontends::ACQUIRE, frontends::RELEASE, frontends::CYCLE],
    ))
}

/// The targets for this scenario (set at 64 frontends).
fn targets(empty: &Measured, cycles: &Measured, clients: usize) -> Vec<Target> {
    let mut targets = acquire_vs_empty(empty, cycles, clients);
    targets.push(Target::at_least(
        "acquire-release cycles per second",
        cycles.ops_per_sec,
        20_000.0,
        "cycles/s",
    ));
    targets
}

/// Acquire latency against the empty RPC's: p50 within 2×, p99 within 4×.
pub(super) fn acquire_vs_empty(empty: &Measured, cycles: &Measured, clients: usize) -> Vec<Target> {
    let mut targets = Vec::new();
    if let (Some(base), Some(acquire)) =
        (empty.step(empty_rpc::STEP), cycles.step(frontends::ACQUIRE))
    {
        targets.push(Target::at_most(
            format!("acquire p50 / empty-RPC p50 ({clients} clients)"),
            acquire.p50_us / base.p50_us,
            2.0,
            "x",
        ));
        targets.push(Target::at_most(
            format!("acquire p99 / empty-RPC p99 ({clients} clients)"),
            acquire.p99_us / base.p99_us,
            4.0,
            "x",
        ));
    }
    targets
}
