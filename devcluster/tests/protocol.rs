//! Scheduler-API behaviours over real HTTP: status codes and headers,
//! SUBSCRIBE validation, DECLINE filters, SUPPRESS/REVIVE, KILL,
//! RECONCILE, failover, the failover timeout, /version, /redirect,
//! /state and the devcluster's record of calls.

mod common;

use std::time::Duration;

use agora_proto::mesos::v1::scheduler::{Call, call, event};
use agora_proto::mesos::v1::{FrameworkId, TaskId};
use agora_proto::wire::recordio::Decoder;
use common::*;
use http_body_util::BodyExt;

fn plain_call(kind: call::Type) -> Call {
    Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

#[tokio::test]
async fn http_status_codes_follow_the_master() {
    let cluster = start(fast_config()).await;
    let addr = cluster.local_addr();
    let path = "/api/v1/scheduler";
    let subscribe_body = encode(JSON, &subscribe_call(framework_info(&["web"])));

    let (status, _) = request_full(addr, "GET", path, &[], Vec::new()).await;
    assert_eq!(status, 405);
    let (status, body) = request_full(addr, "POST", path, &[], subscribe_body.clone()).await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (400, "Expecting 'Content-Type' to be present")
    );
    let (status, _) = request_full(
        addr,
        "POST",
        path,
        &[("Content-Type", "text/plain")],
        subscribe_body.clone(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = request_full(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json; charset=utf-8")],
        subscribe_body.clone(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = request_full(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON), ("Accept", "text/html")],
        subscribe_body.clone(),
    )
    .await;
    assert_eq!(status, 406);
    let (status, body) = request_full(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON), ("Mesos-Stream-Id", "x")],
        subscribe_body.clone(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) =
        request_full(addr, "POST", path, &[("Content-Type", JSON)], b"{".to_vec()).await;
    assert_eq!(status, 400);

    let sub = subscribe(addr, JSON, framework_info(&["web"])).await;
    let revive = encode(
        JSON,
        &Call {
            framework_id: Some(FrameworkId {
                value: sub.framework_id.clone(),
            }),
            ..plain_call(call::Type::Revive)
        },
    );
    let (status, body) = request_full(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON)],
        revive.clone(),
    )
    .await;
    assert_eq!(status, 400, "missing stream id: {body}");
    let (status, _) = request_full(
        addr,
        "POST",
        path,
        &[
            ("Content-Type", JSON),
            ("Mesos-Stream-Id", "not-the-stream"),
        ],
        revive.clone(),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = request_full(
        addr,
        "POST",
        "/master/api/v1/scheduler",
        &[("Content-Type", JSON), ("Mesos-Stream-Id", &sub.stream_id)],
        revive.clone(),
    )
    .await;
    assert_eq!(status, 202);
    let unknown = encode(
        JSON,
        &Call {
            framework_id: Some(FrameworkId {
                value: "nope".into(),
            }),
            ..plain_call(call::Type::Revive)
        },
    );
    let (status, body) = request_full(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON), ("Mesos-Stream-Id", &sub.stream_id)],
        unknown,
    )
    .await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (400, "Framework cannot be found")
    );
    let (status, _) = sub.call(plain_call(call::Type::Accept)).await;
    assert_eq!(status, 400, "ACCEPT without payload");

    // A known framework that is not subscribed: 403.
    let stream_id = sub.stream_id.clone();
    let framework_id = sub.framework_id.clone();
    drop(sub);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = request_full(
        addr,
        "POST",
        path,
        &[("Content-Type", JSON), ("Mesos-Stream-Id", &stream_id)],
        revive,
    )
    .await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (403, "Framework is not subscribed"),
        "{framework_id}"
    );
    cluster.shutdown().await.unwrap();
}

/// What the master answered a SUBSCRIBE.
#[derive(Debug, PartialEq)]
enum Answer {
    /// No stream: the status and the text.
    Refused(u16, String),
    /// A stream that opened with SUBSCRIBED.
    Subscribed,
    /// A stream that carried one ERROR event, with this message, and
    /// ended.
    Error(String),
}

