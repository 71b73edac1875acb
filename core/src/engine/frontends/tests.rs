//! Frontends as operators see and steer them: a name owned by its first
//! principal, frontends that hold nothing forgotten after the retention and
//! only then, the frontends view, drains and their undoing; and, under
//! random inputs, books that stay true and forget exactly when due.

use std::time::Duration;

use proptest::prelude::*;

use crate::engine::Outcome;
use crate::testing::*;
use crate::*;

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
    core.status_update(
        Timestamp::default(),
        update(&task_id, TaskState::Finished, None),
    );
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
    core.status_update(
        Timestamp::default(),
        update(&task_id, TaskState::Finished, None),
    );
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
                        core.status_update(Timestamp::default(), update(&live[pick % live.len()], state, None));
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
