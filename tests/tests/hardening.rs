//! What one careless or hostile caller can do to everyone else: requests
//! past every bound are refused at once and the broker keeps serving the
//! others; nothing accepted is dropped silently; a lost Mesos is reported,
//! not dressed up as a timeout.

use std::time::{Duration, Instant};

use agora_tests::{
    SETTLE, as_status, broker,
    client::{Acquire, Slot, Task, api},
    devcluster, frontend, one_lease,
};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_count_is_refused_at_once_and_others_are_served() {
    let master = devcluster(2, &["--allocation-interval", "100ms"]).await;
    let broker = broker(master.url(), &[]).await;
    let (mut attacker, _attacker_events) = frontend(broker.url(), "attacker").await;
    let (mut victim, _victim_events) = frontend(broker.url(), "victim").await;

    let started = Instant::now();
    let huge = Acquire::new("default").slot(Slot::new(0.1, 16.0).count(u32::MAX));
    let status = as_status(attacker.acquire(huge).await.unwrap_err());
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "slots[0].count: at most 256 allowed, 4294967295 given"
    );
    let too_many = Acquire::new("default").slot(Slot::new(0.01, 1.0).count(10_000));
    assert_eq!(
        as_status(attacker.acquire(too_many).await.unwrap_err()).code(),
        Code::InvalidArgument
    );
    assert!(
        started.elapsed() < SETTLE,
        "refusals come without waiting on the core"
    );
    one_lease(&mut victim, 0.5, 64.0).await;

    let larger_than_any_agent = Acquire::new("default").slot(Slot::new(100.0, 64.0));
    let status = as_status(victim.acquire(larger_than_any_agent).await.unwrap_err());
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("slots[0] needs 100 cpus"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_launches_on_one_lease_fail_whole_and_bad_task_ids_are_refused() {
    let master = devcluster(1, &["--allocation-interval", "100ms"]).await;
    let broker = broker(master.url(), &[]).await;
    let (mut fe, _events) = frontend(broker.url(), "careless").await;
    let lease = one_lease(&mut fe, 1.0, 128.0).await;

    let task = |id: &str| api::Launch {
        lease_id: lease.id.clone(),
        work: Some(api::launch::Work::Task(
            Task::shell(id, "sleep 60").resources(0.25, 32.0).into(),
        )),
    };
    let session_id = fe.session_id().to_owned();
    let twice = api::LaunchRequest {
        session_id: session_id.clone(),
        launches: vec![task("first"), task("second")],
    };
    let status = fe.raw().launch(twice).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("launches[1].lease_id: "),
        "{}",
        status.message()
    );
    assert!(fe.list_tasks().await.unwrap().is_empty(), "nothing started");

    for bad in ["a/b", "bell\u{7}", ".."] {
        let request = api::LaunchRequest {
            session_id: session_id.clone(),
            launches: vec![task(bad)],
        };
        let status = fe.raw().launch(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}");
        assert!(status.message().starts_with("launches[0].task.id: "));
    }
    let idle = api::LaunchRequest {
        session_id,
        launches: vec![api::Launch {
            lease_id: lease.id.clone(),
            work: Some(api::launch::Work::Task(
                Task::shell("idle", "true").resources(0.0, 0.0).into(),
            )),
        }],
    };
    let status = fe.raw().launch(idle).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(fe.list_tasks().await.unwrap().is_empty());
    assert_eq!(fe.list_leases().await.unwrap(), vec![lease], "lease intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_bounded_and_checked() {
    let master = devcluster(1, &[]).await;
    let broker = broker(master.url(), &[]).await;
    for bad in ["x".repeat(1 << 20), "*".into(), "..".into(), "a/b".into()] {
        let error = agora_tests::client::Frontend::subscribe(broker.url(), &bad, &["default"])
            .await
            .err()
            .unwrap_or_else(|| panic!("{} subscribed", &bad[..bad.len().min(10)]));
        let status = as_status(error);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with("frontend: "));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_mesos_is_announced_and_answered_unavailable() {
    let master = devcluster(1, &["--allocation-interval", "100ms"]).await;
    let broker = broker(master.url(), &[]).await;
    let (mut fe, mut events) = frontend(broker.url(), "watcher").await;
    drop(master);

    let lost = connection_event(&mut events).await;
    assert!(!lost.connected);
    assert!(!lost.reason.is_empty(), "says why");
    let request = Acquire::new("default")
        .slot(Slot::new(0.5, 64.0))
        .wait_for(Duration::from_secs(5));
    let status = as_status(fe.acquire(request).await.unwrap_err());
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());

    let (_late, mut late_events) = frontend(broker.url(), "late").await;
    assert!(
        !connection_event(&mut late_events).await.connected,
        "a session opened while Mesos is lost is told at once"
    );
}

/// The next MesosConnection event on the stream.
async fn connection_event(events: &mut agora_tests::client::Events) -> api::MesosConnection {
    loop {
        let event = tokio::time::timeout(SETTLE, events.next())
            .await
            .expect("an event within the settle time")
            .expect("the stream stays healthy")
            .expect("the stream stays open");
        if let Some(api::event::Kind::MesosConnection(connection)) = event.kind {
            return connection;
        }
    }
}

/// A message that Acquire cannot decode: field 3 (`slots`, a message) sent
/// as a number.
#[derive(Clone, PartialEq, prost::Message)]
struct NotAnAcquire {
    #[prost(uint64, tag = "3")]
    slots: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_request_is_the_callers_error() {
    let master = devcluster(1, &[]).await;
    let broker = broker(master.url(), &[]).await;
    let channel = tonic::transport::Endpoint::from_shared(broker.url().to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<NotAnAcquire, api::AcquireResponse>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/agora.v1.Broker/Acquire");
    let status = grpc
        .unary(tonic::Request::new(NotAnAcquire { slots: 7 }), path, codec)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert!(
        status
            .message()
            .starts_with("the request is not a valid AcquireRequest"),
        "{}",
        status.message()
    );
}
