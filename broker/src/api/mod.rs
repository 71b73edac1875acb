//! The gRPC edge: tonic services, conversion between protobuf and domain
//! types (bad input is refused here as `INVALID_ARGUMENT` naming the field),
//! and the mapping of domain errors to status codes.
//!
//! # Layout
//! - [`broker`]: the `Broker` service; each call becomes a runtime command.
//! - [`admin`]: the `Admin` service.
//! - [`auth`]: who is calling — bearer tokens, client certificates, the
//!   interceptor that puts the caller's principal on each request.
//! - [`ownership`]: which principal owns each session and frontend name.
//! - [`convert`]: protobuf ↔ domain values.
//! - [`namespace`]: namespaces and usage ↔ their protobuf form.
//! - [`errors`]: `CoreError` → `tonic::Status`, one table.
//! - [`leadership`]: standbys refuse calls, naming the leader.
//! - [`limits`]: the bounds on every count, list and string of a request.
//! - [`status`]: statuses with `ErrorInfo` and `BadRequest` details.
//! - [`session_stream`]: a Subscribe call's response stream.
//! - [`server`]: the tonic server with TLS, authentication, health and
//!   reflection.

pub mod admin;
pub mod auth;
pub mod broker;
pub mod convert;
pub mod errors;
pub mod leadership;
pub mod limits;
pub mod namespace;
pub mod ownership;
pub mod server;
pub mod session_stream;
pub mod status;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::runtime::{self, Command};
use agora_core::{Answer, Core, Request, Timestamp};

/// Hands `request` to the core through the runtime and awaits its answer:
/// how every handler that changes something talks to the core.
async fn request(commands: &mpsc::Sender<Command>, request: Request) -> Result<Answer, Status> {
    let (reply, answer) = oneshot::channel();
    let command = Command::Request { request, reply };
    answered(commands, command, answer, errors::core_status).await
}

/// Sends `command` and awaits `answer`, a refusal turned into a status by
/// `to_status`.
async fn answered<E>(
    commands: &mpsc::Sender<Command>,
    command: Command,
    answer: oneshot::Receiver<Result<Answer, E>>,
    to_status: fn(E) -> Status,
) -> Result<Answer, Status> {
    commands.send(command).await.map_err(|_| stopping())?;
    answer.await.map_err(|_| stopping())?.map_err(to_status)
}

/// Runs `view` against the core between its inputs: how every handler
/// that only looks talks to the core.
async fn read<T: Send + 'static>(
    commands: &mpsc::Sender<Command>,
    view: impl FnOnce(&Core, Timestamp) -> T + Send + 'static,
) -> Result<T, Status> {
    runtime::read(commands, view).await.ok_or_else(stopping)
}

/// The runtime is gone: the server is stopping.
fn stopping() -> Status {
    Status::unavailable("the broker is shutting down; retry on its successor")
}

/// A request answered with the wrong kind of answer: a bug in the broker,
/// never the caller's doing.
fn mismatched(answer: &Answer) -> Status {
    Status::internal(format!("the core gave an unexpected answer: {answer:?}"))
}
