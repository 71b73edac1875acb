//! Frontends as operators see and steer them, end to end: Admin
//! ListFrontends shows each frontend with its leases and tasks, Admin
//! DrainFrontend takes a frontend's leases back, refuses its acquires and
//! kills its tasks until the drain is undone, and a frontend that holds
//! nothing is forgotten after the broker's frontend retention.

use std::time::SystemTime;

use agora_tests::{
    Process, SETTLE, admin, as_status, broker,
    client::{Acquire, Events, Frontend, Slot, Task, api},
    devcluster, eventually, frontend, has_reason, one_lease,
};
use api::{TaskState, admin_client::AdminClient, event::Kind, lease_lost::Reason};
use tonic::{Code, Status, transport::Channel};

async fn cluster(env: &[(&str, &str)]) -> (Process, Process) {
    let master = devcluster(2, &["--allocation-interval", "100ms"]).await;
    let broker = broker(master.url(), env).await;
    (master, broker)
}

async fn list(admin: &mut AdminClient<Channel>) -> Vec<api::Frontend> {
    admin
        .list_frontends(api::ListFrontendsRequest {})
        .await
        .expect("ListFrontends answers")
        .into_inner()
        .frontends
}

async fn find(admin: &mut AdminClient<Channel>, name: &str) -> Option<api::Frontend> {
    list(admin).await.into_iter().find(|f| f.name == name)
}

async fn drain(
    admin: &mut AdminClient<Channel>,
    name: &str,
    kill_tasks: bool,
) -> Result<api::DrainFrontendResponse, Status> {
    let request = api::DrainFrontendRequest {
        name: name.into(),
        kill_tasks,
        undo: false,
    };
    Ok(admin.drain_frontend(request).await?.into_inner())
}

/// Launches a task that runs until killed and waits until it runs,
/// acknowledging its statuses; its id.
async fn running_task(frontend: &mut Frontend, events: &mut Events, lease: &str) -> String {
    let task = Task::shell("long", "sleep 60").resources(0.5, 64.0);
    let launched = frontend.launch(lease, task).await.expect("the launch");
    loop {
        let (sequence, status) = tokio::time::timeout(SETTLE, events.next_task_status())
            .await
            .expect("a status within the settle time")
            .expect("the stream stays up")
            .expect("the stream stays open");
        frontend.acknowledge(sequence).await.expect("acknowledge");
        if status.state() == TaskState::Running {
            return launched.task_id;
        }
    }
}

