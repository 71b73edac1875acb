//! The system under test: a devcluster of simulated agents and a broker
//! subscribed to it, each a real process started from the binaries the run
//! resolved, shaped by the flags every scenario shares.

use std::time::{Duration, Instant};

use agora_client::Frontend;
use anyhow::{Context, bail};
use clap::Args;

use crate::{binaries::Binaries, process::Process};

/// How the devcluster and the broker are configured.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClusterArgs {
    /// Resources of each simulated agent, Mesos syntax.
    #[arg(
        long,
        default_value = "cpus:64;mem:262144;disk:1000000;ports:[31000-32000]"
    )]
    pub agent_resources: String,
    /// The devcluster's batch allocation interval (Mesos's default is 1s).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub allocation_interval: Duration,
    /// How long the broker keeps unleased offers (broker.pool_ttl); long, so
    /// the pool stays warm for the whole run.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub pool_ttl: Duration,
}

/// How long the pool may take to fill before a run gives up.
pub(crate) const WARM_POOL_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts a devcluster of `agents` simulated agents.
pub(crate) async fn devcluster(
    binaries: &Binaries,
    cluster: &ClusterArgs,
    agents: usize,
) -> anyhow::Result<Process> {
    let args = [
        "--listen".to_owned(),
        "127.0.0.1:0".into(),
        "--agents".into(),
        agents.to_string(),
        "--agent-resources".into(),
        cluster.agent_resources.clone(),
        "--allocation-interval".into(),
        millis(cluster.allocation_interval),
        "--simulate".into(),
    ];
    Process::start(&binaries.devcluster, &args, &[], &binaries.log_dir).await
}

/// Where the broker keeps its durable records: what the store costs is
/// measured as the same loop on each, in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// redb in memory: no disk write on the way of a call.
    Memory,
    /// A redb file, synced before each batch's answers leave.
    File,
}

/// Starts a broker subscribed to the master at `master_url`, with the
/// namespaces `namespaces` (written to a TOML file, the only place the
/// broker reads a namespace list from), keeping its records in `store`.
pub(crate) async fn broker(
    binaries: &Binaries,
    cluster: &ClusterArgs,
    master_url: &str,
    namespaces: &[String],
    store: Store,
) -> anyhow::Result<Process> {
    let config = binaries
        .log_dir
        .join(format!("agora-{}.toml", std::process::id()));
    std::fs::create_dir_all(&binaries.log_dir)?;
    std::fs::write(&config, namespaces_toml(namespaces))
        .with_context(|| format!("cannot write {}", config.display()))?;
    let args = [
        "serve".to_owned(),
        "--master".into(),
        master_url.to_owned(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--config".into(),
        config.display().to_string(),
        "--insecure".into(),
    ];
    let mut env = vec![(
        "AGORA_BROKER__POOL_TTL".to_owned(),
        millis(cluster.pool_ttl),
    )];
    if store == Store::File {
        let path = binaries
            .log_dir
            .join(format!("agora-store-{}.redb", std::process::id()));
        // A fresh store: an old one would make the broker recover its tasks.
        let _ = std::fs::remove_file(&path);
        env.push(("AGORA_STORE__PATH".to_owned(), path.display().to_string()));
    }
    Process::start(&binaries.agora, &args, &env, &binaries.log_dir).await
}

/// A broker in the one namespace `default`, keeping its records in
/// `store`, once it has pooled an offer from each of `agents` agents.
pub(crate) async fn warm_broker(
    binaries: &Binaries,
    cluster: &ClusterArgs,
    master_url: &str,
    agents: usize,
    store: Store,
) -> anyhow::Result<Process> {
    let namespaces = namespace_names(1);
    let broker = broker(binaries, cluster, master_url, &namespaces, store).await?;
    wait_for_warm_pool(broker.url(), &namespaces, agents, WARM_POOL_TIMEOUT).await?;
    Ok(broker)
}

/// `default` for one namespace (the broker's own default), else `ns-0`…
pub(crate) fn namespace_names(count: usize) -> Vec<String> {
    if count <= 1 {
        vec!["default".to_owned()]
    } else {
        (0..count).map(|i| format!("ns-{i}")).collect()
    }
}

fn namespaces_toml(namespaces: &[String]) -> String {
    namespaces
        .iter()
        .map(|name| format!("[[namespaces]]\nname = \"{name}\"\n"))
        .collect()
}

/// Waits until the broker pools an offer from each of `agents` agents, so
/// that the measured loops are served from a warm pool. Returns how long
/// that took.
pub(crate) async fn wait_for_warm_pool(
    broker_url: &str,
    namespaces: &[String],
    agents: usize,
    within: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let names: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let (mut probe, _events) = Frontend::subscribe(broker_url, "bench-probe", &names)
        .await
        .context("the probe frontend cannot subscribe")?;
    let mut pooled = 0;
    while started.elapsed() < within {
        pooled = probe
            .list_agents()
            .await?
            .iter()
            .filter(|view| view.pooled.as_ref().is_some_and(|r| r.cpus > 0.0))
            .count();
        if pooled >= agents {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("only {pooled} of {agents} agents reached the broker's pool within {within:?}")
}

/// A duration as both the broker (humantime) and the devcluster parse it.
fn millis(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_namespace_is_the_default_and_more_are_numbered() {
        assert_eq!(namespace_names(1), vec!["default".to_owned()]);
        assert_eq!(namespace_names(3), vec!["ns-0", "ns-1", "ns-2"]);
        assert_eq!(
            namespaces_toml(&namespace_names(2)),
            "[[namespaces]]\nname = \"ns-0\"\n[[namespaces]]\nname = \"ns-1\"\n"
        );
    }

    #[test]
    fn durations_are_written_in_milliseconds() {
        assert_eq!(millis(Duration::from_secs(3600)), "3600000ms");
        assert_eq!(millis(Duration::from_millis(1500)), "1500ms");
    }
}
