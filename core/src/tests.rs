//! Behaviour of the core, one case per rule, plus property tests over
//! random sequences of inputs checking the invariants after every step.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;

use crate::engine::Outcome;
use crate::testing::*;
use crate::*;

// ----- lending ------------------------------------------------------------------

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
    core.status_update(StatusUpdate {
        agent_id: Some(agent(1).id),
        ..update(&tasks[1].task_id, TaskState::Killed, None)
    });
    core.drain_effects();
    core.tick(deadline);
    assert!(kills(&core.drain_effects()).is_empty());
}

/// One random input to the core.
#[derive(Debug, Clone)]
enum Step {
    Offer {
        agent: u32,
        cpus: u32,
        mem: u32,
        ports: u64,
    },
    Rescind {
        pick: usize,
    },
    AgentLost {
        agent: u32,
    },
    /// The subscription to Mesos ends: every offer is void.
    Disconnect,
    Acquire {
        frontend: usize,
        cpus: u32,
        count: u32,
        ports: u32,
        gang: bool,
        unique: bool,
        wait: bool,
    },
    Hold {
        frontend: usize,
        pick: usize,
    },
    Release {
        frontend: usize,
        pick: usize,
    },
    Launch {
        frontend: usize,
        pick: usize,
        half: bool,
    },
    Status {
        pick: usize,
        state: usize,
        uuid: bool,
    },
    Advance {
        millis: u64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u32..4, 1u32..8, 1u32..4, 0u64..4).prop_map(|(agent, cpus, mem, ports)| Step::Offer {
            agent,
            cpus,
            mem,
            ports
        }),
        any::<usize>().prop_map(|pick| Step::Rescind { pick }),
        (0u32..4).prop_map(|agent| Step::AgentLost { agent }),
        Just(Step::Disconnect),
        (
            (0usize..2, 1u32..4, 1u32..4, 0u32..3),
            (any::<bool>(), any::<bool>(), any::<bool>())
        )
            .prop_map(|((frontend, cpus, count, ports), (gang, unique, wait))| {
                Step::Acquire {
                    frontend,
                    cpus,
                    count,
                    ports,
                    gang,
                    unique,
                    wait,
                }
            }),
        (0usize..2, any::<usize>()).prop_map(|(frontend, pick)| Step::Hold { frontend, pick }),
        (0usize..2, any::<usize>()).prop_map(|(frontend, pick)| Step::Release { frontend, pick }),
        (0usize..2, any::<usize>(), any::<bool>()).prop_map(|(frontend, pick, half)| {
            Step::Launch {
                frontend,
                pick,
                half,
            }
        }),
        (any::<usize>(), 0usize..4, any::<bool>()).prop_map(|(pick, state, uuid)| Step::Status {
            pick,
            state,
            uuid
        }),
        (0u64..20_000).prop_map(|millis| Step::Advance { millis }),
    ]
}

/// What must hold of the leases that answer one Acquire: a gang has every
/// slot, any answer at least one, and under UNIQUE no host twice.
fn check_grant(
    leases: &[Lease],
    gang: bool,
    count: u32,
    unique: bool,
) -> Result<(), TestCaseError> {
    prop_assert!(!leases.is_empty() && leases.len() <= count as usize);
    if gang {
        prop_assert_eq!(leases.len(), count as usize, "a gang is all or nothing");
    }
    if unique {
        let hosts: BTreeSet<&str> = leases.iter().map(|l| l.agent.hostname.as_str()).collect();
        prop_assert_eq!(hosts.len(), leases.len(), "one slot per host");
    }
    Ok(())
}

