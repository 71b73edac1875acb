//! The master decides from the `now` and the seed it is given and from
//! nothing else: these tests run it at made-up times, seconds or minutes
//! away from the real clock's, and see every deadline and every timestamp
//! follow them; and a master given the same seed and the same inputs
//! sends the same events, ids and uuids included.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agora_proto::mesos::v1::offer::{Operation, operation};
use agora_proto::mesos::v1::scheduler::{Event, call, event};
use agora_proto::mesos::v1::{CommandInfo, FrameworkInfo, TaskId, TaskInfo};
use serde_json::json;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::model::{Connection, Master};
use crate::clock::Now;
use crate::config::Config;
use crate::resources::parse_resources;

/// The Unix time the made-up clock starts at.
const EPOCH: f64 = 1_000_000.0;

/// `seconds` after `base` on both clocks.
fn at(base: Instant, seconds: f64) -> Now {
    Now {
        instant: base + Duration::from_secs_f64(seconds),
        unix: EPOCH + seconds,
    }
}

/// A simulated master (no processes) with one agent, started at `now`.
fn master(now: Now, config: Config) -> Master {
    seeded_master(now, 7, config)
}

/// [`master`] drawing its randomness from `seed`.
fn seeded_master(now: Now, seed: u64, config: Config) -> Master {
    let validated = Config {
        simulate: true,
        ..config
    }
    .validate()
    .expect("a valid configuration");
    let address = SocketAddr::from(([127, 0, 0, 1], 5050));
    Master::new(
        now,
        seed,
        &validated,
        address,
        PathBuf::from("/nonexistent"),
    )
}

/// Subscribes a framework at `now`; returns its id and its event stream.
fn subscribe(master: &mut Master, now: Now) -> (String, UnboundedReceiver<Event>) {
    let (events, events_rx) = unbounded_channel();
    let subscribe = call::Subscribe {
        framework_info: FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            failover_timeout: Some(60.0),
            ..Default::default()
        },
        ..Default::default()
    };
    let connection = Connection {
        stream_id: "stream".into(),
        events,
    };
    let id = master
        .subscribe(now, subscribe, connection)
        .expect("a valid subscription");
    (id, events_rx)
}

