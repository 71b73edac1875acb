//! What the core's tests share: a core built from the defaults changed
//! only where a test says ([`TestCore`], [`NamespaceExt`]), offers,
//! requests and tasks in a line each, and readers of the effects.
//!
//! The tests themselves sit beside what they test, one concern per file
//! (`engine/acquire/tests.rs`, `engine/launch/tests.rs`, ...); the
//! invariants of the whole core under random inputs are in `invariants`.

use std::collections::BTreeSet;
use std::time::Duration;

use proptest::prelude::*;

use crate::engine::Outcome;
use crate::*;

/// When every test starts.
pub(crate) const T0: Timestamp = Timestamp(1_000_000);

// ----- cores ------------------------------------------------------------------

/// Builds a core from [`CoreConfig::default`], changed only where a test
/// says: `TestCore::builder().warm_pool(0).namespaces([..]).build()`.
#[must_use]
pub(crate) struct TestCore {
    config: CoreConfig,
}

impl TestCore {
    pub(crate) fn builder() -> TestCore {
        TestCore {
            config: CoreConfig::default(),
        }
    }

    /// Unleased offers each role keeps past the pool's time to live.
    pub(crate) fn warm_pool(mut self, offers: usize) -> TestCore {
        self.config.warm_pool = offers;
        self
    }

    /// The namespaces to start with, instead of `default` alone.
    pub(crate) fn namespaces(
        mut self,
        namespaces: impl IntoIterator<Item = Namespace>,
    ) -> TestCore {
        self.config.namespaces = namespaces.into_iter().collect();
        self
    }

    /// Finished tasks remembered.
    pub(crate) fn completed_tasks(mut self, tasks: usize) -> TestCore {
        self.config.completed_tasks = tasks;
        self
    }

    /// Roles' quota and weights are set in Mesos.
    pub(crate) fn push_quota(mut self) -> TestCore {
        self.config.push_quota = true;
        self
    }

    pub(crate) fn session_grace(mut self, grace: Duration) -> TestCore {
        self.config.session_grace = grace;
        self
    }

    pub(crate) fn frontend_retention(mut self, retention: Duration) -> TestCore {
        self.config.frontend_retention = retention;
        self
    }

    pub(crate) fn build(self) -> Core {
        Core::new(self.config, "boot")
    }
}

/// A core without a warm pool, so that every unleased offer is declined
/// after the pool's time to live.
pub(crate) fn core() -> Core {
    TestCore::builder().warm_pool(0).build()
}

/// A namespace changed where a test says:
/// `Namespace::new("batch", "batch").limit_cpus(8.0)`.
pub(crate) trait NamespaceExt {
    /// A limit of `cpus` cpus and nothing else.
    fn limit_cpus(self, cpus: f64) -> Self;
    /// A guarantee of `cpus` cpus and nothing else.
    fn guarantee_cpus(self, cpus: f64) -> Self;
    fn weight(self, weight: f64) -> Self;
    fn max_hold(self, hold: Duration) -> Self;
    fn max_borrowed(self, resources: Resources) -> Self;
    /// Lends its idle capacity, up to `max_lent` (unlimited when empty),
    /// and takes it back within `reclaim_grace`.
    fn lends_idle(self, max_lent: Resources, reclaim_grace: Duration) -> Self;
}

impl NamespaceExt for Namespace {
    fn limit_cpus(self, cpus: f64) -> Namespace {
        Namespace {
            limit: Resources::from_scalars([("cpus", cpus)], []).unwrap(),
            ..self
        }
    }

    fn guarantee_cpus(self, cpus: f64) -> Namespace {
        Namespace {
            guarantee: Resources::from_scalars([("cpus", cpus)], []).unwrap(),
            ..self
        }
    }

    fn weight(self, weight: f64) -> Namespace {
        Namespace { weight, ..self }
    }

    fn max_hold(self, hold: Duration) -> Namespace {
        Namespace {
            max_hold: Some(hold),
            ..self
        }
    }

    fn max_borrowed(self, max_borrowed: Resources) -> Namespace {
        Namespace {
            max_borrowed,
            ..self
        }
    }

    fn lends_idle(self, max_lent: Resources, reclaim_grace: Duration) -> Namespace {
        Namespace {
            lending: Lending {
                lend_idle: true,
                max_lent,
                reclaim_grace,
            },
            ..self
        }
    }
}

// ----- sessions -----------------------------------------------------------------

