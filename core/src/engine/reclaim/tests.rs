//! Lending and taking back: idle capacity lent only to requests that allow
//! revocable capacity, up to `max_lent`; unlaunched loans taken back first;
//! then the newest borrowed tasks that free enough named in a preemption
//! notice and killed at its deadline unless they ended. The property tests
//! check the same rules under random inputs: only borrowed work is ever
//! reclaimed, and the owner is served by the deadline.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;

use crate::engine::Outcome;
use crate::testing::*;
use crate::*;

/// `batch` lends its idle capacity (up to `max_lent` cpus, unlimited when
/// zero); `ci` may borrow. One 4-cpu offer on batch's role.
fn lending_core(max_lent: f64) -> (Core, SessionId, SessionId) {
    let batch =
        Namespace::new("batch", "batch").lends_idle(res(max_lent, 0.0), Duration::from_secs(30));
    let mut core = TestCore::builder()
        .warm_pool(0)
        .namespaces([batch, Namespace::new("ci", "ci")])
        .build();
    let owner = in_namespace(&mut core, "owner", "batch");
    let borrower = in_namespace(&mut core, "borrower", "ci");
    core.offers(
        T0,
        vec![Offer {
            role: "batch".into(),
            ..offer("o1", 1, res(4.0, 4096.0))
        }],
    );
    (core, owner, borrower)
}

fn in_ci(policy: RevocablePolicy, cpus: f64) -> AcquireRequest {
    AcquireRequest {
        revocable: policy,
        ..acquire_in("ci", vec![slot(cpus, 64.0)], Duration::ZERO)
    }
}

#[test]
fn idle_capacity_is_lent_only_to_requests_that_allow_revocable() {
    let (mut core, _owner, borrower) = lending_core(0.0);
    assert!(
        core.acquire(T0, Ticket(1), &borrower, in_ci(RevocablePolicy::Deny, 1.0))
            .is_err()
    );
    let lease = granted(core.acquire(T0, Ticket(2), &borrower, in_ci(RevocablePolicy::Allow, 1.0)))
        .remove(0);
    assert_eq!(lease.borrowed_from.as_deref(), Some("batch"));
    assert_eq!(lease.role, "batch", "Mesos sees the owner's role");
    assert_eq!(
        core.usage("ci"),
        Resources::default(),
        "borrowing is not regular use"
    );
    assert_eq!(core.accounting.lent["batch"].scalar("cpus"), 1.0);
    let report = core.usage_report(None).unwrap();
    let of = |name: &str| report.iter().find(|u| u.namespace.name == name).unwrap();
    assert_eq!(of("ci").borrowed.scalar("cpus"), 1.0);
    assert_eq!(
        of("ci").leased.scalar("cpus"),
        1.0,
        "borrowed leases are leases"
    );
    assert_eq!(of("batch").lent.scalar("cpus"), 1.0);
}

#[test]
fn lending_stops_at_max_lent() {
    let (mut core, _owner, borrower) = lending_core(1.0);
    granted(core.acquire(
        T0,
        Ticket(1),
        &borrower,
        in_ci(RevocablePolicy::Require, 1.0),
    ));
    assert!(
        core.acquire(
            T0,
            Ticket(2),
            &borrower,
            in_ci(RevocablePolicy::Require, 0.5)
        )
        .is_err()
    );
}

#[test]
fn the_owner_takes_back_unlaunched_borrowed_leases_and_no_more_than_needed() {
    let (mut core, owner, borrower) = lending_core(0.0);
    let first = granted(core.acquire(T0, Ticket(1), &borrower, in_ci(RevocablePolicy::Allow, 2.0)))
        .remove(0);
    let second =
        granted(core.acquire(T0, Ticket(2), &borrower, in_ci(RevocablePolicy::Allow, 2.0)))
            .remove(0);
    core.drain_effects();
    // More than the agent has: reclaiming would not help, so nothing is.
    let huge = acquire_in("batch", vec![slot(8.0, 64.0)], Duration::ZERO);
    assert!(core.acquire(T0, Ticket(3), &owner, huge).is_err());
    assert_eq!(core.leases_of(&borrower, None).unwrap().len(), 2);
    // Two cpus: one borrowed lease goes back, the other stays.
    let mine = acquire_in("batch", vec![slot(2.0, 64.0)], Duration::ZERO);
    granted(core.acquire(T0, Ticket(4), &owner, mine));
    let lost: Vec<LeaseId> = core
        .drain_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::Deliver {
                event:
                    FrontendEvent::LeaseLost {
                        lease,
                        reason: LeaseLostReason::Reclaimed,
                        ..
                    },
                ..
            } => Some(lease),
            _ => None,
        })
        .collect();
    assert_eq!(lost.len(), 1);
    assert!(lost[0] == first.id || lost[0] == second.id);
    assert_eq!(core.leases_of(&borrower, None).unwrap().len(), 1);
    assert_eq!(core.accounting.lent["batch"].scalar("cpus"), 2.0);
}

