//! The Mesos client against the devcluster over real HTTP: both encodings,
//! calls on the live stream, the framework id kept across resubscription,
//! a redirect to the leader, and a master that never answers.

use std::time::Duration;

use agora_broker::mesos::{self, Encoding, MesosConfig, MesosEvent, backoff::Backoff};
use agora_core::Offer;
use agora_proto::mesos::v1::{
    FrameworkId, FrameworkInfo, OfferId,
    framework_info::{Capability, capability},
    scheduler::{Call, call, event},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
    time::timeout,
};

const WAIT: Duration = Duration::from_secs(20);

async fn devcluster(agents: usize) -> devcluster::Cluster {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = devcluster::Config {
        agents,
        allocation_interval: Duration::from_millis(50),
        heartbeat_interval: Duration::from_millis(200),
        ..Default::default()
    };
    devcluster::Cluster::start(config, listener).await.unwrap()
}

fn config(masters: Vec<String>, encoding: Encoding, id: Option<String>) -> MesosConfig {
    MesosConfig {
        masters,
        encoding,
        framework_info: FrameworkInfo {
            user: "agora-test".into(),
            name: "agora-test".into(),
            id: id.map(|value| FrameworkId { value }),
            failover_timeout: Some(3600.0),
            roles: vec!["test".into()],
            capabilities: vec![Capability {
                r#type: Some(capability::Type::MultiRole as i32),
            }],
            ..Default::default()
        },
        missed_heartbeats: 5,
        request_timeout: Duration::from_millis(500),
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        credentials: None,
    }
}

async fn next(events: &mut mpsc::Receiver<MesosEvent>) -> MesosEvent {
    timeout(WAIT, events.recv())
        .await
        .expect("an event in time")
        .expect("the client runs")
}

async fn subscribed(events: &mut mpsc::Receiver<MesosEvent>) -> (String, bool) {
    loop {
        if let MesosEvent::Subscribed {
            framework_id,
            resubscribed,
            ..
        } = next(events).await
        {
            return (framework_id, resubscribed);
        }
    }
}

async fn offers(events: &mut mpsc::Receiver<MesosEvent>, wanted: usize) -> Vec<Offer> {
    let mut seen = Vec::new();
    while seen.len() < wanted {
        if let MesosEvent::Offers(offers) = next(events).await {
            seen.extend(offers);
        }
    }
    seen
}

fn decline(offers: &[Offer]) -> Call {
    Call {
        r#type: Some(call::Type::Decline as i32),
        decline: Some(call::Decline {
            offer_ids: offers
                .iter()
                .map(|o| OfferId {
                    value: o.id.0.clone(),
                })
                .collect(),
            filters: Some(agora_proto::mesos::v1::Filters {
                refuse_seconds: Some(3600.0),
            }),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn subscribes_gets_offers_and_calls_in_both_encodings() {
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let cluster = devcluster(2).await;
        let (handle, mut events, _task) = mesos::start(config(vec![cluster.url()], encoding, None));
        let (_, resubscribed) = subscribed(&mut events).await;
        assert!(!resubscribed);
        assert!(handle.is_subscribed());
        let offers = offers(&mut events, 2).await;
        assert!(offers.iter().all(|o| o.role == "test"));
        handle
            .call(decline(&offers))
            .await
            .expect("the master takes the decline");
        let revive = Call {
            r#type: Some(call::Type::Revive as i32),
            revive: Some(call::Revive {
                roles: vec!["test".into()],
            }),
            ..Default::default()
        };
        handle
            .call(revive)
            .await
            .expect("the master takes the revive");
        cluster.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_restarted_client_resubscribes_with_its_framework_id() {
    let cluster = devcluster(1).await;
    let (first, mut events, task) =
        mesos::start(config(vec![cluster.url()], Encoding::Protobuf, None));
    let (framework_id, _) = subscribed(&mut events).await;
    drop(events);
    drop(first);
    task.abort();
    let (_second, mut events, _task) = mesos::start(config(
        vec![cluster.url()],
        Encoding::Protobuf,
        Some(framework_id.clone()),
    ));
    let (again, _) = subscribed(&mut events).await;
    assert_eq!(again, framework_id);
    cluster.shutdown().await.unwrap();
}

/// Accepts connections and answers every request with `response`.
async fn fixed_http(response: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut request = vec![0; 64 * 1024];
                if stream.read(&mut request).await.is_ok() && !response.is_empty() {
                    let _ = stream.write_all(response.as_bytes()).await;
                }
                // An empty response means: hold the connection, say nothing.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn follows_a_redirect_to_the_leading_master() {
    let cluster = devcluster(1).await;
    let leader = cluster.url().trim_start_matches("http:").to_owned();
    let follower = fixed_http(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: {leader}/api/v1/scheduler\r\nContent-Length: 0\r\n\r\n"
    ))
    .await;
    let (handle, mut events, _task) =
        mesos::start(config(vec![follower], Encoding::Protobuf, None));
    subscribed(&mut events).await;
    let offers = offers(&mut events, 1).await;
    handle
        .call(decline(&offers))
        .await
        .expect("calls go to the leader");
    cluster.shutdown().await.unwrap();
}

/// A master that subscribes the framework, promising heartbeats every
/// 100 ms, and then says nothing more.
async fn master_that_goes_silent() -> String {
    use prost::Message;
    let subscribed = agora_proto::mesos::v1::scheduler::Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(event::Subscribed {
            framework_id: FrameworkId {
                value: "silent-fw".into(),
            },
            heartbeat_interval_seconds: Some(0.1),
            master_info: None,
        }),
        ..Default::default()
    };
    let record = agora_proto::wire::recordio::encode(&subscribed.encode_to_vec());
    let chunk = [
        format!("{:x}\r\n", record.len()).into_bytes(),
        record,
        b"\r\n".to_vec(),
    ]
    .concat();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
                Mesos-Stream-Id: s-1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                let mut request = vec![0; 64 * 1024];
                let _ = stream.read(&mut request).await;
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&chunk).await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn resubscribes_with_the_same_id_when_heartbeats_stop() {
    let master = master_that_goes_silent().await;
    let (_handle, mut events, _task) = mesos::start(config(vec![master], Encoding::Protobuf, None));
    let (framework_id, resubscribed) = subscribed(&mut events).await;
    assert_eq!((framework_id.as_str(), resubscribed), ("silent-fw", false));
    match next(&mut events).await {
        MesosEvent::Disconnected { reason } => {
            assert!(reason.contains("no event or heartbeat"), "{reason}");
        }
        other => panic!("expected the watchdog to fire, got {other:?}"),
    }
    let (again, resubscribed) = subscribed(&mut events).await;
    assert_eq!((again.as_str(), resubscribed), ("silent-fw", true));
}

#[tokio::test]
async fn moves_on_from_a_master_that_never_answers() {
    let cluster = devcluster(1).await;
    let silent = fixed_http(String::new()).await;
    let (_handle, mut events, _task) = mesos::start(config(
        vec![silent, cluster.url()],
        Encoding::Protobuf,
        None,
    ));
    match next(&mut events).await {
        MesosEvent::Disconnected { reason } => {
            assert!(reason.contains("did not answer"), "{reason}")
        }
        other => panic!("expected the silent master to fail first, got {other:?}"),
    }
    subscribed(&mut events).await;
    cluster.shutdown().await.unwrap();
}
