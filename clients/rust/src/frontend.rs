//! [`Frontend`]: the calls of one frontend, each carrying its session id.

use std::time::Duration;

use tokio::sync::watch;
use tonic::Streaming;

use crate::{
    Error,
    api::{self, event::Kind},
    builders::{Acquire, Task, duration},
    connect::{Client, ConnectOptions, connect_with},
    events::{Events, Follow},
    leader::{Endpoints, on_leader},
};

/// One frontend's handle for calls: every call carries the id of its
/// session.
///
/// A frontend made by [`Frontend::subscribe_to`] follows its [`Events`]:
/// when they move to a new session on the (new) leader, the next call goes
/// there too, from every clone. A call made while the broker is away fails
/// with an error for which [`Error::is_unavailable`] holds; nothing is
/// retried behind the caller's back (see the crate's documentation on
/// failover).
#[derive(Debug, Clone)]
pub struct Frontend {
    session: Session,
    /// The session the [`Events`] opened last, when they follow the leader.
    latest: Option<watch::Receiver<Session>>,
}

/// A session as the calls use it: the client of the broker that opened it,
/// and its ids.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    client: Client,
    frontend_id: String,
    id: String,
}

/// A session just opened: its first event (Subscribed) and the rest.
pub(crate) struct Opened {
    pub(crate) session: Session,
    pub(crate) subscribed: api::Event,
    /// How often the broker sends something on a quiet stream.
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) stream: Streaming<api::Event>,
}

/// Sends Subscribe over `client` and waits for the Subscribed event.
pub(crate) async fn open(
    mut client: Client,
    request: api::SubscribeRequest,
) -> Result<Opened, Error> {
    let mut stream = client.subscribe(request).await?.into_inner();
    let subscribed = stream.message().await?.ok_or(Error::NotSubscribed)?;
    let Some(Kind::Subscribed(confirmed)) = &subscribed.kind else {
        return Err(Error::NotSubscribed);
    };
    let heartbeat = confirmed
        .heartbeat_interval
        .and_then(|interval| Duration::try_from(interval).ok());
    let session = Session {
        client,
        frontend_id: confirmed.frontend_id.clone(),
        id: confirmed.session_id.clone(),
    };
    Ok(Opened {
        session,
        subscribed,
        heartbeat,
        stream,
    })
}

fn subscribe_request(name: &str, namespaces: &[&str], resume_after: u64) -> api::SubscribeRequest {
    api::SubscribeRequest {
        frontend: name.to_owned(),
        namespaces: owned(namespaces),
        capabilities: Vec::new(),
        resume_after,
    }
}

impl Frontend {
    /// Connects to `address` (e.g. `http://127.0.0.1:50051`), subscribes as
    /// `name` in `namespaces`, and waits for the `Subscribed` event. The
    /// session lives and dies with that one connection; to follow a
    /// restarting broker or a leader among replicas, use
    /// [`Frontend::subscribe_to`].
    pub async fn subscribe(
        address: &str,
        name: &str,
        namespaces: &[&str],
    ) -> Result<(Frontend, Events), Error> {
        Self::subscribe_with_options(address, name, namespaces, &ConnectOptions::new()).await
    }

    /// Like [`Frontend::subscribe`], with a token and/or TLS for a broker
    /// that authenticates its callers.
    pub async fn subscribe_with_options(
        address: &str,
        name: &str,
        namespaces: &[&str],
        options: &ConnectOptions,
    ) -> Result<(Frontend, Events), Error> {
        let client = connect_with(address, options).await?;
        Self::subscribe_with(client, name, namespaces, 0).await
    }

    /// Subscribes over an existing client, replaying unacknowledged events
    /// after `resume_after` (0 for all of them).
    pub async fn subscribe_with(
        client: Client,
        name: &str,
        namespaces: &[&str],
        resume_after: u64,
    ) -> Result<(Frontend, Events), Error> {
        let opened = open(client, subscribe_request(name, namespaces, resume_after)).await?;
        let frontend = Frontend {
            session: opened.session,
            latest: None,
        };
        Ok((frontend, Events::single(opened.stream, resume_after)))
    }

