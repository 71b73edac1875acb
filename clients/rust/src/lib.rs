//! A small typed client for Agora's `Broker` service.
//!
//! Frontends may use the generated stubs in [`api`] directly; this crate
//! adds what every frontend otherwise writes again: opening a session and
//! waiting for its `Subscribed` event, carrying the session id on each call,
//! and builders for the common requests.
//!
//! ```no_run
//! # async fn demo() -> Result<(), agora_client::Error> {
//! use agora_client::{Acquire, Frontend, Slot, Task};
//! let (mut frontend, mut events) =
//!     Frontend::subscribe("http://127.0.0.1:50051", "my-frontend", &["default"]).await?;
//! let leases = frontend.acquire(Acquire::new("default").slot(Slot::new(1.0, 128.0))).await?;
//! frontend.launch(&leases[0].id, Task::shell("hello", "echo hello").resources(1.0, 128.0)).await?;
//! while let Some(event) = events.next().await? {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! A broker that authenticates its callers (`agora serve` with
//! `[[auth.principals]]`) needs a token or a client certificate: pass
//! [`ConnectOptions`] to [`Frontend::subscribe_with_options`],
//! [`connect_with`] or [`connect_admin`].
//!
//! # Layout
//! - [`Frontend`]: one session's calls.
//! - [`Events`]: the session's event stream.
//! - [`Acquire`], [`Slot`], [`Task`]: request builders.
//! - [`ConnectOptions`], [`TlsOptions`]: credentials and TLS.

mod builders;
mod connect;
mod error;

use std::time::Duration;

pub use agora_proto::agora::v1 as api;
use api::event::Kind;
use builders::duration;
pub use builders::{Acquire, Constraint, Slot, Task};
pub use connect::{
    Admin, Authenticated, Client, ConnectOptions, Credentials, TlsOptions, connect_admin,
    connect_with,
};
pub use error::Error;
use tonic::Streaming;

/// One frontend session: every call carries its session id.
#[derive(Debug, Clone)]
pub struct Frontend {
    client: Client,
    frontend_id: String,
    session_id: String,
}

