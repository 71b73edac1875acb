//! Oversubscription over real HTTP: revocable estimates are offered only to
//! REVOCABLE_RESOURCES frameworks, marked `revocable`; lowering an estimate
//! rescinds offers holding revocable resources and preempts the executor
//! that uses more than the new estimate.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use agora_proto::mesos::v1::Offer;
use agora_proto::mesos::v1::framework_info::capability::Type as CapabilityType;
use agora_proto::mesos::v1::scheduler::event;
use agora_proto::mesos::v1::task_status::{Reason, Source};
use common::*;

fn config() -> devcluster::Config {
    devcluster::Config {
        agent_resources: "cpus:2;mem:1024".into(),
        agent_revocable: "cpus:4".into(),
        ..fast_config()
    }
}

fn revocable_cpus(offer: &Offer) -> f64 {
    offer
        .resources
        .iter()
        .filter(|r| r.revocable.is_some() && r.name == "cpus")
        .filter_map(|r| r.scalar.map(|s| s.value))
        .sum()
}

fn with_revocable(
    command: &str,
    id: &str,
    offer: &Offer,
    cpus: f64,
) -> agora_proto::mesos::v1::TaskInfo {
    let mut task = command_task(id, offer, "mem:32", command);
    let mut cpu = offer
        .resources
        .iter()
        .find(|r| r.revocable.is_some() && r.name == "cpus")
        .unwrap()
        .clone();
    cpu.scalar = Some(agora_proto::mesos::v1::value::Scalar { value: cpus });
    task.resources.push(cpu);
    task
}

#[tokio::test]
async fn revocable_resources_only_reach_frameworks_that_take_them() {
    let cluster = start(config()).await;
    let addr = cluster.local_addr();
    let mut plain = subscribe(addr, JSON, framework_info(&["plain"])).await;
    let offers = plain
        .collect_for(event::Type::Offers, Duration::from_millis(400))
        .await;
    assert!(!offers.is_empty());
    for event in &offers {
        assert!(
            event
                .offers
                .as_ref()
                .unwrap()
                .offers
                .iter()
                .all(|o| revocable_cpus(o) == 0.0)
        );
    }
    let info = framework_with(&["rev"], &[CapabilityType::RevocableResources]);
    let mut rev = subscribe(addr, JSON, info).await;
    let offer = rev.next_offers().await.remove(0);
    assert_eq!(revocable_cpus(&offer), 4.0, "marked revocable: {offer:?}");

    let agent = &offer.agent_id.value;
    let path = format!("/devcluster/agents/{agent}/revocable");
    let (status, _) = request_full(
        addr,
        "PUT",
        &path,
        &[],
        br#"{"resources": "cpus(x):1"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400, "revocable resources cannot be reserved");
    let (status, _) = request_full(
        addr,
        "PUT",
        "/devcluster/agents/nobody/revocable",
        &[],
        br#"{"resources": "cpus:1"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 404);
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lower_estimate_rescinds_offers_and_preempts_the_revocable_executor() {
    let cluster = start(config()).await;
    let addr = cluster.local_addr();
    let info = framework_with(&["rev"], &[CapabilityType::RevocableResources]);
    let mut sub = subscribe(addr, PROTOBUF, info).await;
    let offer = sub.next_offers().await.remove(0);
    let borrowed = with_revocable("sleep 30", "borrowed", &offer, 3.0);
    let regular = command_task("regular", &offer, "cpus:1;mem:32", "sleep 30");
    sub.call(launch_call(&offer, vec![borrowed, regular], Some(0.0)))
        .await;
    let mut running = HashSet::new();
    while running.len() < 2 {
        let update = sub.next_update().await;
        sub.acknowledge(&update).await;
        if state_name(&update) == "TASK_RUNNING" {
            running.insert(update.task_id.value.clone());
        }
    }
    let leftover = loop {
        let offer = sub.next_offers().await.remove(0);
        if revocable_cpus(&offer) > 0.0 {
            break offer;
        }
    };

    cluster
        .set_revocable(&offer.agent_id.value, "cpus:1")
        .unwrap();
    let (mut rescinded, mut preempted) = (None, None);
    while rescinded.is_none() || preempted.is_none() {
        let event = sub.next_event().await.expect("stream open");
        if let Some(rescind) = event.rescind {
            rescinded = Some(rescind.offer_id);
        }
        if let Some(update) = event.update {
            assert_eq!(
                update.status.task_id.value, "borrowed",
                "the regular task lives"
            );
            preempted = Some(update.status);
        }
    }
    assert_eq!(rescinded.unwrap(), leftover.id);
    let preempted = preempted.unwrap();
    assert_eq!(state_name(&preempted), "TASK_LOST");
    assert_eq!(preempted.reason, Some(Reason::ContainerPreempted as i32));
    assert_eq!(preempted.source, Some(Source::Agent as i32));
    assert!(preempted.uuid.is_some(), "an agent update, acknowledged");
    sub.acknowledge(&preempted).await;

    // What is offered next holds at most the new estimate.
    let next = sub.next_offers().await.remove(0);
    assert!(revocable_cpus(&next) <= 1.0);
    let (_, state) = request_full(addr, "GET", "/state", &[], Vec::new()).await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let tasks = state["frameworks"][0]["tasks"].as_array().unwrap();
    assert!(
        tasks
            .iter()
            .any(|t| t["id"] == "regular" && t["state"] == "TASK_RUNNING")
    );
    cluster.shutdown().await.unwrap();
}