/// Posts the SUBSCRIBE `json` (in protobuf when `media` is, converted
/// field for field) and reads what the master answers.
async fn answer(addr: std::net::SocketAddr, media: &'static str, json: &str) -> Answer {
    let body = if media == JSON {
        json.as_bytes().to_vec()
    } else {
        call_json_to_protobuf(json)
    };
    let headers = [("Content-Type", media), ("Accept", media)];
    let response = request(addr, "POST", "/api/v1/scheduler", &headers, body).await;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if status != 200 {
        let text = body.collect().await.unwrap().to_bytes();
        return Answer::Refused(status, String::from_utf8_lossy(&text).into_owned());
    }
    let mut decoder = Decoder::new(1 << 20);
    let mut events = Vec::new();
    loop {
        while let Some(record) = decoder.next_record().unwrap() {
            events.push(decode(media, &record));
        }
        if events.first().and_then(|e| e.r#type) == Some(event::Type::Subscribed as i32) {
            return Answer::Subscribed;
        }
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("the stream goes on or ends within 10 s");
        match frame {
            Some(frame) => {
                if let Ok(data) = frame.unwrap().into_data() {
                    decoder.feed(&data);
                }
            }
            None => break,
        }
    }
    match events.as_slice() {
        [only] if only.r#type == Some(event::Type::Error as i32) => {
            Answer::Error(only.error.as_ref().unwrap().message.clone())
        }
        other => panic!("a stream that ended after {other:?}"),
    }
}

/// Asserts that every SUBSCRIBE in `bodies` subscribes, in JSON and in
/// protobuf.
async fn assert_all_subscribe(addr: std::net::SocketAddr, bodies: &[String]) {
    for body in bodies {
        for media in [JSON, PROTOBUF] {
            assert_eq!(
                answer(addr, media, body).await,
                Answer::Subscribed,
                "{media} {body}"
            );
        }
    }
}

