//! Frontends as the scenarios use them: subscribed under a unique name,
//! with their event stream drained in the background (an undrained session
//! fills its buffer and the broker closes it), and the acquire → release
//! cycle that the acquire-release and scale scenarios time.

use std::time::{Duration, Instant};

use agora_client::{Acquire, Client, Events, Frontend, Slot};
use anyhow::Context;

use crate::{load::Clock, stats::Recorder};

/// The slot every cycle acquires: small, so a few agents hold thousands.
pub(crate) const SLOT_CPUS: f64 = 0.1;
pub(crate) const SLOT_MEM_MB: f64 = 32.0;
/// How long an acquire may wait when the pool is momentarily empty; a warm
/// pool answers at once, so this only bounds a broken run.
const ACQUIRE_WAIT: Duration = Duration::from_secs(10);

/// Step names of the cycle.
pub(crate) const ACQUIRE: &str = "acquire";
pub(crate) const RELEASE: &str = "release";
pub(crate) const CYCLE: &str = "acquire+release";

/// A connection to the broker at `url`.
pub(crate) async fn connect(url: &str) -> anyhow::Result<Client> {
    agora_client::connect(url)
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

/// Subscribes `name` in `namespace` over `client` and drains its events in
/// the background.
pub(crate) async fn subscribe_drained(
    client: Client,
    name: &str,
    namespace: &str,
) -> anyhow::Result<Frontend> {
    let (frontend, events) = Frontend::subscribe_with(client, name, &[namespace], 0)
        .await
        .with_context(|| format!("frontend {name} cannot subscribe"))?;
    tokio::spawn(drain(events));
    Ok(frontend)
}

/// Subscribes `name` in `namespace`.
pub(crate) async fn subscribe(
    url: &str,
    name: &str,
    namespace: &str,
) -> anyhow::Result<(Frontend, Events)> {
    Frontend::subscribe(url, name, &[namespace])
        .await
        .with_context(|| format!("frontend {name} cannot subscribe to {url}"))
}

async fn drain(mut events: Events) {
    while let Ok(Some(_)) = events.next().await {}
}

/// Loops acquire(1 slot) → release until the clock stops.
pub(crate) async fn acquire_release(
    frontend: &mut Frontend,
    namespace: &str,
    clock: Clock,
) -> Recorder {
    let mut recorder = Recorder::new();
    while clock.running() {
        let started = Instant::now();
        let result = cycle(frontend, namespace).await;
        let cycle_time = started.elapsed();
        if let Some((acquire, release)) = clock.settle(&mut recorder, started, result).await {
            recorder.record(ACQUIRE, acquire);
            recorder.record(RELEASE, release);
            recorder.record(CYCLE, cycle_time);
        }
    }
    recorder
}

/// One cycle; returns the latency of each call.
async fn cycle(frontend: &mut Frontend, namespace: &str) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let request = Acquire::new(namespace)
        .slot(Slot::new(SLOT_CPUS, SLOT_MEM_MB))
        .wait_for(ACQUIRE_WAIT);
    let leases = frontend.acquire(request).await.context("acquire")?;
    let acquired = started.elapsed();
    let ids: Vec<&str> = leases.iter().map(|lease| lease.id.as_str()).collect();
    let releasing = Instant::now();
    frontend
        .release(&ids, Duration::ZERO)
        .await
        .context("release")?;
    Ok((acquired, releasing.elapsed()))
}