/// Checks what must hold after every input.
fn check_invariants(
    core: &Core,
    acks_expected: usize,
    acks_seen: usize,
) -> Result<(), TestCaseError> {
    prop_assert!(
        core.leases.indexes_agree(),
        "lease indexes match the leases"
    );
    // The pool's arrival index finds the next time to live that ends, as a
    // walk of every offer would.
    let ttl = core.config.pool_ttl;
    let walked = core
        .offers
        .iter()
        .map(|p| p.received_at.after(ttl))
        .filter(|due| *due > core.last_tick)
        .min();
    let bound = core.last_tick.0.checked_sub(ttl.as_millis() as u64);
    let indexed = core.offers.first_arrival_after(bound.map(Timestamp));
    prop_assert_eq!(indexed.map(|arrived| arrived.after(ttl)), walked);
    // No resource or port is leased twice, and leases never exceed their offer.
    for view in core.agents() {
        prop_assert!(view.pooled.scalar("cpus") >= 0.0);
    }
    for pooled in core.offers.iter() {
        let offer_id = &pooled.offer.id;
        let mut leased = Resources::default();
        if let Some(pending) = core.launches.accepts.get(offer_id) {
            leased.add(&pending.taken);
        }
        for state in core
            .leases
            .values()
            .filter(|s| s.lease.offer.as_ref() == Some(offer_id))
        {
            leased.add(&state.lease.resources);
        }
        let mut total = pooled.free.clone();
        total.add(&leased);
        prop_assert!(
            pooled.offer.resources.contains(&total),
            "offer {offer_id} over-leased"
        );
        prop_assert_eq!(total.scalar("cpus"), pooled.offer.resources.scalar("cpus"));
    }
    // No port is leased twice on one agent, counting launches not yet sent.
    let mut ports: std::collections::BTreeMap<&AgentId, Vec<(u64, u64)>> = Default::default();
    for state in core.leases.values() {
        let on = ports.entry(&state.lease.agent.id).or_default();
        on.extend_from_slice(state.lease.resources.port_ranges());
    }
    for (offer_id, pending) in &core.launches.accepts {
        if let Some(pooled) = core.offers.iter().find(|p| &p.offer.id == offer_id) {
            let on = ports.entry(&pooled.offer.agent.id).or_default();
            on.extend_from_slice(pending.taken.port_ranges());
        }
    }
    for ranges in ports.values_mut() {
        ranges.sort_unstable();
        prop_assert!(
            ranges.windows(2).all(|w| w[0].1 < w[1].0),
            "a port leased twice: {ranges:?}"
        );
    }
    // A namespace's usage is the sum of its leases and live tasks.
    let mut held = Resources::default();
    for state in core.leases.values() {
        held.add(&state.lease.resources);
    }
    for task in core.tasks.values().filter(|t| !t.state.is_terminal()) {
        held.add(&task.resources);
    }
    prop_assert_eq!(core.usage("default"), held);
    prop_assert_eq!(
        acks_expected,
        acks_seen,
        "every update with a uuid is acknowledged once"
    );
    for frontend in core.sessions.frontends.values() {
        let sequences: Vec<u64> = frontend.outbox.iter().map(|(s, _)| *s).collect();
        prop_assert!(sequences.windows(2).all(|w| w[0] < w[1]));
    }
    check_frontend_books(core)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn invariants_hold_under_random_inputs(steps in proptest::collection::vec(step(), 1..80)) {
        let mut core = core();
        let sessions = [session(&mut core, "a"), session(&mut core, "b")];
        let mut now = T0;
        let mut next_offer = 0;
        let mut ticket = 0;
        let mut acks_expected = 0;
        let mut acks_seen = 0;
        let mut delivered: std::collections::BTreeMap<TaskId, usize> = Default::default();
        let mut updates_sent: std::collections::BTreeMap<TaskId, usize> = Default::default();
        let mut asked: std::collections::HashMap<Ticket, (bool, u32, bool)> = Default::default();
        for step in steps {
            match step {
                Step::Offer { agent: n, cpus, mem, ports } => {
                    next_offer += 1;
                    // Offers of one agent never overlap: ports by offer number.
                    let first = 31_000 + 10 * next_offer;
                    let ranges = (ports > 0).then_some((first, first + ports - 1));
                    let resources = Resources::from_scalars(
                        [("cpus", f64::from(cpus)), ("mem", f64::from(mem) * 256.0)],
                        ranges,
                    ).unwrap();
                    let on = agent_with(n, &[("rack", if n % 2 == 0 { "even" } else { "odd" })]);
                    core.offers(now, vec![offer_on(&format!("o{next_offer}"), on, resources)]);
                }
                Step::AgentLost { agent: n } => core.agent_lost(&agent(n).id),
                Step::Disconnect => core.mesos_disconnected(now),
                Step::Rescind { pick } => {
                    let ids: Vec<OfferId> = core.offers.iter().map(|p| p.offer.id.clone()).collect();
                    if !ids.is_empty() {
                        core.rescind(&ids[pick % ids.len()]);
                    }
                }
                Step::Acquire { frontend, cpus, count, ports, gang, unique, wait } => {
                    ticket += 1;
                    let request = AcquireRequest {
                        gang,
                        constraints: if unique { vec![on(HOSTNAME, Rule::MaxPer(1))] } else { vec![] },
                        ..acquire(
                            vec![Slot { count, port_count: ports, ..slot(f64::from(cpus) / 2.0, 128.0) }],
                            if wait { Duration::from_secs(5) } else { Duration::ZERO },
                        )
                    };
                    asked.insert(Ticket(ticket), (gang, count, unique));
                    if let Ok(Outcome::Now(leases)) = core.acquire(now, Ticket(ticket), &sessions[frontend], request) {
                        check_grant(&leases, gang, count, unique)?;
                    }
                }
                Step::Hold { frontend, pick } | Step::Release { frontend, pick } | Step::Launch { frontend, pick, .. } => {
                    let leases = core.leases_of(&sessions[frontend], None).unwrap();
                    if leases.is_empty() {
                        continue;
                    }
                    let lease = leases[pick % leases.len()].clone();
                    match step {
                        Step::Hold { .. } => { core.hold(now, &sessions[frontend], &[lease.id], Duration::from_secs(60)).unwrap(); }
                        Step::Release { .. } => core.release(now, &sessions[frontend], &[lease.id], Duration::ZERO).unwrap(),
                        Step::Launch { half, .. } => {
                            let cpus = lease.resources.scalar("cpus") / if half { 2.0 } else { 1.0 };
                            let spec = task(&format!("t{ticket}-{pick}"), cpus, 64.0);
                            let _ = core.launch(now, Ticket(99), &sessions[frontend], vec![(lease.id, spec)]);
                        }
                        _ => unreachable!(),
                    }
                }
                Step::Status { pick, state, uuid } => {
                    let ids: Vec<TaskId> = core.tasks.values().map(|t| t.id.clone()).collect();
                    if ids.is_empty() {
                        continue;
                    }
                    let id = ids[pick % ids.len()].clone();
                    let state = [TaskState::Starting, TaskState::Running, TaskState::Finished, TaskState::Failed][state];
                    acks_expected += usize::from(uuid);
                    if !core.tasks.get(&id).unwrap().state.is_terminal() {
                        *updates_sent.entry(id.clone()).or_default() += 1;
                    }
                    core.status_update(StatusUpdate {
                        task_id: id,
                        agent_id: Some(agent(0).id),
                        state,
                        reason: None,
                        message: None,
                        timestamp: None,
                        uuid: uuid.then(|| vec![1, 2, 3]),
                    });
                }
                Step::Advance { millis } => {
                    now = Timestamp(now.0 + millis);
                    core.tick(now);
                }
            }
            for effect in core.drain_effects() {
                match effect {
                    Effect::Mesos(MesosCall::Acknowledge { .. }) => acks_seen += 1,
                    Effect::Reply { ticket, answer: Ok(Answer::Leases(leases)) } => {
                        let (gang, count, unique) = asked[&ticket];
                        check_grant(&leases, gang, count, unique)?;
                    }
                    // Launches whose offer went before the ACCEPT end
                    // Dropped by the core itself, not by an update.
                    Effect::Deliver { event: FrontendEvent::TaskStatus(record), .. }
                        if record.state != TaskState::Dropped =>
                    {
                        *delivered.entry(record.id.clone()).or_default() += 1;
                    }
                    _ => {}
                }
            }
            check_invariants(&core, acks_expected, acks_seen)?;
        }
        // Every update of an owned task reached its (single, live) session.
        prop_assert_eq!(delivered, updates_sent);
        // With no demand and enough time, every unleased offer is declined.
        for state in core.leases.clone().values() {
            let _ = core.release(now, &sessions[usize::from(state.lease.frontend.0 == "b")], std::slice::from_ref(&state.lease.id), Duration::ZERO);
        }
        now = now.after(Duration::from_secs(3600));
        core.tick(now);
        let left: Vec<&OfferId> = core.offers.iter().map(|p| &p.offer.id).collect();
        prop_assert!(left.is_empty(), "offers leak: {:?}", left);
    }
}

