//! What a crash may not lose. The changes the core hands the runtime,
//! written in order, always amount to its durable records; and a core
//! started again from those records gives back what frontends and the
//! quota depend on: frontends, their unacknowledged events, live tasks and
//! their usage, with every lease held told lost.

mod driver;

use std::collections::BTreeMap;

use agora_core::{
    AgentId, CoreError, Effect, FrontendEvent, FrontendName, Input, LeaseLostReason, MesosCall,
    MesosInput, Resources, StatusUpdate, TaskState, Timestamp,
    durable::{Durable, FrontendRecord},
};
use driver::{Driver, fresh_core, step};
use proptest::prelude::*;

/// Writes the changes taken now into `image`, as the runtime writes them
/// into the store.
fn write(driver: &mut Driver, image: &mut Durable) {
    for change in driver.core.take_changes() {
        image.apply(change);
    }
}

/// What the namespace's tasks hold, as the quota counts them.
fn task_usage(durable: &Durable) -> Resources {
    let mut usage = Resources::default();
    for task in durable.tasks.values() {
        if !task.revocable && task.borrowed_from.is_none() {
            usage.add(&task.resources);
        }
    }
    usage
}

/// The frontends' records as a restart would keep them.
fn records(durable: &Durable) -> BTreeMap<FrontendName, FrontendRecord> {
    durable.frontends.clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_changes_written_in_order_are_the_durable_records(
        steps in prop::collection::vec(step(), 1..120),
        batch in 1..8usize,
    ) {
        let mut driver = Driver::new();
        let mut image = Durable::default();
        write(&mut driver, &mut image);
        for (n, step) in steps.iter().enumerate() {
            driver.step(step);
            if n % batch == 0 {
                write(&mut driver, &mut image);
                prop_assert_eq!(&image, &driver.core.durable());
            }
        }
        write(&mut driver, &mut image);
        prop_assert_eq!(&image, &driver.core.durable());
    }

    #[test]
    fn a_restart_keeps_what_frontends_and_the_quota_depend_on(
        before in prop::collection::vec(step(), 1..120),
        after in prop::collection::vec(step(), 0..60),
    ) {
        let mut driver = Driver::new();
        let mut image = Durable::default();
        for step in &before {
            driver.step(step);
        }
        write(&mut driver, &mut image);
        let stored = image.clone();

        let mut restarted = fresh_core();
        let now = Timestamp(2_000_000);
        let effects = restarted.handle(now, Input::Recovered(Box::new(stored.clone())));
        prop_assert!(effects.iter().all(|e| !matches!(e, Effect::Mesos(_))));
        let recovered = restarted.durable();

        // Frontends keep their names, owners and numbering; the tasks and
        // the usage they count are back.
        prop_assert_eq!(recovered.tasks.clone(), stored.tasks.clone());
        prop_assert_eq!(restarted.usage("default"), task_usage(&stored));
        prop_assert!(recovered.leases.is_empty());
        let lost_per_frontend = |name: &FrontendName| {
            stored.leases.values().filter(|l| &l.frontend == name).count() as u64
        };
        for (name, record) in records(&stored) {
            let now_record = &recovered.frontends[&name];
            prop_assert_eq!(&now_record.owner, &record.owner);
            prop_assert_eq!(
                now_record.next_sequence,
                record.next_sequence + lost_per_frontend(&name)
            );
        }
        // Every unacknowledged event is kept, then each lease held is told
        // lost, in the order of the numbering.
        for (name, events) in &recovered.events {
            let kept = stored.events.get(name).cloned().unwrap_or_default();
            let (old, new): (Vec<_>, Vec<_>) = events
                .iter()
                .partition(|(sequence, _)| kept.contains_key(sequence));
            prop_assert_eq!(old.len(), kept.len());
            for (_, event) in new {
                let FrontendEvent::LeaseLost { lease, reason, .. } = event else {
                    return Err(TestCaseError::fail(format!("unexpected {event:?}")));
                };
                prop_assert_eq!(*reason, LeaseLostReason::BrokerRestarted);
                prop_assert_eq!(&stored.leases[lease].frontend, name);
            }
        }
        let told: usize = recovered.events.values().map(BTreeMap::len).sum::<usize>()
            - stored.events.values().map(BTreeMap::len).sum::<usize>();
        prop_assert_eq!(told, stored.leases.len());

        // What recovery changed reaches the store like any other change.
        let mut image = stored.clone();
        for change in restarted.take_changes() {
            image.apply(change);
        }
        prop_assert_eq!(&image, &recovered);

        // And the restarted core goes on like any other.
        let mut driver = Driver::resume(restarted);
        for step in &after {
            driver.step(step);
            for change in driver.core.take_changes() {
                image.apply(change);
            }
        }
        prop_assert_eq!(&image, &driver.core.durable());
    }
}

