//! The `Broker` service. Handlers never touch state: each converts its
//! request (refusing bad input), sends one command to the runtime with a
//! oneshot reply, awaits it, and converts the answer or maps the error.
//!
//! Before that, each handler checks the caller the authentication
//! interceptor put on the request: Subscribe only in granted namespaces and
//! under a frontend name of the caller's own, every other call only through
//! a session the caller opened.

use std::{sync::Arc, time::Duration};

use agora_proto::agora::v1::{self as api, ErrorReason, broker_server::Broker};
use tokio::sync::{mpsc, oneshot, watch};
use tonic::{Code, Request, Response, Status};
use tracing::instrument;

use super::{
    auth::{Principal, caller},
    convert,
    errors::core_status,
    limits, mismatched,
    ownership::Ownership,
    session_stream::SessionStream,
    status::{invalid_field, with_reason},
};
use crate::runtime::{Command, SESSION_BUFFER};
use agora_core::{self as core, Answer, Core, CoreError, FrontendName, SessionId};

/// Serves `agora.v1.Broker` by talking to the runtime.
#[derive(Clone)]
pub struct BrokerService {
    commands: mpsc::Sender<Command>,
    heartbeat: Duration,
    subscribed: watch::Receiver<bool>,
    ownership: Arc<Ownership>,
}

impl BrokerService {
    /// A service sending commands to the runtime; `subscribed` says whether
    /// Mesos is reachable now.
    pub fn new(
        commands: mpsc::Sender<Command>,
        heartbeat: Duration,
        subscribed: watch::Receiver<bool>,
    ) -> Self {
        BrokerService {
            commands,
            heartbeat,
            subscribed,
            ownership: Arc::default(),
        }
    }

    async fn request(&self, request: core::Request) -> Result<Answer, Status> {
        super::request(&self.commands, request).await
    }

    /// Answers `request` with the leases it was answered with.
    async fn leases(&self, request: core::Request) -> Result<Vec<api::Lease>, Status> {
        match self.request(request).await? {
            Answer::Leases(leases) => Ok(leases.iter().map(convert::lease).collect()),
            other => Err(mismatched(&other)),
        }
    }

    /// Checks that `session` is `principal`'s, then runs `view` on the
    /// core with it.
    async fn view<T: Send + 'static>(
        &self,
        session: SessionId,
        view: impl FnOnce(&Core, &SessionId) -> Result<T, CoreError> + Send + 'static,
    ) -> Result<T, Status> {
        super::read(&self.commands, move |core, _| view(core, &session))
            .await?
            .map_err(core_status)
    }

    fn require_mesos(&self) -> Result<(), Status> {
        if *self.subscribed.borrow() {
            return Ok(());
        }
        Err(with_reason(
            Code::Unavailable,
            ErrorReason::NotReady,
            "Agora is not subscribed to Mesos right now; retry shortly",
            &[],
        ))
    }

    /// The session `id`, if `principal` opened it; a session of another
    /// principal is answered as if it did not exist.
    fn session(&self, principal: &Principal, id: &str) -> Result<SessionId, Status> {
        if id.is_empty() {
            return Err(invalid_field(
                "session_id",
                "pass the session id from the Subscribed event of your Subscribe stream",
            ));
        }
        limits::text("session_id", id, limits::MAX_ID_BYTES)?;
        tracing::Span::current().record("session", id);
        let session = SessionId(id.to_owned());
        self.ownership.check_session(&session, &principal.name)?;
        Ok(session)
    }
}

#[tonic::async_trait]
impl Broker for BrokerService {
    type SubscribeStream = SessionStream;

