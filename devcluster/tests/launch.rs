//! The vertical slice over real HTTP: subscribe, offers, ACCEPT a LAUNCH
//! of `echo hello`, statuses STARTING → RUNNING → FINISHED with uuids,
//! one update in flight at a time, retries until acknowledged.

mod common;

use std::time::Duration;

use agora_proto::mesos::v1::scheduler::event;
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
