//! What the fuzz targets in `fuzz_targets/` share: an allocation meter, so
//! that a target can hold memory to a budget proportional to its input, and
//! the broker's handling of one Mesos scheduler event, which the protobuf
//! and the JSON event targets both run on what they decode.

pub mod alloc;
pub mod mesos;
