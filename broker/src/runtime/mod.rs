//! The runtime loop: the only owner of the [`Core`]. It feeds the core with
//! frontend commands (from the gRPC handlers, over a bounded channel, each
//! with a oneshot reply), Mesos events (from the client) and the clock (a
//! timer set to the core's next deadline), and carries the core's effects
//! out in order: Mesos calls to a call pump (`pump`) that keeps their order
//! where it matters, events to sessions, deferred replies to their callers.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use agora_proto::agora::v1 as api;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;
use tracing::{debug, info, warn};

mod admin;
mod pump;

pub use admin::{AdminCommand, AdminError};

use crate::{
    api::convert,
    core::{
        self, Core, CoreError, Effect, FrontendName, LeaseId, MesosCall, Outcome, SessionId,
        TaskId, Ticket, Timestamp,
    },
    mesos::{self, MesosEvent, MesosHandle},
    store::Store,
};

/// How many events may wait for a slow session before it is closed; the
/// frontend resubscribes and gets them replayed.
pub const SESSION_BUFFER: usize = 1024;

/// Commands taken from the queue before the core's effects are carried
/// out; bounded so that Mesos events and the clock are not starved.
const COMMAND_BATCH: usize = 64;

/// The sending half of a session's event stream.
pub type SessionSender = mpsc::Sender<Result<api::Event, Status>>;

type Reply<T> = oneshot::Sender<Result<T, CoreError>>;

/// What a gRPC handler asks of the core.
pub enum Command {
    Subscribe {
        frontend: String,
        /// Who subscribes: a frontend name belongs to its first principal.
        principal: String,
        namespaces: Vec<String>,
        resume_after: u64,
        events: SessionSender,
        reply: Reply<SessionId>,
    },
    SessionEnded(SessionId),
    Acquire {
        session: SessionId,
        request: core::AcquireRequest,
        reply: Reply<Vec<core::Lease>>,
    },
    Hold {
        session: SessionId,
        leases: Vec<LeaseId>,
        hold_for: Duration,
        reply: Reply<Vec<core::Lease>>,
    },
    Release {
        session: SessionId,
        leases: Vec<LeaseId>,
        refuse_for: Duration,
        reply: Reply<()>,
    },
    Launch {
        session: SessionId,
        launches: Vec<(LeaseId, core::Work)>,
        reply: Reply<Vec<core::Launched>>,
    },
    Kill {
        session: SessionId,
        tasks: Vec<TaskId>,
        grace: Option<Duration>,
        reply: Reply<()>,
    },
    Acknowledge {
        session: SessionId,
        up_to: u64,
        reply: Reply<()>,
    },
    Reconcile {
        session: SessionId,
        tasks: Vec<TaskId>,
        reply: Reply<Vec<core::TaskRecord>>,
    },
    ListAgents {
        session: SessionId,
        reply: Reply<Vec<core::AgentView>>,
    },
    ListLeases {
        session: SessionId,
        namespace: Option<String>,
        reply: Reply<Vec<core::Lease>>,
    },
    ListTasks {
        session: SessionId,
        namespace: Option<String>,
        reply: Reply<Vec<core::TaskRecord>>,
    },
    Admin(AdminCommand),
    /// Answered as soon as the loop takes it: health asks, to tell a live
    /// core from a stuck one.
    Probe(oneshot::Sender<()>),
}

/// Whether the runtime loop takes and answers a command within `within`:
/// a loop stuck in one long step, or behind a full queue, does not.
pub async fn core_answers(commands: &mpsc::Sender<Command>, within: Duration) -> bool {
    let probe = async {
        let (reply, answer) = oneshot::channel();
        commands.send(Command::Probe(reply)).await.is_ok() && answer.await.is_ok()
    };
    tokio::time::timeout(within, probe).await.unwrap_or(false)
}

