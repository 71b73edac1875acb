//! What Mesos tells the core and what follows: status updates acknowledged
//! and delivered in sequence to the task's frontend, launches Mesos refused,
//! rescinded offers, and agents whose attributes changed.

use std::time::Duration;

use crate::testing::*;
use crate::*;

#[test]
fn status_is_recorded_acknowledged_then_delivered_in_sequence() {
    let (mut core, s, task_id) = one_launched_task();
    core.drain_effects();
    for (n, state) in [TaskState::Starting, TaskState::Running]
        .into_iter()
        .enumerate()
    {
        core.status_update(
            Timestamp::default(),
            update(&task_id, state, Some(vec![n as u8])),
        );
        match core.drain_effects().as_slice() {
            [
                Effect::Mesos(MesosCall::Acknowledge { uuid, .. }),
                Effect::Deliver {
                    sequence,
                    event: FrontendEvent::TaskStatus(record),
                    ..
                },
            ] => {
                assert_eq!(uuid, &vec![n as u8]);
                assert_eq!(*sequence, n as u64 + 1);
                assert_eq!(record.state, state);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        core.tasks_of(&s, None).unwrap()[0].state,
        TaskState::Running
    );
}

#[test]
fn updates_without_uuid_are_not_acknowledged_and_unknown_tasks_reach_nobody() {
    let mut core = core();
    session(&mut core, "a");
    core.status_update(
        Timestamp::default(),
        update(
            &TaskId("someone-elses".into()),
            TaskState::Running,
            Some(vec![1]),
        ),
    );
    assert!(matches!(
        core.drain_effects().as_slice(),
        [
            Effect::Mesos(MesosCall::Acknowledge { .. }),
            Effect::Mesos(MesosCall::Suppress { .. })
        ]
    ));
    core.status_update(
        Timestamp::default(),
        StatusUpdate {
            task_id: TaskId("someone-elses".into()),
            agent_id: Some(agent(1).id),
            state: TaskState::Lost,
            reason: Some("REASON_RECONCILIATION".into()),
            message: None,
            timestamp: None,
            uuid: None,
        },
    );
    assert!(core.drain_effects().is_empty());
}

#[test]
fn a_launch_mesos_refused_ends_dropped_and_says_why() {
    let (mut core, _, task_id) = one_launched_task();
    core.drain_effects();
    core.accept_failed(std::slice::from_ref(&task_id), "not subscribed to Mesos");
    match core.drain_effects().as_slice() {
        [
            Effect::Deliver {
                event: FrontendEvent::TaskStatus(record),
                ..
            },
        ] => {
            assert_eq!(record.state, TaskState::Dropped);
            assert!(
                record
                    .message
                    .as_deref()
                    .unwrap()
                    .contains("not subscribed")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rescind_loses_leases_and_expiry_warns_first() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(
        T0,
        vec![
            offer("o1", 1, res(4.0, 1024.0)),
            offer("o2", 2, res(4.0, 1024.0)),
        ],
    );
    let leases = granted(core.acquire(
        T0,
        Ticket(1),
        &s,
        acquire(
            vec![Slot {
                count: 2,
                ..slot(3.0, 128.0)
            }],
            Duration::ZERO,
        ),
    ));
    core.drain_effects();
    core.rescind(&leases[0].offer.clone().unwrap());
    assert!(matches!(
        core.drain_effects().as_slice(),
        [Effect::Deliver {
            event: FrontendEvent::LeaseLost {
                reason: LeaseLostReason::OfferRescinded,
                ..
            },
            ..
        }]
    ));
    let expiry = leases[1].expires_at;
    core.tick(Timestamp(expiry.0 - 1000));
    assert!(matches!(
        core.drain_effects().as_slice(),
        [Effect::Deliver {
            event: FrontendEvent::LeaseExpiring { .. },
            ..
        }]
    ));
    core.tick(expiry);
    let effects = core.drain_effects();
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Deliver {
            event: FrontendEvent::LeaseLost {
                reason: LeaseLostReason::Expired,
                ..
            },
            ..
        }
    )));
}

#[test]
fn a_launch_whose_offer_is_rescinded_before_the_accept_is_dropped() {
    let mut core = core();
    let a = session(&mut core, "a");
    let b = session(&mut core, "b");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let la = lease_now(&mut core, &a, 1.0, 128.0);
    lease_now(&mut core, &b, 1.0, 128.0);
    let tasks = launched(core.launch(T0, Ticket(1), &a, vec![(la.id, task("x", 1.0, 128.0))]));
    core.drain_effects();
    core.rescind(&OfferId("o1".into()));
    let effects = core.drain_effects();
    assert!(accepts(&effects).is_empty());
    assert!(effects.iter().any(|e| matches!(e, Effect::Deliver {
        event: FrontendEvent::TaskStatus(record), ..
    } if record.id == tasks[0].task_id && record.state == TaskState::Dropped)));
}

#[test]
fn a_lease_on_an_agent_whose_attributes_changed_is_lost() {
    let mut core = core();
    let a = session(&mut core, "a");
    let b = session(&mut core, "b");
    let before = agent_with(1, &[("rack", "r1")]);
    core.offers(T0, vec![offer_on("o1", before, res(4.0, 1024.0))]);
    let la = lease_now(&mut core, &a, 1.0, 128.0);
    let lb = lease_now(&mut core, &b, 1.0, 128.0);
    launched(core.launch(T0, Ticket(9), &a, vec![(la.id, task("t", 1.0, 128.0))]));
    core.tick(T0.after(CoreConfig::default().launch_linger));
    core.drain_effects();
    let after = agent_with(1, &[("rack", "r9")]);
    core.offers(T0, vec![offer_on("o2", after, res(3.0, 896.0))]);
    let lost = core.drain_effects().into_iter().any(|e| {
        matches!(e, Effect::Deliver {
            event: FrontendEvent::LeaseLost { lease, reason: LeaseLostReason::AgentChanged, .. }, ..
        } if lease == lb.id)
    });
    assert!(lost);
    assert!(core.leases_of(&b, None).unwrap().is_empty());
}
