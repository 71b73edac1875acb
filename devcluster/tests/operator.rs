//! The operator API over real HTTP: GET_ROLES, weights, quota (limits over
//! a role's subtree, guarantees served first, Mesos's validation),
//! MARK_AGENT_GONE, and roles changed at run time with UPDATE_FRAMEWORK.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use agora_proto::mesos::v1::framework_info::capability::Type as CapabilityType;
use agora_proto::mesos::v1::master::{Call, call};
use agora_proto::mesos::v1::quota::QuotaConfig;
use agora_proto::mesos::v1::scheduler::{self, event};
use agora_proto::mesos::v1::{WeightInfo, value};
use common::*;

fn of(kind: call::Type) -> Call {
    Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn quota(role: &str, guarantees: &[(&str, f64)], limits: &[(&str, f64)]) -> QuotaConfig {
    let map = |pairs: &[(&str, f64)]| -> HashMap<String, value::Scalar> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), value::Scalar { value: *v }))
            .collect()
    };
    QuotaConfig {
        role: role.into(),
        guarantees: map(guarantees),
        limits: map(limits),
    }
}

fn update_quota(force: bool, configs: Vec<QuotaConfig>) -> Call {
    Call {
        update_quota: Some(call::UpdateQuota {
            force: Some(force),
            quota_configs: configs,
        }),
        ..of(call::Type::UpdateQuota)
    }
}

/// Offers minus rescinds seen on `sub` for `window`: the cpus it holds.
async fn held_cpus(
    sub: &mut Subscription,
    mut held: HashMap<String, f64>,
    window: Duration,
) -> f64 {
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, sub.next_event()).await {
        if let Some(offers) = event.offers {
            for offer in offers.offers {
                let resources =
                    devcluster::resources::Resources::from_protos(offer.resources.iter());
                held.insert(offer.id.value, resources.scalar("cpus"));
            }
        }
        if let Some(rescind) = event.rescind {
            held.remove(&rescind.offer_id.value);
        }
    }
    held.values().sum()
}

