//! Scheduler and operator calls as the devcluster's endpoints read them
//! (`POST /api/v1/scheduler`, `POST /api/v1`): the body through
//! `decode_call` in the request's encoding, then the static checks
//! the endpoint runs before the master sees the call (`validate_call`,
//! `validate_operator_call`). Any HTTP client can send these, including
//! the third-party Mesos clients the devcluster is tested against.
//!
//! Byte 0 says how to read the rest: bit 0 the encoding (0 protobuf,
//! 1 JSON), bit 1 the API (0 scheduler, 1 operator).
//!
//! Beyond not panicking and memory linear in the input: a call that reads
//! in one encoding, written in either and read back, reads again and gets
//! the same verdict from the checks. A scheduler may speak either, and the
//! devcluster must judge a call the same whichever it spoke.

#![no_main]

use std::fmt::Debug;

use agora_fuzz::alloc::within_budget;
use agora_proto::{
    mesos::v1::{master, scheduler},
    wire::Encoding,
};
use devcluster::{decode_call, validate_call, validate_operator_call};
use libfuzzer_sys::fuzz_target;
use prost::{Message, Name};

/// Heap bytes a run may hold per input byte: the decoded call, the dynamic
/// messages of the JSON codec and the text of both re-encodings.
const PER_BYTE: usize = 1024;
/// And beyond that, whatever the input's size.
const SLACK: usize = 1 << 20;

/// Reads `body` as a `C` in `encoding` like the endpoint does, runs `validate`
/// on it, and checks that both encodings carry the call to the same
/// verdict.
fn check<C>(encoding: Encoding, body: &[u8], validate: fn(&C) -> Result<(), String>)
where
    C: Message + Name + Default + Debug,
{
    let Ok(call) = decode_call::<C>(encoding, body) else {
        return;
    };
    let verdict = validate(&call);
    for other in [Encoding::Protobuf, Encoding::Json] {
        let written = other.encode(&call);
        let again: C = decode_call(other, &written).unwrap_or_else(|error| {
            panic!("{other:?} cannot read back {call:?} ({error}) from {written:?}")
        });
        assert_eq!(
            validate(&again),
            verdict,
            "{other:?} changed {call:?} into {again:?}"
        );
    }
}

fuzz_target!(
    init: {
        // The JSON codec builds its descriptor pool once; not the input's.
        check::<scheduler::Call>(Encoding::Json, b"{}", validate_call);
    },
    |data: &[u8]| {
        let Some((&how, body)) = data.split_first() else {
            return;
        };
        let encoding = if how & 1 == 0 {
            Encoding::Protobuf
        } else {
            Encoding::Json
        };
        within_budget(data.len(), PER_BYTE, SLACK, || {
            if how & 2 == 0 {
                check::<scheduler::Call>(encoding, body, validate_call);
            } else {
                check::<master::Call>(encoding, body, validate_operator_call);
            }
        });
    }
);