/// The wall clock as the core counts time.
fn now() -> Timestamp {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

/// Owns the core and everything that talks to it.
pub struct Runtime {
    core: Core,
    store: Store,
    heartbeat: Duration,
    sessions: HashMap<SessionId, SessionSender>,
    waiting: HashMap<u64, Reply<Vec<core::Lease>>>,
    waiting_launches: HashMap<u64, Reply<Vec<core::Launched>>>,
    next_ticket: u64,
    calls: mpsc::Sender<MesosCall>,
    /// The last connection change, as frontends are told of it.
    mesos_connection: api::MesosConnection,
}

impl Runtime {
    /// Runs until every command sender is dropped (the server stopped).
    pub async fn run(
        core: Core,
        store: Store,
        heartbeat: Duration,
        mut commands: mpsc::Receiver<Command>,
        mut mesos_events: mpsc::Receiver<MesosEvent>,
        mesos: MesosHandle,
    ) {
        let (calls, calls_rx) = mpsc::channel(4096);
        let (failures_tx, mut failures) = mpsc::channel(256);
        tokio::spawn(pump::run(mesos, calls_rx, failures_tx));
        let mut runtime = Runtime {
            core,
            store,
            heartbeat,
            sessions: HashMap::new(),
            waiting: HashMap::new(),
            waiting_launches: HashMap::new(),
            next_ticket: 0,
            calls,
            mesos_connection: api::MesosConnection {
                connected: false,
                since: Some(convert::timestamp(now())),
                reason: "not subscribed yet".into(),
            },
        };
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        loop {
            let sleep = match runtime.core.next_deadline() {
                Some(deadline) => Duration::from_millis(deadline.0.saturating_sub(now().0)),
                None => Duration::from_secs(3600),
            };
            timer.as_mut().reset(tokio::time::Instant::now() + sleep);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => runtime.command(command),
                    None => break,
                },
                Some(event) = mesos_events.recv() => runtime.mesos_event(event),
                Some(failed) = failures.recv() => runtime.core.accept_failed(&failed.tasks, &failed.reason),
                () = &mut timer => runtime.core.tick(now()),
            }
            // Under load more commands are already queued: taking them now
            // lets one pass over the effects and one deadline serve them all.
            for _ in 1..COMMAND_BATCH {
                let Ok(command) = commands.try_recv() else {
                    break;
                };
                runtime.command(command);
            }
            runtime.carry_out().await;
        }
        info!("runtime stopped");
    }

    fn command(&mut self, command: Command) {
        let now = now();
        let core = &mut self.core;
        match command {
            Command::Subscribe {
                frontend,
                principal,
                namespaces,
                resume_after,
                events,
                reply,
            } => {
                let name = FrontendName(frontend.clone());
                let result = core.subscribe(name, &principal, namespaces, resume_after);
                if let Ok(session) = &result {
                    let subscribed = api::Event {
                        sequence: 0,
                        kind: Some(api::event::Kind::Subscribed(api::Subscribed {
                            frontend_id: frontend,
                            session_id: session.0.clone(),
                            heartbeat_interval: prost_types::Duration::try_from(self.heartbeat)
                                .ok(),
                        })),
                    };
                    let lost = (!self.mesos_connection.connected)
                        .then(|| connection_event(&self.mesos_connection));
                    let delivered = std::iter::once(subscribed)
                        .chain(lost)
                        .all(|event| events.try_send(Ok(event)).is_ok());
                    if delivered {
                        self.sessions.insert(session.clone(), events);
                    }
                }
                let _ = reply.send(result);
            }
            Command::SessionEnded(session) => {
                debug!(session = %session, "session ended");
                self.sessions.remove(&session);
                core.end_session(now, &session);
            }
            Command::Acquire {
                session,
                request,
                reply,
            } => {
                self.next_ticket += 1;
                let outcome = core.acquire(now, Ticket(self.next_ticket), &session, request);
                answer(outcome, reply, self.next_ticket, &mut self.waiting);
            }
            Command::Hold {
                session,
                leases,
                hold_for,
                reply,
            } => {
                let _ = reply.send(core.hold(now, &session, &leases, hold_for));
            }
            Command::Release {
                session,
                leases,
                refuse_for,
                reply,
            } => {
                let _ = reply.send(core.release(now, &session, &leases, refuse_for));
            }
            Command::Launch {
                session,
                launches,
                reply,
            } => {
                self.next_ticket += 1;
                let outcome = core.launch(now, Ticket(self.next_ticket), &session, launches);
                answer(outcome, reply, self.next_ticket, &mut self.waiting_launches);
            }
            Command::Kill {
                session,
                tasks,
                grace,
                reply,
            } => {
                let _ = reply.send(core.kill(&session, &tasks, grace));
            }
            Command::Acknowledge {
                session,
                up_to,
                reply,
            } => {
                let _ = reply.send(core.acknowledge(&session, up_to));
            }
            Command::Reconcile {
                session,
                tasks,
                reply,
            } => {
                let _ = reply.send(core.reconcile(&session, &tasks));
            }
            Command::ListAgents { session, reply } => {
                let result = core.frontend_of(&session).map(|_| core.agents());
                let _ = reply.send(result);
            }
            Command::ListLeases {
                session,
                namespace,
                reply,
            } => {
                let _ = reply.send(core.leases_of(&session, namespace.as_deref()));
            }
            Command::ListTasks {
                session,
                namespace,
                reply,
            } => {
                let _ = reply.send(core.tasks_of(&session, namespace.as_deref()));
            }
            Command::Admin(command) => admin::handle(core, &self.store, now, command),
            Command::Probe(reply) => {
                let _ = reply.send(());
            }
        }
    }

    fn mesos_event(&mut self, event: MesosEvent) {
        let now = now();
        match event {
            MesosEvent::Subscribed {
                resubscribed,
                roles,
                ..
            } => {
                self.connection_changed(now, true, String::new());
                self.core.mesos_subscribed(resubscribed, &roles);
            }
            MesosEvent::Disconnected { reason } => {
                self.connection_changed(now, false, reason);
                self.core.mesos_disconnected(now);
            }
            MesosEvent::Offers(offers) => {
                debug!(count = offers.len(), "offers");
                self.core.offers(now, offers);
            }
            MesosEvent::Rescind(offer) => self.core.rescind(&offer),
            MesosEvent::Update(status) => self.core.status_update(status),
            MesosEvent::AgentLost(agent) => {
                warn!(agent = %agent.0, "agent lost");
                self.core.agent_lost(&agent);
            }
        }
    }

    /// Tells every live session that the connection to Mesos was lost or
    /// regained; repeated failures while it stays lost say nothing new.
    fn connection_changed(&mut self, now: Timestamp, connected: bool, reason: String) {
        if self.mesos_connection.connected == connected {
            return;
        }
        self.mesos_connection = api::MesosConnection {
            connected,
            since: Some(convert::timestamp(now)),
            reason,
        };
        let sessions: Vec<SessionId> = self.sessions.keys().cloned().collect();
        for session in sessions {
            self.deliver(session, connection_event(&self.mesos_connection));
        }
    }

    /// Carries out the core's effects in the order it queued them.
    async fn carry_out(&mut self) {
        for effect in self.core.drain_effects() {
            match effect {
                Effect::Mesos(call) => {
                    if self.calls.send(call).await.is_err() {
                        warn!("the Mesos call pump stopped");
                    }
                }
                Effect::Deliver {
                    session,
                    sequence,
                    event,
                } => {
                    if let core::FrontendEvent::PreemptionNotice(reclaim) = &event {
                        info!(
                            owner = %reclaim.owner,
                            borrower = %reclaim.borrower,
                            frontend = %reclaim.frontend,
                            tasks = ?reclaim.tasks,
                            reason = %reclaim.reason,
                            "reclaiming lent capacity"
                        );
                    }
                    self.deliver(session, convert::event(sequence, &event))
                }
                Effect::AcquireDone { ticket, result } => {
                    if let Some(reply) = self.waiting.remove(&ticket.0) {
                        let _ = reply.send(result);
                    }
                }
                Effect::LaunchDone { ticket, result } => {
                    if let Some(reply) = self.waiting_launches.remove(&ticket.0) {
                        let _ = reply.send(result);
                    }
                }
            }
        }
    }

    /// Sends an event to a session; a session that cannot keep up is closed,
    /// and its frontend resubscribes to get the rest replayed.
    fn deliver(&mut self, session: SessionId, event: api::Event) {
        let Some(sender) = self.sessions.get(&session) else {
            return;
        };
        if sender.try_send(Ok(event)).is_err() {
            warn!(session = %session, "closing a session that does not keep up with its events");
            self.sessions.remove(&session);
            self.core.end_session(now(), &session);
        }
    }
}