// ----- lending and reclaim, randomly ------------------------------------------

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
                        core.status_update(update(id, state, None));
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
                core.status_update(update(&task_id, TaskState::Killed, None));
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

// ----- frontends: ownership, views, drains, forgetting ------------------------

const RETENTION: Duration = Duration::from_secs(3600);

fn name(frontend: &str) -> FrontendName {
    FrontendName(frontend.into())
}

fn subscribe_as(core: &mut Core, frontend: &str, principal: &str) -> Result<SessionId, CoreError> {
    core.subscribe(name(frontend), principal, vec!["default".into()], 0)
}

/// The frontends the core remembers.
fn known(core: &Core) -> Vec<&str> {
    core.sessions
        .frontends
        .keys()
        .map(|f| f.0.as_str())
        .collect()
}

#[test]
fn a_frontend_name_belongs_to_its_first_principal_until_it_is_forgotten() {
    let mut core = core();
    let s = subscribe_as(&mut core, "spark", "ci").unwrap();
    subscribe_as(&mut core, "spark", "ci").expect("a reconnect of the owner");
    let taken = Err(CoreError::FrontendTaken {
        frontend: name("spark"),
    });
    assert_eq!(subscribe_as(&mut core, "spark", "mallory"), taken);
    core.end_session(T0, &s);
    let others = core.sessions.frontends[&name("spark")].sessions.clone();
    for other in others {
        core.end_session(T0, &other);
    }
    core.tick(T0.after(RETENTION).after(Duration::from_secs(1)));
    assert!(known(&core).is_empty());
    subscribe_as(&mut core, "spark", "mallory").expect("a forgotten name is free");
    assert_eq!(subscribe_as(&mut core, "spark", "ci"), taken);
}

