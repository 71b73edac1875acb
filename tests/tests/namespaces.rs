//! Namespaces end to end: managed at run time through Admin (the role
//! reaches Mesos with UPDATE_FRAMEWORK, nothing else is disturbed), kept
//! across a restart, limits enforced, and fair shares between namespaces.

use std::time::Duration;

use agora_tests::{
    Process, SETTLE, admin, as_status, broker,
    client::{Acquire, Frontend, Slot, Task, api},
    devcluster, eventually, frontend, get_json, get_text, one_lease, post_json,
};
use api::{TaskState, admin_client::AdminClient};
use tonic::{Code, transport::Channel};

fn cpus(amount: f64) -> Option<api::Resources> {
    Some(api::Resources {
        cpus: amount,
        ..Default::default()
    })
}

async fn put(admin: &mut AdminClient<Channel>, namespace: api::Namespace) -> api::Namespace {
    admin
        .put_namespace(api::PutNamespaceRequest {
            namespace: Some(namespace),
        })
        .await
        .expect("the namespace is accepted")
        .into_inner()
}

fn namespace(name: &str, role: &str) -> api::Namespace {
    api::Namespace {
        name: name.into(),
        role: role.into(),
        ..Default::default()
    }
}

/// The roles of the one framework the devcluster knows.
async fn framework_roles(master: &Process) -> (String, Vec<String>) {
    let state = get_json(master.url(), "/state").await;
    let framework = &state["frameworks"][0];
    let roles = framework["roles"]
        .as_array()
        .map(|roles| {
            roles
                .iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    (
        framework["id"].as_str().unwrap_or_default().to_owned(),
        roles,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_added_at_run_time_gets_its_role_and_offers_and_disturbs_nothing() {
    let master = devcluster(2, &["--allocation-interval", "100ms"]).await;
    let broker = broker(master.url(), &[]).await;
    let (mut old, mut old_events) = frontend(broker.url(), "old").await;
    let lease = one_lease(&mut old, 1.0, 128.0).await;
    let long = old
        .launch(
            &lease.id,
            Task::shell("long", "sleep 60").resources(1.0, 128.0),
        )
        .await
        .unwrap();
    loop {
        let (sequence, status) = old_events.next_task_status().await.unwrap().unwrap();
        old.acknowledge(sequence).await.unwrap();
        if status.state() == TaskState::Running {
            break;
        }
    }
    let (framework_id, roles) = framework_roles(&master).await;
    assert_eq!(roles, ["default"]);

    let mut admin = admin(broker.url()).await;
    let batch = put(&mut admin, namespace("batch", "eng/batch")).await;
    assert_eq!(batch.weight, 1.0, "defaults are filled in");
    eventually(SETTLE, "the new role in the framework", || {
        let master = &master;
        async move {
            let (_, roles) = framework_roles(master).await;
            roles.contains(&"eng/batch".to_owned()).then_some(())
        }
    })
    .await;
    assert_eq!(
        framework_roles(&master).await.0,
        framework_id,
        "no resubscription"
    );

    let (mut new, mut new_events) = Frontend::subscribe(broker.url(), "new", &["batch"])
        .await
        .unwrap();
    let leases = new
        .acquire(
            Acquire::new("batch")
                .slot(Slot::new(0.5, 64.0))
                .wait_for(SETTLE),
        )
        .await
        .expect("offers of the new role flow");
    let quick = new
        .launch(
            &leases[0].id,
            Task::shell("quick", "true").resources(0.5, 64.0),
        )
        .await
        .unwrap();
    loop {
        let (sequence, status) = new_events.next_task_status().await.unwrap().unwrap();
        new.acknowledge(sequence).await.unwrap();
        assert_eq!(status.task_id, quick.task_id);
        if status.state() == TaskState::Finished {
            break;
        }
    }
    let tasks = old.list_tasks().await.unwrap();
    let running = tasks.iter().find(|t| t.task_id == long.task_id).unwrap();
    assert_eq!(
        running.state(),
        TaskState::Running,
        "the old task is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acquire_over_the_limit_is_refused_with_the_numbers() {
    let master = devcluster(1, &["--allocation-interval", "100ms"]).await;
    let broker = broker(master.url(), &[]).await;
    let mut admin = admin(broker.url()).await;
    put(
        &mut admin,
        api::Namespace {
            limit: cpus(2.0),
            ..namespace("capped", "capped")
        },
    )
    .await;
    let (mut capped, _events) = Frontend::subscribe(broker.url(), "capped", &["capped"])
        .await
        .unwrap();
    let first = Acquire::new("capped")
        .slot(Slot::new(1.5, 64.0))
        .wait_for(SETTLE);
    capped.acquire(first).await.unwrap();
    let error = capped
        .acquire(Acquire::new("capped").slot(Slot::new(1.0, 64.0)))
        .await
        .unwrap_err();
    let status = as_status(error);
    assert_eq!(status.code(), Code::ResourceExhausted);
    for fact in ["cpus", "1 asked", "1.5 in use", "limit of 2"] {
        assert!(
            status.message().contains(fact),
            "{fact}: {}",
            status.message()
        );
    }
    let usage = admin
        .get_usage(api::GetUsageRequest {
            namespace: "capped".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(usage.namespaces[0].leased.as_ref().unwrap().cpus, 1.5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_put_at_run_time_survive_a_restart() {
    let master = devcluster(1, &[]).await;
    let dir = std::env::temp_dir().join(format!("agora-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agora.redb");
    let env = [("AGORA_STORE__PATH", path.to_str().unwrap())];
    {
        let broker = broker(master.url(), &env).await;
        let mut admin = admin(broker.url()).await;
        put(
            &mut admin,
            api::Namespace {
                weight: 2.5,
                ..namespace("kept", "kept")
            },
        )
        .await;
        admin
            .delete_namespace(api::DeleteNamespaceRequest {
                name: "default".into(),
            })
            .await
            .unwrap();
        broker.kill().await;
    }
    let broker = broker(master.url(), &env).await;
    let mut admin = admin(broker.url()).await;
    let names: Vec<String> = admin
        .list_namespaces(api::ListNamespacesRequest {})
        .await
        .unwrap()
        .into_inner()
        .namespaces
        .into_iter()
        .map(|ns| ns.name)
        .collect();
    assert_eq!(
        names,
        ["kept"],
        "the put kept, the deleted one stays deleted"
    );
    let kept = admin
        .get_namespace(api::GetNamespaceRequest {
            name: "kept".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(kept.weight, 2.5);
    std::fs::remove_dir_all(&dir).ok();
}

/// Slots of waiting requests across all namespaces.
async fn waiting_slots(admin: &mut AdminClient<Channel>) -> u32 {
    let usage = admin.get_usage(api::GetUsageRequest::default()).await;
    usage
        .map(|u| {
            u.into_inner()
                .namespaces
                .iter()
                .map(|n| n.waiting_slots)
                .sum()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_and_guarantees_divide_a_contended_role() {
    let master = devcluster(
        4,
        &[
            "--simulate",
            "--agent-resources",
            "cpus:4;mem:4096",
            "--allocation-interval",
            "100ms",
        ],
    )
    .await;
    let broker = broker(master.url(), &[("RUST_LOG", "info,agora_broker=debug")]).await;
    let mut admin = admin(broker.url()).await;
    // By weight alone small would get 3 of the 16 cpus; its guarantee is 4.
    let contenders = [
        ("heavy", 3.0, 0.0),
        ("light", 1.0, 0.0),
        ("small", 1.0, 4.0),
    ];
    put(&mut admin, namespace("hog", "shared")).await;
    for (name, weight, guarantee) in contenders {
        let guarantee = (guarantee > 0.0).then(|| cpus(guarantee)).flatten();
        put(
            &mut admin,
            api::Namespace {
                weight,
                guarantee,
                ..namespace(name, "shared")
            },
        )
        .await;
    }
    // The hog holds all 16 cpus while the others queue 16 one-cpu requests
    // each; when it lets go, the 16 cpus are shared out in one step.
    let (mut hog, _hog_events) = Frontend::subscribe(broker.url(), "hog", &["hog"])
        .await
        .unwrap();
    let everything = Acquire::new("hog")
        .slot(Slot::new(1.0, 16.0).count(16))
        .gang()
        .wait_for(SETTLE);
    let held = hog
        .acquire(everything)
        .await
        .expect("the hog gets the cluster");
    let mut waiting = Vec::new();
    let mut sessions = Vec::new();
    for (name, _, _) in contenders {
        let (client, events) = Frontend::subscribe(broker.url(), name, &[name])
            .await
            .unwrap();
        sessions.push(events);
        for _ in 0..16 {
            let mut client = client.clone();
            waiting.push(tokio::spawn(async move {
                let one = Acquire::new(name)
                    .slot(Slot::new(1.0, 16.0))
                    .wait_for(Duration::from_secs(5));
                client.acquire(one).await.map(|leases| (name, leases.len()))
            }));
        }
    }
    eventually(SETTLE, "48 waiting slots", || {
        let mut admin = admin.clone();
        async move { (waiting_slots(&mut admin).await == 48).then_some(()) }
    })
    .await;
    let ids: Vec<&str> = held.iter().map(|lease| lease.id.as_str()).collect();
    hog.release(&ids, Duration::ZERO).await.unwrap();

    let mut granted = std::collections::BTreeMap::<&str, usize>::new();
    for handle in waiting {
        if let Ok((name, count)) = handle.await.unwrap() {
            *granted.entry(name).or_default() += count;
        }
    }
    eprintln!("cpus granted of 16: {granted:?}");
    assert_eq!(granted.values().sum::<usize>(), 16);
    assert_eq!(granted["small"], 4, "its guarantee first: {granted:?}");
    let ratio = granted["heavy"] as f64 / granted["light"] as f64;
    assert!((2.5..=3.5).contains(&ratio), "3:1 by weight: {granted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_quota_and_weights_reach_mesos() {
    let master = devcluster(1, &[]).await;
    let broker = broker(master.url(), &[("AGORA_MESOS__PUSH_QUOTA", "true")]).await;
    let mut admin = admin(broker.url()).await;
    put(
        &mut admin,
        api::Namespace {
            limit: cpus(2.0),
            weight: 3.0,
            ..namespace("capped", "capped")
        },
    )
    .await;
    let operator = |call: &'static str| {
        let master = &master;
        async move {
            post_json(
                master.url(),
                "/api/v1",
                &serde_json::json!({ "type": call }),
            )
            .await
        }
    };
    let limit = eventually(SETTLE, "the limit in Mesos", || async {
        let quota = operator("GET_QUOTA").await;
        let configs = quota["get_quota"]["status"]["configs"]
            .as_array()
            .cloned()?;
        let capped = configs.iter().find(|c| c["role"] == "capped")?;
        capped["limits"]["cpus"]["value"].as_f64()
    })
    .await;
    assert_eq!(limit, 2.0);
    let weights = operator("GET_WEIGHTS").await;
    let capped = weights["get_weights"]["weight_infos"]
        .as_array()
        .and_then(|infos| infos.iter().find(|w| w["role"] == "capped").cloned())
        .expect("a weight for the role");
    assert_eq!(capped["weight"].as_f64(), Some(3.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_usage_and_quota_are_scraped_from_metrics() {
    let master = devcluster(1, &["--allocation-interval", "100ms"]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let broker = broker(
        master.url(),
        &[("AGORA_TELEMETRY__METRICS_LISTEN", &metrics)],
    )
    .await;
    let mut admin = admin(broker.url()).await;
    put(
        &mut admin,
        api::Namespace {
            limit: cpus(4.0),
            weight: 2.0,
            ..namespace("default", "default")
        },
    )
    .await;
    let (mut frontend, _events) = frontend(broker.url(), "watched").await;
    one_lease(&mut frontend, 1.5, 64.0).await;
    let text = get_text(&format!("http://{metrics}"), "/metrics").await;
    for line in [
        r#"agora_namespace_used{namespace="default",resource="cpus",state="leased"} 1.5"#,
        r#"agora_namespace_limit{namespace="default",resource="cpus"} 4.0"#,
        r#"agora_namespace_weight{namespace="default"} 2.0"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}
