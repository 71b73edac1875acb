//! `agora teardown` retires the framework: Mesos kills its tasks and the
//! framework moves to the master's completed frameworks.

use agora_tests::{
    SETTLE, binary_path, broker,
    client::{Frontend, Task, api::TaskState},
    devcluster, eventually, get_json, one_lease,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn teardown_kills_the_frameworks_tasks_and_retires_it() {
    let master = devcluster(1, &["--allocation-interval", "100ms"]).await;
    let broker = broker(master.url(), &[]).await;
    let (mut frontend, mut events) = Frontend::subscribe(broker.url(), "ops", &["default"])
        .await
        .unwrap();
    let lease = one_lease(&mut frontend, 0.5, 64.0).await;
    frontend
        .launch(
            &lease.id,
            Task::shell("long", "sleep 60").resources(0.5, 64.0),
        )
        .await
        .unwrap();
    loop {
        let (sequence, status) = events.next_task_status().await.unwrap().unwrap();
        frontend.acknowledge(sequence).await.unwrap();
        if status.state() == TaskState::Running {
            break;
        }
    }
    let state = get_json(master.url(), "/state").await;
    let framework_id = state["frameworks"][0]["id"].as_str().unwrap().to_owned();
    drop((frontend, events, broker));

    let output = tokio::process::Command::new(binary_path("agora"))
        .args([
            "teardown",
            "--master",
            master.url(),
            "--framework-id",
            &framework_id,
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("framework {framework_id} torn down")),
        "{stdout}"
    );

    let retired = eventually(SETTLE, "the framework among completed ones", || async {
        let state = get_json(master.url(), "/state").await;
        let completed = state["completed_frameworks"].as_array()?.first()?.clone();
        (completed["id"] == framework_id.as_str()).then_some(completed)
    })
    .await;
    let killed = &retired["completed_tasks"][0];
    assert_eq!(killed["state"], "TASK_KILLED", "{retired:#}");
}