#[test]
fn a_frontend_with_nothing_left_is_forgotten_after_the_retention_with_its_request_ids() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let request = with_id(acquire(vec![slot(1.0, 128.0)], Duration::ZERO), "r-1");
    let lease = granted(core.acquire(T0, Ticket(1), &s, request)).remove(0);
    core.release(T0, &s, &[lease.id], Duration::from_secs(60))
        .unwrap();
    assert_eq!(core.queue.requests.len(), 1);
    let ended = T0.after(Duration::from_secs(10));
    core.end_session(ended, &s);
    // The pool's offer goes after its time to live and the session after
    // its grace; then only the frontend is due.
    core.tick(ended.after(CoreConfig::default().session_grace));
    let due = ended.after(RETENTION);
    assert_eq!(core.next_deadline(), Some(due));
    assert_eq!(core.sessions.frontends[&name("a")].forget_at, Some(due));

    core.tick(Timestamp(due.0 - 1));
    assert_eq!(known(&core), ["a"]);
    core.tick(due);
    assert!(known(&core).is_empty());
    assert!(core.queue.requests.is_empty(), "its request ids go with it");
    assert!(core.sessions.forgettable.is_empty());
    assert_eq!(core.next_deadline(), None);
}

#[test]
fn a_frontend_with_live_tasks_or_unacknowledged_events_is_not_forgotten() {
    // A live task.
    let (mut core, s, task_id) = one_launched_task();
    core.end_session(T0, &s);
    let later = T0.after(RETENTION * 3);
    core.tick(later);
    assert_eq!(known(&core), ["a"]);
    assert_eq!(core.sessions.frontends[&name("a")].forget_at, None);

    // The task ends while no session is live: its status waits for the
    // frontend, and so does the frontend's name.
    core.status_update(update(&task_id, TaskState::Finished, None));
    core.tick(later.after(RETENTION * 3));
    assert_eq!(known(&core), ["a"]);
    assert_eq!(core.tasks.live_count(&name("a")), 0);
    assert_eq!(core.sessions.frontends[&name("a")].outbox.len(), 1);

    // Once it comes back and acknowledges, it may go.
    let back = later.after(RETENTION * 4);
    let s = session(&mut core, "a");
    core.acknowledge(&s, 1).unwrap();
    core.end_session(back, &s);
    core.tick(back.after(RETENTION));
    assert!(known(&core).is_empty());
}

