//! Acquire, hold and release: leases granted from the pool at once or
//! refused with the reason — no capacity now, or none that could ever fit —
//! within the namespaces the session subscribed to, the namespace's limit and
//! maximum hold, and on regular or revocable capacity as the request allows.

use std::time::Duration;

use crate::engine::Outcome;
use crate::testing::*;
use crate::*;

#[test]
fn acquires_from_the_pool_at_once() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let leases = granted(core.acquire(
        T0,
        Ticket(1),
        &s,
        acquire(vec![slot(1.0, 128.0)], Duration::ZERO),
    ));
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].resources, res(1.0, 128.0));
    assert_eq!(
        leases[0].expires_at,
        T0.after(CoreConfig::default().default_hold)
    );
    assert_eq!(core.agents()[0].pooled, res(3.0, 896.0));
}

#[test]
fn without_wait_no_capacity_is_refused_at_once() {
    let mut core = core();
    let s = session(&mut core, "a");
    let outcome = core.acquire(
        T0,
        Ticket(1),
        &s,
        acquire(vec![slot(1.0, 128.0)], Duration::ZERO),
    );
    assert_eq!(
        outcome,
        Err(CoreError::NoCapacity {
            waited: Duration::ZERO
        })
    );
}

#[test]
fn a_request_larger_than_every_agent_seen_cannot_fit_a_busy_cluster_has_no_capacity() {
    let mut core = core();
    let s = session(&mut core, "a");
    assert_eq!(
        core.acquire(
            T0,
            Ticket(1),
            &s,
            acquire(vec![slot(100.0, 64.0)], Duration::ZERO)
        ),
        Err(CoreError::NoCapacity {
            waited: Duration::ZERO
        }),
        "with no agent seen yet there is no verdict"
    );
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    core.offers(T0, vec![offer("o2", 2, res(2.0, 4096.0))]);
    assert_eq!(
        core.acquire(
            T0,
            Ticket(2),
            &s,
            acquire(vec![slot(100.0, 64.0)], Duration::ZERO)
        ),
        Err(CoreError::CannotFit {
            field: "slots[0]".into(),
            resource: "cpus".into(),
            asked: 100.0,
            available: 4.0,
        })
    );
    assert!(matches!(
        core.acquire(T0, Ticket(3), &s, acquire(vec![slot(3.0, 2048.0)], Duration::ZERO)),
        Err(CoreError::CannotFit { ref resource, .. }) if resource == "agents holding all of it at once"
    ));
    lease_now(&mut core, &s, 4.0, 1024.0);
    assert_eq!(
        core.acquire(
            T0,
            Ticket(4),
            &s,
            acquire(vec![slot(4.0, 64.0)], Duration::ZERO)
        ),
        Err(CoreError::NoCapacity {
            waited: Duration::ZERO
        }),
        "fits an agent that is busy now"
    );
    let waits = acquire(vec![slot(100.0, 64.0)], Duration::from_secs(1));
    assert!(matches!(
        core.acquire(T0, Ticket(5), &s, waits),
        Ok(Outcome::Later)
    ));
    core.drain_effects();
    core.tick(T0.after(Duration::from_secs(2)));
    let answers = answers(core.drain_effects());
    assert!(
        matches!(answers[..], [(Ticket(5), Err(CoreError::CannotFit { .. }))]),
        "a wait that runs out says why: {answers:?}"
    );
    core.agent_lost(&agent(1).id);
    assert!(matches!(
        core.acquire(T0, Ticket(6), &s, acquire(vec![slot(3.0, 64.0)], Duration::ZERO)),
        Err(CoreError::CannotFit { available, .. }) if available == 2.0
    ));
}

#[test]
fn hold_is_capped_and_release_returns_to_the_pool() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let lease = lease_now(&mut core, &s, 1.0, 128.0);
    let held = core
        .hold(
            T0,
            &s,
            std::slice::from_ref(&lease.id),
            Duration::from_secs(24 * 3600),
        )
        .unwrap();
    assert_eq!(held[0].expires_at, T0.after(CoreConfig::default().max_hold));
    core.release(T0, &s, std::slice::from_ref(&lease.id), Duration::ZERO)
        .unwrap();
    assert_eq!(core.agents()[0].pooled, res(4.0, 1024.0));
    assert_eq!(
        core.release(T0, &s, std::slice::from_ref(&lease.id), Duration::ZERO),
        Err(CoreError::LeaseNotFound(lease.id))
    );
}

