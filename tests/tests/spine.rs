//! The walking skeleton, end to end: a standalone devcluster process, the
//! broker process against it, and frontends over real gRPC.

use agora_tests::{
    SETTLE, as_status, broker,
    client::{Acquire, Frontend, Slot, Task, api},
    devcluster, eventually, frontend, one_lease,
};
use api::TaskState;
use tonic::Code;

/// Settings that keep offers in the pool for the whole test, so pool
/// accounting can be checked without offers being declined under us, and a
/// warm pool larger than the cluster, so the role is never suppressed and
/// what tasks leave is offered again.
const BROKER_ENV: &[(&str, &str)] = &[
    ("AGORA_BROKER__POOL_TTL", "120s"),
    ("AGORA_BROKER__WARM_POOL", "10"),
    ("RUST_LOG", "info,agora_broker=debug"),
];

async fn cluster() -> (agora_tests::Process, agora_tests::Process) {
    let master = devcluster(3, &["--allocation-interval", "100ms"]).await;
    let broker = broker(master.url(), BROKER_ENV).await;
    (master, broker)
}

/// Waits for the states of one task, acknowledging each, until a terminal one.
async fn watch_task(
    frontend: &mut Frontend,
    events: &mut agora_tests::client::Events,
    task_id: &str,
) -> Vec<TaskState> {
    let mut states = Vec::new();
    loop {
        let (sequence, status) = tokio::time::timeout(SETTLE, events.next_task_status())
            .await
            .expect("a status within the settle time")
            .expect("the stream stays healthy")
            .expect("the stream stays open");
        assert_eq!(
            status.task_id, task_id,
            "only this frontend's task reaches it"
        );
        frontend.acknowledge(sequence).await.expect("acknowledge");
        let state = status.state();
        states.push(state);
        if !matches!(
            state,
            TaskState::Staging | TaskState::Starting | TaskState::Running
        ) {
            return states;
        }
    }
}