/// `ci` runs two borrowed 2-cpu tasks on batch's agent, the second a
/// second after the first; `batch` then waits for 2 cpus.
fn owner_waits_behind_two_borrowed_tasks() -> (Core, SessionId, Vec<Launched>) {
    let (mut core, owner, borrower) = lending_core(0.0);
    let mut two = slot(2.0, 64.0);
    two.count = 2;
    let request = AcquireRequest {
        revocable: RevocablePolicy::Allow,
        ..acquire_in("ci", vec![two], Duration::ZERO)
    };
    let leases = granted(core.acquire(T0, Ticket(1), &borrower, request));
    let mut tasks = launched(core.launch(
        T0,
        Ticket(2),
        &borrower,
        vec![(leases[0].id.clone(), task("old", 2.0, 64.0))],
    ));
    let later = T0.after(Duration::from_millis(10));
    tasks.extend(launched(core.launch(
        later,
        Ticket(3),
        &borrower,
        vec![(leases[1].id.clone(), task("new", 2.0, 64.0))],
    )));
    core.drain_effects();
    let mine = acquire_in("batch", vec![slot(2.0, 64.0)], Duration::from_secs(120));
    assert_eq!(
        core.acquire(later, Ticket(4), &owner, mine),
        Ok(Outcome::Later)
    );
    (core, borrower, tasks)
}