fn seconds_ago(at: Option<&prost_types::Timestamp>) -> i64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs();
    i64::try_from(now).expect("a sane clock") - at.expect("a timestamp").seconds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_frontends_shows_each_frontend_with_its_leases_and_tasks() {
    let (_master, broker) = cluster(&[]).await;
    let mut admin = admin(broker.url()).await;
    let (mut busy, mut busy_events) = frontend(broker.url(), "busy").await;
    let launched_on = one_lease(&mut busy, 0.5, 64.0).await;
    one_lease(&mut busy, 0.5, 64.0).await;
    running_task(&mut busy, &mut busy_events, &launched_on.id).await;
    let (_, idle_events) = frontend(broker.url(), "idle").await;
    drop(idle_events);

    let idle = eventually(SETTLE, "the idle frontend's session to end", || {
        let mut admin = admin.clone();
        async move { find(&mut admin, "idle").await.filter(|f| f.sessions == 0) }
    })
    .await;
    assert!(seconds_ago(idle.last_seen.as_ref()) < 30, "{idle:?}");
    assert!(idle.forget_at.is_some(), "it holds nothing: {idle:?}");

    let busy = find(&mut admin, "busy").await.expect("busy is listed");
    assert_eq!(busy.namespaces, ["default"]);
    assert_eq!(
        (
            busy.sessions,
            busy.leases,
            busy.live_tasks,
            busy.waiting_requests
        ),
        (1, 1, 1, 0),
        "{busy:?}"
    );
    assert_eq!(
        busy.unacknowledged_events, 0,
        "every status was acknowledged"
    );
    assert!(!busy.draining && busy.draining_since.is_none());
    assert!(busy.forget_at.is_none(), "it holds a lease and a task");
    assert!(seconds_ago(busy.last_seen.as_ref()) < 5, "live: seen now");

    let unknown = drain(&mut admin, "nobody", false).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    assert!(has_reason(&unknown, "FRONTEND_NOT_FOUND"), "{unknown:?}");
    for bad in [String::new(), "x".repeat(257)] {
        let refused = drain(&mut admin, &bad, false).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().starts_with("name: "), "{refused:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_takes_leases_refuses_acquires_and_kills_tasks_until_undone() {
    let (_master, broker) = cluster(&[]).await;
    let mut admin = admin(broker.url()).await;
    let (mut bystander, _bystander_events) = frontend(broker.url(), "bystander").await;
    one_lease(&mut bystander, 0.5, 64.0).await;
    let (mut drained, mut events) = frontend(broker.url(), "drained").await;
    let held = one_lease(&mut drained, 0.5, 64.0).await;
    let launched_on = one_lease(&mut drained, 0.5, 64.0).await;
    let task_id = running_task(&mut drained, &mut events, &launched_on.id).await;
    let mut waiter = drained.clone();
    let waiting = tokio::spawn(async move {
        let too_big = Acquire::new("default")
            .slot(Slot::new(1000.0, 64.0))
            .wait_for(SETTLE);
        waiter.acquire(too_big).await
    });
    eventually(SETTLE, "the big acquire to wait", || {
        let mut admin = admin.clone();
        async move {
            let frontend = find(&mut admin, "drained").await?;
            (frontend.waiting_requests == 1).then_some(())
        }
    })
    .await;

    let report = drain(&mut admin, "drained", true).await.expect("a drain");
    assert_eq!(
        (
            report.leases_released,
            report.requests_refused,
            report.tasks_killed
        ),
        (1, 1, 1),
        "{report:?}"
    );
    let frontend = report.frontend.expect("the frontend after the drain");
    assert!(frontend.draining && frontend.draining_since.is_some());
    assert_eq!((frontend.leases, frontend.waiting_requests), (0, 0));
    assert!(!report.complete, "the task is killed, not yet dead");

    let refused = as_status(waiting.await.unwrap().unwrap_err());
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(has_reason(&refused, "FRONTEND_DRAINING"), "{refused:?}");

    // The frontend hears of both, on the stream it kept.
    let (mut lost, mut killed) = (false, false);
    while !(lost && killed) {
        let event = tokio::time::timeout(SETTLE, events.next())
            .await
            .expect("the lease and the task within the settle time")
            .expect("the stream stays up")
            .expect("the session stays open during a drain");
        match event.kind {
            Some(Kind::LeaseLost(lease_lost)) => {
                assert_eq!(lease_lost.lease_id, held.id);
                assert_eq!(lease_lost.reason(), Reason::Drained);
                lost = true;
            }
            Some(Kind::TaskStatus(status)) if status.task_id == task_id => {
                killed |= status.state() == TaskState::Killed;
            }
            _ => {}
        }
        if event.sequence > 0 {
            drained
                .acknowledge(event.sequence)
                .await
                .expect("acknowledge");
        }
    }

    let again = drained
        .acquire(Acquire::new("default").slot(Slot::new(0.5, 64.0)))
        .await
        .unwrap_err();
    let again = as_status(again);
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert!(has_reason(&again, "FRONTEND_DRAINING"), "{again:?}");

    let repeated = drain(&mut admin, "drained", false).await.unwrap();
    assert!(repeated.complete, "{repeated:?}");
    assert_eq!(repeated.leases_released + repeated.tasks_killed, 0);
    let listed = find(&mut admin, "drained").await.unwrap();
    assert!(listed.draining && listed.live_tasks == 0, "{listed:?}");
    assert_eq!(listed.sessions, 1, "its session stays open");
    assert_eq!(bystander.list_leases().await.unwrap().len(), 1);

    let undo = |kill_tasks| api::DrainFrontendRequest {
        name: "drained".into(),
        kill_tasks,
        undo: true,
    };
    let both = admin.drain_frontend(undo(true)).await.unwrap_err();
    assert_eq!(both.code(), Code::InvalidArgument, "{both:?}");
    let undone = admin
        .drain_frontend(undo(false))
        .await
        .unwrap()
        .into_inner();
    assert!(!undone.frontend.unwrap().draining);
    one_lease(&mut drained, 0.5, 64.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_that_holds_nothing_is_forgotten_after_the_retention() {
    let (_master, broker) = cluster(&[("AGORA_BROKER__FRONTEND_RETENTION", "1s")]).await;
    let mut admin = admin(broker.url()).await;
    let (mut keeps, mut keeps_events) = frontend(broker.url(), "keeps").await;
    let lease = one_lease(&mut keeps, 0.5, 64.0).await;
    running_task(&mut keeps, &mut keeps_events, &lease.id).await;
    drop(keeps_events);
    let (_, passing_events) = frontend(broker.url(), "passing").await;
    drop(passing_events);

    eventually(SETTLE, "the frontend that held nothing to go", || {
        let mut admin = admin.clone();
        async move {
            let names: Vec<String> = list(&mut admin).await.into_iter().map(|f| f.name).collect();
            (!names.contains(&"passing".to_owned())).then_some(())
        }
    })
    .await;
    let gone = drain(&mut admin, "passing", false).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    let kept = find(&mut admin, "keeps")
        .await
        .expect("a frontend with a live task stays");
    assert_eq!((kept.sessions, kept.live_tasks), (0, 1), "{kept:?}");
    assert!(kept.forget_at.is_none(), "{kept:?}");
}
