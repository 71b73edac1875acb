//! The offer book end to end: constraints, slices of one agent shared by two
//! frontends, a gang that waits for capacity, rescinds, dropped sessions and
//! idempotent retries, against a real devcluster and a real broker.

use std::{collections::BTreeSet, time::Duration};

use agora_tests::{
    Process, SETTLE, as_status, broker,
    client::{Acquire, Constraint, Frontend, Slot, Task, api},
    devcluster, eventually, frontend, one_lease, post_json,
};
use api::{TaskState, lease_lost::Reason};
use tonic::Code;

const FAST_ALLOCATION: &[&str] = &["--allocation-interval", "100ms"];

/// A devcluster of `agents` agents and a broker on it, with `env`.
async fn cluster(agents: u32, extra: &[&str], env: &[(&str, &str)]) -> (Process, Process) {
    let mut args = FAST_ALLOCATION.to_vec();
    args.extend_from_slice(extra);
    let master = devcluster(agents, &args).await;
    let broker = broker(master.url(), env).await;
    (master, broker)
}

fn hostnames(leases: &[api::Lease]) -> BTreeSet<String> {
    leases
        .iter()
        .filter_map(|l| l.agent.as_ref().map(|a| a.hostname.clone()))
        .collect()
}

fn status_code(error: agora_tests::client::Error) -> Code {
    as_status(error).code()
}

/// Polls until the broker's pool holds at least `agents` agents.
async fn pooled_agents(frontend: &Frontend, agents: usize) {
    eventually(SETTLE, "the pool to hold every agent", || {
        let mut frontend = frontend.clone();
        async move { (frontend.list_agents().await.ok()?.len() >= agents).then_some(()) }
    })
    .await;
}