impl Frontend {
    /// Connects to `address` (e.g. `http://127.0.0.1:50051`), subscribes as
    /// `name` in `namespaces`, and waits for the `Subscribed` event.
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
        mut client: Client,
        name: &str,
        namespaces: &[&str],
        resume_after: u64,
    ) -> Result<(Frontend, Events), Error> {
        let request = api::SubscribeRequest {
            frontend: name.to_owned(),
            namespaces: namespaces.iter().map(|n| (*n).to_owned()).collect(),
            capabilities: Vec::new(),
            resume_after,
        };
        let mut stream = client.subscribe(request).await?.into_inner();
        let first = stream.message().await?.ok_or(Error::NotSubscribed)?;
        let Some(Kind::Subscribed(subscribed)) = first.kind else {
            return Err(Error::NotSubscribed);
        };
        let frontend = Frontend {
            client,
            frontend_id: subscribed.frontend_id,
            session_id: subscribed.session_id,
        };
        Ok((frontend, Events { stream }))
    }

    /// The broker's id for this frontend.
    pub fn frontend_id(&self) -> &str {
        &self.frontend_id
    }

    /// The id of this session.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Leases capacity; see [`Acquire`].
    pub async fn acquire(&mut self, acquire: Acquire) -> Result<Vec<api::Lease>, Error> {
        let request = acquire.into_request(&self.session_id);
        Ok(self.client.acquire(request).await?.into_inner().leases)
    }

    /// Extends leases by `hold_for`.
    pub async fn hold(
        &mut self,
        lease_ids: &[&str],
        hold_for: Duration,
    ) -> Result<Vec<api::Lease>, Error> {
        let request = api::HoldRequest {
            session_id: self.session_id.clone(),
            lease_ids: owned(lease_ids),
            hold_for: Some(duration(hold_for)),
        };
        Ok(self.client.hold(request).await?.into_inner().leases)
    }

    /// Gives leases back; their agents are not offered to this frontend
    /// again for `refuse_for`.
    pub async fn release(&mut self, lease_ids: &[&str], refuse_for: Duration) -> Result<(), Error> {
        let request = api::ReleaseRequest {
            session_id: self.session_id.clone(),
            lease_ids: owned(lease_ids),
            refuse_for: Some(duration(refuse_for)),
        };
        self.client.release(request).await?;
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
        let request = api::LaunchRequest {
            session_id: self.session_id.clone(),
            launches: vec![api::Launch {
                lease_id: lease_id.to_owned(),
                work: Some(work),
            }],
        };
        Ok(self.client.launch(request).await?.into_inner().tasks)
    }

    /// Kills tasks of this frontend.
    pub async fn kill(&mut self, task_ids: &[&str]) -> Result<(), Error> {
        let request = api::KillRequest {
            session_id: self.session_id.clone(),
            task_ids: owned(task_ids),
            grace: None,
        };
        self.client.kill(request).await?;
        Ok(())
    }

    /// Confirms every event up to `sequence`.
    pub async fn acknowledge(&mut self, sequence: u64) -> Result<(), Error> {
        let request = api::AcknowledgeRequest {
            session_id: self.session_id.clone(),
            up_to_sequence: sequence,
        };
        self.client.acknowledge(request).await?;
        Ok(())
    }

    /// Leases this frontend holds.
    pub async fn list_leases(&mut self) -> Result<Vec<api::Lease>, Error> {
        let request = api::ListLeasesRequest {
            session_id: self.session_id.clone(),
            namespace: String::new(),
        };
        Ok(self.client.list_leases(request).await?.into_inner().leases)
    }

    /// Agents and what the broker holds of them.
    pub async fn list_agents(&mut self) -> Result<Vec<api::AgentView>, Error> {
        let request = api::ListAgentsRequest {
            session_id: self.session_id.clone(),
        };
        Ok(self.client.list_agents(request).await?.into_inner().agents)
    }

    /// This frontend's tasks and their latest states.
    pub async fn list_tasks(&mut self) -> Result<Vec<api::TaskStatus>, Error> {
        let request = api::ListTasksRequest {
            session_id: self.session_id.clone(),
            namespace: String::new(),
        };
        Ok(self.client.list_tasks(request).await?.into_inner().tasks)
    }

    /// The generated client, for calls this crate does not wrap.
    pub fn raw(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// The event stream of one session.
#[derive(Debug)]
pub struct Events {
    stream: Streaming<api::Event>,
}

impl Events {
    /// The next event; `None` when the broker ended the stream.
    pub async fn next(&mut self) -> Result<Option<api::Event>, Error> {
        Ok(self.stream.message().await?)
    }

    /// The next task status, skipping other events; with its sequence.
    pub async fn next_task_status(&mut self) -> Result<Option<(u64, api::TaskStatus)>, Error> {
        self.next_of(|kind| match kind {
            Kind::TaskStatus(status) => Some(status),
            _ => None,
        })
        .await
    }

    /// The next lost lease, skipping other events; with its sequence.
    pub async fn next_lease_lost(&mut self) -> Result<Option<(u64, api::LeaseLost)>, Error> {
        self.next_of(|kind| match kind {
            Kind::LeaseLost(lost) => Some(lost),
            _ => None,
        })
        .await
    }

    /// The next event that `pick` takes, skipping the others.
    async fn next_of<T>(
        &mut self,
        pick: impl Fn(Kind) -> Option<T>,
    ) -> Result<Option<(u64, T)>, Error> {
        while let Some(event) = self.next().await? {
            if let Some(found) = event.kind.and_then(&pick) {
                return Ok(Some((event.sequence, found)));
            }
        }
        Ok(None)
    }
}

/// Opens a channel to the broker at `address`, without credentials (a
/// broker run with `agora dev` or `--insecure`).
pub async fn connect(address: &str) -> Result<Client, Error> {
    connect_with(address, &ConnectOptions::new()).await
}

fn owned(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}
