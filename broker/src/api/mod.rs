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
pub mod limits;
pub mod namespace;
pub mod ownership;
pub mod server;
pub mod session_stream;
pub mod status;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::runtime::Command;

/// Sends the command that `build` makes around a reply channel to the
/// runtime and awaits the answer, a refusal turned into a status by
/// `to_status`: how every handler talks to the core.
async fn ask<T, E>(
    commands: &mpsc::Sender<Command>,
    build: impl FnOnce(oneshot::Sender<Result<T, E>>) -> Command,
    to_status: fn(E) -> Status,
) -> Result<T, Status> {
    let (reply, answer) = oneshot::channel();
    let stopping = || Status::unavailable("the broker is shutting down; retry on its successor");
    commands.send(build(reply)).await.map_err(|_| stopping())?;
    answer.await.map_err(|_| stopping())?.map_err(to_status)
}