/// A stored core with one running task and one lease, after `more`.
fn stored_with_a_task_and_a_lease_after(more: &[driver::Step]) -> Durable {
    let mut driver = Driver::new();
    let steps = [
        driver::Step::Offer { agent: 0, cpus: 4 },
        driver::Step::Acquire {
            frontend: 0,
            cpus: 1,
            count: 2,
            wait: false,
        },
        driver::Step::Launch { pick: 0 },
        driver::Step::Status { pick: 0, state: 0 },
    ];
    for step in steps.iter().chain(more) {
        driver.step(step);
    }
    let mut image = Durable::default();
    write(&mut driver, &mut image);
    assert_eq!(image.tasks.len(), 1);
    assert_eq!(image.leases.len(), 1);
    image
}

fn stored_with_a_task_and_a_lease() -> Durable {
    stored_with_a_task_and_a_lease_after(&[])
}

#[test]
fn a_kill_asked_before_a_crash_is_sent_again_once_subscribed() {
    let stored = stored_with_a_task_and_a_lease_after(&[driver::Step::Kill { pick: 0 }]);
    let task = stored.tasks.values().next().unwrap().id.clone();
    let mut core = fresh_core();
    let now = Timestamp(2_000_000);
    core.handle(now, Input::Recovered(Box::new(stored)));
    let effects = core.handle(
        now,
        Input::Mesos(MesosInput::Subscribed {
            resubscribed: true,
            roles: vec!["default".into()],
        }),
    );
    assert!(
        effects.iter().any(|e| matches!(
            e,
            Effect::Mesos(MesosCall::Kill { task_id, .. }) if *task_id == task
        )),
        "{effects:?}"
    );
}

fn acquire_answer(core: &mut agora_core::Core, now: Timestamp) -> Option<CoreError> {
    let session = match &core.handle(
        now,
        Input::Request {
            ticket: agora_core::Ticket(900),
            request: agora_core::Request::Subscribe {
                frontend: FrontendName("late".into()),
                principal: "tests".into(),
                namespaces: vec!["default".into()],
                resume_after: 0,
            },
        },
    )[0]
    {
        Effect::Reply {
            answer: Ok(agora_core::Answer::Subscribed(session)),
            ..
        } => session.clone(),
        other => panic!("{other:?}"),
    };
    let effects = core.handle(
        now,
        Input::Request {
            ticket: agora_core::Ticket(901),
            request: agora_core::Request::Acquire {
                session,
                request: agora_core::AcquireRequest {
                    namespace: "default".into(),
                    slots: vec![agora_core::Slot {
                        resources: Resources::from_scalars([("cpus", 1.0)], []).expect("valid"),
                        port_count: 0,
                        count: 1,
                    }],
                    constraints: vec![],
                    gang: false,
                    hold_for: None,
                    wait_for: std::time::Duration::ZERO,
                    request_id: None,
                    revocable: agora_core::RevocablePolicy::Deny,
                },
            },
        },
    );
    effects.into_iter().find_map(|effect| match effect {
        Effect::Reply {
            answer: Err(error), ..
        } => Some(error),
        _ => None,
    })
}

#[test]
fn acquires_wait_until_mesos_reports_every_restored_task() {
    let stored = stored_with_a_task_and_a_lease();
    let (task, agent) = stored
        .tasks
        .values()
        .map(|t| (t.id.clone(), t.agent.clone()))
        .next()
        .unwrap();
    let mut core = fresh_core();
    let now = Timestamp(2_000_000);
    core.handle(now, Input::Recovered(Box::new(stored)));
    assert!(matches!(
        acquire_answer(&mut core, now),
        Some(CoreError::Recovering { unsettled: 1 })
    ));

    let effects = core.handle(
        now,
        Input::Mesos(MesosInput::Subscribed {
            resubscribed: true,
            roles: vec!["default".into()],
        }),
    );
    let reconciles: Vec<&Vec<(agora_core::TaskId, AgentId)>> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Mesos(MesosCall::Reconcile { tasks }) => Some(tasks),
            _ => None,
        })
        .collect();
    assert_eq!(
        reconciles,
        [&vec![(task.clone(), agent.clone())], &vec![]],
        "each restored task by id, then all of them"
    );
    assert!(acquire_answer(&mut core, now).is_some());

    core.handle(
        now,
        Input::Mesos(MesosInput::Update(StatusUpdate {
            task_id: task,
            agent_id: Some(agent),
            state: TaskState::Running,
            reason: None,
            message: None,
            timestamp: None,
            uuid: None,
        })),
    );
    let refusal = acquire_answer(&mut core, now);
    assert!(
        !matches!(refusal, Some(CoreError::Recovering { .. })),
        "{refusal:?}"
    );
}

#[test]
fn acquires_are_served_after_the_settle_timeout_whatever_mesos_said() {
    let mut core = fresh_core();
    let now = Timestamp(2_000_000);
    core.handle(
        now,
        Input::Recovered(Box::new(stored_with_a_task_and_a_lease())),
    );
    core.handle(
        now,
        Input::Mesos(MesosInput::Subscribed {
            resubscribed: true,
            roles: vec!["default".into()],
        }),
    );
    let deadline = core
        .next_deadline()
        .expect("the settle timeout is a deadline");
    core.handle(deadline, Input::Tick);
    let refusal = acquire_answer(&mut core, deadline);
    assert!(
        !matches!(refusal, Some(CoreError::Recovering { .. })),
        "{refusal:?}"
    );
}
