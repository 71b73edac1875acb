//! The runtime loop: the only owner of the [`Core`]. It turns what happens
//! — frontend and operator commands (from the gRPC handlers, over a bounded
//! channel, each with a oneshot reply), Mesos events (from the client) and
//! the clock (a timer set to the core's next deadline) — into the core's
//! [`Input`]s, and carries the core's [`Effect`]s out in order: Mesos calls
//! to a call pump (`pump`) that keeps their order where it matters, events
//! to sessions, replies to their callers. It speaks neither protobuf nor
//! Mesos: each edge converts at its own border.
//!
//! With a journal, what a turn decides leaves only once the turn's durable
//! changes are committed: the loop hands them to the writer (`writer`) and
//! holds the turn's effects, view answers and connection notices until that
//! commit, while it goes on with the next turns.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

mod admin;
mod journal;
mod pump;
mod writer;

pub use admin::{AdminError, NamespaceChange};
pub use journal::{JournalError, framework_id, load};

use self::writer::Writer;
use crate::{
    mesos::{self, MesosEvent, MesosHandle},
    store::{Store, StoreError, Write},
};
use agora_core::{
    Answer, Core, CoreError, Effect, FrontendEvent, Input, MesosInput, Request, SessionId, Ticket,
    Timestamp, durable::Durable,
};

/// How many events may wait for a slow session before it is closed; the
/// frontend resubscribes and gets them replayed.
pub const SESSION_BUFFER: usize = 1024;

/// Commands taken from the queue before the core's effects are carried
/// out; bounded so that Mesos events and the clock are not starved.
const COMMAND_BATCH: usize = 64;

/// What the runtime sends down a session's stream, in the core's words;
/// the API layer turns each into protobuf as the stream is read.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A frontend event with its sequence number.
    Event {
        /// Per frontend, increasing; the frontend acknowledges up to it.
        sequence: u64,
        /// What happened.
        event: FrontendEvent,
    },
    /// The connection to Mesos was lost or regained (unsequenced).
    MesosConnection(MesosConnection),
}

/// Whether Agora is subscribed to Mesos, since when and, when it is not,
/// why.
#[derive(Debug, Clone, PartialEq)]
pub struct MesosConnection {
    /// Whether Agora is subscribed to Mesos now.
    pub connected: bool,
    /// When it last connected or disconnected.
    pub since: Timestamp,
    /// Why it is not connected (the last error); empty while connected.
    pub reason: String,
}

/// The sending half of a session's event stream.
pub type SessionSender = mpsc::Sender<SessionEvent>;

/// Where the answer to a request goes.
pub type Reply = oneshot::Sender<Result<Answer, CoreError>>;

/// A read of the core: a view, which changes nothing and so is no input.
/// It returns how to answer its caller, which the runtime does once what
/// the view saw is committed: no caller sees state a crash could undo.
pub type Read = Box<dyn FnOnce(&Core, Timestamp) -> Answering + Send>;

/// Gives a view's answer to its caller.
pub type Answering = Box<dyn FnOnce() + Send>;

/// What a gRPC handler asks of the runtime.
pub enum Command {
    /// A request for the core, answered through `reply`.
    Request {
        /// What the caller asks.
        request: Request,
        /// Where the answer or refusal goes.
        reply: Reply,
    },
    /// A Subscribe request; once it is answered, the session's events go
    /// to `events`.
    Subscribe {
        /// The `Subscribe` request, in the core's words.
        request: Request,
        /// The session's stream, bounded by [`SESSION_BUFFER`].
        events: SessionSender,
        /// Where the answer (the new session) or refusal goes.
        reply: Reply,
    },
    /// A Subscribe stream ended.
    SessionEnded(SessionId),
    /// A namespace change, written to the store before the core applies it.
    Namespace {
        /// The put or delete.
        change: NamespaceChange,
        /// Where the answer, or why it was not stored or applied, goes.
        reply: oneshot::Sender<Result<Answer, AdminError>>,
    },
    /// Runs a read against the core between inputs.
    Read(Read),
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

/// Sends `read` to the runtime and awaits what it returns; `None` once the
/// runtime has stopped.
pub async fn read<T: Send + 'static>(
    commands: &mpsc::Sender<Command>,
    read: impl FnOnce(&Core, Timestamp) -> T + Send + 'static,
) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    let command = Command::Read(Box::new(move |core, now| {
        let answer = read(core, now);
        Box::new(move || {
            let _ = reply.send(answer);
        })
    }));
    commands.send(command).await.ok()?;
    answer.await.ok()
}