/// A session of frontend `name` in the `default` namespace.
pub(crate) fn session(core: &mut Core, name: &str) -> SessionId {
    core.subscribe(FrontendName(name.into()), "p", vec!["default".into()], 0)
        .unwrap()
}

/// A session of `frontend` in `namespace` alone.
pub(crate) fn in_namespace(core: &mut Core, frontend: &str, namespace: &str) -> SessionId {
    core.subscribe(
        FrontendName(frontend.into()),
        "p",
        vec![namespace.into()],
        0,
    )
    .unwrap()
}

// ----- offers -------------------------------------------------------------------

pub(crate) fn res(cpus: f64, mem: f64) -> Resources {
    Resources::from_scalars([("cpus", cpus), ("mem", mem)], []).unwrap()
}

/// Agent `n`, on host `host-n`, without attributes.
pub(crate) fn agent(n: u32) -> Agent {
    Agent {
        id: AgentId(format!("agent-{n}")),
        hostname: format!("host-{n}"),
        attributes: vec![],
    }
}

pub(crate) fn agent_with(n: u32, attributes: &[(&str, &str)]) -> Agent {
    Agent {
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..agent(n)
    }
}

/// An offer on the `default` role from agent `agent_n`.
pub(crate) fn offer(id: &str, agent_n: u32, resources: Resources) -> Offer {
    Offer {
        id: OfferId(id.into()),
        agent: agent(agent_n),
        role: "default".into(),
        resources,
        revocable: Resources::default(),
        reserved: vec![],
    }
}

pub(crate) fn offer_on(id: &str, agent: Agent, resources: Resources) -> Offer {
    Offer {
        id: OfferId(id.into()),
        agent,
        role: "default".into(),
        resources,
        revocable: Resources::default(),
        reserved: vec![],
    }
}

/// An offer of 2 regular and 4 revocable cpus on agent 1.
pub(crate) fn oversubscribed() -> Offer {
    Offer {
        revocable: res(4.0, 0.0),
        ..offer("o1", 1, res(2.0, 1024.0))
    }
}

// ----- requests -----------------------------------------------------------------

pub(crate) fn slot(cpus: f64, mem: f64) -> Slot {
    Slot {
        resources: res(cpus, mem),
        port_count: 0,
        count: 1,
    }
}

/// An Acquire in the `default` namespace, without constraints.
pub(crate) fn acquire(slots: Vec<Slot>, wait_for: Duration) -> AcquireRequest {
    AcquireRequest {
        namespace: "default".into(),
        slots,
        constraints: vec![],
        gang: false,
        hold_for: None,
        wait_for,
        request_id: None,
        revocable: RevocablePolicy::Deny,
    }
}

pub(crate) fn acquire_in(namespace: &str, slots: Vec<Slot>, wait_for: Duration) -> AcquireRequest {
    AcquireRequest {
        namespace: namespace.into(),
        ..acquire(slots, wait_for)
    }
}

pub(crate) fn with_id(request: AcquireRequest, id: &str) -> AcquireRequest {
    AcquireRequest {
        request_id: Some(id.into()),
        ..request
    }
}

/// One slot of `cpus` that answers at once, under `policy`.
pub(crate) fn with_policy(policy: RevocablePolicy, cpus: f64) -> AcquireRequest {
    AcquireRequest {
        revocable: policy,
        ..acquire(vec![slot(cpus, 0.0)], Duration::ZERO)
    }
}

pub(crate) fn on(field: &str, rule: Rule) -> Constraint {
    Constraint {
        field: field.into(),
        rule,
    }
}

pub(crate) fn task(id: &str, cpus: f64, mem: f64) -> Work {
    Work::Task(spec(id, cpus, mem))
}

pub(crate) fn spec(id: &str, cpus: f64, mem: f64) -> TaskSpec {
    TaskSpec {
        client_id: id.into(),
        name: id.into(),
        resources: res(cpus, mem),
        command: Command::Shell("true".into()),
        environment: vec![],
        user: None,
        labels: vec![],
    }
}

/// A status update from agent 1.
pub(crate) fn update(task_id: &TaskId, state: TaskState, uuid: Option<Vec<u8>>) -> StatusUpdate {
    StatusUpdate {
        task_id: task_id.clone(),
        agent_id: Some(agent(1).id),
        state,
        reason: None,
        message: None,
        timestamp: None,
        uuid,
    }
}

// ----- answers ------------------------------------------------------------------

