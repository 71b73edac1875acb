//! Scenario 3, scale: a devcluster of many simulated agents (1,000 or
//! 10,000), a broker with many namespaces, and many subscribed frontends of
//! which `clients` cycle acquire → release while the rest stay idle on
//! their streams. Measures acquire latency with a full pool and the
//! broker's resident memory as each part is added.

use agora_client::Frontend;
use anyhow::ensure;
use clap::Args;

use super::{WindowArgs, acquire_release};
use crate::{
    baseline::empty_rpc,
    binaries::Binaries,
    cluster::{self, ClusterArgs, Store},
    cpu::Metered,
    frontends,
    load::{self, Window},
    process::Process,
    report::{Measured, MemorySample, Report, Target},
};

/// Frontends subscribed at once while the rest of the fleet connects.
const SUBSCRIBE_BATCH: usize = 50;

/// Flags of the scale scenario.
#[derive(Debug, Clone, Args)]
pub(crate) struct ScaleArgs {
    /// Simulated agents.
    #[arg(long, default_value_t = 1_000)]
    pub agents: usize,
    /// Namespaces (one Mesos role each); frontends spread over them.
    #[arg(long, default_value_t = 10)]
    pub namespaces: usize,
    /// Subscribed frontends, idle but for `clients` of them.
    #[arg(long, default_value_t = 1_000)]
    pub frontends: usize,
    /// Frontends that cycle acquire → release while measured.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Measures the empty-RPC baseline, then grows the system step by step —
/// cluster, warm pool, idle frontends, the active loop — sampling the
/// broker's memory after each step.
pub(crate) async fn run(args: &ScaleArgs, binaries: &Binaries) -> anyhow::Result<Report> {
    ensure!(
        args.clients <= args.frontends,
        "--clients ({}) cannot exceed --frontends ({})",
        args.clients,
        args.frontends
    );
    let window = args.window.window();

    let empty = empty_rpc::baseline(binaries, args.clients, 1, window).await?;

    let devcluster = cluster::devcluster(binaries, &args.cluster, args.agents).await?;
    let namespaces = cluster::namespace_names(args.namespaces);
    let broker = cluster::broker(
        binaries,
        &args.cluster,
        devcluster.url(),
        &namespaces,
        Store::Memory,
    )
    .await?;
    let mut memory = vec![sample(&broker, "started")?];
    let warm = cluster::wait_for_warm_pool(
        broker.url(),
        &namespaces,
        args.agents,
        cluster::WARM_POOL_TIMEOUT,
    )
    .await?;
    memory.push(sample(&broker, &format!("pool of {} agents", args.agents))?);

    let idle = subscribe_idle(broker.url(), &namespaces, args.clients, args.frontends).await?;
    memory.push(sample(
        &broker,
        &format!("+ {} idle frontends", idle.len()),
    )?);
    let metered = [
        broker.metered("broker")?,
        devcluster.metered("devcluster")?,
        Metered::this(),
    ];
    let cycles = measure(broker.url(), &namespaces, args.clients, window, &metered).await?;
    memory.push(sample(
        &broker,
        &format!("after {} active frontends", args.clients),
    )?);
    drop(idle);

    let targets = targets(&empty, &cycles, &memory, args);
    Ok(Report {
        scenario: "scale",
        settings: window
            .settings(args.clients, args.agents)
            .into_iter()
            .chain([
                ("namespaces", namespaces.len().to_string()),
                ("frontends", args.frontends.to_string()),
                ("agent_resources", args.cluster.agent_resources.clone()),
                ("pool_warm_after", format!("{:.1}s", warm.as_secs_f64())),
            ])
            .collect(),
        loops: vec![empty, cycles],
        memory,
        targets,
    })
}

fn sample(broker: &Process, when: &str) -> anyhow::Result<MemorySample> {
    Ok(MemorySample {
        process: "broker",
        when: when.to_owned(),
        memory: broker.memory()?,
    })
}

/// The namespace of frontend `index`: round robin, so every namespace has
/// both idle and active frontends.
fn namespace_of(namespaces: &[String], index: usize) -> &str {
    &namespaces[index % namespaces.len()]
}

/// Subscribes the frontends numbered `first..count` and keeps them (and
/// their connections) alive until dropped.
async fn subscribe_idle(
    url: &str,
    namespaces: &[String],
    first: usize,
    count: usize,
) -> anyhow::Result<Vec<Frontend>> {
    let mut idle = Vec::with_capacity(count.saturating_sub(first));
    let indices: Vec<usize> = (first..count).collect();
    for batch in indices.chunks(SUBSCRIBE_BATCH) {
        let mut subscribing = tokio::task::JoinSet::new();
        for &index in batch {
            let url = url.to_owned();
            let namespace = namespace_of(namespaces, index).to_owned();
            subscribing.spawn(async move {
                let client = frontends::connect(&url).await?;
                frontends::subscribe_drained(client, &format!("bench-idle-{index}"), &namespace)
                    .await
            });
        }
        while let Some(frontend) = subscribing.join_next().await {
            idle.push(frontend??);
        }
    }
    Ok(idle)
}

/// `clients` frontends cycling acquire → release, each in its namespace.
async fn measure(
    url: &str,
    namespaces: &[String],
    clients: usize,
    window: Window,
    metered: &[Metered],
) -> anyhow::Result<Measured> {
    let url = url.to_owned();
    let namespaces = namespaces.to_vec();
    let run = load::run(clients, window, metered, move |index, gate| {
        let url = url.clone();
        let namespace = namespace_of(&namespaces, index).to_owned();
        async move {
            let name = format!("bench-scale-{index}");
            let client = frontends::connect(&url).await?;
            let mut frontend = frontends::subscribe_drained(client, &name, &namespace).await?;
            let clock = gate.ready().await;
            Ok(frontends::acquire_release(&mut frontend, &namespace, clock).await)
        }
    })
    .await?;
    Ok(Measured::new(
        "acquire-release at scale",
        clients,
        window.duration,
        &run,
        &[frontends::ACQUIRE, frontends::RELEASE, frontends::CYCLE],
    ))
}

/// The targets: memory at 10,000 agents and 1,000 frontends, and
/// acquire latency against the empty RPC as in scenario 1.
fn targets(
    empty: &Measured,
    cycles: &Measured,
    memory: &[MemorySample],
    args: &ScaleArgs,
) -> Vec<Target> {
    let mut targets = Vec::new();
    if let Some(peak) = memory.iter().map(|m| m.memory.peak_kib).max() {
        targets.push(Target::at_most(
            format!(
                "broker peak RSS ({} agents, {} frontends)",
                args.agents, args.frontends
            ),
            peak as f64 / 1024.0,
            512.0,
            "MiB",
        ));
    }
    targets.extend(acquire_release::acquire_vs_empty(
        empty,
        cycles,
        args.clients,
    ));
    targets
}
