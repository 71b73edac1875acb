//! Mesos-native revocable resources end to end: a task on revocable
//! capacity beside a regular task on one agent; when the agent's
//! oversubscription estimate drops, only the revocable task's executor is
//! destroyed, and each frontend sees what happened to its own task.

use agora_tests::{
    SETTLE, broker,
    client::{Acquire, Events, Frontend, Slot, Task, api},
    devcluster, frontend, get_json, put_json,
};
use api::TaskState;
use std::time::Duration;

/// Acknowledges statuses of `task_id` until one in `states`; its status.
async fn until(
    frontend: &mut Frontend,
    events: &mut Events,
    task_id: &str,
    states: &[TaskState],
) -> api::TaskStatus {
    let ids = [task_id.to_owned()];
    until_all(frontend, events, &ids, states).await.remove(0)
}

/// Acknowledges statuses until each of `task_ids` reached one of `states`
/// (in any order: one task's events may come before another's); their
/// statuses, in the order of `task_ids`.
async fn until_all(
    frontend: &mut Frontend,
    events: &mut Events,
    task_ids: &[String],
    states: &[TaskState],
) -> Vec<api::TaskStatus> {
    let mut reached: Vec<Option<api::TaskStatus>> = vec![None; task_ids.len()];
    tokio::time::timeout(SETTLE, async {
        while reached.iter().any(Option::is_none) {
            let (sequence, status) = events.next_task_status().await.unwrap().unwrap();
            frontend.acknowledge(sequence).await.unwrap();
            if let Some(i) = task_ids.iter().position(|id| *id == status.task_id)
                && states.contains(&status.state())
            {
                reached[i].get_or_insert(status);
            }
        }
    })
    .await
    .expect("the tasks reach the state in time");
    reached.into_iter().flatten().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_estimate_drop_preempts_the_revocable_task_and_spares_the_regular_one() {
    let master = devcluster(
        1,
        &[
            "--allocation-interval",
            "100ms",
            "--agent-resources",
            "cpus:2;mem:1024",
            "--agent-revocable",
            "cpus:2;mem:512",
        ],
    )
    .await;
    let broker = broker(master.url(), &[]).await;
    let (mut ci, mut ci_events) = frontend(broker.url(), "ci").await;
    let (mut svc, mut svc_events) = frontend(broker.url(), "svc").await;

    let borrowed = ci
        .acquire(
            Acquire::new("default")
                .slot(Slot::new(1.0, 64.0))
                .revocable(api::Revocable::Require)
                .wait_for(SETTLE),
        )
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        borrowed.revocable.as_ref().map(|r| r.cpus),
        Some(1.0),
        "the lease says its cpus are revocable"
    );
    let regular = svc
        .acquire(
            Acquire::new("default")
                .slot(Slot::new(1.0, 64.0))
                .wait_for(SETTLE),
        )
        .await
        .unwrap()
        .remove(0);
    assert!(regular.revocable.is_none());

    let sleep = |id: &str| Task::shell(id, "sleep 60").resources(1.0, 64.0);
    let ci_task = ci.launch(&borrowed.id, sleep("batch")).await.unwrap();
    let svc_task = svc.launch(&regular.id, sleep("web")).await.unwrap();
    until(
        &mut ci,
        &mut ci_events,
        &ci_task.task_id,
        &[TaskState::Running],
    )
    .await;
    until(
        &mut svc,
        &mut svc_events,
        &svc_task.task_id,
        &[TaskState::Running],
    )
    .await;

    let agents = get_json(master.url(), "/devcluster/agents").await;
    let agent = agents["agents"][0].as_str().expect("one agent").to_owned();
    put_json(
        master.url(),
        &format!("/devcluster/agents/{agent}/revocable"),
        &serde_json::json!({ "resources": "" }),
    )
    .await;

    let lost = until(
        &mut ci,
        &mut ci_events,
        &ci_task.task_id,
        &[TaskState::Lost, TaskState::Gone],
    )
    .await;
    assert_eq!(lost.reason, "REASON_CONTAINER_PREEMPTED");
    let tasks = svc.list_tasks().await.unwrap();
    let web = tasks
        .iter()
        .find(|t| t.task_id == svc_task.task_id)
        .unwrap();
    assert_eq!(web.state(), TaskState::Running, "the regular task lives on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_launches_on_the_resources_reserved_to_its_role() {
    let master = devcluster(
        1,
        &[
            "--allocation-interval",
            "100ms",
            "--agent-resources",
            "cpus(batch):2;mem(batch):512;cpus:1;mem:512",
        ],
    )
    .await;
    let broker = broker(master.url(), &[]).await;
    let mut admin = api::admin_client::AdminClient::connect(broker.url().to_owned())
        .await
        .unwrap();
    admin
        .put_namespace(api::PutNamespaceRequest {
            namespace: Some(api::Namespace {
                name: "batch".into(),
                role: "batch".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let (mut batch, mut events) = Frontend::subscribe(broker.url(), "batch", &["batch"])
        .await
        .unwrap();
    // More than the unreserved cpu: the launch must use the reservation.
    let lease = batch
        .acquire(
            Acquire::new("batch")
                .slot(Slot::new(2.0, 256.0))
                .wait_for(SETTLE),
        )
        .await
        .unwrap()
        .remove(0);
    let task = batch
        .launch(&lease.id, Task::shell("etl", "true").resources(2.0, 256.0))
        .await
        .unwrap();
    let end = until(
        &mut batch,
        &mut events,
        &task.task_id,
        &[
            TaskState::Finished,
            TaskState::Failed,
            TaskState::Error,
            TaskState::Dropped,
        ],
    )
    .await;
    assert_eq!(end.state(), TaskState::Finished, "{end:?}");
}

/// Puts a namespace on `role`; `lend` lends its idle capacity with a grace.
async fn namespace(broker: &agora_tests::Process, name: &str, lend: Option<Duration>) {
    let mut admin = api::admin_client::AdminClient::connect(broker.url().to_owned())
        .await
        .unwrap();
    let lending = lend.map(|grace| api::LendingPolicy {
        lend: api::lending_policy::Lend::Idle as i32,
        max_lent: None,
        reclaim_grace: prost_types::Duration::try_from(grace).ok(),
    });
    admin
        .put_namespace(api::PutNamespaceRequest {
            namespace: Some(api::Namespace {
                name: name.into(),
                role: name.into(),
                lending,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_reclaims_exactly_the_borrowed_tasks_it_needs() {
    let took = reclaim_scenario(Duration::from_secs(2), false).await;
    eprintln!("batch's Acquire to its leases, borrower passive: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_borrower_that_gives_way_in_time_has_nothing_killed_for_it() {
    let grace = Duration::from_secs(60);
    let took = reclaim_scenario(grace, true).await;
    eprintln!("batch's Acquire to its leases, borrower cooperating: {took:?}");
    assert!(
        took < grace / 2,
        "served long before the deadline: {took:?}"
    );
}

/// batch owns reserved capacity on 3 agents and is idle; ci borrows it for
/// six long tasks; web runs a regular task beside them; then batch asks
/// for two cpus. ci is told to give back exactly its two newest tasks: it
/// kills them itself when `cooperate`, else Agora does at the deadline.
/// Answers how long batch waited for its leases.
async fn reclaim_scenario(grace: Duration, cooperate: bool) -> Duration {
    let master = devcluster(
        3,
        &[
            "--allocation-interval",
            "100ms",
            "--agent-resources",
            "cpus(batch):2;mem(batch):1024;cpus:1;mem:512",
        ],
    )
    .await;
    let env = [
        ("AGORA_BROKER__POOL_TTL", "120s"),
        ("AGORA_BROKER__WARM_POOL", "10"),
        ("RUST_LOG", "info,agora_broker=debug"),
    ];
    let broker = broker(master.url(), &env).await;
    namespace(&broker, "batch", Some(grace)).await;
    namespace(&broker, "ci", None).await;
    namespace(&broker, "web", None).await;
    let subscribe = |name: &'static str| {
        let url = broker.url().to_owned();
        async move { Frontend::subscribe(&url, name, &[name]).await.unwrap() }
    };
    let (mut web, mut web_events) = subscribe("web").await;
    let (mut ci, mut ci_events) = subscribe("ci").await;
    let (mut owner, _owner_events) = subscribe("batch").await;
    let sleep = |id: String, cpus: f64| Task::shell(&id, "sleep 120").resources(cpus, 64.0);

    // A regular task of a third namespace on the same agents.
    let lease = web
        .acquire(
            Acquire::new("web")
                .slot(Slot::new(0.5, 64.0))
                .wait_for(SETTLE),
        )
        .await
        .unwrap()
        .remove(0);
    let web_task = web
        .launch(&lease.id, sleep("web".into(), 0.5))
        .await
        .unwrap();
    until(
        &mut web,
        &mut web_events,
        &web_task.task_id,
        &[TaskState::Running],
    )
    .await;

    // ci borrows batch's idle reserved capacity for six long tasks.
    let mut borrowed = Vec::new();
    while borrowed.len() < 6 {
        let want = 6 - borrowed.len() as u32;
        let leases = ci
            .acquire(
                Acquire::new("ci")
                    .slot(Slot::new(1.0, 64.0).count(want))
                    .revocable(api::Revocable::Require)
                    .wait_for(SETTLE),
            )
            .await
            .unwrap();
        borrowed.extend(leases);
    }
    assert!(borrowed.iter().all(|l| l.borrowed_from == "batch"));
    let mut ci_tasks = Vec::new();
    for (n, lease) in borrowed.iter().enumerate() {
        let task = ci
            .launch(&lease.id, sleep(format!("job-{n}"), 1.0))
            .await
            .unwrap();
        ci_tasks.push(task.task_id);
    }
    until_all(&mut ci, &mut ci_events, &ci_tasks, &[TaskState::Running]).await;

    // batch wants two cpus of its own back.
    let asked = std::time::Instant::now();
    let waiting = tokio::spawn({
        let mut owner = owner.clone();
        async move {
            owner
                .acquire(
                    Acquire::new("batch")
                        .slot(Slot::new(1.0, 64.0).count(2))
                        .gang()
                        .wait_for(SETTLE),
                )
                .await
        }
    });
    let notice = tokio::time::timeout(SETTLE, async {
        loop {
            let event = ci_events.next().await.unwrap().unwrap();
            if let Some(api::event::Kind::PreemptionNotice(notice)) = event.kind {
                return notice;
            }
        }
    })
    .await
    .expect("ci is warned");
    assert_eq!(notice.reclaiming_namespace, "batch");
    // Two cpus, less any batch's role already holds free: one or two tasks.
    let named = notice.task_ids.len();
    assert!((1..=2).contains(&named), "what batch needs: {notice:?}");
    let kept = 6 - named;
    assert_eq!(
        notice.task_ids,
        ci_tasks[kept..].iter().rev().cloned().collect::<Vec<_>>(),
        "the newest borrowed tasks"
    );
    if cooperate {
        let named: Vec<&str> = notice.task_ids.iter().map(String::as_str).collect();
        ci.kill(&named).await.unwrap();
    }
    until_all(
        &mut ci,
        &mut ci_events,
        &notice.task_ids,
        &[TaskState::Killed],
    )
    .await;
    let leases = waiting
        .await
        .unwrap()
        .expect("batch gets its capacity back");
    let took = asked.elapsed();
    assert_eq!(leases.len(), 2);
    owner
        .release(&[&leases[0].id, &leases[1].id], Duration::ZERO)
        .await
        .unwrap();

    let running = |tasks: &[api::TaskStatus], id: &str| {
        tasks
            .iter()
            .any(|t| t.task_id == id && t.state() == TaskState::Running)
    };
    let ci_now = ci.list_tasks().await.unwrap();
    for task in &ci_tasks[..kept] {
        assert!(
            running(&ci_now, task),
            "{task} was not reclaimed and still runs"
        );
    }
    let web_now = web.list_tasks().await.unwrap();
    assert!(
        running(&web_now, &web_task.task_id),
        "the regular task runs throughout"
    );
    took
}