#[test]
fn a_frontend_that_subscribes_again_within_the_retention_is_kept() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.end_session(T0, &s);
    let s = session(&mut core, "a");
    assert!(core.sessions.forgettable.is_empty());
    core.tick(T0.after(RETENTION * 2));
    assert_eq!(known(&core), ["a"]);
    let later = T0.after(RETENTION * 2);
    core.end_session(later, &s);
    core.tick(later.after(RETENTION));
    assert!(known(&core).is_empty());
}

#[test]
fn frontends_show_their_namespaces_sessions_leases_tasks_and_last_seen() {
    let mut core = TestCore::builder()
        .warm_pool(0)
        .namespaces([
            Namespace::new("default", "default"),
            Namespace::new("batch", "batch"),
        ])
        .build();
    let web = in_namespace(&mut core, "a", "default");
    let batch = in_namespace(&mut core, "a", "batch");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let first = lease_now(&mut core, &web, 1.0, 128.0);
    lease_now(&mut core, &web, 1.0, 128.0);
    launched(core.launch(T0, Ticket(9), &web, vec![(first.id, task("t", 1.0, 128.0))]));
    let waiting = acquire_in("batch", vec![slot(8.0, 128.0)], Duration::from_secs(60));
    assert_eq!(
        core.acquire(T0, Ticket(10), &batch, waiting),
        Ok(Outcome::Later)
    );
    let now = T0.after(Duration::from_secs(5));
    let view = core.frontend(now, &name("a")).unwrap();
    assert_eq!(
        view,
        FrontendView {
            name: name("a"),
            namespaces: vec!["batch".into(), "default".into()],
            sessions: 2,
            leases: 1,
            live_tasks: 1,
            unacknowledged_events: 0,
            waiting_requests: 1,
            last_seen: now,
            draining_since: None,
            forget_at: None,
        }
    );
    assert_eq!(core.frontends(now), vec![view]);
    core.end_session(now, &web);
    core.end_session(now.after(Duration::from_secs(1)), &batch);
    let view = core
        .frontend(now.after(Duration::from_secs(9)), &name("a"))
        .unwrap();
    assert_eq!(view.namespaces, ["batch"], "those it last subscribed with");
    assert_eq!(view.last_seen, now.after(Duration::from_secs(1)));
    assert_eq!((view.sessions, view.waiting_requests), (0, 0));
}

