//! The core's one interface: every [`Input`] that can happen to it, and the
//! [`Effect`]s it decides in answer. Inputs are plain data that serialise,
//! so a recorded sequence of them replays to the same state and the same
//! effects: the core takes no time, id or randomness from anywhere else.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::durable::Durable;
use crate::model::*;
use crate::views::{DrainReport, FrontendView, Launched};

/// Something that happened to the core. Time comes with it as the `now`
/// of [`Core::handle`](crate::Core::handle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// A caller asks; exactly one [`Effect::Reply`] with `ticket` answers,
    /// at once or, for an Acquire that waits or a Launch whose leases are
    /// rebinding, later.
    Request {
        /// Chosen by the runtime; the reply carries it back.
        ticket: Ticket,
        /// The call, as the API decoded it.
        request: Request,
    },
    /// A frontend's event stream ended: its leases go after the session
    /// grace, its waiting acquires are refused.
    SessionEnded(SessionId),
    /// Something Mesos told the framework, or the connection to it.
    Mesos(MesosInput),
    /// Time passed: whatever fell due by `now` is done.
    Tick,
    /// The broker starts again from what an earlier run stored; given
    /// first, before any other input.
    Recovered(Box<Durable>),
}

/// What frontends and operators ask of the core. Each request is answered
/// by one [`Answer`] or a [`CoreError`] naming what to fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Opens a session for `frontend` as `principal` and replays its
    /// unacknowledged events after `resume_after`. Answers
    /// [`Answer::Subscribed`] before the replayed events.
    Subscribe {
        /// The frontend's stable name: subscribing again under it inherits
        /// its tasks and events.
        frontend: FrontendName,
        /// Who the API authenticated; the first to subscribe under a name
        /// owns it.
        principal: String,
        /// The namespaces the session may act in: at least one, each
        /// existing.
        namespaces: Vec<String>,
        /// The last event sequence the frontend processed; 0 replays every
        /// unacknowledged event.
        resume_after: u64,
    },
    /// Answers [`Answer::Leases`].
    Acquire {
        /// The caller's live session.
        session: SessionId,
        /// What to lease, and how long to wait for it.
        request: AcquireRequest,
    },
    /// Extends leases; answers [`Answer::Leases`].
    Hold {
        /// The caller's live session.
        session: SessionId,
        /// Leases of the session's frontend; if one is not, none is held.
        leases: Vec<LeaseId>,
        /// The new duration from now, capped by the namespace's maximum
        /// hold.
        hold_for: Duration,
    },
    /// Gives leases back; answers [`Answer::Done`].
    Release {
        /// The caller's live session.
        session: SessionId,
        /// Leases of the session's frontend; if one is not, none is
        /// released.
        leases: Vec<LeaseId>,
        /// How long their agents are not leased to this frontend again;
        /// zero for not at all.
        refuse_for: Duration,
    },
    /// Runs work on leases; answers [`Answer::Launched`].
    Launch {
        /// The caller's live session.
        session: SessionId,
        /// Each lease with the work to run on it, a lease at most once; all
        /// are checked before any starts.
        launches: Vec<(LeaseId, Work)>,
    },
    /// Answers [`Answer::Done`] once Mesos is asked to kill.
    Kill {
        /// The caller's live session.
        session: SessionId,
        /// Tasks of the session's frontend; finished ones are skipped.
        tasks: Vec<TaskId>,
        /// How long each task may take to stop once signalled; `None`
        /// keeps Mesos's default.
        grace: Option<Duration>,
    },
    /// Lets go of the session's frontend's events up to `up_to`; answers
    /// [`Answer::Done`].
    Acknowledge {
        /// The caller's live session.
        session: SessionId,
        /// The sequence of the last event processed: it and those before
        /// are never delivered again.
        up_to: u64,
    },
    /// Answers [`Answer::Tasks`] with what the core knows and asks Mesos
    /// for the rest.
    Reconcile {
        /// The caller's live session.
        session: SessionId,
        /// Tasks of the session's frontend; empty for all its live ones.
        tasks: Vec<TaskId>,
    },
    /// Creates or changes a namespace; answers [`Answer::Done`].
    PutNamespace(Box<Namespace>),
    /// Answers [`Answer::Namespace`] with the namespace deleted.
    DeleteNamespace(String),
    /// Answers [`Answer::Drained`].
    DrainFrontend {
        /// Any frontend the core knows, with a live session or not.
        frontend: FrontendName,
        /// Also ask Mesos to kill its live tasks; otherwise they run on.
        kill_tasks: bool,
    },
    /// Answers [`Answer::Frontend`].
    UndrainFrontend(FrontendName),
}

/// What Mesos tells the framework, in the core's words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MesosInput {
    /// The framework is subscribed (again, if `resubscribed`) to `roles`.
    Subscribed {
        /// Whether the framework kept its id from an earlier subscription:
        /// then every live task is reconciled.
        resubscribed: bool,
        /// The roles the framework subscribed with; if the namespaces
        /// changed since, the core updates them.
        roles: Vec<String>,
    },
    /// The connection is lost: every offer is gone with it.
    Disconnected,
    /// New offers, for the pool.
    Offers(Vec<Offer>),
    /// Mesos took an offer back; leases on it are lost.
    Rescind(OfferId),
    /// A task's status changed.
    Update(StatusUpdate),
    /// An agent left the cluster: its offers and leases go with it.
    AgentLost(AgentId),
    /// An ACCEPT that Mesos did not take: its tasks will get no status.
    AcceptFailed {
        /// The ACCEPT's tasks; they end as [`TaskState::Dropped`].
        tasks: Vec<TaskId>,
        /// Why, for people; their frontends are told.
        reason: String,
    },
}

/// The answer to a [`Request`], one variant per kind of result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Answer {
    /// To Subscribe: the new session, which later requests name.
    Subscribed(SessionId),
    /// To Acquire and Hold: the leases granted or extended.
    Leases(Vec<Lease>),
    /// To Launch: one entry per task started.
    Launched(Vec<Launched>),
    /// To Reconcile: what the core has recorded of the tasks.
    Tasks(Vec<TaskRecord>),
    /// To DeleteNamespace: the namespace as it was.
    Namespace(Box<Namespace>),
    /// To DrainFrontend: what the drain did.
    Drained(Box<DrainReport>),
    /// To UndrainFrontend: the frontend once it may acquire again.
    Frontend(Box<FrontendView>),
    /// To requests that only change state (Release, Kill, Acknowledge,
    /// PutNamespace): it is done.
    Done,
}

/// What the core asks the runtime to do, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// Send a call to Mesos, after those before it; calls that
    /// [commute](MesosCall::commutes) may overtake their neighbours.
    Mesos(MesosCall),
    /// Send `event` with `sequence` to one live session.
    Deliver {
        /// The session to send on; each live session of the frontend gets
        /// an effect of its own.
        session: SessionId,
        /// The frontend's event number, rising by one per event: what
        /// Acknowledge and `resume_after` count.
        sequence: u64,
        /// What the frontend is told.
        event: FrontendEvent,
    },
    /// The request with `ticket` is answered.
    Reply {
        /// As the request's [`Input::Request`] carried it.
        ticket: Ticket,
        /// The answer, or why the request was refused.
        answer: Result<Answer, CoreError>,
    },
}
