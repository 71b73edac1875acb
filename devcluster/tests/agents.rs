//! Agents joining and leaving a running cluster, over real HTTP: new
//! agents are offered at the next cycle; a removed agent's tasks are lost,
//! its offers rescinded, and frameworks get FAILURE with its id.

mod common;

use agora_proto::mesos::v1::scheduler::event;
use agora_proto::mesos::v1::task_status::{Reason, Source};
use common::*;
use devcluster::{AgentError, AgentSpec};

#[tokio::test]
async fn agents_added_at_run_time_are_offered() {
    let cluster = start(fast_config()).await;
    let addr = cluster.local_addr();
    let mut sub = subscribe(addr, JSON, framework_info(&["web"])).await;
    let first = sub.next_offers().await;
    assert_eq!(first.len(), 1);

    let body = br#"{"resources": "cpus:2;mem:1024", "attributes": "rack:r9", "hostname": "extra.devcluster"}"#;
    let (status, answer) = request_full(
        addr,
        "POST",
        "/devcluster/agents",
        &[("Content-Type", JSON)],
        body.to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let id = answer["id"].as_str().unwrap().to_string();
    let offer = sub.next_offers().await.remove(0);
    assert_eq!(offer.agent_id.value, id);
    assert_eq!(offer.hostname, "extra.devcluster");
    assert_eq!(offer.attributes[0].name, "rack");
    let resources = devcluster::resources::Resources::from_protos(offer.resources.iter());
    assert_eq!(resources.scalar("cpus"), 2.0);
    assert_eq!(resources.scalar("mem"), 1024.0);

    // The library API; unset fields take the configured agent shape.
    let library = cluster.add_agent(&AgentSpec::default()).unwrap();
    let offer = sub.next_offers().await.remove(0);
    assert_eq!(offer.agent_id.value, library);
    let resources = devcluster::resources::Resources::from_protos(offer.resources.iter());
    assert_eq!(resources.scalar("cpus"), 4.0);
    assert_eq!(cluster.agents().len(), 3);
    let (_, listed) = request_full(addr, "GET", "/devcluster/agents", &[], Vec::new()).await;
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["agents"].as_array().unwrap().len(), 3);

    // Bad input changes nothing.
    for bad in [&br#"{"resources": "cpus:x"}"#[..], br#"{"cpu": "1"}"#, b"{"] {
        let (status, message) =
            request_full(addr, "POST", "/devcluster/agents", &[], bad.to_vec()).await;
        assert_eq!(status, 400, "{message}");
    }
    assert!(matches!(
        cluster.add_agent(&AgentSpec {
            attributes: Some("rack".into()),
            ..AgentSpec::default()
        }),
        Err(AgentError::Attributes(_))
    ));
    assert_eq!(cluster.agents().len(), 3);
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_removed_agent_loses_its_tasks_and_offers() {
    let config = devcluster::Config {
        agents: 2,
        ..fast_config()
    };
    let cluster = start(config).await;
    let addr = cluster.local_addr();
    let mut sub = subscribe(addr, PROTOBUF, framework_info(&["web"])).await;
    let offers = sub.next_offers().await;
    assert_eq!(offers.len(), 2);
    let doomed = offers[0].agent_id.value.clone();
    let task = command_task("victim", &offers[0], "cpus:1;mem:64", "sleep 30");
    sub.call(launch_call(&offers[0], vec![task], Some(0.0)))
        .await;
    loop {
        let update = sub.next_update().await;
        sub.acknowledge(&update).await;
        if state_name(&update) == "TASK_RUNNING" {
            break;
        }
    }
    // What the task left on the agent comes back as a new offer.
    let leftover = loop {
        let offers = sub.next_offers().await;
        if let Some(offer) = offers.into_iter().find(|o| o.agent_id.value == doomed) {
            break offer;
        }
    };

    let path = format!("/devcluster/agents/{doomed}");
    let (status, body) = request_full(addr, "DELETE", &path, &[], Vec::new()).await;
    assert_eq!(status, 204, "{body}");

    let (mut lost, mut rescinded, mut failure) = (None, None, None);
    while lost.is_none() || rescinded.is_none() || failure.is_none() {
        let event = sub.next_event().await.expect("stream open");
        match event::Type::try_from(event.r#type.unwrap()).unwrap() {
            event::Type::Update => lost = Some(event.update.unwrap().status),
            event::Type::Rescind => rescinded = Some(event.rescind.unwrap().offer_id),
            event::Type::Failure => failure = Some(event.failure.unwrap()),
            _ => {}
        }
    }
    let lost = lost.unwrap();
    assert_eq!(
        (lost.task_id.value.as_str(), state_name(&lost)),
        ("victim", "TASK_LOST")
    );
    assert_eq!(lost.reason, Some(Reason::AgentRemoved as i32));
    assert_eq!(lost.source, Some(Source::Master as i32));
    assert!(
        lost.uuid.is_none(),
        "master-generated: nothing to acknowledge"
    );
    assert_eq!(rescinded.unwrap(), leftover.id);
    let failure = failure.unwrap();
    assert_eq!(failure.agent_id.unwrap().value, doomed);
    assert!(failure.executor_id.is_none());

    let (_, state) = request_full(addr, "GET", "/state", &[], Vec::new()).await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["slaves"].as_array().unwrap().len(), 1);
    assert_eq!(
        state["frameworks"][0]["completed_tasks"][0]["state"],
        "TASK_LOST"
    );
    let (status, body) = request_full(addr, "DELETE", &path, &[], Vec::new()).await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (404, format!("Agent '{doomed}' not found").as_str())
    );
    assert_eq!(
        cluster.remove_agent(&doomed),
        Err(AgentError::NotFound(doomed.clone()))
    );
    cluster.shutdown().await.unwrap();
}
