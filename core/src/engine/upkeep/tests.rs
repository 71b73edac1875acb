//! The passing of time and the pool's upkeep: offers declined after their
//! time to live unless kept warm, roles suppressed and revived, idle offers
//! yielded to a role that waits, and the leases of an ended session kept for
//! its grace.

use std::time::Duration;

use crate::engine::Outcome;
use crate::testing::*;
use crate::*;

#[test]
fn unleased_offers_are_declined_after_the_pool_ttl() {
    let mut core = core();
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let ttl = CoreConfig::default().pool_ttl;
    assert_eq!(core.next_deadline(), Some(T0.after(ttl)));
    core.tick(T0.after(ttl));
    assert_eq!(
        mesos_calls(&core.drain_effects()),
        vec![
            &MesosCall::Decline {
                offer_ids: vec![OfferId("o1".into())],
                refuse_seconds: 5.0
            },
            &MesosCall::Suppress {
                roles: vec!["default".into()]
            },
        ]
    );
    assert!(core.agents().is_empty());
}

#[test]
fn a_warm_offer_past_its_time_to_live_does_not_keep_waking_the_core() {
    let mut core = TestCore::builder().build();
    core.offers(
        T0,
        vec![offer("o1", 1, res(1.0, 1.0)), offer("o2", 2, res(1.0, 1.0))],
    );
    let ttl = CoreConfig::default().pool_ttl;
    assert_eq!(core.next_deadline(), Some(T0.after(ttl)));
    core.tick(T0.after(ttl));
    assert_eq!(core.agents().len(), 2, "both offers are warm and stay");
    assert_eq!(core.next_deadline(), None, "nothing left to wake for");
}

#[test]
fn a_full_warm_pool_suppresses_and_new_demand_revives() {
    let mut core = TestCore::builder().warm_pool(1).build();
    let s = session(&mut core, "a");
    assert!(
        core.drain_effects().is_empty(),
        "an empty pool wants offers"
    );
    core.offers(
        T0,
        vec![
            offer("o1", 1, res(1.0, 1024.0)),
            offer("o2", 2, res(1.0, 1024.0)),
        ],
    );
    assert_eq!(
        mesos_calls(&core.drain_effects()),
        vec![&MesosCall::Suppress {
            roles: vec!["default".into()]
        }]
    );
    // Past the time to live one offer is declined and one stays warm.
    core.tick(T0.after(CoreConfig::default().pool_ttl));
    match mesos_calls(&core.drain_effects()).as_slice() {
        [MesosCall::Decline { offer_ids, .. }] => assert_eq!(offer_ids.len(), 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(core.agents().len(), 1);
    // Demand the pool cannot serve revives the role at once.
    let big = acquire(vec![slot(2.0, 128.0)], Duration::from_secs(10));
    assert_eq!(core.acquire(T0, Ticket(1), &s, big), Ok(Outcome::Later));
    assert_eq!(
        mesos_calls(&core.drain_effects()),
        vec![&MesosCall::Revive {
            roles: vec!["default".into()]
        }]
    );
}

#[test]
fn idle_offers_go_back_to_mesos_when_another_role_waits_for_them() {
    let mut core = TestCore::builder()
        .warm_pool(2)
        .namespaces([
            Namespace::new("default", "default"),
            Namespace::new("batch", "batch"),
        ])
        .build();
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    core.drain_effects();
    let s = in_namespace(&mut core, "a", "batch");
    let request = acquire_in("batch", vec![slot(1.0, 128.0)], Duration::from_secs(30));
    assert_eq!(core.acquire(T0, Ticket(1), &s, request), Ok(Outcome::Later));
    let calls = mesos_calls(&core.drain_effects())
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert!(calls.contains(&MesosCall::Decline {
        offer_ids: vec![OfferId("o1".into())],
        refuse_seconds: 5.0
    }));
    assert!(core.agents().is_empty(), "the warm offer yielded");
}

#[test]
fn a_dropped_session_keeps_its_leases_for_the_grace() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let mut request = acquire(vec![slot(1.0, 128.0)], Duration::ZERO);
    request.hold_for = Some(Duration::from_secs(120));
    granted(core.acquire(T0, Ticket(1), &s, request));
    core.end_session(T0, &s);
    let grace = CoreConfig::default().session_grace;
    core.tick(T0.after(grace - Duration::from_millis(1)));
    assert_eq!(core.agents()[0].leased, res(1.0, 128.0));
    core.drain_effects();
    core.tick(T0.after(grace));
    assert!(core.agents().iter().all(|agent| agent.leased.is_empty()));
    let again = core
        .subscribe(FrontendName("a".into()), "p", vec!["default".into()], 0)
        .unwrap();
    assert!(core.drain_effects().iter().any(|e| matches!(
        e,
        Effect::Deliver { session, event: FrontendEvent::LeaseLost { reason: LeaseLostReason::SessionEnded, .. }, .. }
            if *session == again
    )));
}