async fn pooled_cpus(frontend: &mut Frontend) -> f64 {
    let agents = frontend.list_agents().await.expect("list agents");
    agents
        .iter()
        .map(|agent| agent.pooled.as_ref().map_or(0.0, |r| r.cpus))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_frontends_acquire_launch_and_watch_their_own_tasks() {
    let (_master, broker) = cluster().await;
    let (mut alice, mut alice_events) = frontend(broker.url(), "alice").await;
    let (mut bob, mut bob_events) = frontend(broker.url(), "bob").await;

    let want = |cpus| {
        Acquire::new("default")
            .slot(Slot::new(cpus, 256.0))
            .wait_for(SETTLE)
    };
    let (alice_leases, bob_leases) = tokio::join!(alice.acquire(want(1.0)), bob.acquire(want(1.0)));
    let alice_lease = alice_leases.unwrap().remove(0);
    let bob_lease = bob_leases.unwrap().remove(0);
    assert_ne!(alice_lease.id, bob_lease.id);
    assert_eq!(alice_lease.resources.as_ref().unwrap().cpus, 1.0);

    // Alice's task uses half her lease; the other half returns to the pool.
    let alice_task = alice
        .launch(
            &alice_lease.id,
            Task::shell("hello", "echo hello").resources(0.5, 128.0),
        )
        .await
        .unwrap();
    let bob_task = bob
        .launch(
            &bob_lease.id,
            Task::shell("world", "echo world").resources(1.0, 256.0),
        )
        .await
        .unwrap();

    let (alice_states, bob_states) = tokio::join!(
        watch_task(&mut alice, &mut alice_events, &alice_task.task_id),
        watch_task(&mut bob, &mut bob_events, &bob_task.task_id),
    );
    for states in [alice_states, bob_states] {
        assert_eq!(
            states,
            vec![TaskState::Starting, TaskState::Running, TaskState::Finished]
        );
    }

    // Every cpu is back in the pool: the lease leftover and both tasks' share.
    eventually(SETTLE, "all 12 cpus pooled again", || {
        let mut alice = alice.clone();
        async move { (pooled_cpus(&mut alice).await >= 12.0 - 1e-9).then_some(()) }
    })
    .await;
    assert!(alice.list_leases().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let (_master, broker) = cluster().await;
    let (mut frontend, _events) = frontend(broker.url(), "careful").await;

    for (cpus, what) in [
        (-1.0, "negative"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "infinite"),
    ] {
        let error = frontend
            .acquire(Acquire::new("default").slot(Slot::new(cpus, 64.0)))
            .await
            .unwrap_err();
        let status = as_status(error);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(
            status.message().contains("cpus"),
            "{what}: {}",
            status.message()
        );
    }

    let error = frontend
        .launch(
            "no-such-lease",
            Task::shell("t", "true").resources(0.1, 16.0),
        )
        .await
        .unwrap_err();
    assert_eq!(as_status(error).code(), Code::NotFound);

    let lease = one_lease(&mut frontend, 0.5, 64.0).await;
    let error = frontend
        .launch(&lease.id, Task::shell("big", "true").resources(2.0, 64.0))
        .await
        .unwrap_err();
    let status = as_status(error);
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("cpus"), "{}", status.message());

    // The lease is untouched and still launches.
    assert_eq!(frontend.list_leases().await.unwrap().len(), 1);
    frontend
        .launch(&lease.id, Task::shell("fits", "true").resources(0.5, 64.0))
        .await
        .expect("the refused launch left the lease usable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_group_runs_under_one_executor() {
    let (_master, broker) = cluster().await;
    let (mut frontend, mut events) = frontend(broker.url(), "pods").await;
    let lease = one_lease(&mut frontend, 1.0, 512.0).await;
    let launched = frontend
        .launch_group(
            &lease.id,
            vec![
                Task::shell("web", "echo web").resources(0.4, 128.0),
                Task::shell("sidecar", "echo sidecar").resources(0.4, 128.0),
            ],
        )
        .await
        .unwrap();
    assert_eq!(launched.len(), 2);
    let mut finished = std::collections::BTreeSet::new();
    while finished.len() < 2 {
        let (sequence, status) = tokio::time::timeout(SETTLE, events.next_task_status())
            .await
            .expect("statuses within the settle time")
            .unwrap()
            .unwrap();
        frontend.acknowledge(sequence).await.unwrap();
        match status.state() {
            TaskState::Finished => {
                finished.insert(status.client_task_id);
            }
            TaskState::Staging | TaskState::Starting | TaskState::Running => {}
            other => panic!(
                "{} ended {other:?}: {}",
                status.client_task_id, status.message
            ),
        }
    }
    assert_eq!(finished, ["sidecar".to_owned(), "web".to_owned()].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_serving_only_while_subscribed_to_mesos() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let (master, broker) = cluster().await;
    let channel = channel_to(broker.url()).await;
    let health = HealthClient::new(channel);
    let status_is = |wanted: ServingStatus| {
        let health = health.clone();
        move || {
            let mut health = health.clone();
            async move {
                let request = HealthCheckRequest {
                    service: "agora.v1.Broker".into(),
                };
                let status = health.check(request).await.ok()?.into_inner().status();
                (status == wanted).then_some(())
            }
        }
    };
    eventually(
        SETTLE,
        "SERVING once subscribed",
        status_is(ServingStatus::Serving),
    )
    .await;
    drop(master);
    eventually(
        SETTLE,
        "NOT_SERVING once Mesos is gone",
        status_is(ServingStatus::NotServing),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_in_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let (_master, broker) = cluster().await;
    let channel = channel_to(broker.url()).await;
    let wanted = ["agora.v1.Admin", "agora.v1.Broker", "grpc.health.v1.Health"];

    let request = v1::ServerReflectionRequest {
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ..Default::default()
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap().message_response;
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) = answer
    else {
        panic!("v1 answered {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in wanted {
        assert!(names.iter().any(|n| n == service), "v1 lists {names:?}");
    }

    let request = v1alpha::ServerReflectionRequest {
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
        ..Default::default()
    };
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap().message_response;
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        answer
    else {
        panic!("v1alpha answered {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in wanted {
        assert!(
            names.iter().any(|n| n == service),
            "v1alpha lists {names:?}"
        );
    }
}

/// A plain gRPC channel to the broker at `url`, for the services the SDK
/// does not wrap (health, reflection).
async fn channel_to(url: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap()
}
