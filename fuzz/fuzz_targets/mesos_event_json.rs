//! Mesos scheduler events as the broker reads them from a master speaking
//! JSON: each RecordIO record through `Encoding::Json.decode` (Mesos's JSON
//! dialect, `agora_proto::mesos_json`), then the broker's handling of the
//! event (`agora_fuzz::mesos::handle`: the subscription's SUBSCRIBED
//! handling, the client's conversion into domain events). Number-as-string, unknown
//! keys and enum names, base64 and deep nesting all go through the
//! reflection-based transcoder before any of the broker's code sees the
//! event; neither may panic or allocate beyond the input's size.
//!
//! An event read from JSON and written back must read the same again, so
//! that what the devcluster writes is what the broker reads.

#![no_main]

use agora_broker::mesos::Encoding;
use agora_fuzz::mesos;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The JSON codec builds its descriptor pool once; not the input's.
        mesos::check_json_round_trip(&Default::default());
    },
    |data: &[u8]| mesos::fuzz_event(Encoding::Json, data)
);