#[test]
fn a_drain_takes_the_leases_refuses_waiting_and_new_acquires_and_leaves_tasks_alone() {
    let (mut core, a, task_id) = one_launched_task();
    let b = session(&mut core, "b");
    core.offers(T0, vec![offer("o2", 2, res(4.0, 1024.0))]);
    let lease = lease_now(&mut core, &a, 1.0, 128.0);
    let too_big = acquire(vec![slot(64.0, 128.0)], Duration::from_secs(60));
    assert_eq!(core.acquire(T0, Ticket(5), &a, too_big), Ok(Outcome::Later));
    core.drain_effects();

    let now = T0.after(Duration::from_secs(1));
    let report = core.drain_frontend(now, &name("a"), false).unwrap();
    assert_eq!(
        (
            report.leases_released,
            report.requests_refused,
            report.tasks_killed
        ),
        (1, 1, 0)
    );
    assert_eq!(report.frontend.draining_since, Some(now));
    assert_eq!(report.frontend.live_tasks, 1);
    assert!(!report.frontend.drained(), "its task still runs");
    let draining = CoreError::FrontendDraining {
        frontend: name("a"),
    };
    let effects = core.drain_effects();
    assert!(effects.contains(&Effect::Reply {
        ticket: Ticket(5),
        answer: Err(draining.clone()),
    }));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Deliver {
            event: FrontendEvent::LeaseLost {
                lease: lost,
                reason: LeaseLostReason::Drained,
                ..
            },
            ..
        } if *lost == lease.id
    )));
    assert!(
        !mesos_calls(&effects)
            .iter()
            .any(|c| matches!(c, MesosCall::Kill { .. })),
        "tasks are killed only when asked"
    );
    let again = acquire(vec![slot(1.0, 128.0)], Duration::ZERO);
    assert_eq!(
        core.acquire(now, Ticket(6), &a, again.clone()),
        Err(draining)
    );
    granted(core.acquire(now, Ticket(7), &b, again));

    // The frontend still owns its task and hears of it.
    core.status_update(update(&task_id, TaskState::Finished, None));
    assert!(core.frontend(now, &name("a")).unwrap().drained());
}

#[test]
fn a_drain_with_kill_tasks_kills_every_live_task_after_its_launch_went_out() {
    let mut core = core();
    let a = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let running = lease_now(&mut core, &a, 1.0, 128.0);
    let ran = launched(core.launch(
        T0,
        Ticket(1),
        &a,
        vec![(running.id, task("ran", 1.0, 128.0))],
    ));
    core.offers(T0, vec![offer("o2", 2, res(4.0, 1024.0))]);
    // Two slices of one offer: the launch of one lingers for the other.
    let request = Slot {
        count: 2,
        ..slot(1.0, 128.0)
    };
    let pair = granted(core.acquire(T0, Ticket(2), &a, acquire(vec![request], Duration::ZERO)));
    assert_eq!(pair[0].offer, pair[1].offer);
    let lingering = launched(core.launch(
        T0,
        Ticket(3),
        &a,
        vec![(pair[0].id.clone(), task("lingers", 1.0, 128.0))],
    ));
    core.drain_effects();
    assert_eq!(core.launches.accepts.len(), 1, "the launch lingers");

    let report = core.drain_frontend(T0, &name("a"), true).unwrap();
    assert_eq!((report.leases_released, report.tasks_killed), (1, 2));
    let calls: Vec<MesosCall> = mesos_calls(&core.drain_effects())
        .into_iter()
        .cloned()
        .collect();
    let position = |wanted: &dyn Fn(&MesosCall) -> bool| calls.iter().position(wanted);
    let accept = position(&|c| {
        matches!(c, MesosCall::Accept { tasks, .. } if tasks[0].task_id == lingering[0].task_id)
    })
    .expect("the lingering launch goes out");
    for task in [&ran[0].task_id, &lingering[0].task_id] {
        let kill = position(&|c| matches!(c, MesosCall::Kill { task_id, .. } if task_id == task))
            .unwrap_or_else(|| panic!("{task} is killed: {calls:?}"));
        assert!(accept < kill, "the ACCEPT precedes every KILL: {calls:?}");
    }
}

