//! Durability end to end (issue 14): the broker is killed with SIGKILL and
//! started again on the same redb store, and nothing a frontend or the
//! quota depends on is lost. A focused test walks one restart step by
//! step; the crash loop kills the broker at random moments under a load of
//! short and long tasks and then checks, with the numbers printed, that
//! every promised task reached its end at its frontend, no status went
//! backwards, Mesos runs nothing no frontend owns, quota usage matches
//! Mesos, no resource was ever used twice, and only the broker of the
//! moment called Mesos (`agora_tests::crash` has the load and the checks,
//! shared with the HA crash loop of `ha.rs`).
//!
//! The crash loop kills the broker `AGORA_CRASH_LOOPS` times (20 by
//! default; the longer run is `AGORA_CRASH_LOOPS=100`), at moments drawn
//! from `AGORA_CRASH_SEED` (printed; random when unset):
//!
//! ```text
//! AGORA_CRASH_LOOPS=100 AGORA_CRASH_SEED=42 cargo test -p agora-tests \
//!     --test durability -- --nocapture crash_loop
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use agora_tests::{
    CrashingBroker, SETTLE, admin, as_status,
    client::{self, Acquire, Frontend, Slot, Task, api},
    crash::{POOL, Plan, cluster, fleet::Target, live_mesos_tasks},
    eventually, get_json,
};
use api::{TaskState, lease_lost::Reason};
use tokio::time::timeout;
use tonic::Code;

