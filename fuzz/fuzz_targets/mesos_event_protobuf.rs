//! Mesos scheduler events as the broker reads them from a master speaking
//! protobuf: each RecordIO record through `Encoding::Protobuf.decode`, then
//! the broker's handling of the event (`agora_fuzz::mesos::handle`: the
//! subscription's SUBSCRIBED handling, the client's conversion into
//! domain events). The master is trusted, but a corrupt stream must end the
//! subscription, never the broker: offers with NaN, negative or huge
//! amounts, inverted or huge port ranges and absurd heartbeat intervals
//! must not panic or allocate beyond the input's size.
//!
//! Every event read from protobuf must also survive Mesos's JSON dialect
//! (`mesos_json`), since the devcluster writes the same events as JSON.

#![no_main]

use agora_broker::mesos::Encoding;
use agora_fuzz::mesos;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // The JSON codec builds its descriptor pool once; not the input's.
        mesos::check_json_round_trip(&Default::default());
    },
    |data: &[u8]| mesos::fuzz_event(Encoding::Protobuf, data)
);
