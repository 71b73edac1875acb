//! `offer_timeout` over real HTTP: an unanswered offer is rescinded once
//! the timeout passes and its resources are offered again.

mod common;

use std::time::Duration;

use agora_proto::mesos::v1::scheduler::event;
use common::*;

#[tokio::test]
async fn unanswered_offers_are_rescinded_and_offered_again() {
    let config = devcluster::Config {
        offer_timeout: Some(Duration::from_millis(400)),
        ..fast_config()
    };
    let cluster = start(config).await;
    let addr = cluster.local_addr();
    let mut sub = subscribe(addr, JSON, framework_info(&["web"])).await;
    let offer = sub.next_offers().await.remove(0);
    let offered_at = tokio::time::Instant::now();

    let rescind = sub.next_of(event::Type::Rescind).await;
    assert_eq!(rescind.rescind.unwrap().offer_id, offer.id);
    let waited = offered_at.elapsed();
    assert!(
        waited >= Duration::from_millis(350),
        "rescinded after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "rescinded after {waited:?}"
    );

    let again = sub.next_offers().await.remove(0);
    assert_ne!(again.id, offer.id);
    assert_eq!(again.agent_id, offer.agent_id);
    assert_eq!(again.resources, offer.resources, "everything came back");

    // /state reports the flag as a master writes durations.
    let (_, state) = request_full(addr, "GET", "/state", &[], Vec::new()).await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["flags"]["offer_timeout"], "0.4secs");
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn offers_are_never_rescinded_without_a_timeout() {
    let cluster = start(fast_config()).await;
    let mut sub = subscribe(cluster.local_addr(), JSON, framework_info(&["web"])).await;
    sub.next_offers().await;
    let rescinds = sub
        .collect_for(event::Type::Rescind, Duration::from_millis(800))
        .await;
    assert!(rescinds.is_empty());
    cluster.shutdown().await.unwrap();
}