/// The wall clock as the core counts time.
fn now() -> Timestamp {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

/// A caller waiting for the answer to its request.
enum Waiter {
    Request(Reply),
    /// An Acknowledge, whose answer need not wait for the commit of its
    /// turn: were the turn lost, the events it lets go are only replayed,
    /// which at-least-once delivery allows.
    Acknowledge(Reply),
    Subscribe {
        events: SessionSender,
        reply: Reply,
    },
    Namespace(oneshot::Sender<Result<Answer, AdminError>>),
}

/// Why the runtime stopped before the server did.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store refused a write. Nothing decided since may leave the
    /// broker (it would run ahead of what a restart restores), so the
    /// broker stops; started again, it recovers from what the store holds.
    #[error("cannot record the broker's state, so it stops: {0}")]
    Store(StoreError),
    /// The journal's writer ended without a store error: it panicked.
    #[error("the journal's writer stopped, so the broker stops: {0:?}")]
    WriterGone(Option<tokio::task::JoinError>),
}

/// What the loop decided that leaves the broker once it is committed.
enum Outgoing {
    /// An effect of the core's.
    Effect(Effect),
    /// The connection to Mesos changed: every session is told.
    Connection(MesosConnection),
    /// A view's answer.
    Answer(Answering),
}

/// Owns the core and everything that talks to it.
pub struct Runtime {
    core: Core,
    store: Store,
    /// Writes beside the core's records: the framework id Mesos gave.
    meta_writes: Vec<Write>,
    /// The framework id as last stored.
    framework_id: Option<String>,
    /// The journal's writer; `None` when the store does not outlive the
    /// process, so nothing is worth writing or waiting for.
    writer: Option<Writer>,
    sessions: HashMap<SessionId, SessionSender>,
    waiters: HashMap<Ticket, Waiter>,
    next_ticket: u64,
    /// Decided in this turn, not yet tied to a commit; oldest first.
    decided: Vec<Outgoing>,
    /// Decided, waiting for the commit of the generation each names;
    /// oldest first, so generations never decrease along it.
    held: VecDeque<(u64, Outgoing)>,
    calls: mpsc::Sender<agora_core::MesosCall>,
    /// The last connection change, as decided.
    mesos_connection: MesosConnection,
    /// The last connection change frontends were told of: a notice waits
    /// for the commit of its turn like the events around it.
    announced: MesosConnection,
}

