//! Drives a core through its public interface as the runtime does, from
//! generated steps: requests pick their leases, tasks and sessions from
//! earlier answers, so the inputs are the ones a real run would produce.
//! Shared by the property tests of this directory.

use std::time::Duration;

use agora_core::{
    AcquireRequest, Agent, AgentId, Answer, Command, Core, CoreConfig, Effect, FrontendName, Input,
    LeaseId, MesosInput, Offer, OfferId, Request, Resources, RevocablePolicy, SessionId, Slot,
    StatusUpdate, TaskId, TaskSpec, TaskState, Ticket, Timestamp, Work,
};
use proptest::prelude::*;

/// One thing that happens, in terms of what the run has seen so far.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Offer {
        agent: u8,
        cpus: u8,
    },
    Rescind {
        pick: usize,
    },
    Acquire {
        frontend: u8,
        cpus: u8,
        count: u8,
        wait: bool,
    },
    Hold {
        pick: usize,
        secs: u8,
    },
    Release {
        pick: usize,
    },
    Launch {
        pick: usize,
    },
    Status {
        pick: usize,
        state: u8,
    },
    Kill {
        pick: usize,
    },
    Acknowledge {
        frontend: u8,
        up_to: u8,
    },
    EndSession {
        frontend: u8,
    },
    Subscribe {
        frontend: u8,
    },
    AgentLost {
        agent: u8,
    },
    Reconnect,
    Advance {
        millis: u16,
    },
}

pub(crate) fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..4u8, 1..8u8).prop_map(|(agent, cpus)| Step::Offer { agent, cpus }),
        1 => any::<usize>().prop_map(|pick| Step::Rescind { pick }),
        4 => (0..3u8, 1..4u8, 1..3u8, any::<bool>()).prop_map(|(frontend, cpus, count, wait)| {
            Step::Acquire {
                frontend,
                cpus,
                count,
                wait,
            }
        }),
        1 => (any::<usize>(), 1..60u8).prop_map(|(pick, secs)| Step::Hold { pick, secs }),
        1 => any::<usize>().prop_map(|pick| Step::Release { pick }),
        4 => any::<usize>().prop_map(|pick| Step::Launch { pick }),
        4 => (any::<usize>(), 0..4u8).prop_map(|(pick, state)| Step::Status { pick, state }),
        1 => any::<usize>().prop_map(|pick| Step::Kill { pick }),
        2 => (0..3u8, 0..20u8).prop_map(|(frontend, up_to)| Step::Acknowledge { frontend, up_to }),
        1 => (0..3u8).prop_map(|frontend| Step::EndSession { frontend }),
        2 => (0..3u8).prop_map(|frontend| Step::Subscribe { frontend }),
        1 => (0..4u8).prop_map(|agent| Step::AgentLost { agent }),
        1 => Just(Step::Reconnect),
        2 => (1..20_000u16).prop_map(|millis| Step::Advance { millis }),
    ]
}

fn resources(cpus: f64) -> Resources {
    Resources::from_scalars([("cpus", cpus), ("mem", cpus * 256.0)], []).expect("valid")
}

/// What the driver has learned from answers and effects: where its next
/// inputs pick from.
#[derive(Default)]
pub(crate) struct Seen {
    sessions: [Option<SessionId>; 3],
    leases: Vec<(u8, LeaseId, f64)>,
    tasks: Vec<(u8, TaskId, AgentId)>,
    offers: Vec<OfferId>,
    next: u64,
}

impl Seen {
    pub(crate) fn learn(&mut self, effects: &[Effect], asked_by: &[(Ticket, u8)]) {
        for effect in effects {
            let Effect::Reply {
                ticket,
                answer: Ok(answer),
            } = effect
            else {
                continue;
            };
            let Some(&(_, frontend)) = asked_by.iter().find(|(t, _)| t == ticket) else {
                continue;
            };
            match answer {
                Answer::Subscribed(session) => {
                    self.sessions[usize::from(frontend)] = Some(session.clone());
                }
                Answer::Leases(leases) => self.leases.extend(
                    leases
                        .iter()
                        .map(|l| (frontend, l.id.clone(), l.resources.scalar("cpus"))),
                ),
                Answer::Launched(launched) => self.tasks.extend(
                    launched
                        .iter()
                        .map(|t| (frontend, t.task_id.clone(), t.agent.clone())),
                ),
                _ => {}
            }
        }
    }

    fn fresh(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("{kind}-{}", self.next)
    }

    fn session(&self, frontend: u8) -> SessionId {
        self.sessions[usize::from(frontend)]
            .clone()
            .unwrap_or_else(|| SessionId("never-opened".into()))
    }
}

fn pick<T>(items: &[T], pick: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[pick % items.len()])
}

