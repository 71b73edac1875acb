//! Why demand waits: each reason comes from the state the core decides by
//! — the pool, the namespace's limit, the constraints, the gang rule and
//! the backfill queue — and operators can list every frontend's leases and
//! tasks.

use std::time::Duration;

use crate::engine::Outcome;
use crate::testing::*;
use crate::*;

const WAIT: Duration = Duration::from_secs(60);

/// Queues `request` for `session`, which must wait.
fn wait(core: &mut Core, ticket: u64, session: &SessionId, request: AcquireRequest) {
    assert_eq!(
        core.acquire(T0, Ticket(ticket), session, request),
        Ok(Outcome::Later)
    );
}

/// Every waiting request, with the filter's defaults.
fn all(core: &Core, now: Timestamp) -> Vec<WaitingView> {
    core.waiting_requests(now, &WaitingFilter::default()).0
}

fn reasons(core: &Core, now: Timestamp) -> Vec<WaitReason> {
    let waiting = all(core, now);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    waiting[0].reasons.clone()
}

#[test]
fn an_empty_pool_is_a_wait_for_capacity() {
    let mut core = core();
    let s = session(&mut core, "spark");
    wait(&mut core, 1, &s, acquire(vec![slot(1.0, 128.0)], WAIT));
    let waiting = all(&core, T0);
    assert_eq!(waiting.len(), 1);
    let view = &waiting[0];
    assert_eq!(view.frontend, FrontendName("spark".into()));
    assert_eq!((view.position, view.slots), (1, 1));
    assert_eq!(view.asked, res(1.0, 128.0));
    assert_eq!(view.deadline, T0.after(WAIT));
    assert_eq!(
        view.reasons,
        vec![WaitReason::Capacity {
            role: "default".into(),
            fit: 0,
            needed: 1
        }]
    );
}

#[test]
fn room_on_agents_the_constraints_exclude_is_a_wait_for_constraints() {
    let mut core = core();
    let s = session(&mut core, "spark");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let request = AcquireRequest {
        constraints: vec![on(HOSTNAME, Rule::Equals("host-2".into()))],
        ..acquire(vec![slot(1.0, 128.0)], WAIT)
    };
    wait(&mut core, 1, &s, request);
    assert!(reasons(&core, T0).contains(&WaitReason::Constraints {
        fit_anywhere: 1,
        fit_constrained: 0,
        needed: 1
    }));
}

#[test]
fn usage_grown_past_the_limit_is_a_wait_for_quota() {
    let mut core = TestCore::builder()
        .warm_pool(0)
        .namespaces([Namespace::new("default", "default").limit_cpus(2.0)])
        .build();
    let s = session(&mut core, "spark");
    wait(&mut core, 1, &s, acquire(vec![slot(2.0, 0.0)], WAIT));
    // One cpu arrives, too little for the waiting request; a smaller one
    // takes it, which leaves the namespace one cpu short of its limit.
    core.offers(T0, vec![offer("o1", 1, res(1.0, 1024.0))]);
    let small = core.acquire(
        T0,
        Ticket(2),
        &s,
        acquire(vec![slot(1.0, 0.0)], Duration::ZERO),
    );
    assert_eq!(granted(small).len(), 1);
    let reasons = reasons(&core, T0);
    assert!(
        reasons.contains(&WaitReason::Quota {
            resource: "cpus".into(),
            asked: 2.0,
            used: 1.0,
            allowed: 2.0
        }),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.kind() == "capacity"),
        "{reasons:?}"
    );
}

#[test]
fn a_gang_larger_than_the_room_waits_for_all_its_slots() {
    let mut core = core();
    let s = session(&mut core, "mpi");
    core.offers(
        T0,
        vec![
            offer("o1", 1, res(1.0, 256.0)),
            offer("o2", 2, res(1.0, 256.0)),
        ],
    );
    let gang = AcquireRequest {
        gang: true,
        ..acquire(
            vec![Slot {
                count: 3,
                ..slot(1.0, 128.0)
            }],
            WAIT,
        )
    };
    wait(&mut core, 1, &s, gang);
    let reasons = reasons(&core, T0);
    for expected in [
        WaitReason::Capacity {
            role: "default".into(),
            fit: 2,
            needed: 3,
        },
        WaitReason::Gang { fit: 2, needed: 3 },
    ] {
        assert!(reasons.contains(&expected), "{reasons:?}");
    }
}