impl Runtime {
    /// Recovers from `durable`, then runs until every command sender is
    /// dropped (the server stopped) or the store fails.
    pub async fn run(
        core: Core,
        recovery: Recovery,
        mut commands: mpsc::Receiver<Command>,
        mut mesos_events: mpsc::Receiver<MesosEvent>,
        mesos: MesosHandle,
    ) -> Result<(), RuntimeError> {
        let (calls, calls_rx) = mpsc::channel(4096);
        let (failures_tx, mut failures) = mpsc::channel(256);
        tokio::spawn(pump::run(mesos, calls_rx, failures_tx));
        let Recovery {
            store,
            durable,
            framework_id,
            journaling,
        } = recovery;
        let writer = journaling.then(|| Writer::start(store.clone()));
        let not_subscribed = MesosConnection {
            connected: false,
            since: now(),
            reason: "not subscribed yet".into(),
        };
        let mut runtime = Runtime {
            core,
            store,
            meta_writes: Vec::new(),
            framework_id,
            writer,
            sessions: HashMap::new(),
            waiters: HashMap::new(),
            next_ticket: 0,
            decided: Vec::new(),
            held: VecDeque::new(),
            calls,
            mesos_connection: not_subscribed.clone(),
            announced: not_subscribed,
        };
        runtime.input(Input::Recovered(Box::new(durable)));
        runtime.settle().await?;
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        loop {
            let sleep = match runtime.core.next_deadline() {
                Some(deadline) => Duration::from_millis(deadline.0.saturating_sub(now().0)),
                None => Duration::from_secs(3600),
            };
            timer.as_mut().reset(tokio::time::Instant::now() + sleep);
            // A deadline already due is a branch of its own, ready now: the
            // timer, reset at every turn, fires only when tokio's time
            // driver turns, which a loop kept busy by commands lets happen
            // hundreds of milliseconds late (lingering launches then wait
            // that long for their ACCEPT).
            let due = sleep.is_zero();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => runtime.command(command).await,
                    None => break,
                },
                Some(event) = mesos_events.recv() => runtime.mesos_event(event),
                Some(failed) = failures.recv() => runtime.input(Input::Mesos(failed)),
                committed = next_commit(&mut runtime.writer) => committed?,
                () = &mut timer => runtime.input(Input::Tick),
                () = std::future::ready(()), if due => runtime.input(Input::Tick),
            }
            // Under load more commands are already queued: taking them now
            // lets one pass over the effects and one deadline serve them all.
            for _ in 1..COMMAND_BATCH {
                let Ok(command) = commands.try_recv() else {
                    break;
                };
                runtime.command(command).await;
            }
            runtime.settle().await?;
        }
        info!("runtime stopped");
        Ok(())
    }

    /// Ends a turn: hands what it changed of the durable records to the
    /// writer, holds what it decided until that commit, and carries out
    /// whatever is committed now. An acknowledgement to Mesos, a reply or
    /// an event never runs ahead of the store. Carrying out can decide
    /// more (a slow session is closed), which goes the same way.
    async fn settle(&mut self) -> Result<(), RuntimeError> {
        loop {
            self.persist().await?;
            let generation = self.writer.as_ref().map_or(0, Writer::handed_over);
            for outgoing in std::mem::take(&mut self.decided) {
                if self.waits_for_commit(&outgoing) {
                    self.held.push_back((generation, outgoing));
                } else {
                    self.carry_out(outgoing).await;
                }
            }
            self.release().await;
            if self.decided.is_empty() {
                return Ok(());
            }
        }
    }

    /// Hands the turn's durable changes to the writer.
    async fn persist(&mut self) -> Result<(), RuntimeError> {
        let Some(writer) = &mut self.writer else {
            self.core.discard_changes();
            self.meta_writes.clear();
            return Ok(());
        };
        let mut writes = journal::writes(self.core.take_changes());
        writes.append(&mut self.meta_writes);
        if writes.is_empty() {
            return Ok(());
        }
        writer.hand_over(writes).await
    }

    /// Whether `outgoing` must wait for the commit of its turn: all but the
    /// answer to an Acknowledge do.
    fn waits_for_commit(&self, outgoing: &Outgoing) -> bool {
        let Outgoing::Effect(Effect::Reply { ticket, .. }) = outgoing else {
            return true;
        };
        !matches!(self.waiters.get(ticket), Some(Waiter::Acknowledge(_)))
    }

    /// Carries out, oldest first, what was decided in turns now committed.
    async fn release(&mut self) {
        while let Some((generation, _)) = self.held.front() {
            if !self
                .writer
                .as_ref()
                .is_none_or(|w| w.is_committed(*generation))
            {
                break;
            }
            if let Some((_, outgoing)) = self.held.pop_front() {
                self.carry_out(outgoing).await;
            }
        }
    }

    /// Hands `input` to the core, now, and keeps what it decides.
    fn input(&mut self, input: Input) {
        let effects = self.core.handle(now(), input);
        self.decided
            .extend(effects.into_iter().map(Outgoing::Effect));
    }

    /// Hands `request` to the core under a new ticket; `waiter` gets the
    /// answer when the effect that carries it is carried out.
    fn request(&mut self, request: Request, waiter: Waiter) {
        self.next_ticket += 1;
        let ticket = Ticket(self.next_ticket);
        self.waiters.insert(ticket, waiter);
        self.input(Input::Request { ticket, request });
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Request {
                request: request @ Request::Acknowledge { .. },
                reply,
            } => self.request(request, Waiter::Acknowledge(reply)),
            Command::Request { request, reply } => self.request(request, Waiter::Request(reply)),
            Command::Subscribe {
                request,
                events,
                reply,
            } => self.request(request, Waiter::Subscribe { events, reply }),
            Command::SessionEnded(session) => {
                debug!(session = %session, "session ended");
                self.sessions.remove(&session);
                self.input(Input::SessionEnded(session));
            }
            Command::Namespace { change, reply } => {
                match admin::persist(&self.core, &self.store, &change).await {
                    Ok(request) => self.request(request, Waiter::Namespace(reply)),
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            Command::Read(read) => {
                let answer = read(&self.core, now());
                self.decided.push(Outgoing::Answer(answer));
            }
            Command::Probe(reply) => {
                let _ = reply.send(());
            }
        }
    }

    fn mesos_event(&mut self, event: MesosEvent) {
        let input = match event {
            MesosEvent::Subscribed {
                framework_id,
                resubscribed,
                roles,
            } => {
                if self.framework_id.as_ref() != Some(&framework_id) {
                    self.meta_writes
                        .push(journal::framework_id_write(&framework_id));
                    self.framework_id = Some(framework_id);
                }
                self.connection_changed(true, String::new());
                MesosInput::Subscribed {
                    resubscribed,
                    roles,
                }
            }
            MesosEvent::Disconnected { reason } => {
                self.connection_changed(false, reason);
                MesosInput::Disconnected
            }
            MesosEvent::Offers(offers) => {
                debug!(count = offers.len(), "offers");
                MesosInput::Offers(offers)
            }
            MesosEvent::Rescind(offer) => MesosInput::Rescind(offer),
            MesosEvent::Update(status) => MesosInput::Update(status),
            MesosEvent::AgentLost(agent) => {
                warn!(agent = %agent.0, "agent lost");
                MesosInput::AgentLost(agent)
            }
        };
        self.input(Input::Mesos(input));
    }

    /// Tells every live session that the connection to Mesos was lost or
    /// regained; repeated failures while it stays lost say nothing new.
    fn connection_changed(&mut self, connected: bool, reason: String) {
        if self.mesos_connection.connected == connected {
            return;
        }
        self.mesos_connection = MesosConnection {
            connected,
            since: now(),
            reason,
        };
        let notice = Outgoing::Connection(self.mesos_connection.clone());
        self.decided.push(notice);
    }

    /// Carries out one thing decided; what that decides on the way (a
    /// session closed for being slow ends in the core, which may decide
    /// more) waits for the next [`Runtime::settle`] round.
    async fn carry_out(&mut self, outgoing: Outgoing) {
        match outgoing {
            Outgoing::Effect(Effect::Mesos(call)) => {
                if self.calls.send(call).await.is_err() {
                    warn!("the Mesos call pump stopped");
                }
            }
            Outgoing::Effect(Effect::Deliver {
                session,
                sequence,
                event,
            }) => {
                if let FrontendEvent::PreemptionNotice(reclaim) = &event {
                    info!(
                        owner = %reclaim.owner,
                        borrower = %reclaim.borrower,
                        frontend = %reclaim.frontend,
                        tasks = ?reclaim.tasks,
                        reason = %reclaim.reason,
                        "reclaiming lent capacity"
                    );
                }
                self.deliver(session, SessionEvent::Event { sequence, event });
            }
            Outgoing::Effect(Effect::Reply { ticket, answer }) => self.reply(ticket, answer),
            Outgoing::Connection(connection) => {
                let sessions: Vec<SessionId> = self.sessions.keys().cloned().collect();
                for session in sessions {
                    let event = SessionEvent::MesosConnection(connection.clone());
                    self.deliver(session, event);
                }
                self.announced = connection;
            }
            Outgoing::Answer(answer) => answer(),
        }
    }

    /// Gives `answer` to whoever waits for `ticket`. A new session hears
    /// that Mesos is not reachable, when it is not, before any event the
    /// core replays to it.
    fn reply(&mut self, ticket: Ticket, answer: Result<Answer, CoreError>) {
        let Some(waiter) = self.waiters.remove(&ticket) else {
            return;
        };
        match waiter {
            Waiter::Request(reply) | Waiter::Acknowledge(reply) => {
                let _ = reply.send(answer);
            }
            Waiter::Namespace(reply) => {
                let _ = reply.send(answer.map_err(AdminError::from));
            }
            Waiter::Subscribe { events, reply } => {
                if let Ok(Answer::Subscribed(session)) = &answer {
                    let lost = (!self.announced.connected)
                        .then(|| SessionEvent::MesosConnection(self.announced.clone()));
                    if lost.is_none_or(|lost| events.try_send(lost).is_ok()) {
                        self.sessions.insert(session.clone(), events);
                    }
                }
                let _ = reply.send(answer);
            }
        }
    }

    /// Sends an event to a session; a session that cannot keep up is closed,
    /// and its frontend resubscribes to get the rest replayed.
    fn deliver(&mut self, session: SessionId, event: SessionEvent) {
        let Some(sender) = self.sessions.get(&session) else {
            return;
        };
        if sender.try_send(event).is_err() {
            warn!(session = %session, "closing a session that does not keep up with its events");
            self.sessions.remove(&session);
            self.input(Input::SessionEnded(session));
        }
    }
}

