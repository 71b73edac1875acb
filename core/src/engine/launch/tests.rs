//! Launches on leases: one ACCEPT per offer, the launches of leases that
//! share it lingering for each other and the siblings rebinding; task groups
//! with their executor; launches refused whole; tasks and events owned by
//! their frontend; finished tasks remembered up to a bound.

use std::time::Duration;

use crate::engine::Outcome;
use crate::testing::*;
use crate::*;

#[test]
fn launch_accepts_the_offer_with_refuse_zero_and_siblings_rebind() {
    let mut core = core();
    let a = session(&mut core, "a");
    let b = session(&mut core, "b");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let la = lease_now(&mut core, &a, 2.0, 256.0);
    let lb = lease_now(&mut core, &b, 1.0, 128.0);
    core.drain_effects();

    let tasks = launched(core.launch(
        T0,
        Ticket(99),
        &a,
        vec![(la.id.clone(), task("web", 1.0, 128.0))],
    ));
    assert!(tasks[0].task_id.0.starts_with("default.a.web."));
    // b shares the offer: a's launch lingers for b's before the ACCEPT.
    assert!(accepts(&core.drain_effects()).is_empty());
    let linger = CoreConfig::default().launch_linger;
    assert_eq!(core.next_deadline(), Some(T0.after(linger)));
    core.tick(T0.after(linger));
    // b's slice waits for the agent's next offer, which Mesos would make
    // only at its next allocation run: the role is revived to make it now.
    match mesos_calls(&core.drain_effects()).as_slice() {
        [
            MesosCall::Accept {
                offer_ids,
                tasks,
                refuse_seconds,
                ..
            },
            MesosCall::Revive { roles },
        ] => {
            assert_eq!(offer_ids, &vec![OfferId("o1".into())]);
            assert_eq!(tasks.len(), 1);
            assert_eq!(*refuse_seconds, 0.0);
            assert_eq!(roles, &["default".to_owned()]);
        }
        other => panic!("{other:?}"),
    }
    // b's slice waits for the agent's next offer; its launch waits with it
    // and goes out as soon as the slice is bound again.
    assert_eq!(
        core.launch(
            T0,
            Ticket(5),
            &b,
            vec![(lb.id.clone(), task("x", 0.5, 128.0))]
        ),
        Ok(Outcome::Later)
    );
    core.offers(
        T0.after(Duration::from_secs(1)),
        vec![offer("o2", 1, res(3.0, 896.0))],
    );
    match core.drain_effects().as_slice() {
        [
            Effect::Mesos(MesosCall::Accept {
                offer_ids, tasks, ..
            }),
            Effect::Reply {
                ticket: Ticket(5),
                answer: Ok(Answer::Launched(launched)),
            },
            Effect::Mesos(MesosCall::Suppress { .. }),
        ] => {
            assert_eq!(offer_ids, &vec![OfferId("o2".into())]);
            assert_eq!(tasks[0].task_id, launched[0].task_id);
            assert_eq!(tasks[0].spec.resources, res(0.5, 128.0));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_sibling_stranded_by_a_launch_revives_its_role_even_when_offers_flow() {
    // The warm pool is not full, so the role was never suppressed.
    let mut core = TestCore::builder().build();
    let a = session(&mut core, "a");
    let b = session(&mut core, "b");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let la = lease_now(&mut core, &a, 2.0, 256.0);
    lease_now(&mut core, &b, 1.0, 128.0);
    core.drain_effects();
    launched(core.launch(T0, Ticket(1), &a, vec![(la.id, task("web", 1.0, 128.0))]));
    core.tick(T0.after(CoreConfig::default().launch_linger));
    assert!(matches!(
        mesos_calls(&core.drain_effects()).as_slice(),
        [MesosCall::Accept { .. }, MesosCall::Revive { roles }] if roles == &["default".to_owned()]
    ));
    core.tick(T0.after(Duration::from_secs(1)));
    assert!(
        mesos_calls(&core.drain_effects()).is_empty(),
        "one REVIVE per stranding, not one per input"
    );
}

#[test]
fn a_sibling_not_reoffered_in_time_is_lost() {
    let mut core = core();
    let a = session(&mut core, "a");
    let b = session(&mut core, "b");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let la = lease_now(&mut core, &a, 1.0, 128.0);
    let lb = lease_now(&mut core, &b, 1.0, 128.0);
    launched(core.launch(T0, Ticket(99), &a, vec![(la.id, task("t", 1.0, 128.0))]));
    let accepted = T0.after(CoreConfig::default().launch_linger);
    core.tick(accepted);
    core.drain_effects();
    core.tick(accepted.after(CoreConfig::default().rebind_timeout));
    let lost: Vec<_> = core
        .drain_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Deliver {
                session,
                event: FrontendEvent::LeaseLost { lease, reason, .. },
                ..
            } => Some((session, lease, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(lost, vec![(b, lb.id, LeaseLostReason::RebindTimeout)]);
}

#[test]
fn launches_on_one_offer_within_the_linger_go_out_in_one_accept() {
    let mut core = core();
    let a = session(&mut core, "a");
    let b = session(&mut core, "b");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let la = lease_now(&mut core, &a, 1.0, 128.0);
    let lb = lease_now(&mut core, &b, 1.0, 128.0);
    launched(core.launch(T0, Ticket(1), &a, vec![(la.id, task("x", 1.0, 128.0))]));
    let soon = T0.after(Duration::from_millis(5));
    launched(core.launch(soon, Ticket(2), &b, vec![(lb.id, task("y", 1.0, 128.0))]));
    match accepts(&core.drain_effects()).as_slice() {
        [MesosCall::Accept { tasks, .. }] => assert_eq!(tasks.len(), 2),
        other => panic!("the last launch completes the offer: {other:?}"),
    }
}

#[test]
fn a_task_group_shares_one_executor_whose_resources_come_from_the_lease() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let lease = lease_now(&mut core, &s, 1.1, 288.0);
    let group = Work::Group(vec![spec("web", 0.5, 128.0), spec("sidecar", 0.5, 128.0)]);
    let tasks = launched(core.launch(T0, Ticket(1), &s, vec![(lease.id, group)]));
    assert_eq!(tasks.len(), 2);
    match accepts(&core.drain_effects()).as_slice() {
        [MesosCall::Accept { tasks, groups, .. }] => {
            assert!(tasks.is_empty());
            assert_eq!(groups.len(), 1);
            assert_eq!(groups[0].tasks.len(), 2);
            assert_eq!(groups[0].executor_resources, group_executor_resources());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_task_group_must_fit_with_its_executor() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let lease = lease_now(&mut core, &s, 1.0, 256.0);
    let group = Work::Group(vec![spec("web", 0.5, 128.0), spec("sidecar", 0.5, 128.0)]);
    assert!(matches!(
        core.launch(T0, Ticket(1), &s, vec![(lease.id, group)]),
        Err(CoreError::TaskExceedsLease { .. })
    ));
}

#[test]
fn a_task_bigger_than_its_lease_is_refused_and_changes_nothing() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let lease = lease_now(&mut core, &s, 1.0, 128.0);
    core.drain_effects();
    let error = core
        .launch(
            T0,
            Ticket(99),
            &s,
            vec![(lease.id.clone(), task("big", 2.0, 64.0))],
        )
        .unwrap_err();
    assert_eq!(
        error,
        CoreError::TaskExceedsLease {
            lease: lease.id.clone(),
            resource: "cpus".into(),
            asked: 2.0,
            available: 1.0
        }
    );
    assert!(core.drain_effects().is_empty());
    assert_eq!(core.leases_of(&s, None).unwrap(), vec![lease]);
}

#[test]
fn two_launches_on_one_lease_are_refused_whole_and_change_nothing() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let lease = lease_now(&mut core, &s, 2.0, 256.0);
    core.drain_effects();
    let twice = vec![
        (lease.id.clone(), task("first", 1.0, 128.0)),
        (lease.id.clone(), task("second", 1.0, 128.0)),
    ];
    let error = core.launch(T0, Ticket(99), &s, twice).unwrap_err();
    let CoreError::InvalidRequest { field, reason } = error else {
        panic!("expected INVALID_ARGUMENT, got {error:?}");
    };
    assert_eq!(field, "launches[1].lease_id");
    assert!(reason.contains("already used by launches[0]"), "{reason}");
    assert!(core.drain_effects().is_empty());
    assert!(core.tasks_of(&s, None).unwrap().is_empty());
    assert_eq!(core.leases_of(&s, None).unwrap(), vec![lease]);
}

#[test]
fn another_frontends_lease_and_task_look_like_unknown_ones() {
    let mut core = core();
    let a = session(&mut core, "a");
    let b = session(&mut core, "b");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let lease = lease_now(&mut core, &a, 1.0, 128.0);
    assert_eq!(
        core.launch(
            T0,
            Ticket(99),
            &b,
            vec![(lease.id.clone(), task("t", 1.0, 128.0))]
        ),
        Err(CoreError::LeaseNotFound(lease.id.clone()))
    );
    let tasks = launched(core.launch(T0, Ticket(99), &a, vec![(lease.id, task("t", 1.0, 128.0))]));
    assert_eq!(
        core.kill(&b, &[tasks[0].task_id.clone()], None),
        Err(CoreError::TaskNotFound(tasks[0].task_id.clone()))
    );
}

#[test]
fn a_task_on_revocable_capacity_is_launched_as_revocable() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![oversubscribed()]);
    let lease = granted(core.acquire(
        T0,
        Ticket(1),
        &s,
        with_policy(RevocablePolicy::Require, 1.0),
    ))
    .remove(0);
    launched(core.launch(T0, Ticket(2), &s, vec![(lease.id, task("t", 1.0, 0.0))]));
    match accepts(&core.drain_effects()).as_slice() {
        [MesosCall::Accept { tasks, .. }] => assert!(tasks[0].revocable),
        other => panic!("{other:?}"),
    }
}

#[test]
fn acknowledged_events_are_not_replayed_the_rest_are() {
    let (mut core, s, task_id) = one_launched_task();
    for state in [TaskState::Starting, TaskState::Running, TaskState::Finished] {
        core.status_update(Timestamp::default(), update(&task_id, state, None));
    }
    core.acknowledge(&s, 1).unwrap();
    core.end_session(T0, &s);
    core.drain_effects();
    let again = core
        .subscribe(FrontendName("a".into()), "p", vec!["default".into()], 1)
        .unwrap();
    let replayed: Vec<u64> = core
        .drain_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Deliver {
                session, sequence, ..
            } if session == again => Some(sequence),
            _ => None,
        })
        .collect();
    assert_eq!(replayed, vec![2, 3]);
}

