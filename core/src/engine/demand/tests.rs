//! Demand that waits: acquires queued until an offer serves them or their
//! wait runs out, retries joined by request id, the backfill window of a
//! waiting gang, and fair share between namespaces on one role.

use std::time::Duration;

use crate::engine::Outcome;
use crate::testing::*;
use crate::*;

#[test]
fn waits_for_capacity_and_is_served_when_an_offer_arrives() {
    let mut core = core();
    let s = session(&mut core, "a");
    let outcome = core.acquire(
        T0,
        Ticket(7),
        &s,
        acquire(vec![slot(1.0, 128.0)], Duration::from_secs(10)),
    );
    assert_eq!(outcome, Ok(Outcome::Later));
    assert_eq!(
        mesos_calls(&core.drain_effects()),
        vec![&MesosCall::Revive {
            roles: vec!["default".into()]
        }]
    );
    core.offers(
        T0.after(Duration::from_secs(1)),
        vec![offer("o1", 1, res(2.0, 512.0))],
    );
    match core.drain_effects().as_slice() {
        [
            Effect::Reply {
                ticket: Ticket(7),
                answer: Ok(Answer::Leases(leases)),
            },
            // Nothing waits any more and the pool is full: stop offers.
            Effect::Mesos(MesosCall::Suppress { roles }),
        ] => {
            assert_eq!(leases.len(), 1);
            assert_eq!(roles, &["default".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_wait_that_runs_out_answers_no_capacity() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.acquire(
        T0,
        Ticket(1),
        &s,
        acquire(vec![slot(1.0, 128.0)], Duration::from_secs(2)),
    )
    .unwrap();
    core.drain_effects();
    assert_eq!(core.next_deadline(), Some(T0.after(Duration::from_secs(2))));
    core.tick(T0.after(Duration::from_secs(2)));
    assert_eq!(
        core.drain_effects(),
        vec![
            Effect::Reply {
                ticket: Ticket(1),
                answer: Err(CoreError::NoCapacity {
                    waited: Duration::from_secs(2)
                }),
            },
            Effect::Mesos(MesosCall::Suppress {
                roles: vec!["default".into()]
            })
        ]
    );
}

#[test]
fn a_retried_request_id_returns_the_same_leases() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let request = with_id(acquire(vec![slot(1.0, 128.0)], Duration::ZERO), "r1");
    let first = granted(core.acquire(T0, Ticket(1), &s, request.clone()));
    let again = granted(core.acquire(T0, Ticket(2), &s, request.clone()));
    assert_eq!(first, again);
    assert_eq!(core.leases_of(&s, None).unwrap().len(), 1, "no second set");
    let other = with_id(acquire(vec![slot(2.0, 128.0)], Duration::ZERO), "r1");
    assert_eq!(
        core.acquire(T0, Ticket(3), &s, other),
        Err(CoreError::RequestIdReused {
            request_id: "r1".into()
        })
    );
    // Another frontend's id space is its own.
    let b = session(&mut core, "b");
    let theirs = granted(core.acquire(T0, Ticket(4), &b, request));
    assert_ne!(theirs, first);
    // Forgotten after the request memory.
    let later = T0.after(CoreConfig::default().request_memory);
    core.tick(later);
    core.offers(later, vec![offer("o2", 1, res(4.0, 1024.0))]);
    let request = with_id(acquire(vec![slot(1.0, 128.0)], Duration::ZERO), "r1");
    let fresh = granted(core.acquire(later, Ticket(5), &s, request));
    assert_ne!(fresh[0].id, first[0].id);
}

#[test]
fn a_retry_of_a_waiting_request_joins_it() {
    let mut core = core();
    let s = session(&mut core, "a");
    let request = with_id(
        acquire(vec![slot(1.0, 128.0)], Duration::from_secs(10)),
        "r1",
    );
    assert_eq!(
        core.acquire(T0, Ticket(1), &s, request.clone()),
        Ok(Outcome::Later)
    );
    assert_eq!(core.acquire(T0, Ticket(2), &s, request), Ok(Outcome::Later));
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    match answers(core.drain_effects()).as_slice() {
        [(Ticket(1), Ok(first)), (Ticket(2), Ok(retry))] => assert_eq!(first, retry),
        other => panic!("{other:?}"),
    }
    assert_eq!(core.leases_of(&s, None).unwrap().len(), 1);
}

/// A gang of two 2-cpu slots that waits.
fn gang_of_two(wait_for: Duration) -> AcquireRequest {
    let mut two = slot(2.0, 128.0);
    two.count = 2;
    AcquireRequest {
        gang: true,
        ..acquire(vec![two], wait_for)
    }
}

#[test]
fn a_waiting_gang_lets_smaller_requests_pass_until_its_backfill_window_ends() {
    let mut core = core();
    let s = session(&mut core, "a");
    let gang = gang_of_two(Duration::from_secs(60));
    assert_eq!(core.acquire(T0, Ticket(1), &s, gang), Ok(Outcome::Later));
    // Within the window a small request takes what the gang cannot use.
    core.offers(T0, vec![offer("o1", 1, res(2.0, 1024.0))]);
    let small = || acquire(vec![slot(0.5, 128.0)], Duration::from_secs(60));
    assert!(matches!(
        core.acquire(T0, Ticket(2), &s, small()),
        Ok(Outcome::Now(_))
    ));
    // Past the window, later requests wait behind the gang...
    let window = CoreConfig::default().backfill_window;
    let late = T0.after(window);
    core.tick(late);
    assert_eq!(
        core.acquire(late, Ticket(3), &s, small()),
        Ok(Outcome::Later)
    );
    core.drain_effects();
    // ...until it is served, then they are served too.
    core.offers(late, vec![offer("o2", 2, res(4.0, 1024.0))]);
    let served: Vec<(Ticket, bool)> = answers(core.drain_effects())
        .into_iter()
        .map(|(ticket, result)| (ticket, result.is_ok()))
        .collect();
    assert_eq!(
        served,
        [(Ticket(1), true), (Ticket(3), true)],
        "the gang first"
    );
}

#[test]
fn a_blocking_gang_delays_others_only_for_its_own_wait() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.acquire(T0, Ticket(1), &s, gang_of_two(Duration::from_secs(20)))
        .unwrap();
    let late = T0.after(CoreConfig::default().backfill_window);
    let small = acquire(vec![slot(0.5, 128.0)], Duration::from_secs(60));
    assert_eq!(core.acquire(late, Ticket(2), &s, small), Ok(Outcome::Later));
    core.offers(late, vec![offer("o1", 1, res(2.0, 1024.0))]);
    core.drain_effects();
    core.tick(T0.after(Duration::from_secs(20)));
    let done: Vec<(Ticket, bool)> = answers(core.drain_effects())
        .into_iter()
        .map(|(ticket, result)| (ticket, result.is_ok()))
        .collect();
    assert_eq!(done, [(Ticket(1), false), (Ticket(2), true)]);
}

#[test]
fn namespaces_sharing_a_role_are_served_by_weight_and_guarantee() {
    let heavy = Namespace::new("heavy", "shared").weight(3.0);
    let guaranteed = Namespace::new("small", "shared").guarantee_cpus(4.0);
    let mut core = TestCore::builder()
        .warm_pool(0)
        .namespaces([heavy, Namespace::new("light", "shared"), guaranteed])
        .build();
    let sessions: Vec<SessionId> = ["heavy", "light", "small"]
        .iter()
        .map(|ns| in_namespace(&mut core, ns, ns))
        .collect();
    for (i, (ns, s)) in ["heavy", "light", "small"]
        .iter()
        .zip(&sessions)
        .enumerate()
    {
        for n in 0..16u64 {
            let request = acquire_in(ns, vec![slot(1.0, 16.0)], Duration::from_secs(60));
            let ticket = Ticket(i as u64 * 100 + n);
            assert_eq!(core.acquire(T0, ticket, s, request), Ok(Outcome::Later));
        }
    }
    core.drain_effects();
    let shared = |id: &str| Offer {
        role: "shared".into(),
        ..offer(id, 1, res(16.0, 16384.0))
    };
    core.offers(T0, vec![shared("o1")]);
    let cpus = |ns: &str| core.usage(ns).scalar("cpus");
    // The guarantee first (4), then by weight: 9 and 3 of the other 12.
    assert_eq!(
        (cpus("small"), cpus("heavy"), cpus("light")),
        (4.0, 9.0, 3.0)
    );
}
