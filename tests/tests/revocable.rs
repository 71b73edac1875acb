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

/// Acknowledges statuses of `task_id` until one in `states`; its status.
async fn until(
    frontend: &mut Frontend,
    events: &mut Events,
    task_id: &str,
    states: &[TaskState],
) -> api::TaskStatus {
    tokio::time::timeout(SETTLE, async {
        loop {
            let (sequence, status) = events.next_task_status().await.unwrap().unwrap();
            frontend.acknowledge(sequence).await.unwrap();
            if status.task_id == task_id && states.contains(&status.state()) {
                return status;
            }
        }
    })
    .await
    .expect("the task reaches the state in time")
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
