//! The vertical slice over real HTTP: subscribe, offers, ACCEPT a LAUNCH
//! of `echo hello`, statuses STARTING → RUNNING → FINISHED with uuids,
//! one update in flight at a time, retries until acknowledged; and no
//! process of a task's group outlives the task, whether it finishes or
//! is killed.

mod common;

use std::time::Duration;

use agora_proto::mesos::v1::TaskId;
use agora_proto::mesos::v1::scheduler::{Call, call, event};
use common::*;

#[tokio::test]
async fn launches_a_command_task_and_delivers_acknowledged_statuses() {
    for media in [JSON, PROTOBUF] {
        let cluster = start(fast_config()).await;
        let mut sub = subscribe(cluster.local_addr(), media, framework_info(&["web"])).await;
        assert_eq!(sub.content_type, media);
        let offers = sub.next_offers().await;
        assert_eq!(offers.len(), 1);
        let offer = &offers[0];
        assert_eq!(
            offer.allocation_info.as_ref().unwrap().role.as_deref(),
            Some("web")
        );
        assert!(
            offer
                .resources
                .iter()
                .all(|r| { r.allocation_info.as_ref().unwrap().role.as_deref() == Some("web") })
        );
        let task = command_task("hello-1", offer, "cpus:0.5;mem:64", "echo hello");
        let (status, body) = sub.call(launch_call(offer, vec![task], None)).await;
        assert_eq!(status, 202, "{body}");

        let mut states = Vec::new();
        loop {
            let update = sub.next_update().await;
            assert_eq!(update.task_id.value, "hello-1");
            assert_eq!(update.uuid.as_ref().map(Vec::len), Some(16));
            assert_eq!(update.agent_id, Some(offer.agent_id.clone()));
            assert!(update.executor_id.is_some());
            assert!(update.timestamp.is_some());
            assert_eq!(sub.acknowledge(&update).await, 202);
            states.push(state_name(&update));
            if states.last() == Some(&"TASK_FINISHED") {
                break;
            }
        }
        assert_eq!(
            states,
            ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"],
            "{media}"
        );
        cluster.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn unacknowledged_updates_are_retried_and_block_the_next() {
    let cluster = start(fast_config()).await;
    let mut sub = subscribe(cluster.local_addr(), JSON, framework_info(&["web"])).await;
    let offer = sub.next_offers().await.remove(0);
    let task = command_task("t", &offer, "cpus:0.1;mem:32", "true");
    sub.call(launch_call(&offer, vec![task], None)).await;

    let first = sub.next_update().await;
    assert_eq!(state_name(&first), "TASK_STARTING");
    // Not acknowledged: the same update comes again, and nothing else.
    let again = sub
        .collect_for(event::Type::Update, Duration::from_millis(1000))
        .await;
    assert!(!again.is_empty());
    for event in &again {
        let status = &event.update.as_ref().unwrap().status;
        assert_eq!(status.uuid, first.uuid);
    }
    assert_eq!(sub.acknowledge(&first).await, 202);
    let running = sub.next_update().await;
    assert_eq!(state_name(&running), "TASK_RUNNING");
    sub.acknowledge(&running).await;
    let finished = sub.next_update().await;
    assert_eq!(state_name(&finished), "TASK_FINISHED");
    cluster.shutdown().await.unwrap();
}

/// Launches `command` (with `$SCRATCH` set to `scratch`) and waits until
/// it runs, acknowledging its updates.
async fn launch_running(sub: &mut Subscription, id: &str, scratch: &Scratch, command: &str) {
    let offer = sub.next_offers().await.remove(0);
    let command = format!("SCRATCH='{}'; {command}", scratch.0.display());
    let task = command_task(id, &offer, "cpus:0.1;mem:32", &command);
    let (status, body) = sub.call(launch_call(&offer, vec![task], None)).await;
    assert_eq!(status, 202, "{body}");
    loop {
        let update = sub.next_update().await;
        assert_eq!(sub.acknowledge(&update).await, 202);
        if state_name(&update) == "TASK_RUNNING" {
            return;
        }
    }
}

/// The terminal state of the task, acknowledging every update. Fails
/// after 30 s (heartbeats would keep a plain wait going forever).
async fn terminal_state(sub: &mut Subscription) -> &'static str {
    let terminal = async {
        loop {
            let update = sub.next_update().await;
            assert_eq!(sub.acknowledge(&update).await, 202);
            let state = state_name(&update);
            if !matches!(state, "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING") {
                return state;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), terminal)
        .await
        .expect("a terminal state within 30 s")
}

/// A shell task's background job that ignores SIGTERM and records its
/// pid, then the shell's own pid, then `rest` (shell syntax).
fn shell_with_stubborn_child(rest: &str) -> String {
    format!(
        "(trap '' TERM; exec sleep 600) & echo $! > \"$SCRATCH/child.pid\"; \
         echo $$ > \"$SCRATCH/shell.pid\"; {rest}"
    )
}

#[tokio::test]
async fn kill_ends_every_process_of_a_shell_tasks_group() {
    let scratch = Scratch::new();
    let cluster = start(fast_config()).await;
    let mut sub = subscribe(cluster.local_addr(), JSON, framework_info(&["web"])).await;
    launch_running(&mut sub, "k", &scratch, &shell_with_stubborn_child("wait")).await;
    let shell = pid_in(&scratch.0.join("shell.pid")).await;
    let reaper = Reaper(vec![pid_in(&scratch.0.join("child.pid")).await, shell]);

    let kill = Call {
        r#type: Some(call::Type::Kill as i32),
        kill: Some(call::Kill {
            task_id: TaskId { value: "k".into() },
            agent_id: None,
            kill_policy: None,
        }),
        ..Default::default()
    };
    let (status, body) = sub.call(kill).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(terminal_state(&mut sub).await, "TASK_KILLED");
    assert_group_ends(shell.pid).await;
    drop(reaper);
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_finished_task_leaves_no_process_of_its_group() {
    let scratch = Scratch::new();
    let cluster = start(fast_config()).await;
    let mut sub = subscribe(cluster.local_addr(), JSON, framework_info(&["web"])).await;
    let command =
        shell_with_stubborn_child("while [ ! -e \"$SCRATCH/finish\" ]; do sleep 0.05; done");
    launch_running(&mut sub, "f", &scratch, &command).await;
    let shell = pid_in(&scratch.0.join("shell.pid")).await;
    let reaper = Reaper(vec![pid_in(&scratch.0.join("child.pid")).await, shell]);
    // Running, with its guard: the group has more than the shell.
    assert!(
        group_members(shell.pid).len() >= 3,
        "{:?}",
        group_members(shell.pid)
    );

    std::fs::write(scratch.0.join("finish"), "").unwrap();
    assert_eq!(terminal_state(&mut sub).await, "TASK_FINISHED");
    assert_group_ends(shell.pid).await;
    drop(reaper);
    cluster.shutdown().await.unwrap();
}

/// Waits for every process of process group `group` to be gone, failing
/// with the ones left.
async fn assert_group_ends(group: i32) {
    let gone = eventually(Duration::from_secs(5), || group_members(group).is_empty()).await;
    assert!(gone, "left of the group: {:?}", group_members(group));
}