/// The kinds of the events delivered since the last call.
fn kinds(events_rx: &mut UnboundedReceiver<Event>) -> Vec<event::Type> {
    std::iter::from_fn(|| events_rx.try_recv().ok())
        .map(|e| e.r#type())
        .collect()
}

#[test]
fn a_heartbeat_falls_due_at_the_now_given() {
    let base = Instant::now();
    let mut master = master(at(base, 0.0), Config::default());
    let (_, mut events_rx) = subscribe(&mut master, at(base, 0.0));
    assert_eq!(kinds(&mut events_rx), [event::Type::Subscribed]);
    assert_eq!(master.next_deadline(), Some(base + Duration::from_secs(15)));

    master.tick(at(base, 14.999));
    assert_eq!(kinds(&mut events_rx), []);
    master.tick(at(base, 15.0));
    assert_eq!(kinds(&mut events_rx), [event::Type::Heartbeat]);
    master.tick(at(base, 29.0));
    assert_eq!(kinds(&mut events_rx), []);
    master.tick(at(base, 30.0));
    assert_eq!(kinds(&mut events_rx), [event::Type::Heartbeat]);
}

#[test]
fn an_offer_is_rescinded_when_the_now_given_passes_its_timeout() {
    let base = Instant::now();
    let config = Config {
        offer_timeout: Some(Duration::from_secs(10)),
        ..Config::default()
    };
    let mut master = master(at(base, 0.0), config);
    let (_, mut events_rx) = subscribe(&mut master, at(base, 0.0));
    master.allocate(at(base, 1.0));
    assert_eq!(
        kinds(&mut events_rx),
        [event::Type::Subscribed, event::Type::Offers]
    );

    master.tick(at(base, 10.999));
    assert_eq!(kinds(&mut events_rx), []);
    master.tick(at(base, 11.0));
    assert_eq!(kinds(&mut events_rx), [event::Type::Rescind]);
}

#[test]
fn a_disconnected_framework_is_removed_when_the_now_given_passes_its_failover_timeout() {
    let base = Instant::now();
    let mut master = master(at(base, 0.0), Config::default());
    let (id, _events_rx) = subscribe(&mut master, at(base, 0.0));
    master.disconnected(at(base, 3.0), &id, "stream");

    master.tick(at(base, 62.999));
    assert!(master.frameworks.contains_key(&id));
    master.tick(at(base, 63.0));
    assert!(!master.frameworks.contains_key(&id));
    assert!(master.removed_frameworks.contains(&id));
}

#[test]
fn timestamps_are_the_unix_time_given() {
    let base = Instant::now();
    let mut master = master(at(base, 0.0), Config::default());
    let (id, mut events_rx) = subscribe(&mut master, at(base, 2.0));
    kinds(&mut events_rx);

    master.reconcile(
        at(base, 5.0),
        &id,
        vec![call::reconcile::Task {
            task_id: TaskId { value: "t".into() },
            agent_id: None,
        }],
    );
    let update = events_rx.try_recv().expect("a reconciliation update");
    let status = update.update.expect("an UPDATE event").status;
    assert_eq!(status.timestamp, Some(EPOCH + 5.0));

    master.disconnected(at(base, 7.0), &id, "stream");
    let state = master.state_json();
    assert_eq!(state["start_time"], json!(EPOCH));
    assert_eq!(state["slaves"][0]["registered_time"], json!(EPOCH));
    assert_eq!(
        state["frameworks"][0]["registered_time"],
        json!(EPOCH + 2.0)
    );
    assert_eq!(
        state["frameworks"][0]["unregistered_time"],
        json!(EPOCH + 7.0)
    );
}

/// Every event a framework gets when it subscribes, is offered the agent,
/// launches a simulated task on it and lets the task run to its end.
fn a_task_run(seed: u64, base: Instant) -> Vec<Event> {
    let mut master = seeded_master(at(base, 0.0), seed, Config::default());
    let (id, mut events_rx) = subscribe(&mut master, at(base, 0.0));
    master.allocate(at(base, 1.0));
    let mut events: Vec<Event> = std::iter::from_fn(|| events_rx.try_recv().ok()).collect();
    let offer = events
        .iter()
        .find_map(|e| e.offers.as_ref())
        .and_then(|o| o.offers.first())
        .expect("an offer")
        .clone();
    let accept = launch_on(&offer, "t", "cpus:1;mem:32");
    master.accept(at(base, 2.0), &id, accept);
    master.tick(at(base, 60.0));
    events.extend(std::iter::from_fn(|| events_rx.try_recv().ok()));
    events
}

#[test]
fn the_same_seed_and_inputs_give_the_same_events() {
    let base = Instant::now();
    let run = a_task_run(7, base);
    assert!(
        run.iter()
            .filter_map(|e| e.update.as_ref())
            .any(|u| u.status.uuid.is_some()),
        "the run has status updates with uuids: {run:?}"
    );
    assert_eq!(run, a_task_run(7, base));
    assert_ne!(run, a_task_run(8, base));
}

/// A LAUNCH of one command task of `resources` on the first offer the
/// framework got.
fn launch_on(offer: &agora_proto::mesos::v1::Offer, task: &str, resources: &str) -> call::Accept {
    let info = TaskInfo {
        name: task.into(),
        task_id: TaskId { value: task.into() },
        agent_id: offer.agent_id.clone(),
        resources: parse_resources(resources).unwrap().to_protos(),
        command: Some(CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    call::Accept {
        offer_ids: vec![offer.id.clone()],
        operations: vec![Operation {
            r#type: Some(operation::Type::Launch as i32),
            launch: Some(operation::Launch {
                task_infos: vec![info],
            }),
            ..Default::default()
        }],
        filters: None,
    }
}

/// The first offer among the events delivered since the last call.
fn first_offer(events_rx: &mut UnboundedReceiver<Event>) -> agora_proto::mesos::v1::Offer {
    std::iter::from_fn(|| events_rx.try_recv().ok())
        .find_map(|e| e.offers)
        .and_then(|o| o.offers.into_iter().next())
        .expect("an offer")
}

/// A scheduler call of `framework`.
fn scheduler_call(framework: &str, kind: call::Type) -> agora_proto::mesos::v1::scheduler::Call {
    agora_proto::mesos::v1::scheduler::Call {
        framework_id: Some(agora_proto::mesos::v1::FrameworkId {
            value: framework.into(),
        }),
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

#[test]
fn the_call_record_has_each_call_its_stream_time_answer_and_refused_launches() {
    let base = Instant::now();
    let mut master = master(at(base, 0.0), Config::default());
    let (id, mut events_rx) = subscribe(&mut master, at(base, 1.0));
    master.allocate(at(base, 1.5));
    let offer = first_offer(&mut events_rx);
    let too_big = scheduler_call(&id, call::Type::Accept);
    let too_big = agora_proto::mesos::v1::scheduler::Call {
        accept: Some(launch_on(&offer, "big", "cpus:1000;mem:32")),
        ..too_big
    };
    assert!(master.call(at(base, 2.0), too_big, Some("stream")).is_ok());
    let kill = agora_proto::mesos::v1::scheduler::Call {
        kill: Some(call::Kill {
            task_id: TaskId {
                value: "big".into(),
            },
            ..Default::default()
        }),
        ..scheduler_call(&id, call::Type::Kill)
    };
    assert!(master.call(at(base, 2.5), kill, Some("stream")).is_ok());
    let stale = scheduler_call(&id, call::Type::Revive);
    assert!(master.call(at(base, 3.0), stale, Some("old")).is_err());
    let unknown = scheduler_call("nobody", call::Type::Revive);
    assert!(master.call(at(base, 4.0), unknown, Some("stream")).is_err());

    let record = master.calls_json();
    assert_eq!(record["frameworks"].as_object().unwrap().len(), 1);
    let calls = &record["frameworks"][&id]["calls"];
    assert_eq!(calls.as_array().unwrap().len(), 4, "{calls}");
    assert_eq!(
        calls[0],
        json!({"type": "SUBSCRIBE", "stream_id": "stream", "received": EPOCH + 1.0, "status": 200})
    );
    assert_eq!(calls[1]["type"], "ACCEPT");
    assert_eq!(calls[1]["status"], 202);
    assert_eq!(calls[1]["tasks"], json!(["big"]));
    let refused = &calls[1]["refused_tasks"][0];
    assert_eq!(refused["task_id"], "big");
    assert_eq!(refused["state"], "TASK_ERROR");
    assert_eq!(refused["reason"], "REASON_TASK_INVALID");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("more resources"),
        "{refused}"
    );
    assert_eq!(calls[2]["type"], "KILL");
    assert_eq!(calls[2]["tasks"], json!(["big"]));
    assert_eq!(calls[3]["type"], "REVIVE");
    assert_eq!(calls[3]["stream_id"], "old");
    assert_eq!(calls[3]["received"], EPOCH + 3.0);
    assert_eq!(calls[3]["status"], 400);
    assert!(
        calls[3]["error"]
            .as_str()
            .unwrap()
            .contains("didn't match the stream ID"),
        "{calls}"
    );
}

#[test]
fn a_launch_within_the_offer_is_not_refused_and_is_used_in_state() {
    let base = Instant::now();
    let mut master = master(at(base, 0.0), Config::default());
    let (id, mut events_rx) = subscribe(&mut master, at(base, 0.0));
    master.allocate(at(base, 1.0));
    let offer = first_offer(&mut events_rx);
    let accept = agora_proto::mesos::v1::scheduler::Call {
        accept: Some(launch_on(&offer, "small", "cpus:0.5;mem:32")),
        ..scheduler_call(&id, call::Type::Accept)
    };
    master.call(at(base, 2.0), accept, Some("stream")).unwrap();

    let calls = &master.calls_json()["frameworks"][&id]["calls"];
    assert!(calls[1].get("refused_tasks").is_none(), "{calls}");
    let state = master.state_json();
    let agent = &state["slaves"][0];
    assert_eq!(agent["used_resources"]["cpus"], 0.5);
    assert!(agent["resources"]["cpus"].as_f64().unwrap() >= 0.5);
    let task = &state["frameworks"][0]["tasks"][0];
    assert_eq!(task["id"], "small");
    assert_eq!(task["state"], "TASK_RUNNING");
    assert_eq!(task["resources"]["cpus"], 0.5);
    assert_eq!(task["resources"]["mem"], 32.0);
}

#[test]
fn a_framework_subscribing_again_gets_the_update_in_flight_at_once() {
    let base = Instant::now();
    let mut master = master(at(base, 0.0), Config::default());
    let (id, mut events_rx) = subscribe(&mut master, at(base, 0.0));
    master.allocate(at(base, 1.0));
    let offer = first_offer(&mut events_rx);
    master.accept(at(base, 2.0), &id, launch_on(&offer, "t", "cpus:1;mem:32"));
    let in_flight: Vec<_> = std::iter::from_fn(|| events_rx.try_recv().ok())
        .filter_map(|e| e.update)
        .collect();
    assert_eq!(in_flight.len(), 1, "one update of the task at a time");
    // The connection dies before the framework acknowledged it, and the
    // framework is back long before the agent's first retry (10 s).
    master.disconnected(at(base, 2.5), &id, "stream");
    let (events, mut again_rx) = unbounded_channel();
    let subscribe = call::Subscribe {
        framework_info: FrameworkInfo {
            id: Some(agora_proto::mesos::v1::FrameworkId { value: id.clone() }),
            user: "u".into(),
            name: "n".into(),
            failover_timeout: Some(60.0),
            ..Default::default()
        },
        ..Default::default()
    };
    let connection = Connection {
        stream_id: "again".into(),
        events,
    };
    master
        .subscribe(at(base, 3.0), subscribe, connection)
        .expect("subscribed again");

    let events: Vec<Event> = std::iter::from_fn(|| again_rx.try_recv().ok()).collect();
    assert_eq!(events[0].r#type(), event::Type::Subscribed);
    let resent: Vec<_> = events[1..]
        .iter()
        .filter_map(|e| e.update.clone())
        .collect();
    assert_eq!(resent, in_flight, "the same update, uuid and all");
}
