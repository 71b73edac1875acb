//! The election against a real etcd, with the shortest lease it grants
//! (2 s): one leader at a time, takeover after a leader vanishes, fencing
//! of the deposed, and a leader cut off from etcd noticing in time.

use std::time::Duration;

use agora_tests::etcd::Etcd;
use tokio::{
    task::JoinHandle,
    time::{Instant, timeout},
};

use super::*;
use crate::store::{Write, tests::etcd_settings};

const TTL: Duration = Duration::from_secs(2);

/// etcd checks for expired leases twice a second; a takeover may come
/// that much after the lease's TTL, plus a round trip or two.
const EXPIRY_SLACK: Duration = Duration::from_millis(1500);

/// A fresh etcd, its election, and replica `a` leading. A test that takes
/// it apart must bind `etcd`: a field left to `..` is dropped, and etcd
/// with it.
struct Elected {
    etcd: Etcd,
    store: Store,
    election: Election,
    a: Leadership,
}

async fn a_leads() -> Elected {
    let etcd = Etcd::start();
    let store = Store::open(&etcd_settings(&etcd, "/election/"))
        .await
        .unwrap();
    let election = store.election().expect("an etcd store has an election");
    let a = timeout(Duration::from_secs(10), election.campaign("a"))
        .await
        .expect("a elected in 10 s");
    Elected {
        etcd,
        store,
        election,
        a,
    }
}

/// Replica `address` campaigning in the background.
fn contend(election: &Election, address: &'static str) -> JoinHandle<Leadership> {
    let election = election.clone();
    tokio::spawn(async move { election.campaign(address).await })
}

async fn assert_fenced(store: &Store) {
    let put = vec![Write::Put {
        key: "owner".into(),
        value: b"deposed".to_vec(),
    }];
    let error = store.commit(put).await.unwrap_err();
    assert!(matches!(error, StoreError::Fenced), "{error}");
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_resignation_hands_over_at_once() {
    let Elected {
        etcd: _etcd,
        election,
        a,
        ..
    } = a_leads().await;
    let mut observed = election.observe();
    assert!(a.fence().revision() > 0);
    let b = contend(&election, "b");
    tokio::time::sleep(TTL * 2).await;
    assert!(!b.is_finished(), "b was elected while a leads");
    assert_eq!(election.leader().await.unwrap().as_deref(), Some("a"));
    timeout(TTL, observed.wait_for(|l| l.as_deref() == Some("a")))
        .await
        .unwrap()
        .unwrap();

    let resigned = Instant::now();
    a.resign().await.unwrap();
    let b = timeout(TTL, b).await.expect("b elected").unwrap();
    eprintln!("b elected {:?} after a resigned", resigned.elapsed());
    assert!(b.fence().revision() > 0);
    assert_eq!(election.leader().await.unwrap().as_deref(), Some("b"));
    timeout(TTL, observed.wait_for(|l| l.as_deref() == Some("b")))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_vanished_leader_is_replaced_after_its_ttl_and_fenced() {
    let Elected {
        etcd: _etcd,
        store,
        election,
        a,
    } = a_leads().await;
    let a_store = a.store();
    let b = contend(&election, "b");

    // As if a's process died: no resignation, no more keepalives.
    let vanished = Instant::now();
    drop(a);
    let b = timeout(TTL + EXPIRY_SLACK, b)
        .await
        .expect("b elected within the TTL")
        .unwrap();
    eprintln!("b elected {:?} after a vanished", vanished.elapsed());

    assert_fenced(&a_store).await;
    let put = vec![Write::Put {
        key: "owner".into(),
        value: b"b".to_vec(),
    }];
    b.store().commit(put).await.unwrap();
    let owner = store.load("owner").await.unwrap();
    assert_eq!(owner, [("owner".to_owned(), b"b".to_vec())]);
}

#[tokio::test]
async fn a_revoked_lease_is_lost_and_its_store_fenced() {
    let Elected { etcd, a, .. } = a_leads().await;
    let lost = a.lost();
    let mut other = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .unwrap();
    other.lease_revoke(a.lease).await.unwrap();
    // The next keepalive, within a third of the TTL, hears of it.
    let reason = timeout(TTL, lost).await.expect("lost within the TTL");
    assert_eq!(reason, Lost::Expired);
    assert_fenced(&a.store()).await;
}

#[tokio::test]
async fn a_leader_cut_off_from_etcd_knows_within_the_ttl() {
    let Elected { etcd, a, .. } = a_leads().await;
    let lost = a.lost();
    let frozen = Instant::now();
    etcd.pause();
    let reason = timeout(TTL * 2, lost).await;
    let noticed = frozen.elapsed();
    etcd.resume();
    assert_eq!(reason, Ok(Lost::Unrenewed(TTL * 9 / 10)));
    eprintln!("the leader noticed {noticed:?} after etcd froze");
    assert!(noticed <= TTL, "noticed only after {noticed:?}");
}

#[tokio::test]
async fn dropping_the_leadership_ends_it() {
    let Elected { etcd: _etcd, a, .. } = a_leads().await;
    let lost = a.lost();
    drop(a);
    assert_eq!(timeout(TTL, lost).await, Ok(Lost::Released));
}