    #[instrument(skip_all, fields(frontend, session))]
    async fn subscribe(
        &self,
        request: Request<api::SubscribeRequest>,
    ) -> Result<Response<SessionStream>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        convert::subscribe(&request)?;
        tracing::Span::current().record("frontend", request.frontend.as_str());
        principal.check_namespaces(&request.namespaces)?;
        let (events, stream) = mpsc::channel(SESSION_BUFFER);
        let (reply, answer) = oneshot::channel();
        let subscribe = Command::Subscribe {
            request: core::Request::Subscribe {
                frontend: FrontendName(request.frontend.clone()),
                principal: principal.name.clone(),
                namespaces: request.namespaces,
                resume_after: request.resume_after,
            },
            events,
            reply,
        };
        let session = match super::answered(&self.commands, subscribe, answer, core_status).await? {
            Answer::Subscribed(session) => session,
            other => return Err(mismatched(&other)),
        };
        tracing::Span::current().record("session", session.0.as_str());
        self.ownership.open_session(&session, &principal.name);
        let commands = self.commands.clone();
        let ownership = self.ownership.clone();
        let ended = session.clone();
        let on_end = Box::new(move || {
            ownership.close_session(&ended);
            tokio::spawn(async move {
                let _ = commands.send(Command::SessionEnded(ended)).await;
            });
        });
        let subscribed = convert::subscribed(&request.frontend, &session, self.heartbeat);
        Ok(Response::new(SessionStream::new(
            subscribed,
            stream,
            self.heartbeat,
            on_end,
        )))
    }

    #[instrument(skip_all, fields(session, namespace))]
    async fn acquire(
        &self,
        request: Request<api::AcquireRequest>,
    ) -> Result<Response<api::AcquireResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let session = self.session(&principal, &request.session_id)?;
        let domain = convert::acquire(&request)?;
        tracing::Span::current().record("namespace", request.namespace.as_str());
        self.require_mesos()?;
        let acquire = core::Request::Acquire {
            session,
            request: domain,
        };
        Ok(Response::new(api::AcquireResponse {
            leases: self.leases(acquire).await?,
        }))
    }

    #[instrument(skip_all, fields(session))]
    async fn hold(
        &self,
        request: Request<api::HoldRequest>,
    ) -> Result<Response<api::HoldResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let session = self.session(&principal, &request.session_id)?;
        let leases = convert::lease_ids(&request.lease_ids)?;
        let hold_for = convert::duration("hold_for", request.hold_for.as_ref())?
            .ok_or_else(|| invalid_field("hold_for", "say how long to hold"))?;
        let hold = core::Request::Hold {
            session,
            leases,
            hold_for,
        };
        Ok(Response::new(api::HoldResponse {
            leases: self.leases(hold).await?,
        }))
    }

    #[instrument(skip_all, fields(session))]
    async fn release(
        &self,
        request: Request<api::ReleaseRequest>,
    ) -> Result<Response<api::ReleaseResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let session = self.session(&principal, &request.session_id)?;
        let leases = convert::lease_ids(&request.lease_ids)?;
        let refuse_for =
            convert::duration("refuse_for", request.refuse_for.as_ref())?.unwrap_or_default();
        self.request(core::Request::Release {
            session,
            leases,
            refuse_for,
        })
        .await?;
        Ok(Response::new(api::ReleaseResponse {}))
    }

    #[instrument(skip_all, fields(session, tasks = request.get_ref().launches.len()))]
    async fn launch(
        &self,
        request: Request<api::LaunchRequest>,
    ) -> Result<Response<api::LaunchResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let session = self.session(&principal, &request.session_id)?;
        let launches = convert::launches(&request)?;
        self.require_mesos()?;
        let launched = match self
            .request(core::Request::Launch { session, launches })
            .await?
        {
            Answer::Launched(launched) => launched,
            other => return Err(mismatched(&other)),
        };
        Ok(Response::new(api::LaunchResponse {
            tasks: launched
                .into_iter()
                .map(|t| api::LaunchedTask {
                    task_id: t.task_id.0,
                    client_task_id: t.client_id,
                    lease_id: t.lease.0,
                    agent_id: t.agent.0,
                })
                .collect(),
        }))
    }

    #[instrument(skip_all, fields(session))]
    async fn kill(
        &self,
        request: Request<api::KillRequest>,
    ) -> Result<Response<api::KillResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let session = self.session(&principal, &request.session_id)?;
        let tasks = convert::task_ids(&request.task_ids)?;
        let grace = convert::duration("grace", request.grace.as_ref())?;
        self.require_mesos()?;
        self.request(core::Request::Kill {
            session,
            tasks,
            grace,
        })
        .await?;
        Ok(Response::new(api::KillResponse {}))
    }

    #[instrument(skip_all, fields(session, up_to = request.get_ref().up_to_sequence))]
    async fn acknowledge(
        &self,
        request: Request<api::AcknowledgeRequest>,
    ) -> Result<Response<api::AcknowledgeResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let session = self.session(&principal, &request.session_id)?;
        self.request(core::Request::Acknowledge {
            session,
            up_to: request.up_to_sequence,
        })
        .await?;
        Ok(Response::new(api::AcknowledgeResponse {}))
    }

    #[instrument(skip_all, fields(session))]
    async fn reconcile(
        &self,
        request: Request<api::ReconcileRequest>,
    ) -> Result<Response<api::ReconcileResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let session = self.session(&principal, &request.session_id)?;
        let tasks = convert::task_ids(&request.task_ids)?;
        let records = match self
            .request(core::Request::Reconcile { session, tasks })
            .await?
        {
            Answer::Tasks(records) => records,
            other => return Err(mismatched(&other)),
        };
        Ok(Response::new(api::ReconcileResponse {
            tasks: records.iter().map(convert::task_status).collect(),
        }))
    }

    #[instrument(skip_all, fields(session))]
    async fn list_agents(
        &self,
        request: Request<api::ListAgentsRequest>,
    ) -> Result<Response<api::ListAgentsResponse>, Status> {
        let principal = caller(&request)?;
        let session = self.session(&principal, &request.get_ref().session_id)?;
        let agents = self
            .view(session, |core, session| {
                core.frontend_of(session).map(|_| core.agents())
            })
            .await?;
        Ok(Response::new(api::ListAgentsResponse {
            agents: agents.iter().map(convert::agent_view).collect(),
        }))
    }

    #[instrument(skip_all, fields(session))]
    async fn list_leases(
        &self,
        request: Request<api::ListLeasesRequest>,
    ) -> Result<Response<api::ListLeasesResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let session = self.session(&principal, &request.session_id)?;
        let namespace = convert::namespace_filter(&request.namespace)?;
        let leases = self
            .view(session, move |core, session| {
                core.leases_of(session, namespace.as_deref())
            })
            .await?;
        Ok(Response::new(api::ListLeasesResponse {
            leases: leases.iter().map(convert::lease).collect(),
        }))
    }

    #[instrument(skip_all, fields(session))]
    async fn list_tasks(
        &self,
        request: Request<api::ListTasksRequest>,
    ) -> Result<Response<api::ListTasksResponse>, Status> {
        let principal = caller(&request)?;
        let request = request.into_inner();
        let session = self.session(&principal, &request.session_id)?;
        let namespace = convert::namespace_filter(&request.namespace)?;
        let tasks = self
            .view(session, move |core, session| {
                core.tasks_of(session, namespace.as_deref())
            })
            .await?;
        Ok(Response::new(api::ListTasksResponse {
            tasks: tasks.iter().map(convert::task_status).collect(),
        }))
    }
}