pub(crate) fn granted(outcome: Result<Outcome<Vec<Lease>>, CoreError>) -> Vec<Lease> {
    match outcome.unwrap() {
        Outcome::Now(leases) => leases,
        Outcome::Later => panic!("expected leases at once"),
    }
}

pub(crate) fn launched(outcome: Result<Outcome<Vec<Launched>>, CoreError>) -> Vec<Launched> {
    match outcome.unwrap() {
        Outcome::Now(tasks) => tasks,
        Outcome::Later => panic!("expected the launch at once"),
    }
}

/// One lease of `cpus` and `mem`, granted from the pool at once.
pub(crate) fn lease_now(core: &mut Core, session: &SessionId, cpus: f64, mem: f64) -> Lease {
    let request = acquire(vec![slot(cpus, mem)], Duration::ZERO);
    granted(core.acquire(T0, Ticket(1), session, request)).remove(0)
}

/// A core where frontend "a" has launched task "t" on agent 1.
pub(crate) fn one_launched_task() -> (Core, SessionId, TaskId) {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(4.0, 1024.0))]);
    let lease = lease_now(&mut core, &s, 1.0, 128.0);
    let tasks = launched(core.launch(T0, Ticket(99), &s, vec![(lease.id, task("t", 1.0, 128.0))]));
    (core, s, tasks[0].task_id.clone())
}

// ----- effects ------------------------------------------------------------------

/// The deferred Acquire answers among the effects, in order.
pub(crate) fn answers(effects: Vec<Effect>) -> Vec<(Ticket, Result<Vec<Lease>, CoreError>)> {
    effects
        .into_iter()
        .filter_map(|e| match e {
            Effect::Reply { ticket, answer } => Some((
                ticket,
                answer.map(|answer| match answer {
                    Answer::Leases(leases) => leases,
                    other => panic!("an Acquire answered {other:?}"),
                }),
            )),
            _ => None,
        })
        .collect()
}

/// The ACCEPT calls among the effects.
pub(crate) fn accepts(effects: &[Effect]) -> Vec<&MesosCall> {
    mesos_calls(effects)
        .into_iter()
        .filter(|call| matches!(call, MesosCall::Accept { .. }))
        .collect()
}

pub(crate) fn mesos_calls(effects: &[Effect]) -> Vec<&MesosCall> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Mesos(call) => Some(call),
            _ => None,
        })
        .collect()
}

// ----- invariants ---------------------------------------------------------------

/// What must hold of the frontends' books: the forgettable index agrees
/// with the frontends, holds exactly those that hold nothing and have no
/// live session, and nothing refers to a frontend that was forgotten.
pub(crate) fn check_frontend_books(core: &Core) -> Result<(), TestCaseError> {
    let scheduled: BTreeSet<(Timestamp, FrontendName)> = core
        .sessions
        .frontends
        .iter()
        .filter_map(|(name, state)| state.forget_at.map(|at| (at, name.clone())))
        .collect();
    prop_assert_eq!(
        &scheduled,
        &core.sessions.forgettable,
        "the index matches the frontends"
    );
    for (name, state) in &core.sessions.frontends {
        let holds_nothing = state.sessions.is_empty()
            && state.outbox.is_empty()
            && state.draining.is_none()
            && core.leases.values().all(|s| &s.lease.frontend != name)
            && core
                .tasks
                .values()
                .all(|t| &t.frontend != name || t.state.is_terminal())
            && core.queue.waiting.iter().all(|w| &w.frontend != name);
        prop_assert_eq!(
            state.forget_at.is_some(),
            holds_nothing,
            "frontend {} is scheduled to be forgotten exactly when it holds nothing",
            name
        );
        prop_assert!(state.owner.is_some(), "frontend {} has an owner", name);
        if state.draining.is_some() {
            prop_assert!(core.leases.values().all(|s| &s.lease.frontend != name));
            prop_assert!(core.queue.waiting.iter().all(|w| &w.frontend != name));
        }
    }
    for state in core.leases.values() {
        prop_assert!(core.sessions.frontends.contains_key(&state.lease.frontend));
    }
    for task in core.tasks.values().filter(|t| !t.state.is_terminal()) {
        prop_assert!(
            core.sessions.frontends.contains_key(&task.frontend),
            "a forgotten frontend had no live task"
        );
    }
    for waiting in &core.queue.waiting {
        prop_assert!(core.sessions.frontends.contains_key(&waiting.frontend));
    }
    for (frontend, _) in core.queue.requests.keys() {
        prop_assert!(core.sessions.frontends.contains_key(frontend));
    }
    Ok(())
}
