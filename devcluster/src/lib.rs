//! # devcluster
//!
//! A Mesos-compatible master with agents, in one process: Agora's embedded
//! cluster (`agora dev`) and the target of its tests. It speaks Mesos's v1
//! scheduler HTTP API on the same wire as a real master (RecordIO streams
//! in JSON or protobuf, stream ids, heartbeats, failover), so that an
//! unchanged Mesos client library works against it. Agents either run
//! task commands as real processes or simulate them, for thousands of
//! agents in tests and benchmarks. Task processes never outlive the
//! process running the cluster, even one killed with SIGKILL (see
//! [`agent::process`]).
//!
//! Agents can join and leave a running cluster ([`Cluster::add_agent`],
//! [`Cluster::remove_agent`], or `POST /devcluster/agents` and
//! `DELETE /devcluster/agents/{id}` for a devcluster in another process).
//!
//! For tests, the master keeps its own record of what each framework did,
//! which a real Mesos master has no endpoint for: the last 10,000
//! ([`Config::calls_kept`]) scheduler calls of each framework with their
//! type, the
//! `Mesos-Stream-Id` of the connection that sent them, when they were
//! handled, the answer's HTTP status and the launches an ACCEPT was
//! refused (`GET /devcluster/calls`). `/state` has Mesos's own accounting:
//! per agent its `resources` and the `used_resources` of its live tasks
//! and executors, per framework its `tasks` with their `state` and
//! `resources`.
//!
//! Offers unanswered for [`Config::offer_timeout`] (CLI `--offer-timeout
//! 2s`, Mesos's `--offer_timeout`) are rescinded and offered again.
//!
//! The operator API (`POST /api/v1`, protobuf or JSON) serves GET_HEALTH,
//! GET_ROLES, GET_WEIGHTS, UPDATE_WEIGHTS, GET_QUOTA, UPDATE_QUOTA,
//! TEARDOWN and MARK_AGENT_GONE. The allocator honours weights
//! (hierarchical DRF), quota limits (a top-level role's limit covers its
//! subtree; Mesos refuses quota on nested roles) and guarantees (served
//! first, headroom held back for them).
//!
//! Agents take Mesos's static reservation syntax (`cpus(batch):8;cpus:2`):
//! reserved resources are offered only to the role and its sub-roles, in
//! the pre- or post-refinement format the framework understands, and tasks
//! must use resources with the offer's reservation.
//!
//! Agents may advertise a revocable estimate (`--agent-revocable`,
//! [`Cluster::set_revocable`], `PUT /devcluster/agents/{id}/revocable`),
//! offered marked `revocable` to REVOCABLE_RESOURCES frameworks only; a
//! lower estimate rescinds offers holding revocable resources and preempts
//! executors using more than it (TASK_LOST, REASON_CONTAINER_PREEMPTED).
//!
//! It does not do: authentication, the rest of the operator API,
//! reservation and volume operations, maintenance or master failover
//! (later issues).
//!
//! ```no_run
//! # async fn demo() -> Result<(), devcluster::Error> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let cluster = devcluster::Cluster::start(devcluster::Config::default(), listener).await?;
//! println!("master at {}", cluster.url());
//! cluster.shutdown().await
//! # }
//! ```
//!
//! # Layout
//! - [`config`]: [`Config`], what a cluster is made of; duration parsing.
//! - `clock`: the time a step of the master happens at, read once at the
//!   edge so that the master and the allocator never read a clock.
//! - [`cluster`]: [`Cluster`] and [`run`]: runtime, driver loop, shutdown.
//! - `shared`: what the handlers, the driver and the process runner
//!   share: the master behind its lock, and effect execution.
//! - `http`: the endpoints (`/api/v1/scheduler`, `/api/v1`, `/version`,
//!   `/redirect`, `/state`, `/devcluster/agents`, `/devcluster/calls`)
//!   and their media types.
//! - `master`: the synchronous state machine: subscriptions, calls, offers,
//!   tasks, agents joining and leaving, the operator API, `/state`, the
//!   record of calls.
//! - [`allocator`]: hierarchical weighted DRF allocation, quota and refuse
//!   filters.
//! - [`agent`]: agents, their status-update managers, process and
//!   simulated task execution.
//! - [`resources`]: resource arithmetic and Mesos's resource/attribute text.
//!
//! The stream framing and the encodings are `agora_proto::wire`'s, shared
//! with the broker's Mesos client.

pub mod agent;
pub mod allocator;
mod clock;
pub mod cluster;
pub mod config;
mod http;
mod master;
pub mod resources;
mod shared;

pub use agent::{AgentError, AgentSpec};
pub use cluster::{Cluster, Error, run};
pub use config::{Config, ConfigError, parse_duration};
pub use master::VERSION;

// How the scheduler and operator endpoints read a request body, and the
// static checks they run on the call before the master sees it: public so
// that the fuzz targets in `fuzz/` reach them.
pub use http::media::decode_call;
pub use master::{validate_call, validate_operator_call};