#[test]
fn finished_tasks_are_remembered_up_to_the_bound_and_free_their_ids() {
    let mut core = TestCore::builder().completed_tasks(2).build();
    let s = session(&mut core, "a");
    let mut ids = Vec::new();
    for (n, offer_id) in ["o1", "o2", "o3", "o4"].into_iter().enumerate() {
        core.offers(T0, vec![offer(offer_id, n as u32, res(2.0, 256.0))]);
        let lease = lease_now(&mut core, &s, 1.0, 128.0);
        let other = lease_now(&mut core, &s, 1.0, 128.0);
        let work = vec![(lease.id, task("same-id", 1.0, 128.0))];
        let task_id = launched(core.launch(T0, Ticket(n as u64), &s, work))
            .remove(0)
            .task_id;
        let work = vec![(other.id.clone(), task("same-id", 1.0, 128.0))];
        let duplicate = core.launch(T0, Ticket(9), &s, work);
        assert!(matches!(duplicate, Err(CoreError::DuplicateTask { .. })));
        core.release(T0, &s, &[other.id], Duration::ZERO).unwrap();
        core.drain_effects();
        core.status_update(
            Timestamp::default(),
            update(&task_id, TaskState::Finished, Some(vec![n as u8])),
        );
        let delivered = core.drain_effects().into_iter().any(|effect| {
            matches!(effect, Effect::Deliver { event: FrontendEvent::TaskStatus(record), .. }
                if record.id == task_id && record.state == TaskState::Finished)
        });
        assert!(
            delivered,
            "the final status of task {n} reached its frontend"
        );
        ids.push(task_id);
    }
    let remembered: Vec<TaskId> = core
        .tasks_of(&s, None)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(remembered.len(), 2);
    assert!(ids[2..].iter().all(|id| remembered.contains(id)));
    core.status_update(
        Timestamp::default(),
        update(&ids[0], TaskState::Running, Some(vec![7])),
    );
    assert!(matches!(
        core.drain_effects().as_slice(),
        [Effect::Mesos(MesosCall::Acknowledge { .. }), ..]
    ));
    assert!(
        core.tasks_of(&s, None)
            .unwrap()
            .iter()
            .all(|t| t.state.is_terminal())
    );
}