/// The input that `step` means now, if any.
pub(crate) fn input(
    seen: &mut Seen,
    step: &Step,
    ticket: Ticket,
    asked_by: &mut Vec<(Ticket, u8)>,
) -> Option<Input> {
    let mut request = |frontend: u8, request: Request| {
        asked_by.push((ticket, frontend));
        Some(Input::Request { ticket, request })
    };
    match *step {
        Step::Offer { agent, cpus } => {
            let id = OfferId(seen.fresh("offer"));
            seen.offers.push(id.clone());
            Some(Input::Mesos(MesosInput::Offers(vec![Offer {
                id,
                agent: Agent {
                    id: AgentId(format!("agent-{agent}")),
                    hostname: format!("host-{agent}"),
                    attributes: vec![],
                },
                role: "default".into(),
                resources: resources(f64::from(cpus)),
                revocable: Resources::default(),
                reserved: vec![],
            }])))
        }
        Step::Rescind { pick: n } => {
            pick(&seen.offers, n).map(|offer| Input::Mesos(MesosInput::Rescind(offer.clone())))
        }
        Step::Acquire {
            frontend,
            cpus,
            count,
            wait,
        } => request(
            frontend,
            Request::Acquire {
                session: seen.session(frontend),
                request: AcquireRequest {
                    namespace: "default".into(),
                    slots: vec![Slot {
                        resources: resources(f64::from(cpus)),
                        port_count: 0,
                        count: u32::from(count),
                    }],
                    constraints: vec![],
                    gang: count > 1,
                    hold_for: None,
                    wait_for: if wait {
                        Duration::from_secs(10)
                    } else {
                        Duration::ZERO
                    },
                    request_id: None,
                    revocable: RevocablePolicy::Deny,
                },
            },
        ),
        Step::Hold { pick: n, secs } => {
            let (frontend, lease, _) = pick(&seen.leases, n)?.clone();
            request(
                frontend,
                Request::Hold {
                    session: seen.session(frontend),
                    leases: vec![lease],
                    hold_for: Duration::from_secs(u64::from(secs)),
                },
            )
        }
        Step::Release { pick: n } => {
            let (frontend, lease, _) = pick(&seen.leases, n)?.clone();
            request(
                frontend,
                Request::Release {
                    session: seen.session(frontend),
                    leases: vec![lease],
                    refuse_for: Duration::ZERO,
                },
            )
        }
        Step::Launch { pick: n } => {
            let (frontend, lease, cpus) = pick(&seen.leases, n)?.clone();
            let client_id = seen.fresh("task");
            request(
                frontend,
                Request::Launch {
                    session: seen.session(frontend),
                    launches: vec![(
                        lease,
                        Work::Task(TaskSpec {
                            client_id: client_id.clone(),
                            name: client_id,
                            resources: resources(cpus),
                            command: Command::Shell("true".into()),
                            environment: vec![],
                            user: None,
                            labels: vec![],
                        }),
                    )],
                },
            )
        }
        Step::Status { pick: n, state } => {
            let (_, task, agent) = pick(&seen.tasks, n)?.clone();
            let state = [
                TaskState::Running,
                TaskState::Finished,
                TaskState::Failed,
                TaskState::Lost,
            ][usize::from(state)];
            let uuid = seen.fresh("uuid").into_bytes();
            Some(Input::Mesos(MesosInput::Update(StatusUpdate {
                task_id: task,
                agent_id: Some(agent),
                state,
                reason: None,
                message: None,
                timestamp: None,
                uuid: Some(uuid),
            })))
        }
        Step::Kill { pick: n } => {
            let (frontend, task, _) = pick(&seen.tasks, n)?.clone();
            request(
                frontend,
                Request::Kill {
                    session: seen.session(frontend),
                    tasks: vec![task],
                    grace: None,
                },
            )
        }
        Step::Acknowledge { frontend, up_to } => request(
            frontend,
            Request::Acknowledge {
                session: seen.session(frontend),
                up_to: u64::from(up_to),
            },
        ),
        Step::EndSession { frontend } => Some(Input::SessionEnded(seen.session(frontend))),
        Step::Subscribe { frontend } => request(
            frontend,
            Request::Subscribe {
                frontend: FrontendName(format!("frontend-{frontend}")),
                principal: "tests".into(),
                namespaces: vec!["default".into()],
                resume_after: 0,
            },
        ),
        Step::AgentLost { agent } => Some(Input::Mesos(MesosInput::AgentLost(AgentId(format!(
            "agent-{agent}"
        ))))),
        Step::Reconnect => Some(Input::Mesos(MesosInput::Subscribed {
            resubscribed: true,
            roles: vec!["default".into()],
        })),
        Step::Advance { .. } => Some(Input::Tick),
    }
}

pub(crate) fn fresh_core() -> Core {
    Core::new(CoreConfig::default(), "replay")
}

/// A core and what its driver has seen: steps in, inputs and effects out.
pub(crate) struct Driver {
    pub(crate) core: Core,
    pub(crate) now: Timestamp,
    /// Every input handed to the core, with its time and effects.
    pub(crate) log: Vec<(Timestamp, Input, Vec<Effect>)>,
    seen: Seen,
    asked_by: Vec<(Ticket, u8)>,
    tickets: u64,
}

impl Driver {
    /// A fresh core with every frontend subscribed.
    pub(crate) fn new() -> Driver {
        Driver::resume(fresh_core())
    }

    /// Drives `core`, which may have a past, after subscribing every
    /// frontend.
    pub(crate) fn resume(core: Core) -> Driver {
        let mut driver = Driver {
            core,
            now: Timestamp(1_000_000),
            log: Vec::new(),
            seen: Seen::default(),
            asked_by: Vec::new(),
            tickets: 0,
        };
        for frontend in 0..3 {
            driver.step(&Step::Subscribe { frontend });
        }
        driver
    }

    /// Hands the core the input `step` means now, if any, and logs it with
    /// its effects.
    pub(crate) fn step(&mut self, step: &Step) {
        if let Step::Advance { millis } = step {
            self.now = self.now.after(Duration::from_millis(u64::from(*millis)));
        }
        self.tickets += 1;
        let ticket = Ticket(self.tickets);
        let Some(input) = input(&mut self.seen, step, ticket, &mut self.asked_by) else {
            return;
        };
        let effects = self.core.handle(self.now, input.clone());
        self.seen.learn(&effects, &self.asked_by);
        self.log.push((self.now, input, effects));
    }
}