/// Waits for one task's terminal state, acknowledging every status.
async fn finishes(
    frontend: &mut Frontend,
    events: &mut agora_tests::client::Events,
    task_id: &str,
) -> TaskState {
    loop {
        let (sequence, status) = events
            .next_task_status()
            .await
            .expect("the stream stays up")
            .expect("the stream does not end");
        frontend.acknowledge(sequence).await.expect("acknowledge");
        let state = status.state();
        if status.task_id == task_id
            && !matches!(
                state,
                TaskState::Staging | TaskState::Starting | TaskState::Running
            )
        {
            return state;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_per_host_spreads_slots_over_three_agents() {
    let (_master, broker) = cluster(3, &[], &[]).await;
    let (mut frontend, _events) = frontend(broker.url(), "spread").await;
    pooled_agents(&frontend, 3).await;
    let three = Acquire::new("default")
        .slot(Slot::new(0.5, 64.0).count(3))
        .constraint(Constraint::unique("hostname"))
        .gang();
    let leases = frontend.acquire(three).await.unwrap();
    assert_eq!(leases.len(), 3);
    assert_eq!(hostnames(&leases).len(), 3, "one slot per host");

    let four = Acquire::new("default")
        .slot(Slot::new(0.5, 64.0).count(4))
        .constraint(Constraint::unique("hostname"))
        .gang();
    let error = frontend.acquire(four).await.unwrap_err();
    assert_eq!(
        status_code(error),
        Code::FailedPrecondition,
        "four unique hosts cannot fit three: CANNOT_FIT, not a timeout"
    );
    assert_eq!(
        frontend.list_leases().await.unwrap().len(),
        3,
        "nothing held"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_frontends_sharing_one_agent_launch_seconds_apart_and_both_run() {
    let (_master, broker) = cluster(1, &[], &[]).await;
    let (mut alice, mut alice_events) = frontend(broker.url(), "alice").await;
    let (mut bob, mut bob_events) = frontend(broker.url(), "bob").await;
    let a = one_lease(&mut alice, 1.0, 128.0).await;
    let b = one_lease(&mut bob, 1.0, 128.0).await;
    assert_eq!(a.agent, b.agent, "both slices are of the one agent");

    let task = |id: &str| Task::shell(id, "sleep 1").resources(1.0, 128.0);
    let first = alice.launch(&a.id, task("first")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = bob.launch(&b.id, task("second")).await.unwrap();

    let (alice_end, bob_end) = tokio::join!(
        finishes(&mut alice, &mut alice_events, &first.task_id),
        finishes(&mut bob, &mut bob_events, &second.task_id),
    );
    assert_eq!(
        (alice_end, bob_end),
        (TaskState::Finished, TaskState::Finished)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_of_four_waits_until_a_fourth_agent_joins() {
    let (master, broker) = cluster(3, &[], &[]).await;
    let (frontend, _events) = frontend(broker.url(), "gang").await;
    pooled_agents(&frontend, 3).await;
    let waiting = tokio::spawn({
        let mut frontend = frontend.clone();
        async move {
            let four = Acquire::new("default")
                .slot(Slot::new(1.0, 128.0).count(4))
                .constraint(Constraint::unique("hostname"))
                .gang()
                .wait_for(SETTLE);
            frontend.acquire(four).await
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "three agents cannot hold the gang");
    let mut observer = frontend.clone();
    assert!(
        observer.list_leases().await.unwrap().is_empty(),
        "nothing held in between"
    );

    post_json(master.url(), "/devcluster/agents", &serde_json::json!({})).await;
    let leases = waiting.await.unwrap().expect("the gang is served");
    assert_eq!(hostnames(&leases).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescinded_offer_takes_its_lease_with_it() {
    let (_master, broker) = cluster(1, &["--offer-timeout", "2s"], &[]).await;
    let (mut frontend, mut events) = frontend(broker.url(), "held").await;
    let lease = one_lease(&mut frontend, 1.0, 128.0).await;
    let (_, lost) = tokio::time::timeout(SETTLE, events.next_lease_lost())
        .await
        .expect("Mesos rescinds the offer after its timeout")
        .unwrap()
        .unwrap();
    assert_eq!(lost.lease_id, lease.id);
    assert_eq!(lost.reason(), Reason::OfferRescinded);
    assert!(frontend.list_leases().await.unwrap().is_empty());
    let error = frontend
        .launch(&lease.id, Task::shell("late", "true").resources(1.0, 128.0))
        .await
        .unwrap_err();
    assert_eq!(status_code(error), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_releases_its_leases_after_the_grace() {
    let env = [("AGORA_BROKER__SESSION_GRACE", "1s")];
    let (_master, broker) = cluster(1, &[], &env).await;
    let (mut leaving, events) = frontend(broker.url(), "leaving").await;
    one_lease(&mut leaving, 2.0, 256.0).await;
    let (mut observer, _observer_events) = frontend(broker.url(), "observer").await;
    let leased = |views: &[api::AgentView]| -> f64 {
        views
            .iter()
            .filter_map(|v| v.leased.as_ref())
            .map(|r| r.cpus)
            .sum()
    };
    assert_eq!(leased(&observer.list_agents().await.unwrap()), 2.0);
    drop((leaving, events));
    eventually(
        SETTLE,
        "the dropped session's lease back in the pool",
        || {
            let mut observer = observer.clone();
            async move { (leased(&observer.list_agents().await.ok()?) == 0.0).then_some(()) }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_acquire_returns_the_same_leases() {
    let (_master, broker) = cluster(1, &[], &[]).await;
    let (mut frontend, _events) = frontend(broker.url(), "retry").await;
    let request = || {
        Acquire::new("default")
            .slot(Slot::new(1.0, 128.0))
            .wait_for(SETTLE)
            .request_id("job-42/attempt-1")
    };
    let first = frontend.acquire(request()).await.unwrap();
    let retry = frontend.acquire(request()).await.unwrap();
    assert_eq!(first, retry);
    assert_eq!(
        frontend.list_leases().await.unwrap().len(),
        1,
        "never a second set"
    );

    let different = Acquire::new("default")
        .slot(Slot::new(2.0, 128.0))
        .request_id("job-42/attempt-1");
    let error = frontend.acquire(different).await.unwrap_err();
    assert_eq!(status_code(error), Code::InvalidArgument);
}
