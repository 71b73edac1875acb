//! Static reservations over real HTTP: `cpus(batch):2` on an agent is
//! offered only to role `batch` (and its sub-roles), in the resource
//! format the framework understands, and ACCEPT checks that tasks use
//! resources with the offer's reservation.

mod common;

use std::time::Duration;

use agora_proto::mesos::v1::framework_info::capability::Type as CapabilityType;
use agora_proto::mesos::v1::resource::reservation_info;
use agora_proto::mesos::v1::scheduler::event;
use agora_proto::mesos::v1::{Offer, Resource};
use common::*;

fn config() -> devcluster::Config {
    devcluster::Config {
        agent_resources: "cpus(batch):2;mem(batch):512;cpus:1;mem:256".into(),
        ..fast_config()
    }
}

fn reserved(offer: &Offer) -> Vec<&Resource> {
    offer
        .resources
        .iter()
        .filter(|r| devcluster::resources::reservation_role(r) != "*")
        .collect()
}

#[tokio::test]
async fn reserved_resources_go_to_their_role_in_the_framework_format() {
    let cluster = start(config()).await;
    let addr = cluster.local_addr();
    // A RESERVATION_REFINEMENT framework sees `reservations` (STATIC).
    let refined = framework_with(&["batch"], &[CapabilityType::ReservationRefinement]);
    let mut batch = subscribe(addr, JSON, refined).await;
    let offer = batch.next_offers().await.remove(0);
    let held = reserved(&offer);
    assert_eq!(held.len(), 2, "{offer:?}");
    for r in &held {
        assert_eq!(r.reservations.len(), 1);
        assert_eq!(
            r.reservations[0].r#type,
            Some(reservation_info::Type::Static as i32)
        );
        assert_eq!(r.reservations[0].role.as_deref(), Some("batch"));
        #[allow(deprecated)]
        let role = r.role.clone();
        assert_eq!(role, None, "post-refinement format has no 'role'");
    }
    let unreserved = devcluster::resources::Resources::from_protos(offer.resources.iter());
    assert_eq!(unreserved.usable_by("other").scalar("cpus"), 1.0);

    // A role without the reservation never sees it.
    let mut web = subscribe(addr, PROTOBUF, framework_info(&["web"])).await;
    let offers = web
        .collect_for(event::Type::Offers, Duration::from_millis(500))
        .await;
    assert!(
        offers
            .iter()
            .flat_map(|e| e.offers.as_ref().unwrap().offers.iter())
            .all(|o| reserved(o).is_empty())
    );
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn frameworks_without_refinement_see_the_role_field_and_sub_roles_share() {
    let cluster = start(config()).await;
    let mut sub = subscribe(
        cluster.local_addr(),
        PROTOBUF,
        framework_info(&["batch/nightly"]),
    )
    .await;
    let offer = sub.next_offers().await.remove(0);
    let held = reserved(&offer);
    assert_eq!(held.len(), 2, "a sub-role gets its parent's reservation");
    for r in held {
        #[allow(deprecated)]
        let role = r.role.clone();
        assert_eq!(role.as_deref(), Some("batch"));
        assert!(r.reservations.is_empty(), "pre-refinement format");
    }
    cluster.shutdown().await.unwrap();
}

#[tokio::test]
async fn tasks_must_use_resources_with_the_offers_reservation() {
    let cluster = start(config()).await;
    let refined = framework_with(&["batch"], &[CapabilityType::ReservationRefinement]);
    let mut sub = subscribe(cluster.local_addr(), JSON, refined).await;
    let offer = sub.next_offers().await.remove(0);
    // Reserved resources echoed back as offered (post-refinement format).
    let mut on_reservation = command_task("reserved", &offer, "cpus:0.1", "sleep 5");
    on_reservation.resources = reserved(&offer)
        .into_iter()
        .map(|r| {
            let mut r = r.clone();
            let value = if r.name == "cpus" { 1.5 } else { 128.0 };
            r.scalar = Some(agora_proto::mesos::v1::value::Scalar { value });
            r
        })
        .collect();
    // More unreserved cpus than the agent has: TASK_ERROR.
    let too_big = command_task("unreserved", &offer, "cpus:1.5;mem:64", "true");
    sub.call(launch_call(
        &offer,
        vec![on_reservation, too_big],
        Some(0.0),
    ))
    .await;
    let (mut running, mut error) = (false, false);
    while !(running && error) {
        let update = sub.next_update().await;
        match (update.task_id.value.as_str(), state_name(&update)) {
            ("unreserved", "TASK_ERROR") => error = true,
            ("reserved", state) => {
                sub.acknowledge(&update).await;
                running |= state == "TASK_RUNNING";
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (_, state) = request_full(cluster.local_addr(), "GET", "/state", &[], Vec::new()).await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(
        state["slaves"][0]["reserved_resources"]["batch"]["cpus"],
        2.0
    );
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 1.5);
    cluster.shutdown().await.unwrap();
}