#[test]
fn refuses_requests_outside_the_sessions_namespaces() {
    let mut core = TestCore::builder()
        .namespaces([
            Namespace::new("default", "default"),
            Namespace::new("other", "other"),
        ])
        .build();
    let s = session(&mut core, "a");
    let mut request = acquire(vec![slot(1.0, 1.0)], Duration::ZERO);
    request.namespace = "other".into();
    assert_eq!(
        core.acquire(T0, Ticket(1), &s, request.clone()),
        Err(CoreError::NamespaceNotSubscribed {
            namespace: "other".into()
        })
    );
    request.namespace = "nope".into();
    assert_eq!(
        core.acquire(T0, Ticket(1), &s, request),
        Err(CoreError::NamespaceNotFound("nope".into()))
    );
}

#[test]
fn an_acquire_over_the_limit_is_refused_with_the_numbers() {
    let mut core = TestCore::builder()
        .warm_pool(0)
        .namespaces([Namespace::new("default", "default").limit_cpus(2.0)])
        .build();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(8.0, 8192.0))]);
    lease_now(&mut core, &s, 1.5, 128.0);
    let error = core
        .acquire(
            T0,
            Ticket(1),
            &s,
            acquire(vec![slot(1.0, 128.0)], Duration::ZERO),
        )
        .unwrap_err();
    assert_eq!(
        error,
        CoreError::QuotaExceeded {
            namespace: "default".into(),
            resource: "cpus".into(),
            asked: 1.0,
            used: 1.5,
            allowed: 2.0,
        }
    );
    // A request of several slots gets those within the limit.
    let mut four = slot(0.25, 16.0);
    four.count = 4;
    let leases = granted(core.acquire(T0, Ticket(2), &s, acquire(vec![four], Duration::ZERO)));
    assert_eq!(leases.len(), 2);
    assert_eq!(core.usage("default").scalar("cpus"), 2.0);
}

#[test]
fn a_namespaces_max_hold_caps_its_leases() {
    let short = Namespace::new("default", "default").max_hold(Duration::from_secs(10));
    let mut core = TestCore::builder().warm_pool(0).namespaces([short]).build();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(8.0, 8192.0))]);
    let lease = lease_now(&mut core, &s, 1.0, 128.0);
    assert_eq!(lease.expires_at, T0.after(Duration::from_secs(10)));
    let held = core
        .hold(T0, &s, &[lease.id], Duration::from_secs(3600))
        .unwrap();
    assert_eq!(held[0].expires_at, T0.after(Duration::from_secs(10)));
}

#[test]
fn only_requests_that_allow_it_get_revocable_capacity() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![oversubscribed()]);
    let deny = |cpus| with_policy(RevocablePolicy::Deny, cpus);
    assert!(
        core.acquire(T0, Ticket(1), &s, deny(3.0)).is_err(),
        "2 regular cpus only"
    );
    let required = granted(core.acquire(
        T0,
        Ticket(2),
        &s,
        with_policy(RevocablePolicy::Require, 1.0),
    ));
    assert!(required[0].revocable);
    let allowed =
        granted(core.acquire(T0, Ticket(3), &s, with_policy(RevocablePolicy::Allow, 2.0)));
    assert!(!allowed[0].revocable, "regular capacity first");
    let allowed =
        granted(core.acquire(T0, Ticket(4), &s, with_policy(RevocablePolicy::Allow, 2.0)));
    assert!(allowed[0].revocable, "revocable when that is all there is");
    let ports = Slot {
        port_count: 1,
        ..slot(0.5, 0.0)
    };
    let require_ports = AcquireRequest {
        revocable: RevocablePolicy::Require,
        ..acquire(vec![ports], Duration::ZERO)
    };
    assert!(
        core.acquire(T0, Ticket(5), &s, require_ports).is_err(),
        "ports are never revocable"
    );
}

#[test]
fn revocable_use_is_capped_by_max_borrowed_not_by_the_limit() {
    let capped = Namespace::new("default", "default")
        .limit_cpus(1.0)
        .max_borrowed(res(1.0, 0.0));
    let mut core = TestCore::builder()
        .warm_pool(0)
        .namespaces([capped])
        .build();
    let s = session(&mut core, "a");
    core.offers(T0, vec![oversubscribed()]);
    granted(core.acquire(T0, Ticket(1), &s, with_policy(RevocablePolicy::Deny, 1.0)));
    let revocable = granted(core.acquire(
        T0,
        Ticket(2),
        &s,
        with_policy(RevocablePolicy::Require, 1.0),
    ));
    assert!(
        revocable[0].revocable,
        "the limit is full, revocable is apart"
    );
    assert!(
        core.acquire(
            T0,
            Ticket(3),
            &s,
            with_policy(RevocablePolicy::Require, 0.5)
        )
        .is_err(),
        "max_borrowed is full"
    );
    assert_eq!(core.usage("default"), res(1.0, 0.0));
}
