//! The gRPC edge: tonic services, conversion between protobuf and domain
//! types (bad input is refused here as `INVALID_ARGUMENT` naming the field),
//! and the mapping of domain errors to status codes.
//!
//! # Layout
//! - [`broker`]: the `Broker` service; each call becomes a runtime command.
//! - [`admin`]: the `Admin` service.
//! - [`convert`]: protobuf ↔ domain values.
//! - [`errors`]: `CoreError` → `tonic::Status`, one table.
//! - [`status`]: statuses with `ErrorInfo` and `BadRequest` details.
//! - [`session_stream`]: a Subscribe call's response stream.
//! - [`server`]: the tonic server with health and reflection.

pub mod admin;
pub mod broker;
pub mod convert;
pub mod errors;
pub mod server;
pub mod session_stream;
pub mod status;