#[test]
fn an_undone_drain_lets_the_frontend_acquire_again_and_unknown_names_are_not_found() {
    let mut core = core();
    let a = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    core.drain_frontend(T0, &name("a"), false).unwrap();
    let ask = || acquire(vec![slot(1.0, 128.0)], Duration::ZERO);
    assert!(core.acquire(T0, Ticket(1), &a, ask()).is_err());
    let view = core.undrain_frontend(T0, &name("a")).unwrap();
    assert_eq!(view.draining_since, None);
    granted(core.acquire(T0, Ticket(2), &a, ask()));
    let unknown = Err(CoreError::FrontendNotFound(name("nobody")));
    assert_eq!(core.drain_frontend(T0, &name("nobody"), true), unknown);
    assert_eq!(
        core.undrain_frontend(T0, &name("nobody")).map(|_| ()),
        unknown.map(|_: DrainReport| ())
    );
}

#[test]
fn a_drained_frontend_is_remembered_until_the_drain_is_undone() {
    let mut core = core();
    let a = session(&mut core, "a");
    core.end_session(T0, &a);
    core.tick(T0.after(CoreConfig::default().session_grace));
    assert_eq!(core.next_deadline(), Some(T0.after(RETENTION)));
    core.drain_frontend(T0, &name("a"), false).unwrap();
    assert_eq!(core.next_deadline(), None, "nothing to wake up for");
    let later = T0.after(RETENTION * 2);
    core.tick(later);
    assert_eq!(known(&core), ["a"], "an operator's drain is not lost");
    core.undrain_frontend(later, &name("a")).unwrap();
    assert_eq!(core.next_deadline(), Some(later.after(RETENTION)));
    core.tick(later.after(RETENTION));
    assert!(known(&core).is_empty());
}

/// One random input to a core whose frontends come and go.
#[derive(Debug, Clone)]
enum FrontendStep {
    Subscribe { frontend: usize, principal: usize },
    End { frontend: usize },
    Offer { agent: u32 },
    Acquire { frontend: usize, wait: bool },
    Launch { frontend: usize },
    Status { pick: usize, terminal: bool },
    Acknowledge { frontend: usize },
    Drain { frontend: usize, kill: bool },
    Undrain { frontend: usize },
    Advance { millis: u64 },
}

const STEP_FRONTENDS: [&str; 3] = ["a", "b", "c"];

