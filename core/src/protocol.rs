//! The core's one interface: every [`Input`] that can happen to it, and the
//! [`Effect`]s it decides in answer. Inputs are plain data that serialise,
//! so a recorded sequence of them replays to the same state and the same
//! effects: the core takes no time, id or randomness from anywhere else.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::*;
use crate::views::{DrainReport, FrontendView, Launched};

/// Something that happened to the core. Time comes with it as the `now`
/// of [`Core::handle`](crate::Core::handle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Input {
    /// A caller asks; exactly one [`Effect::Reply`] with `ticket` answers,
    /// at once or, for an Acquire that waits or a Launch whose leases are
    /// rebinding, later.
    Request { ticket: Ticket, request: Request },
    /// A frontend's event stream ended: its leases go after the session
    /// grace, its waiting acquires are refused.
    SessionEnded(SessionId),
    /// Something Mesos told the framework, or the connection to it.
    Mesos(MesosInput),
    /// Time passed: whatever fell due by `now` is done.
    Tick,
}

/// What frontends and operators ask of the core. Each request is answered
/// by one [`Answer`] or a [`CoreError`] naming what to fix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Opens a session for `frontend` as `principal` and replays its
    /// unacknowledged events after `resume_after`. Answers
    /// [`Answer::Subscribed`] before the replayed events.
    Subscribe {
        frontend: FrontendName,
        principal: String,
        namespaces: Vec<String>,
        resume_after: u64,
    },
    /// Answers [`Answer::Leases`].
    Acquire {
        session: SessionId,
        request: AcquireRequest,
    },
    /// Extends leases; answers [`Answer::Leases`].
    Hold {
        session: SessionId,
        leases: Vec<LeaseId>,
        hold_for: Duration,
    },
    /// Gives leases back; answers [`Answer::Done`].
    Release {
        session: SessionId,
        leases: Vec<LeaseId>,
        refuse_for: Duration,
    },
    /// Runs work on leases; answers [`Answer::Launched`].
    Launch {
        session: SessionId,
        launches: Vec<(LeaseId, Work)>,
    },
    /// Answers [`Answer::Done`] once Mesos is asked to kill.
    Kill {
        session: SessionId,
        tasks: Vec<TaskId>,
        grace: Option<Duration>,
    },
    /// Lets go of the session's frontend's events up to `up_to`; answers
    /// [`Answer::Done`].
    Acknowledge { session: SessionId, up_to: u64 },
    /// Answers [`Answer::Tasks`] with what the core knows and asks Mesos
    /// for the rest.
    Reconcile {
        session: SessionId,
        tasks: Vec<TaskId>,
    },
    /// Creates or changes a namespace; answers [`Answer::Done`].
    PutNamespace(Box<Namespace>),
    /// Answers [`Answer::Namespace`] with the namespace deleted.
    DeleteNamespace(String),
    /// Answers [`Answer::Drained`].
    DrainFrontend {
        frontend: FrontendName,
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
        resubscribed: bool,
        roles: Vec<String>,
    },
    /// The connection is lost: every offer is gone with it.
    Disconnected,
    Offers(Vec<Offer>),
    Rescind(OfferId),
    Update(StatusUpdate),
    AgentLost(AgentId),
    /// An ACCEPT that Mesos did not take: its tasks will get no status.
    AcceptFailed {
        tasks: Vec<TaskId>,
        reason: String,
    },
}

/// The answer to a [`Request`], one variant per kind of result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Answer {
    Subscribed(SessionId),
    Leases(Vec<Lease>),
    Launched(Vec<Launched>),
    Tasks(Vec<TaskRecord>),
    Namespace(Box<Namespace>),
    Drained(Box<DrainReport>),
    Frontend(Box<FrontendView>),
    Done,
}

/// What the core asks the runtime to do, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    Mesos(MesosCall),
    /// Send `event` with `sequence` to one live session.
    Deliver {
        session: SessionId,
        sequence: u64,
        event: FrontendEvent,
    },
    /// The request with `ticket` is answered.
    Reply {
        ticket: Ticket,
        answer: Result<Answer, CoreError>,
    },
}