/// A broker with [`POOL`] settings and its store at `store`, which its
/// restarts keep.
async fn crashing_broker(master: &str, store: &std::path::Path) -> CrashingBroker {
    let mut env: Vec<(&str, &str)> = POOL.to_vec();
    env.push((
        "AGORA_STORE__PATH",
        store.to_str().expect("a UTF-8 temporary path"),
    ));
    CrashingBroker::start(master, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_loses_nothing() {
    let plan = Plan::from_env("crash loop", "kills", 20);
    let master = cluster(3).await;
    let store = tempfile::tempdir().expect("a temporary directory");
    let mut broker = crashing_broker(master.url(), &store.path().join("agora.redb")).await;
    let url = broker.url().to_owned();
    let mut crash_loop = plan.start(&Target::Broker(url.clone()), master.url());
    // Killed 0.3 to 2 s apart, and started again each time.
    for _ in 0..plan.loops {
        crash_loop.pause(300..2000).await;
        crash_loop.knock_out(broker.crash()).await;
        broker.restart().await;
    }
    let findings = crash_loop.finish(master.url(), &url).await;
    findings.report(plan.seed);
}

/// Waits for the next status of one of `tasks` to be `state`, acknowledging
/// every event; the last sequence taken.
async fn await_states(
    frontend: &mut Frontend,
    events: &mut client::Events,
    tasks: &BTreeSet<String>,
    state: TaskState,
) -> u64 {
    let mut reached = BTreeSet::new();
    let mut last = 0;
    while reached.len() < tasks.len() {
        let (sequence, status) = timeout(SETTLE, events.next_task_status())
            .await
            .expect("a status within the settle time")
            .expect("the stream stays healthy")
            .expect("the stream stays open");
        frontend.acknowledge(sequence).await.expect("acknowledge");
        last = sequence;
        assert!(tasks.contains(&status.task_id), "{status:?}");
        if status.state() == state {
            reached.insert(status.task_id);
        }
    }
    last
}

fn cpus(amount: f64) -> Option<api::Resources> {
    Some(api::Resources {
        cpus: amount,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_keeps_tasks_events_and_quota() {
    let master = cluster(2).await;
    let store = tempfile::tempdir().expect("a temporary directory");
    let mut broker = crashing_broker(master.url(), &store.path().join("agora.redb")).await;
    let url = broker.url().to_owned();
    let capped = api::Namespace {
        name: "capped".into(),
        role: "capped".into(),
        limit: cpus(2.0),
        ..Default::default()
    };
    admin(&url)
        .await
        .put_namespace(api::PutNamespaceRequest {
            namespace: Some(capped),
        })
        .await
        .expect("the capped namespace is accepted");
    let namespaces = ["default", "capped"];
    let (mut ops, mut events) = Frontend::subscribe(&url, "ops", &namespaces).await.unwrap();

    // Three long tasks, 1.5 of the 2 cpus capped allows; a lease held.
    let mut tasks = BTreeSet::new();
    for i in 0..3 {
        let request = Acquire::new("capped")
            .slot(Slot::new(0.5, 32.0))
            .wait_for(SETTLE);
        let lease = ops.acquire(request).await.expect("a lease").remove(0);
        let task = Task::shell(&format!("long-{i}"), "sleep 600").resources(0.5, 32.0);
        tasks.insert(ops.launch(&lease.id, task).await.expect("launched").task_id);
    }
    let last = await_states(&mut ops, &mut events, &tasks, TaskState::Running).await;
    let held = Acquire::new("default")
        .slot(Slot::new(0.5, 32.0))
        .wait_for(SETTLE);
    let held = ops.acquire(held).await.expect("a lease").remove(0);
    let framework = get_json(master.url(), "/state").await["frameworks"][0]["id"].clone();

    broker.crash().await;
    broker.restart().await;

    let client = client::connect(&url).await.expect("connect again");
    let (mut ops, mut events) = Frontend::subscribe_with(client, "ops", &namespaces, last)
        .await
        .expect("the frontend subscribes again under its name");
    let (sequence, lost) = timeout(SETTLE, events.next_lease_lost())
        .await
        .expect("a LeaseLost within the settle time")
        .expect("the stream stays healthy")
        .expect("the stream stays open");
    ops.acknowledge(sequence).await.expect("acknowledge");
    assert_eq!(lost.lease_id, held.id);
    assert_eq!(lost.reason(), Reason::BrokerRestarted, "{lost:?}");

    let listed = ops.list_tasks().await.expect("list tasks");
    let ids: BTreeSet<String> = listed.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(ids, tasks, "the tasks are the frontend's still");
    assert!(
        listed.iter().all(|t| t.state() == TaskState::Running),
        "{listed:?}"
    );
    let reconcile = api::ReconcileRequest {
        session_id: ops.session_id().to_owned(),
        task_ids: Vec::new(),
    };
    let reconciled = ops
        .raw()
        .reconcile(reconcile)
        .await
        .expect("reconcile")
        .into_inner();
    let ids: BTreeSet<String> = reconciled.tasks.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(ids, tasks, "Reconcile knows them");

    // The quota still counts the 1.5 cpus running: 1 more is refused (once
    // the broker has heard from Mesos about its tasks), 0.5 fits exactly.
    let answer = eventually(SETTLE, "an answer other than UNAVAILABLE", || {
        let mut ops = ops.clone();
        async move {
            let more = Acquire::new("capped").slot(Slot::new(1.0, 32.0));
            match ops.acquire(more).await.map_err(as_status) {
                Err(status) if status.code() == Code::Unavailable => None,
                answer => Some(answer),
            }
        }
    })
    .await;
    let refused = answer.expect_err("1 cpu more than the limit allows");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    for fact in ["1.5 in use", "limit of 2"] {
        assert!(
            refused.message().contains(fact),
            "{fact}: {}",
            refused.message()
        );
    }
    let rest = Acquire::new("capped")
        .slot(Slot::new(0.5, 32.0))
        .wait_for(SETTLE);
    let rest = ops
        .acquire(rest)
        .await
        .expect("what is left of the limit")
        .remove(0);
    ops.release(&[&rest.id], Duration::ZERO)
        .await
        .expect("release");

    let ids: Vec<&str> = tasks.iter().map(String::as_str).collect();
    ops.kill(&ids).await.expect("kill");
    await_states(&mut ops, &mut events, &tasks, TaskState::Killed).await;
    let state = get_json(master.url(), "/state").await;
    assert_eq!(
        state["frameworks"][0]["id"], framework,
        "the same framework"
    );
    assert_eq!(state["frameworks"].as_array().map(Vec::len), Some(1));
    assert!(live_mesos_tasks(&state).is_empty());
}
