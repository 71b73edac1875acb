//! The wire format of Mesos's v1 HTTP APIs, shared by the two ends Agora
//! has of it: the broker's Mesos client and the devcluster's master. One
//! implementation means the framing and the encodings cannot drift apart
//! between the side that writes a stream and the side that reads it.
//!
//! # Layout
//! - [`recordio`]: the framing of event streams (encode, and an
//!   incremental decoder with a cap on a record's size).
//! - [`Encoding`]: protobuf or Mesos's JSON dialect: the media type a body
//!   is sent as, and encoding and decoding in it.

mod encoding;
pub mod recordio;

pub use encoding::{DecodeError, Encoding};
