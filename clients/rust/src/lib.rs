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
//! [`Frontend::subscribe_to`], [`connect_with`] or [`connect_admin`].
//!
//! # Following the leader
//!
//! Several `agora serve` replicas can share one etcd; one leads, and the
//! others answer every call UNAVAILABLE, naming the leader. Give
//! [`Frontend::subscribe_to`] all of them:
//!
//! ```no_run
//! # async fn demo() -> Result<(), agora_client::Error> {
//! use agora_client::{ConnectOptions, Failover, Frontend};
//! use std::time::Duration;
//! let replicas = ["http://a:50051", "http://b:50051", "http://c:50051"];
//! let options = ConnectOptions::new().failover(Failover::new().deadline(Duration::from_secs(60)));
//! let (mut frontend, mut events) =
//!     Frontend::subscribe_to(&replicas, "ci", &["ci"], &options).await?;
//! while let Some(event) = events.next().await? {
//!     // A Subscribed event here is a new session on a new leader; every
//!     // other event is new: none is missed, none comes twice.
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! It subscribes on the leader and keeps following it. Failover happens in
//! [`Events::next`], which the application reads all along: when the
//! session breaks it subscribes again on the leader of the moment, resuming
//! after [`Events::last_sequence`], and the [`Frontend`] (and its clones)
//! call the new session from then on. Leases do not survive a failover
//! (Mesos takes its offers back); each is reported by a `LeaseLost` event
//! with reason `REASON_BROKER_RESTARTED`. Tasks do survive.
//!
//! The SDK repeats no call. A call made while the broker is away fails
//! with an error for which [`Error::is_unavailable`] holds, and the
//! application decides: repeating is safe for reads, `Acknowledge`,
//! `Kill`, `Hold`, and `Acquire` with a [`Acquire::request_id`]; it is not
//! for `Launch` (the task may have started: look for it in `ListTasks`
//! first) nor for `Acquire` without a request id (it may lease twice).
//!
//! # Layout
//! - [`Frontend`]: one frontend's calls.
//! - [`Events`]: its event stream, which follows the leader.
//! - [`Endpoints`], [`Failover`]: the replicas and how to find the leader.
//! - [`Acquire`], [`Slot`], [`Task`]: request builders.
//! - [`ConnectOptions`], [`TlsOptions`]: credentials and TLS.

mod builders;
mod connect;
mod error;
mod events;
mod frontend;
mod leader;

pub use agora_proto::agora::v1 as api;
pub use builders::{Acquire, Constraint, Slot, Task};
pub use connect::{
    Admin, Authenticated, Client, ConnectOptions, Credentials, TlsOptions, connect_admin,
    connect_with,
};
pub use error::{Error, Tried, failed_in_transport};
pub use events::Events;
pub use frontend::Frontend;
pub use leader::{Endpoints, Failover};

/// Opens a channel to the broker at `address`, without credentials (a
/// broker run with `agora dev` or `--insecure`).
pub async fn connect(address: &str) -> Result<Client, Error> {
    connect_with(address, &ConnectOptions::new()).await
}