fn frontend_step() -> impl Strategy<Value = FrontendStep> {
    let frontend = 0usize..STEP_FRONTENDS.len();
    prop_oneof![
        (frontend.clone(), 0usize..2).prop_map(|(frontend, principal)| FrontendStep::Subscribe {
            frontend,
            principal
        }),
        frontend
            .clone()
            .prop_map(|frontend| FrontendStep::End { frontend }),
        (0u32..3).prop_map(|agent| FrontendStep::Offer { agent }),
        (frontend.clone(), any::<bool>())
            .prop_map(|(frontend, wait)| FrontendStep::Acquire { frontend, wait }),
        frontend
            .clone()
            .prop_map(|frontend| FrontendStep::Launch { frontend }),
        (any::<usize>(), any::<bool>())
            .prop_map(|(pick, terminal)| FrontendStep::Status { pick, terminal }),
        frontend
            .clone()
            .prop_map(|frontend| FrontendStep::Acknowledge { frontend }),
        (frontend.clone(), any::<bool>())
            .prop_map(|(frontend, kill)| FrontendStep::Drain { frontend, kill }),
        frontend.prop_map(|frontend| FrontendStep::Undrain { frontend }),
        (0u64..40_000).prop_map(|millis| FrontendStep::Advance { millis }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Frontends subscribe, acquire, launch, drain and leave at random; the
    /// books stay true, only a frontend that holds nothing is ever
    /// forgotten, and one that holds nothing is forgotten by its time.
    #[test]
    fn frontends_are_forgotten_only_when_they_hold_nothing(
        steps in proptest::collection::vec(frontend_step(), 1..80),
    ) {
        let mut core = TestCore::builder()
            .warm_pool(0)
            .session_grace(Duration::from_secs(5))
            .frontend_retention(Duration::from_secs(20))
            .build();
        let principals = ["p", "q"];
        let mut sessions: Vec<Option<SessionId>> = vec![None; STEP_FRONTENDS.len()];
        let mut now = T0;
        let mut ticket = 0;
        let mut next_offer = 0;
        for step in steps {
            match step {
                FrontendStep::Subscribe { frontend, principal } => {
                    let who = principals[principal];
                    let owner = core.sessions.frontends.get(&name(STEP_FRONTENDS[frontend])).and_then(|s| s.owner.clone());
                    let result = subscribe_as(&mut core, STEP_FRONTENDS[frontend], who);
                    let taken = owner.is_some_and(|owner| owner != who);
                    prop_assert_eq!(result.is_err(), taken, "only the owner of a known name is let in");
                    if let Ok(session) = result {
                        sessions[frontend] = Some(session);
                    }
                }
                FrontendStep::End { frontend } => {
                    if let Some(session) = sessions[frontend].take() {
                        core.end_session(now, &session);
                    }
                }
                FrontendStep::Offer { agent: n } => {
                    next_offer += 1;
                    core.offers(now, vec![offer(&format!("o{next_offer}"), n, res(4.0, 1024.0))]);
                }
                FrontendStep::Acquire { frontend, wait } => {
                    if let Some(session) = &sessions[frontend] {
                        ticket += 1;
                        let wait_for = if wait { Duration::from_secs(10) } else { Duration::ZERO };
                        let request = with_id(acquire(vec![slot(1.0, 128.0)], wait_for), &format!("r{ticket}"));
                        let _ = core.acquire(now, Ticket(ticket), session, request);
                    }
                }
                FrontendStep::Launch { frontend } => {
                    if let Some(session) = &sessions[frontend]
                        && let Some(lease) = core.leases_of(session, None).unwrap().first().cloned()
                    {
                        ticket += 1;
                        let work = task(&format!("t{ticket}"), 1.0, 128.0);
                        let _ = core.launch(now, Ticket(ticket), session, vec![(lease.id, work)]);
                    }
                }
                FrontendStep::Status { pick, terminal } => {
                    let live: Vec<TaskId> = core.tasks.values().filter(|t| !t.state.is_terminal()).map(|t| t.id.clone()).collect();
                    if !live.is_empty() {
                        let state = if terminal { TaskState::Killed } else { TaskState::Running };
                        core.status_update(update(&live[pick % live.len()], state, None));
                    }
                }
                FrontendStep::Acknowledge { frontend } => {
                    if let Some(session) = &sessions[frontend] {
                        core.acknowledge(session, u64::MAX).unwrap();
                    }
                }
                FrontendStep::Drain { frontend, kill } => {
                    let known = core.sessions.frontends.contains_key(&name(STEP_FRONTENDS[frontend]));
                    let report = core.drain_frontend(now, &name(STEP_FRONTENDS[frontend]), kill);
                    prop_assert_eq!(report.is_ok(), known);
                }
                FrontendStep::Undrain { frontend } => {
                    let _ = core.undrain_frontend(now, &name(STEP_FRONTENDS[frontend]));
                }
                FrontendStep::Advance { millis } => {
                    let before: Vec<(FrontendName, Option<Timestamp>)> = core
                        .sessions.frontends
                        .iter()
                        .map(|(name, state)| (name.clone(), state.forget_at))
                        .collect();
                    now = now.after(Duration::from_millis(millis));
                    core.tick(now);
                    for (name, forget_at) in before {
                        let due = forget_at.is_some_and(|at| at <= now);
                        prop_assert_eq!(
                            !core.sessions.frontends.contains_key(&name),
                            due,
                            "frontend {} is forgotten exactly when it was due",
                            name
                        );
                    }
                }
            }
            core.drain_effects();
            prop_assert!(core.next_deadline().is_none_or(|at| core.sessions.forgettable.first().is_none_or(|(due, _)| at <= *due)));
            check_frontend_books(&core)?;
        }
    }
}
