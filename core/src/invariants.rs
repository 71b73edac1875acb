//! Invariants of the whole core under random sequences of inputs — offers,
//! rescinds, lost agents, disconnects, acquires, holds, releases, launches,
//! status updates and time — checked after every step: nothing leased twice,
//! leases within their offers, usage the sum of leases and live tasks, every
//! update acknowledged once and delivered to its frontend, the frontends'
//! books true, and no offer kept once nothing wants it.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;

use crate::engine::Outcome;
use crate::testing::*;
use crate::*;

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
                    core.status_update(Timestamp::default(), StatusUpdate {
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
