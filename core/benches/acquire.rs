//! The core's acquire path on pools of 100, 1,000 and 10,000 agents: one
//! Acquire of a one-slot lease and its Release, each followed by what the
//! runtime does after every batch of commands (draining the effects and
//! asking for the next deadline), so the pool is the same at every
//! iteration and nothing the runtime pays per command is left out. Run with
//! `cargo bench -p agora-core --bench acquire`; the cost per acquire
//! should grow no worse than logarithmically with the pool (10,000 agents
//! within 2x of 100), nor with the leases other frontends hold.
//!
//! `largest_requests` times the heaviest single commands the API's bounds
//! allow (`broker/src/api/limits.rs`) on 10,000 agents: the bound on how
//! long one caller can hold the core, which every other caller waits for.

use std::hint::black_box;
use std::time::Duration;

use agora_core::{
    AcquireRequest, Agent, AgentId, Answer, Constraint, Core, CoreConfig, CoreError, Effect,
    FrontendName, HOSTNAME, Input, LeaseId, MesosInput, Offer, OfferId, Request, Resources,
    RevocablePolicy, Rule, SessionId, Slot, Ticket, Timestamp,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const NOW: Timestamp = Timestamp(1_000_000);

/// A core whose pool holds one 32-cpu offer per agent, with a session.
fn pool_of(agents: u32) -> (Core, SessionId) {
    let mut core = Core::new(CoreConfig::default(), "bench");
    let subscribe = Request::Subscribe {
        frontend: FrontendName("bench".into()),
        principal: "bench".into(),
        namespaces: vec!["default".into()],
        resume_after: 0,
    };
    let Ok(Answer::Subscribed(session)) = ask(&mut core, subscribe) else {
        panic!("the default namespace exists");
    };
    let offers = (0..agents)
        .map(|n| Offer {
            id: OfferId(format!("offer-{n}")),
            agent: Agent {
                id: AgentId(format!("agent-{n}")),
                hostname: format!("host-{n}"),
                attributes: vec![("rack".into(), format!("r{}", n % 10))],
            },
            role: "default".into(),
            resources: Resources::from_scalars(
                [("cpus", 32.0), ("mem", 65536.0)],
                [(31000, 32000)],
            )
            .expect("valid resources"),
            revocable: Resources::default(),
            reserved: vec![],
        })
        .collect();
    core.handle(NOW, Input::Mesos(MesosInput::Offers(offers)));
    (core, session)
}

/// Hands `request` to the core as the runtime does, with what the runtime
/// asks after every batch (the next deadline), and returns its answer.
fn ask(core: &mut Core, request: Request) -> Result<Answer, CoreError> {
    let ticket = Ticket(1);
    let effects = core.handle(NOW, Input::Request { ticket, request });
    black_box(core.next_deadline());
    effects
        .into_iter()
        .find_map(|effect| match effect {
            Effect::Reply { ticket: t, answer } if t == ticket => Some(answer),
            _ => None,
        })
        .expect("every request here is answered at once")
}

fn acquire(core: &mut Core, session: &SessionId, request: &AcquireRequest) -> Vec<LeaseId> {
    let acquire = Request::Acquire {
        session: session.clone(),
        request: black_box(request.clone()),
    };
    match ask(core, acquire) {
        Ok(Answer::Leases(leases)) => leases.into_iter().map(|lease| lease.id).collect(),
        other => panic!("the pool has room: {other:?}"),
    }
}

fn release(core: &mut Core, session: &SessionId, leases: Vec<LeaseId>) {
    let release = Request::Release {
        session: session.clone(),
        leases,
        refuse_for: Duration::ZERO,
    };
    ask(core, release).expect("the leases are ours");
}

fn one_slot() -> AcquireRequest {
    AcquireRequest {
        namespace: "default".into(),
        slots: vec![Slot {
            resources: Resources::from_scalars([("cpus", 1.0), ("mem", 1024.0)], [])
                .expect("valid resources"),
            port_count: 1,
            count: 1,
        }],
        constraints: vec![],
        gang: false,
        hold_for: None,
        wait_for: Duration::ZERO,
        request_id: None,
        revocable: RevocablePolicy::Deny,
    }
}

/// One acquire and its release, with what the runtime does after each.
fn cycle(core: &mut Core, session: &SessionId, request: &AcquireRequest) {
    let leases = acquire(core, session, request);
    release(core, session, leases);
}

fn acquire_release(c: &mut Criterion) {
    let mut group = c.benchmark_group("acquire_release");
    for agents in [100, 1_000, 10_000] {
        let (mut core, session) = pool_of(agents);
        let request = one_slot();
        group.bench_with_input(BenchmarkId::from_parameter(agents), &agents, |b, _| {
            b.iter(|| cycle(&mut core, &session, &request));
        });
    }
    group.finish();
}

/// The same cycle on 1,000 agents while other leases are held.
fn beside_held_leases(c: &mut Criterion) {
    let mut group = c.benchmark_group("acquire_release_beside_held_leases");
    for held in [0, 1_000, 5_000] {
        let (mut core, session) = pool_of(1_000);
        let request = one_slot();
        for _ in 0..held {
            acquire(&mut core, &session, &request);
        }
        group.bench_with_input(BenchmarkId::from_parameter(held), &held, |b, _| {
            b.iter(|| cycle(&mut core, &session, &request));
        });
    }
    group.finish();
}

/// The most slots one Acquire may ask (256), as a gang spread one per
/// host, then the release of all of them; and the most constraint values
/// (16 constraints of 256 values) checked against every agent, where none
/// matches, so that the whole pool is searched and refused.
fn largest_requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("largest_requests");
    group.sample_size(10);
    let (mut core, session) = pool_of(10_000);
    let spread = AcquireRequest {
        slots: vec![Slot {
            count: 256,
            ..one_slot().slots[0].clone()
        }],
        constraints: vec![Constraint {
            field: HOSTNAME.into(),
            rule: Rule::MaxPer(1),
        }],
        gang: true,
        ..one_slot()
    };
    group.bench_function("256_slot_gang_and_release", |b| {
        b.iter(|| {
            let leases = acquire(&mut core, &session, &spread);
            release(&mut core, &session, leases);
        });
    });
    let values: std::collections::BTreeSet<String> =
        (0..256).map(|n| format!("elsewhere-{n}")).collect();
    let mut constraints = vec![
        Constraint {
            field: "rack".into(),
            rule: Rule::NotIn(values.clone()),
        };
        15
    ];
    constraints.push(Constraint {
        field: "rack".into(),
        rule: Rule::In(values),
    });
    let nowhere = AcquireRequest {
        constraints,
        ..one_slot()
    };
    group.bench_function("16x256_constraint_values_refused", |b| {
        b.iter(|| {
            let acquire = Request::Acquire {
                session: session.clone(),
                request: black_box(nowhere.clone()),
            };
            let answer = ask(&mut core, acquire);
            assert!(answer.is_err(), "no agent matches: {answer:?}");
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    acquire_release,
    beside_held_leases,
    largest_requests
);
criterion_main!(benches);