fn kills(effects: &[Effect]) -> Vec<TaskId> {
    mesos_calls(effects)
        .into_iter()
        .filter_map(|c| match c {
            MesosCall::Kill { task_id, .. } => Some(task_id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_reclaim_names_the_newest_borrowed_tasks_that_free_enough_then_kills_them() {
    let (mut core, _borrower, tasks) = owner_waits_behind_two_borrowed_tasks();
    let effects = core.drain_effects();
    let notice = effects
        .iter()
        .find_map(|e| match e {
            Effect::Deliver {
                event: FrontendEvent::PreemptionNotice(reclaim),
                ..
            } => Some(reclaim.clone()),
            _ => None,
        })
        .expect("the borrower is warned");
    assert_eq!(
        notice.tasks,
        vec![tasks[1].task_id.clone()],
        "the newest, and only it"
    );
    assert_eq!(notice.owner, "batch");
    assert!(
        kills(&effects).is_empty(),
        "nothing is killed before the deadline"
    );
    assert_eq!(core.reclaims(Some("batch")).len(), 1);
    core.tick(notice.deadline);
    assert_eq!(kills(&core.drain_effects()), vec![tasks[1].task_id.clone()]);
}

#[test]
fn a_borrower_that_ends_its_tasks_in_time_has_nothing_killed() {
    let (mut core, _borrower, tasks) = owner_waits_behind_two_borrowed_tasks();
    let deadline = core.reclaims(None)[0].deadline;
    core.status_update(
        Timestamp::default(),
        StatusUpdate {
            agent_id: Some(agent(1).id),
            ..update(&tasks[1].task_id, TaskState::Killed, None)
        },
    );
    core.drain_effects();
    core.tick(deadline);
    assert!(kills(&core.drain_effects()).is_empty());
}

/// One random input to a core where `batch` lends, `ci` borrows (up to 6
/// cpus) and `web` only ever asks for regular capacity.
#[derive(Debug, Clone)]
enum LendStep {
    Offer {
        role: usize,
        agent: u32,
        cpus: u32,
    },
    Acquire {
        namespace: usize,
        cpus: u32,
        count: u32,
        policy: usize,
        wait: bool,
    },
    Launch {
        namespace: usize,
        pick: usize,
    },
    Status {
        pick: usize,
        terminal: bool,
    },
    Advance {
        millis: u64,
    },
}

const LEND_NAMESPACES: [&str; 3] = ["batch", "ci", "web"];

fn lend_step() -> impl Strategy<Value = LendStep> {
    prop_oneof![
        (0usize..3, 0u32..3, 1u32..6).prop_map(|(role, agent, cpus)| LendStep::Offer {
            role,
            agent,
            cpus
        }),
        (0usize..3, 1u32..3, 1u32..3, 0usize..3, any::<bool>()).prop_map(
            |(namespace, cpus, count, policy, wait)| LendStep::Acquire {
                namespace,
                cpus,
                count,
                policy,
                wait
            }
        ),
        (0usize..3, any::<usize>())
            .prop_map(|(namespace, pick)| LendStep::Launch { namespace, pick }),
        (any::<usize>(), any::<bool>())
            .prop_map(|(pick, terminal)| LendStep::Status { pick, terminal }),
        (0u64..40_000).prop_map(|millis| LendStep::Advance { millis }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn reclaims_stop_only_borrowed_work_and_caps_hold(steps in proptest::collection::vec(lend_step(), 1..60)) {
        let batch = Namespace::new("batch", "batch").lends_idle(Resources::default(), Duration::from_secs(10));
        let ci = Namespace::new("ci", "ci").max_borrowed(res(6.0, 0.0));
        let mut core = TestCore::builder()
            .warm_pool(0)
            .namespaces([batch, ci, Namespace::new("web", "web")])
            .build();
        let sessions: Vec<SessionId> = LEND_NAMESPACES.iter().map(|ns| in_namespace(&mut core, ns, ns)).collect();
        let mut now = T0;
        let mut ticket = 0;
        let mut next_offer = 0;
        for step in steps {
            match step {
                LendStep::Offer { role, agent: n, cpus } => {
                    next_offer += 1;
                    let offer = Offer {
                        role: LEND_NAMESPACES[role].into(),
                        ..offer(&format!("o{next_offer}"), n * 3 + role as u32, res(f64::from(cpus), 4096.0))
                    };
                    core.offers(now, vec![offer]);
                }
                LendStep::Acquire { namespace, cpus, count, policy, wait } => {
                    ticket += 1;
                    // web asks for regular capacity only: it must never borrow.
                    let policy = if namespace == 2 { 0 } else { policy };
                    let policy = [RevocablePolicy::Deny, RevocablePolicy::Allow, RevocablePolicy::Require][policy];
                    let request = AcquireRequest {
                        revocable: policy,
                        ..acquire_in(
                            LEND_NAMESPACES[namespace],
                            vec![Slot { count, ..slot(f64::from(cpus), 128.0) }],
                            if wait { Duration::from_secs(30) } else { Duration::ZERO },
                        )
                    };
                    let _ = core.acquire(now, Ticket(ticket), &sessions[namespace], request);
                }
                LendStep::Launch { namespace, pick } => {
                    let leases = core.leases_of(&sessions[namespace], None).unwrap();
                    if let Some(lease) = leases.get(pick % leases.len().max(1)) {
                        ticket += 1;
                        let cpus = lease.resources.scalar("cpus");
                        let work = if pick % 2 == 0 {
                            task(&format!("t{ticket}"), cpus, 64.0)
                        } else {
                            Work::Group(vec![spec(&format!("g{ticket}"), cpus - 0.1, 64.0)])
                        };
                        let _ = core.launch(now, Ticket(ticket), &sessions[namespace], vec![(lease.id.clone(), work)]);
                    }
                }
                LendStep::Status { pick, terminal } => {
                    let ids: Vec<TaskId> = core.tasks.values().map(|t| t.id.clone()).collect();
                    if let Some(id) = ids.get(pick % ids.len().max(1)) {
                        let state = if terminal { TaskState::Finished } else { TaskState::Running };
                        core.status_update(Timestamp::default(), update(id, state, None));
                    }
                }
                LendStep::Advance { millis } => {
                    now = now.after(Duration::from_millis(millis));
                    core.tick(now);
                }
            }
            prop_assert!(core.leases.indexes_agree(), "lease indexes match the leases");
            let unlaunched_loans = core.leases.values().any(|s| s.lease.borrowed_from.is_some() && s.lease.offer.is_some());
            for effect in core.drain_effects() {
                match effect {
                    Effect::Deliver { event: FrontendEvent::PreemptionNotice(reclaim), .. } => {
                        for id in &reclaim.tasks {
                            let task = &core.tasks.get(id).unwrap();
                            prop_assert_eq!(task.borrowed_from.as_deref(), Some(reclaim.owner.as_str()), "only borrowed work is reclaimed");
                            prop_assert_ne!(&task.namespace, &reclaim.owner, "never the owner's own task");
                        }
                        prop_assert!(!unlaunched_loans, "unlaunched loans go back before running tasks are stopped");
                    }
                    Effect::Mesos(MesosCall::Accept { groups, .. }) => {
                        // Borrowed and regular work never share an executor.
                        for group in groups {
                            let lenders: BTreeSet<Option<&String>> = group
                                .tasks
                                .iter()
                                .map(|t| core.tasks.get(&t.task_id).unwrap().borrowed_from.as_ref())
                                .collect();
                            prop_assert!(lenders.len() <= 1, "a group mixes borrowed and regular tasks");
                        }
                    }
                    Effect::Mesos(MesosCall::Kill { task_id, .. }) => {
                        let reclaimed = core.reclaims(None).iter().any(|r| r.tasks.contains(&task_id) && r.deadline <= now);
                        prop_assert!(reclaimed, "a kill is a reclaim past its deadline");
                    }
                    _ => {}
                }
            }
            let borrowed = core.accounting.revocable_usage.get("ci").map_or(0.0, |r| r.scalar("cpus"));
            prop_assert!(borrowed <= 6.0, "ci borrows {borrowed} cpus, above its max_borrowed");
            prop_assert!(
                core.accounting.revocable_usage.get("web").is_none_or(|r| r.is_empty()),
                "a request that denies revocable capacity never borrows"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whenever enough is borrowed, the owner gets its capacity back by the
    /// reclaim deadline, given that Mesos re-offers what the kills free.
    #[test]
    fn the_owner_gets_its_capacity_back_within_the_grace(
        borrowed in proptest::collection::vec(1u32..4, 1..6),
        asked in 1u32..8,
    ) {
        let (mut core, owner, borrower) = lending_core(0.0);
        // lending_core's own 4-cpu offer is lent first: make it unusable.
        core.rescind(&OfferId("o1".into()));
        let mut now = T0;
        for (n, cpus) in borrowed.iter().enumerate() {
            let cpus = f64::from(*cpus);
            let lent = Offer {
                role: "batch".into(),
                ..offer(&format!("lent{n}"), n as u32 + 10, res(cpus, 1024.0))
            };
            core.offers(now, vec![lent]);
            let request = AcquireRequest {
                revocable: RevocablePolicy::Require,
                ..acquire_in("ci", vec![slot(cpus, 64.0)], Duration::ZERO)
            };
            let lease = granted(core.acquire(now, Ticket(n as u64), &borrower, request)).remove(0);
            launched(core.launch(now, Ticket(100 + n as u64), &borrower, vec![(lease.id, task(&format!("b{n}"), cpus, 64.0))]));
            // Mesos offers the agent's leftover memory again.
            let leftover = Offer {
                role: "batch".into(),
                ..offer(&format!("left{n}"), n as u32 + 10, res(0.0, 960.0))
            };
            core.offers(now, vec![leftover]);
            now = now.after(Duration::from_millis(10));
        }
        core.drain_effects();
        let mut slots = slot(1.0, 64.0);
        slots.count = asked;
        let mine = AcquireRequest {
            gang: true,
            ..acquire_in("batch", vec![slots], Duration::from_secs(600))
        };
        prop_assert_eq!(core.acquire(now, Ticket(999), &owner, mine), Ok(Outcome::Later));
        let enough = borrowed.iter().sum::<u32>() >= asked;
        let reclaims = core.reclaims(Some("batch"));
        prop_assert_eq!(reclaims.len(), usize::from(enough), "a reclaim exactly when enough is lent");
        let Some(deadline) = reclaims.first().map(|r| r.deadline) else {
            return Ok(());
        };
        core.drain_effects();
        core.tick(deadline);
        let mut served = false;
        for effect in core.drain_effects() {
            if let Effect::Mesos(MesosCall::Kill { task_id, .. }) = effect {
                let cpus = core.tasks.get(&task_id).unwrap().resources.scalar("cpus");
                core.status_update(Timestamp::default(), update(&task_id, TaskState::Killed, None));
                let freed = Offer {
                    role: "batch".into(),
                    ..offer(&format!("freed-{task_id}"), 99, res(cpus, 1024.0))
                };
                core.offers(deadline, vec![freed]);
                served |= core.drain_effects().iter().any(|e| {
                    matches!(e, Effect::Reply { ticket: Ticket(999), answer: Ok(_) })
                });
            }
        }
        prop_assert!(served, "the owner is served at the deadline once the kills free the capacity");
    }
}