#[tokio::test]
async fn roles_weights_and_quota_limits_over_a_subtree() {
    let config = devcluster::Config {
        agents: 2,
        ..fast_config()
    };
    let cluster = start(config).await;
    let addr = cluster.local_addr();
    let mut sub = subscribe(addr, JSON, framework_info(&["eng/web"])).await;
    let offers = sub.next_offers().await;
    let held: HashMap<String, f64> = offers.iter().map(|o| (o.id.value.clone(), 4.0)).collect();

    let (status, roles, body) = operator(addr, JSON, &of(call::Type::GetRoles)).await;
    assert_eq!(status, 200, "{body}");
    let roles = roles.unwrap().get_roles.unwrap().roles;
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["eng", "eng/web"]);
    assert_eq!(roles[1].frameworks[0].value, sub.framework_id);
    assert!(roles[0].frameworks.is_empty());
    for role in &roles {
        let cpus = role.resources.iter().find(|r| r.name == "cpus").unwrap();
        assert_eq!(
            cpus.scalar.unwrap().value,
            8.0,
            "offers count for the subtree"
        );
    }

    // Weights.
    let weights = Call {
        update_weights: Some(call::UpdateWeights {
            weight_infos: vec![WeightInfo {
                weight: 2.5,
                role: Some("eng".into()),
            }],
        }),
        ..of(call::Type::UpdateWeights)
    };
    assert_eq!(operator(addr, PROTOBUF, &weights).await.0, 200);
    let (_, got, _) = operator(addr, PROTOBUF, &of(call::Type::GetWeights)).await;
    let got = got.unwrap().get_weights.unwrap().weight_infos;
    assert_eq!((got[0].role.as_deref(), got[0].weight), (Some("eng"), 2.5));
    let mut zero = weights.clone();
    zero.update_weights.as_mut().unwrap().weight_infos[0].weight = 0.0;
    assert_eq!(operator(addr, JSON, &zero).await.0, 400);

    // Mesos's quota validation.
    let (status, _, body) = operator(
        addr,
        JSON,
        &update_quota(false, vec![quota("eng/web", &[], &[("cpus", 1.0)])]),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (
            400,
            "Updating quota on nested role 'eng/web' is not supported yet"
        )
    );
    let (status, _, _) = operator(
        addr,
        JSON,
        &update_quota(
            false,
            vec![quota("eng", &[("cpus", 3.0)], &[("cpus", 2.0)])],
        ),
    )
    .await;
    assert_eq!(status, 400, "guarantees above limits");
    let (status, _, body) = operator(
        addr,
        JSON,
        &update_quota(false, vec![quota("ops", &[("cpus", 100.0)], &[])]),
    )
    .await;
    assert_eq!(status, 400, "guarantees beyond the cluster: {body}");

    // A limit on "eng" covers "eng/web": offers above it are rescinded and
    // no more than 5 cpus are held afterwards.
    let (status, _, body) = operator(
        addr,
        JSON,
        &update_quota(false, vec![quota("eng", &[], &[("cpus", 5.0)])]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let held = held_cpus(&mut sub, held, Duration::from_millis(800)).await;
    assert!(
        held <= 5.0 && held > 0.0,
        "holding {held} cpus under a limit of 5"
    );

    let (_, status, _) = operator(addr, PROTOBUF, &of(call::Type::GetQuota)).await;
    let status = status.unwrap().get_quota.unwrap().status;
    assert_eq!(status.configs.len(), 1);
    assert_eq!(status.configs[0].role, "eng");
    assert_eq!(status.configs[0].limits["cpus"].value, 5.0);

    // Empty maps reset the role to no quota.
    let (status, _, _) = operator(
        addr,
        JSON,
        &update_quota(false, vec![quota("eng", &[], &[])]),
    )
    .await;
    assert_eq!(status, 200);
    let (_, got, _) = operator(addr, JSON, &of(call::Type::GetQuota)).await;
    assert!(got.unwrap().get_quota.unwrap().status.configs.is_empty());

    // Calls the devcluster does not serve, and bad payloads.
    assert_eq!(operator(addr, JSON, &of(call::Type::GetFlags)).await.0, 501);
    assert_eq!(
        operator(addr, JSON, &of(call::Type::UpdateQuota)).await.0,
        400
    );
    let (status, _) = request_full(addr, "GET", "/api/v1", &[], Vec::new()).await;
    assert_eq!(status, 405);
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn limits_below_consumption_need_force() {
    let cluster = start(fast_config()).await;
    let addr = cluster.local_addr();
    let mut sub = subscribe(addr, JSON, framework_info(&["batch"])).await;
    let offer = sub.next_offers().await.remove(0);
    let task = command_task("busy", &offer, "cpus:2;mem:64", "sleep 30");
    sub.call(launch_call(&offer, vec![task], None)).await;
    loop {
        let update = sub.next_update().await;
        sub.acknowledge(&update).await;
        if state_name(&update) == "TASK_RUNNING" {
            break;
        }
    }
    let low = quota("batch", &[], &[("cpus", 1.0)]);
    let (status, _, body) = operator(addr, JSON, &update_quota(false, vec![low.clone()])).await;
    assert_eq!(status, 400);
    assert!(body.contains("is already consuming 'cpus:2"), "{body}");
    assert_eq!(
        operator(addr, JSON, &update_quota(true, vec![low])).await.0,
        200
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn guarantees_hold_headroom_until_their_role_comes() {
    let config = devcluster::Config {
        agents: 4,
        agent_resources: "cpus:4;mem:4096".into(),
        ..fast_config()
    };
    let cluster = start(config).await;
    let addr = cluster.local_addr();
    let prod = quota("prod", &[("cpus", 8.0)], &[("cpus", 8.0)]);
    assert_eq!(
        operator(addr, JSON, &update_quota(false, vec![prod]))
            .await
            .0,
        200
    );

    let mut dev = subscribe(addr, JSON, framework_info(&["dev"])).await;
    let dev_cpus = held_cpus(&mut dev, HashMap::new(), Duration::from_millis(600)).await;
    assert_eq!(dev_cpus, 8.0, "8 of 16 cpus are held back for prod");

    let mut prod = subscribe(addr, PROTOBUF, framework_info(&["prod"])).await;
    let prod_cpus = held_cpus(&mut prod, HashMap::new(), Duration::from_millis(600)).await;
    assert_eq!(prod_cpus, 8.0);
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn mark_agent_gone_ends_tasks_gone_by_operator() {
    let cluster = start(fast_config()).await;
    let addr = cluster.local_addr();
    let info = framework_with(&["web"], &[CapabilityType::PartitionAware]);
    let mut sub = subscribe(addr, JSON, info).await;
    let offer = sub.next_offers().await.remove(0);
    let task = command_task("doomed", &offer, "cpus:1;mem:64", "sleep 30");
    sub.call(launch_call(&offer, vec![task], None)).await;
    loop {
        let update = sub.next_update().await;
        sub.acknowledge(&update).await;
        if state_name(&update) == "TASK_RUNNING" {
            break;
        }
    }
    let gone = |agent: &str| Call {
        mark_agent_gone: Some(call::MarkAgentGone {
            agent_id: agora_proto::mesos::v1::AgentId {
                value: agent.into(),
            },
        }),
        ..of(call::Type::MarkAgentGone)
    };
    let (status, _, body) = operator(addr, JSON, &gone("nobody")).await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (404, "Agent 'nobody' not found")
    );
    assert_eq!(
        operator(addr, PROTOBUF, &gone(&offer.agent_id.value))
            .await
            .0,
        200
    );
    let update = sub.next_update().await;
    assert_eq!(state_name(&update), "TASK_GONE_BY_OPERATOR");
    assert_eq!(
        update.reason,
        Some(agora_proto::mesos::v1::task_status::Reason::AgentRemovedByOperator as i32)
    );
    let failure = sub.next_of(event::Type::Failure).await.failure.unwrap();
    assert_eq!(failure.agent_id.unwrap(), offer.agent_id);
    // Again: already gone is fine; reconciliation says the task is gone.
    assert_eq!(
        operator(addr, JSON, &gone(&offer.agent_id.value)).await.0,
        200
    );
    let reconcile = scheduler::Call {
        r#type: Some(scheduler::call::Type::Reconcile as i32),
        reconcile: Some(scheduler::call::Reconcile {
            tasks: vec![scheduler::call::reconcile::Task {
                task_id: update.task_id.clone(),
                agent_id: Some(offer.agent_id.clone()),
            }],
        }),
        ..Default::default()
    };
    sub.call(reconcile).await;
    let answer = sub.next_update().await;
    assert_eq!(state_name(&answer), "TASK_GONE_BY_OPERATOR");
    assert!(cluster.agents().is_empty());
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn update_framework_adds_and_removes_roles_at_run_time() {
    let config = devcluster::Config {
        agents: 2,
        ..fast_config()
    };
    let cluster = start(config).await;
    let addr = cluster.local_addr();
    let mut info = framework_info(&["a"]);
    let mut sub = subscribe(addr, PROTOBUF, info.clone()).await;
    info.id = Some(agora_proto::mesos::v1::FrameworkId {
        value: sub.framework_id.clone(),
    });
    let offers = sub.next_offers().await;
    assert!(offers.iter().all(|o| role_of(o) == "a"));
    // Role "a" declines everything for an hour: only new roles get offers.
    sub.call(scheduler::Call {
        r#type: Some(scheduler::call::Type::Decline as i32),
        decline: Some(scheduler::call::Decline {
            offer_ids: offers.iter().map(|o| o.id.clone()).collect(),
            filters: Some(agora_proto::mesos::v1::Filters {
                refuse_seconds: Some(3600.0),
            }),
        }),
        ..Default::default()
    })
    .await;

    let update = |roles: &[&str]| {
        let mut info = info.clone();
        info.roles = roles.iter().map(|r| r.to_string()).collect();
        scheduler::Call {
            r#type: Some(scheduler::call::Type::UpdateFramework as i32),
            update_framework: Some(scheduler::call::UpdateFramework {
                framework_info: info,
                suppressed_roles: Vec::new(),
            }),
            ..Default::default()
        }
    };
    assert_eq!(sub.call(update(&["a", "b"])).await.0, 200);
    let offers = sub.next_offers().await;
    assert!(
        offers.iter().all(|o| role_of(o) == "b"),
        "offers for the new role"
    );
    let task = command_task("in-b", &offers[0], "cpus:1;mem:64", "sleep 30");
    sub.call(launch_call(&offers[0], vec![task], Some(0.0)))
        .await;
    loop {
        let update = sub.next_update().await;
        sub.acknowledge(&update).await;
        if state_name(&update) == "TASK_RUNNING" {
            break;
        }
    }
    let (_, state) = request_full(addr, "GET", "/state", &[], Vec::new()).await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let outstanding = state["frameworks"][0]["offers"].as_array().unwrap().len();
    assert!(outstanding > 0, "role b holds offers");

    // Removing "b": its outstanding offers are rescinded, no more come, and
    // its running task is untouched.
    assert_eq!(sub.call(update(&["a"])).await.0, 200);
    let mut rescinded = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, sub.next_event()).await {
        if event.rescind.is_some() {
            rescinded += 1;
        }
        assert!(event.update.is_none(), "the task is not touched: {event:?}");
        if let Some(offers) = event.offers {
            assert!(offers.offers.iter().all(|o| role_of(o) != "b"));
        }
    }
    assert_eq!(rescinded, outstanding);
    let (_, state) = request_full(addr, "GET", "/state", &[], Vec::new()).await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(state["frameworks"][0]["tasks"][0]["role"], "b");
    cluster.shutdown().await.unwrap();
}

fn role_of(offer: &agora_proto::mesos::v1::Offer) -> &str {
    offer
        .allocation_info
        .as_ref()
        .and_then(|a| a.role.as_deref())
        .unwrap_or_default()
}