#[test]
fn a_request_behind_one_past_the_backfill_window_waits_in_the_queue() {
    let mut core = core();
    let big = session(&mut core, "big");
    let small = session(&mut core, "small");
    wait(&mut core, 1, &big, acquire(vec![slot(8.0, 128.0)], WAIT));
    let later = T0.after(CoreConfig::default().backfill_window + Duration::from_secs(1));
    core.offers(later, vec![offer("o1", 1, res(1.0, 1024.0))]);
    assert_eq!(
        core.acquire(
            later,
            Ticket(2),
            &small,
            acquire(vec![slot(1.0, 128.0)], WAIT)
        ),
        Ok(Outcome::Later),
        "the big request blocks the queue"
    );
    let small_only = WaitingFilter {
        frontend: Some("small".into()),
        ..WaitingFilter::default()
    };
    let (waiting, omitted) = core.waiting_requests(later, &small_only);
    assert_eq!((waiting.len(), omitted), (1, 0));
    assert_eq!(waiting[0].position, 2);
    assert_eq!(
        waiting[0].reasons,
        vec![WaitReason::Queue {
            ahead: FrontendName("big".into()),
            since: T0
        }]
    );
    let other = WaitingFilter {
        namespace: Some("other".into()),
        ..WaitingFilter::default()
    };
    assert!(core.waiting_requests(later, &other).0.is_empty());
    // At most `max` are explained, the oldest first; the others counted.
    let one = WaitingFilter {
        max: 1,
        ..WaitingFilter::default()
    };
    let (waiting, omitted) = core.waiting_requests(later, &one);
    assert_eq!(waiting[0].frontend, FrontendName("big".into()));
    assert_eq!(omitted, 1);
    let by_id = WaitingFilter {
        request_id: Some("nope".into()),
        ..WaitingFilter::default()
    };
    assert!(core.waiting_requests(later, &by_id).0.is_empty());
}

#[test]
fn every_reason_reads_as_a_sentence() {
    let reasons = [
        WaitReason::Capacity {
            role: "batch".into(),
            fit: 0,
            needed: 2,
        },
        WaitReason::Gang { fit: 1, needed: 4 },
        WaitReason::Ready,
        WaitReason::CannotFit {
            field: "slots".into(),
            resource: "cpus".into(),
            asked: 9.0,
            available: 8.0,
        },
    ];
    let shown: Vec<String> = reasons.iter().map(ToString::to_string).collect();
    assert!(shown[0].contains("room for 0 of the 2"), "{}", shown[0]);
    assert!(shown[1].contains("gang of 4"), "{}", shown[1]);
    assert!(shown[2].contains("served next turn"), "{}", shown[2]);
    assert!(
        shown[3].starts_with("slots needs 9 cpus, more than the 8 Agora has seen"),
        "{}",
        shown[3]
    );
}

#[test]
fn operators_see_every_frontends_leases_and_tasks() {
    let (mut core, s, task_id) = one_launched_task();
    core.offers(T0, vec![offer("o2", 1, res(3.0, 896.0))]);
    let other = session(&mut core, "other");
    let lease = lease_now(&mut core, &other, 1.0, 64.0);
    let leases = core.all_leases(None, None);
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].id, lease.id);
    assert_eq!(core.all_leases(None, Some("other")).len(), 1);
    assert!(core.all_leases(Some("nope"), None).is_empty());
    let tasks = core.all_tasks(Some("default"), None, true);
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].id, task_id);
    assert!(core.all_tasks(None, Some("other"), false).is_empty());
    core.status_update(T0, update(&task_id, TaskState::Finished, None));
    assert!(core.all_tasks(None, None, true).is_empty());
    assert_eq!(core.all_tasks(None, None, false).len(), 1);
    let _ = s;
}

#[test]
fn revocable_use_past_max_borrowed_is_a_wait_for_the_borrowing_cap() {
    let mut core = TestCore::builder()
        .warm_pool(0)
        .namespaces([Namespace::new("default", "default").max_borrowed(res(1.0, 0.0))])
        .build();
    let s = session(&mut core, "spark");
    let request = AcquireRequest {
        revocable: RevocablePolicy::Require,
        ..acquire(vec![slot(2.0, 0.0)], WAIT)
    };
    wait(&mut core, 1, &s, request);
    let reasons = reasons(&core, T0);
    assert!(
        reasons.contains(&WaitReason::BorrowCap {
            resource: "cpus".into(),
            asked: 2.0,
            used: 0.0,
            allowed: 1.0
        }),
        "{reasons:?}"
    );
}