    /// Subscribes as `name` in `namespaces` on whichever of `endpoints`
    /// leads, and keeps following the leader: when the session breaks,
    /// [`Events::next`] resubscribes on the leader of the moment, resuming
    /// after the last event it handed out, and this frontend's calls move
    /// with it. `options` carries credentials and the [`crate::Failover`]
    /// patience.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), agora_client::Error> {
    /// use agora_client::{ConnectOptions, Frontend};
    /// let replicas = ["http://a:50051", "http://b:50051", "http://c:50051"];
    /// let (frontend, events) =
    ///     Frontend::subscribe_to(&replicas, "ci", &["ci"], &ConnectOptions::new()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn subscribe_to(
        endpoints: impl Into<Endpoints>,
        name: &str,
        namespaces: &[&str],
        options: &ConnectOptions,
    ) -> Result<(Frontend, Events), Error> {
        let endpoints = endpoints.into();
        let request = subscribe_request(name, namespaces, 0);
        let (leader, opened) = on_leader(&endpoints, options, None, |client| {
            open(client, request.clone())
        })
        .await?;
        let (sessions, latest) = watch::channel(opened.session.clone());
        let frontend = Frontend {
            session: opened.session,
            latest: Some(latest),
        };
        let follow = Follow::new(endpoints, options.clone(), request, leader, sessions);
        let events = Events::following(opened.stream, opened.heartbeat, follow);
        Ok((frontend, events))
    }

    /// The broker's id for this frontend.
    pub fn frontend_id(&self) -> &str {
        &self.session.frontend_id
    }

    /// The id of the session the last call used. After a failover the next
    /// call moves to the new session (see [`Frontend::subscribe_to`]).
    pub fn session_id(&self) -> &str {
        &self.session.id
    }

    /// The session to call: the one [`Events`] opened last, when following.
    fn current(&mut self) -> &mut Session {
        if let Some(latest) = &mut self.latest
            && latest.has_changed().unwrap_or(false)
        {
            self.session = latest.borrow_and_update().clone();
        }
        &mut self.session
    }

    /// Leases capacity; see [`Acquire`].
    pub async fn acquire(&mut self, acquire: Acquire) -> Result<Vec<api::Lease>, Error> {
        let session = self.current();
        let request = acquire.into_request(&session.id);
        Ok(session.client.acquire(request).await?.into_inner().leases)
    }

    /// Extends leases by `hold_for`.
    pub async fn hold(
        &mut self,
        lease_ids: &[&str],
        hold_for: Duration,
    ) -> Result<Vec<api::Lease>, Error> {
        let session = self.current();
        let request = api::HoldRequest {
            session_id: session.id.clone(),
            lease_ids: owned(lease_ids),
            hold_for: Some(duration(hold_for)),
        };
        Ok(session.client.hold(request).await?.into_inner().leases)
    }

    /// Gives leases back; their agents are not offered to this frontend
    /// again for `refuse_for`.
    pub async fn release(&mut self, lease_ids: &[&str], refuse_for: Duration) -> Result<(), Error> {
        let session = self.current();
        let request = api::ReleaseRequest {
            session_id: session.id.clone(),
            lease_ids: owned(lease_ids),
            refuse_for: Some(duration(refuse_for)),
        };
        session.client.release(request).await?;
        Ok(())
    }

    /// Starts one task on a lease and returns what the broker launched.
    pub async fn launch(&mut self, lease_id: &str, task: Task) -> Result<api::LaunchedTask, Error> {
        let work = api::launch::Work::Task(task.into_spec());
        let mut launched = self.launch_work(lease_id, work).await?;
        launched.pop().ok_or(Error::Status(tonic::Status::internal(
            "the broker answered a launch without the launched task",
        )))
    }

    /// Starts tasks that share one executor on a lease (a Mesos task group).
    pub async fn launch_group(
        &mut self,
        lease_id: &str,
        tasks: Vec<Task>,
    ) -> Result<Vec<api::LaunchedTask>, Error> {
        let group = api::TaskGroupSpec {
            tasks: tasks.into_iter().map(Task::into_spec).collect(),
        };
        self.launch_work(lease_id, api::launch::Work::TaskGroup(group))
            .await
    }

    async fn launch_work(
        &mut self,
        lease_id: &str,
        work: api::launch::Work,
    ) -> Result<Vec<api::LaunchedTask>, Error> {
        let session = self.current();
        let request = api::LaunchRequest {
            session_id: session.id.clone(),
            launches: vec![api::Launch {
                lease_id: lease_id.to_owned(),
                work: Some(work),
            }],
        };
        Ok(session.client.launch(request).await?.into_inner().tasks)
    }

    /// Kills tasks of this frontend.
    pub async fn kill(&mut self, task_ids: &[&str]) -> Result<(), Error> {
        let session = self.current();
        let request = api::KillRequest {
            session_id: session.id.clone(),
            task_ids: owned(task_ids),
            grace: None,
        };
        session.client.kill(request).await?;
        Ok(())
    }

    /// Confirms every event up to `sequence`.
    pub async fn acknowledge(&mut self, sequence: u64) -> Result<(), Error> {
        let session = self.current();
        let request = api::AcknowledgeRequest {
            session_id: session.id.clone(),
            up_to_sequence: sequence,
        };
        session.client.acknowledge(request).await?;
        Ok(())
    }

    /// Leases this frontend holds.
    pub async fn list_leases(&mut self) -> Result<Vec<api::Lease>, Error> {
        let session = self.current();
        let request = api::ListLeasesRequest {
            session_id: session.id.clone(),
            namespace: String::new(),
        };
        Ok(session
            .client
            .list_leases(request)
            .await?
            .into_inner()
            .leases)
    }

    /// Agents and what the broker holds of them.
    pub async fn list_agents(&mut self) -> Result<Vec<api::AgentView>, Error> {
        let session = self.current();
        let request = api::ListAgentsRequest {
            session_id: session.id.clone(),
        };
        Ok(session
            .client
            .list_agents(request)
            .await?
            .into_inner()
            .agents)
    }

    /// This frontend's tasks and their latest states.
    pub async fn list_tasks(&mut self) -> Result<Vec<api::TaskStatus>, Error> {
        let session = self.current();
        let request = api::ListTasksRequest {
            session_id: session.id.clone(),
            namespace: String::new(),
        };
        Ok(session.client.list_tasks(request).await?.into_inner().tasks)
    }

    /// The generated client of the current session's broker, for calls
    /// this crate does not wrap; pass it [`Frontend::session_id`].
    pub fn raw(&mut self) -> &mut Client {
        &mut self.current().client
    }
}

fn owned(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}