/// A SUBSCRIBE body with this `framework_info` and top-level rest
/// (`"framework_id": ...,` or nothing).
fn subscribe_json(framework_info: &str, rest: &str) -> String {
    format!(r#"{{{rest}"type":"SUBSCRIBE","subscribe":{{"framework_info":{framework_info}}}}}"#)
}

#[tokio::test]
async fn subscribe_calls_a_master_cannot_parse_or_validate_are_refused_with_400() {
    let cluster = start(fast_config()).await;
    let addr = cluster.local_addr();
    let user_and_name = r#"{"user":"u","name":"n"}"#;
    let missing = |fields: &str| {
        (
            format!("Failed to convert JSON into Call protobuf: Missing required fields: {fields}"),
            "Failed to parse body into Call protobuf".to_string(),
        )
    };
    let invalid = |why: &str| {
        let message = format!("Failed to validate scheduler::Call: {why}");
        (message.clone(), message)
    };
    let differs = invalid("'framework_id' differs from 'subscribe.framework_info.id'");
    let refused = [
        (
            r#"{"type":"SUBSCRIBE"}"#.to_string(),
            invalid("Expecting 'subscribe' to be present"),
        ),
        (
            r#"{"type":"SUBSCRIBE","subscribe":{}}"#.to_string(),
            missing("subscribe.framework_info"),
        ),
        (
            subscribe_json(r#"{"name":"n"}"#, ""),
            missing("subscribe.framework_info.user"),
        ),
        (
            subscribe_json(r#"{"user":"u"}"#, ""),
            missing("subscribe.framework_info.name"),
        ),
        (
            subscribe_json("{}", ""),
            missing("subscribe.framework_info.user, subscribe.framework_info.name"),
        ),
        (
            subscribe_json(
                r#"{"user":"u","name":"n","id":{}}"#,
                r#""framework_id":{},"#,
            ),
            missing("framework_id.value, subscribe.framework_info.id.value"),
        ),
        (
            subscribe_json(
                r#"{"user":"u","name":"n","labels":{"labels":[{"key":"k"},{"value":"v"}]}}"#,
                "",
            ),
            missing("subscribe.framework_info.labels.labels[1].key"),
        ),
        (
            subscribe_json(
                r#"{"user":"u","name":"n","id":{"value":"b"}}"#,
                r#""framework_id":{"value":"a"},"#,
            ),
            differs.clone(),
        ),
        (
            subscribe_json(user_and_name, r#""framework_id":{"value":"a"},"#),
            differs.clone(),
        ),
        (
            subscribe_json(r#"{"user":"u","name":"n","id":{"value":"a"}}"#, ""),
            differs,
        ),
    ];
    for (body, (json_message, protobuf_message)) in &refused {
        for (media, message) in [(JSON, json_message), (PROTOBUF, protobuf_message)] {
            assert_eq!(
                answer(addr, media, body).await,
                Answer::Refused(400, message.clone()),
                "{media} {body}"
            );
        }
    }

    // A field present but empty is present; ids are compared by value,
    // and an unset id has the value "".
    let accepted = [
        subscribe_json(user_and_name, ""),
        subscribe_json(r#"{"user":"","name":""}"#, ""),
        subscribe_json(user_and_name, r#""framework_id":{"value":""},"#),
    ];
    assert_all_subscribe(addr, &accepted).await;
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscribe_with_an_invalid_framework_info_gets_an_error_event() {
    let cluster = start(fast_config()).await;
    let addr = cluster.local_addr();
    let multi_role = |roles: &str| {
        subscribe_json(
            &format!(
                r#"{{"user":"u","name":"n","roles":{roles},"capabilities":[{{"type":"MULTI_ROLE"}}]}}"#
            ),
            "",
        )
    };
    let with = |fields: &str| subscribe_json(&format!(r#"{{"user":"u","name":"n",{fields}}}"#), "");
    let with_id = |id: &str| {
        subscribe_json(
            &format!(r#"{{"user":"u","name":"n","id":{{"value":"{id}"}}}}"#),
            &format!(r#""framework_id":{{"value":"{id}"}},"#),
        )
    };
    let refused = [
        multi_role(r#"["a/*"]"#),
        multi_role(r#"["."]"#),
        multi_role(r#"["a/.."]"#),
        multi_role(r#"["/a"]"#),
        multi_role(r#"["a/"]"#),
        multi_role(r#"["a//b"]"#),
        multi_role(r#"["a b"]"#),
        multi_role(r#"["a\tb"]"#),
        multi_role(r#"["-a"]"#),
        multi_role(r#"[""]"#),
        multi_role(r#"["a","a"]"#),
        with(r#""roles":["a"]"#),
        with(r#""role":"a","roles":["a"],"capabilities":[{"type":"MULTI_ROLE"}]"#),
        with(r#""role":"a/*""#),
        with(r#""role":"""#),
        with(r#""failover_timeout":1e10"#),
        with(r#""failover_timeout":-1e10"#),
        with_id("a/b"),
        with_id(r"a\\b"),
        with_id(".."),
        with_id(r"a\nb"),
        with_id(&"x".repeat(256)),
        concat!(
            r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":"#,
            r#"{"user":"u","name":"n","roles":["a"],"capabilities":[{"type":"MULTI_ROLE"}]},"#,
            r#""suppressed_roles":["b"]}}"#
        )
        .to_string(),
    ];
    for body in &refused {
        for media in [JSON, PROTOBUF] {
            match answer(addr, media, body).await {
                Answer::Error(message) => assert!(!message.is_empty(), "{media} {body}"),
                other => panic!("{media} {body}: {other:?}"),
            }
        }
    }

    let accepted = [
        multi_role(r#"["*"]"#),
        multi_role(r#"["a/b","c"]"#),
        multi_role("[]"),
        with(r#""role":"a""#),
        with(r#""failover_timeout":-1"#),
        with(r#""failover_timeout":9e9"#),
        with_id(&"x".repeat(255)),
        with_id("made-up-but-valid"),
        // An empty id is no id: a new framework.
        with_id(""),
    ];
    assert_all_subscribe(addr, &accepted).await;
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn decline_filters_suppress_and_revive() {
    let cluster = start(fast_config()).await;
    let mut sub = subscribe(cluster.local_addr(), PROTOBUF, framework_info(&["web"])).await;
    let offer = sub.next_offers().await.remove(0);
    let decline = Call {
        decline: Some(call::Decline {
            offer_ids: vec![offer.id.clone()],
            filters: Some(agora_proto::mesos::v1::Filters {
                refuse_seconds: Some(1.0),
            }),
        }),
        ..plain_call(call::Type::Decline)
    };
    assert_eq!(sub.call(decline).await.0, 202);
    let declined_at = tokio::time::Instant::now();
    let again = sub.next_offers().await.remove(0);
    assert!(
        declined_at.elapsed() >= Duration::from_millis(900),
        "filter held for ~1 s"
    );
    assert_ne!(again.id, offer.id, "re-offers get a new id");

    // Refuse 0 = no filter: offered again at the next cycle.
    let decline0 = Call {
        decline: Some(call::Decline {
            offer_ids: vec![again.id.clone()],
            filters: Some(agora_proto::mesos::v1::Filters {
                refuse_seconds: Some(0.0),
            }),
        }),
        ..plain_call(call::Type::Decline)
    };
    sub.call(decline0).await;
    let third = sub.next_offers().await.remove(0);

    // SUPPRESS: declined resources are not offered again.
    let suppress = Call {
        suppress: Some(call::Suppress {
            roles: vec!["web".into()],
        }),
        ..plain_call(call::Type::Suppress)
    };
    assert_eq!(sub.call(suppress).await.0, 202);
    let long_decline = Call {
        decline: Some(call::Decline {
            offer_ids: vec![third.id.clone()],
            filters: Some(agora_proto::mesos::v1::Filters {
                refuse_seconds: Some(3600.0),
            }),
        }),
        ..plain_call(call::Type::Decline)
    };
    sub.call(long_decline).await;
    assert!(
        sub.collect_for(event::Type::Offers, Duration::from_millis(500))
            .await
            .is_empty()
    );

    // REVIVE clears the filter and unsuppresses.
    let revive = Call {
        revive: Some(call::Revive { roles: vec![] }),
        ..plain_call(call::Type::Revive)
    };
    assert_eq!(sub.call(revive).await.0, 202);
    let revived = sub.next_offers().await;
    assert_eq!(revived.len(), 1);
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn kill_reconcile_and_invalid_launches() {
    let cluster = start(fast_config()).await;
    let mut sub = subscribe(cluster.local_addr(), JSON, framework_info(&["web"])).await;
    let offer = sub.next_offers().await.remove(0);
    let sleeper = command_task("sleeper", &offer, "cpus:1;mem:128", "sleep 30");
    let too_big = command_task("greedy", &offer, "cpus:100;mem:128", "true");
    let (status, _) = sub
        .call(launch_call(&offer, vec![sleeper, too_big], Some(0.0)))
        .await;
    assert_eq!(status, 202);

    let mut running = false;
    let mut saw_error = false;
    while !(running && saw_error) {
        let update = sub.next_update().await;
        match (update.task_id.value.as_str(), state_name(&update)) {
            ("greedy", "TASK_ERROR") => {
                assert!(
                    update.uuid.is_none(),
                    "master-generated updates carry no uuid"
                );
                assert!(update.message.as_ref().unwrap().contains("more resources"));
                saw_error = true;
            }
            ("sleeper", state) => {
                sub.acknowledge(&update).await;
                running = state == "TASK_RUNNING";
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    // The stale offer again: TASK_LOST with REASON_INVALID_OFFERS.
    let stale = command_task("late", &offer, "cpus:0.1;mem:32", "true");
    sub.call(launch_call(&offer, vec![stale], None)).await;
    let lost = sub.next_update().await;
    assert_eq!(
        (lost.task_id.value.as_str(), state_name(&lost)),
        ("late", "TASK_LOST")
    );
    assert_eq!(
        lost.reason,
        Some(agora_proto::mesos::v1::task_status::Reason::InvalidOffers as i32)
    );

    // Explicit reconciliation of a known and an unknown task.
    let reconcile = Call {
        reconcile: Some(call::Reconcile {
            tasks: vec![
                call::reconcile::Task {
                    task_id: TaskId {
                        value: "sleeper".into(),
                    },
                    agent_id: None,
                },
                call::reconcile::Task {
                    task_id: TaskId {
                        value: "ghost".into(),
                    },
                    agent_id: Some(offer.agent_id.clone()),
                },
            ],
        }),
        ..plain_call(call::Type::Reconcile)
    };
    sub.call(reconcile).await;
    let a = sub.next_update().await;
    let b = sub.next_update().await;
    assert_eq!(
        (a.task_id.value.as_str(), state_name(&a)),
        ("sleeper", "TASK_RUNNING")
    );
    assert_eq!(
        (b.task_id.value.as_str(), state_name(&b)),
        ("ghost", "TASK_LOST")
    );
    for s in [&a, &b] {
        assert!(s.uuid.is_none());
        assert_eq!(
            s.reason,
            Some(agora_proto::mesos::v1::task_status::Reason::Reconciliation as i32)
        );
    }
    // Implicit reconciliation: every known task.
    sub.call(Call {
        reconcile: Some(call::Reconcile { tasks: vec![] }),
        ..plain_call(call::Type::Reconcile)
    })
    .await;
    let implicit = sub.next_update().await;
    assert_eq!(implicit.task_id.value, "sleeper");

    // KILL: TASK_KILLED from the agent, with a uuid.
    sub.call(kill("sleeper")).await;
    let killed = sub.next_update().await;
    assert_eq!(
        (killed.task_id.value.as_str(), state_name(&killed)),
        ("sleeper", "TASK_KILLED")
    );
    assert!(killed.uuid.is_some());
    sub.acknowledge(&killed).await;

    // KILL of an unknown task: reconciliation answer.
    sub.call(kill("nobody")).await;
    let unknown = sub.next_update().await;
    assert_eq!(
        (unknown.task_id.value.as_str(), state_name(&unknown)),
        ("nobody", "TASK_LOST")
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn failover_kicks_the_old_stream_and_the_timeout_removes_the_framework() {
    let cluster = start(fast_config()).await;
    let addr = cluster.local_addr();
    let mut info = framework_info(&["web"]);
    info.failover_timeout = Some(0.5);
    let mut first = subscribe(addr, JSON, info.clone()).await;
    info.id = Some(FrameworkId {
        value: first.framework_id.clone(),
    });
    let mut second = subscribe(addr, PROTOBUF, info.clone()).await;
    assert_eq!(second.framework_id, first.framework_id);
    assert_ne!(second.stream_id, first.stream_id);
    let error = first.next_of(event::Type::Error).await;
    assert_eq!(error.error.unwrap().message, "Framework failed over");
    assert!(first.next_event().await.is_none(), "old stream closed");
    second.next_offers().await;

    // Disconnect and let the failover timeout (0.5 s) elapse.
    drop(second);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, state) = request_full(addr, "GET", "/master/state", &[], Vec::new()).await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["frameworks"].as_array().unwrap().len(), 0);
    assert_eq!(
        state["completed_frameworks"][0]["id"],
        info.id.as_ref().unwrap().value
    );

    let response = request(
        addr,
        "POST",
        "/api/v1/scheduler",
        &[("Content-Type", JSON)],
        encode(JSON, &subscribe_call(info)),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let mut decoder = Decoder::new(1 << 20);
    decoder.feed(&body);
    let event = decode(JSON, &decoder.next_record().unwrap().unwrap());
    assert_eq!(event.error.unwrap().message, "Framework has been removed");
    assert!(decoder.next_record().unwrap().is_none());
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_call_record_tells_which_connection_sent_each_call() {
    let cluster = start(fast_config()).await;
    let addr = cluster.local_addr();
    let mut info = framework_info(&["web"]);
    let first = subscribe(addr, JSON, info.clone()).await;
    info.id = Some(FrameworkId {
        value: first.framework_id.clone(),
    });
    let second = subscribe(addr, PROTOBUF, info).await;
    let (stale, _) = first.call(plain_call(call::Type::Revive)).await;
    assert_eq!(stale, 400);
    let (current, _) = second.call(plain_call(call::Type::Revive)).await;
    assert_eq!(current, 202);

    let (status, body) = request_full(addr, "GET", "/devcluster/calls", &[], Vec::new()).await;
    assert_eq!(status, 200);
    let record: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(record["calls_per_framework"], 10_000);
    let framework = &record["frameworks"][&first.framework_id];
    assert_eq!(framework["dropped"], 0);
    let calls = framework["calls"].as_array().unwrap();
    let seen: Vec<(&str, &str, u64)> = calls
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap(),
                c["stream_id"].as_str().unwrap(),
                c["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("SUBSCRIBE", first.stream_id.as_str(), 200),
            ("SUBSCRIBE", second.stream_id.as_str(), 200),
            ("REVIVE", first.stream_id.as_str(), 400),
            ("REVIVE", second.stream_id.as_str(), 202),
        ]
    );
    let times: Vec<f64> = calls
        .iter()
        .map(|c| c["received"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(calls[2]["error"].as_str().unwrap().contains("stream ID"));
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn heartbeats_version_redirect_and_state() {
    let config = devcluster::Config {
        agents: 3,
        agent_attributes: "rack:r1;zone:a".into(),
        heartbeat_interval: Duration::from_millis(200),
        ..fast_config()
    };
    let cluster = start(config).await;
    let addr = cluster.local_addr();
    let mut sub = subscribe(addr, JSON, framework_info(&["web"])).await;
    let offers = sub.next_offers().await;
    sub.next_of(event::Type::Heartbeat).await;

    let (status, body) = request_full(addr, "GET", "/version", &[], Vec::new()).await;
    assert_eq!(status, 200);
    let version: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version["version"], "1.11.0");

    let response = request(addr, "GET", "/redirect", &[], Vec::new()).await;
    assert_eq!(response.status(), 307);
    assert_eq!(response.headers()["location"], format!("//{addr}"));

    assert_eq!(offers.len(), 3);
    assert!(offers.iter().all(|o| o.attributes.len() == 2));
    let (_, state) = request_full(addr, "GET", "/state", &[], Vec::new()).await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["version"], "1.11.0");
    assert_eq!(state["slaves"].as_array().unwrap().len(), 3);
    let slave = &state["slaves"][0];
    assert_eq!(slave["resources"]["cpus"], 4.0);
    assert_eq!(slave["resources"]["ports"], "[31000-32000]");
    assert_eq!(slave["attributes"]["rack"], "r1");
    let framework = &state["frameworks"][0];
    assert_eq!(framework["id"], sub.framework_id);
    assert_eq!(framework["active"], true);
    assert_eq!(framework["roles"][0], "web");
    assert_eq!(framework["offers"].as_array().unwrap().len(), 3);
    assert_eq!(framework["offered_resources"]["cpus"], 12.0);
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn simulated_agents_run_tasks_without_processes() {
    let config = devcluster::Config {
        agents: 200,
        simulate: true,
        ..fast_config()
    };
    let cluster = start(config).await;
    let mut sub = subscribe(cluster.local_addr(), PROTOBUF, framework_info(&["sim"])).await;
    let offers = sub.next_offers().await;
    assert_eq!(offers.len(), 200);
    let offer = &offers[7];
    let task = command_task("sim-1", offer, "cpus:1;mem:64", "sleep 0.3; exit 2");
    sub.call(launch_call(offer, vec![task], None)).await;
    let mut states = Vec::new();
    while states.last().is_none_or(|s| *s != "TASK_FAILED") {
        let update = sub.next_update().await;
        sub.acknowledge(&update).await;
        states.push(state_name(&update));
    }
    assert_eq!(states, ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]);
    cluster.shutdown().await.unwrap();
}

/// A KILL call for `task`, with no agent and the default kill policy.
fn kill(task: &str) -> Call {
    Call {
        kill: Some(call::Kill {
            task_id: TaskId { value: task.into() },
            agent_id: None,
            kill_policy: None,
        }),
        ..plain_call(call::Type::Kill)
    }
}