/// The unsequenced event that reports `connection`.
fn connection_event(connection: &api::MesosConnection) -> api::Event {
    api::Event {
        sequence: 0,
        kind: Some(api::event::Kind::MesosConnection(connection.clone())),
    }
}

/// Replies now, or keeps the reply for the effect that will answer later.
fn answer<T>(
    outcome: Result<Outcome<T>, CoreError>,
    reply: Reply<T>,
    ticket: u64,
    later: &mut HashMap<u64, Reply<T>>,
) {
    match outcome {
        Ok(Outcome::Now(value)) => {
            let _ = reply.send(Ok(value));
        }
        Ok(Outcome::Later) => {
            later.insert(ticket, reply);
        }
        Err(error) => {
            let _ = reply.send(Err(error));
        }
    }
}

/// Starts the Mesos client and the runtime loop; returns the command sender
/// for the API and the Mesos handle for health.
pub fn start(
    core: Core,
    store: Store,
    heartbeat: Duration,
    mesos_config: mesos::MesosConfig,
) -> (mpsc::Sender<Command>, MesosHandle) {
    let (commands_tx, commands_rx) = mpsc::channel(1024);
    let (handle, mesos_events, _subscription) = mesos::start(mesos_config);
    tokio::spawn(Runtime::run(
        core,
        store,
        heartbeat,
        commands_rx,
        mesos_events,
        handle.clone(),
    ));
    (commands_tx, handle)
}