/// What a run starts from: the store, what it held, and the framework id
/// it recorded.
pub struct Recovery {
    /// Where the durable records are written from now on.
    pub store: Store,
    /// The records an earlier run left ([`load`]).
    pub durable: Durable,
    /// The framework id an earlier run recorded ([`framework_id`]).
    pub framework_id: Option<String>,
    /// Whether the store outlives the process (a file or etcd); a store in
    /// memory gets no journal.
    pub journaling: bool,
}

/// How many commands may wait for the loop before handlers wait to send.
pub const COMMAND_QUEUE: usize = 1024;

/// Starts the Mesos client and the runtime loop, which takes `commands`;
/// returns the Mesos handle for health, and the loop, which ends with an
/// error if the store fails.
pub fn start(
    core: Core,
    recovery: Recovery,
    mesos_config: mesos::MesosConfig,
    commands: mpsc::Receiver<Command>,
) -> (
    MesosHandle,
    tokio::task::JoinHandle<Result<(), RuntimeError>>,
) {
    let (handle, mesos_events, _subscription) = mesos::start(mesos_config);
    let runtime = tokio::spawn(Runtime::run(
        core,
        recovery,
        commands,
        mesos_events,
        handle.clone(),
    ));
    (handle, runtime)
}

/// The next commit of `writer`'s; never, without a writer.
async fn next_commit(writer: &mut Option<Writer>) -> Result<(), RuntimeError> {
    match writer {
        Some(writer) => writer.next_commit().await,
        None => std::future::pending().await,
    }
}
