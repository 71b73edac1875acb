//! The gRPC edge: tonic services, conversion between protobuf and domain
//! types (bad input is refused here as `INVALID_ARGUMENT` naming the field),
//! and the mapping of domain errors to status codes.

pub mod admin;
pub mod server;
pub mod session_stream;
pub mod status;
