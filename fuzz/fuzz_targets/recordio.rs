//! RecordIO, the framing of the Mesos event stream, in both decoders: the
//! broker's (`agora_broker::mesos::recordio`, reading what a master sends)
//! and the devcluster's (`devcluster::recordio`, reading what it serves in
//! tests). Records and HTTP chunks are unrelated, so the input says how the
//! stream is cut:
//!
//! - byte 0: the record cap, `0..=127` bytes, or the broker's default
//!   (64 MiB) from 128 up;
//! - byte 1: how many chunk sizes follow (`% 16`); each next byte is one
//!   chunk's size, cycled (a 0 feeds an empty read, as an empty HTTP frame
//!   does, and then one byte);
//! - the rest: the stream.
//!
//! Beyond not panicking, it checks that any cut yields the same records as
//! one read and fails on the same streams; that the two decoders agree on
//! every stream (the same framing, decoded twice in this repository); that
//! no record is empty or above the cap; and that memory stays linear in the
//! input, so a declared length, up to the cap or far beyond it, is a number
//! and never an allocation.

#![no_main]

use agora_broker::mesos::recordio::{self as broker, RecordIoError};
use agora_fuzz::alloc::within_budget;
use bytes::Bytes;
use devcluster::recordio as devcluster;
use libfuzzer_sys::fuzz_target;

/// Heap bytes a run may hold per input byte: the buffers of four decodes
/// and, at worst, one 32-byte `Bytes` per three input bytes of records.
const PER_BYTE: usize = 64;
/// And beyond that, whatever the input's size.
const SLACK: usize = 64 << 10;

/// What a decoder made of a stream: its records, and whether (and how) it
/// stopped on an error.
#[derive(Debug, PartialEq)]
struct Outcome<E> {
    records: Vec<Bytes>,
    error: Option<E>,
}

impl<E> Outcome<E> {
    fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// The chunks `stream` arrives in: sizes from `sizes` in turn, all of it in
/// one chunk when there are none.
fn chunks<'a>(stream: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    if sizes.is_empty() {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        if size == 0 {
            out.push(&rest[..0]);
        }
        let (chunk, tail) = rest.split_at(usize::from(size).clamp(1, rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

/// The broker's decoder over `chunks`, as the Mesos client drives it: after
/// each read, every complete record, until the first error; at the end,
/// `finish` when nothing failed.
fn broker_decode(chunks: &[&[u8]], cap: usize) -> (Outcome<RecordIoError>, bool) {
    let mut decoder = broker::Decoder::new(cap);
    let mut records = Vec::new();
    for chunk in chunks {
        decoder.extend(chunk);
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => records.push(record),
                Ok(None) => break,
                Err(error) => {
                    let outcome = Outcome {
                        records,
                        error: Some(error),
                    };
                    return (outcome, false);
                }
            }
        }
    }
    let clean_end = decoder.finish().is_ok();
    (
        Outcome {
            records,
            error: None,
        },
        clean_end,
    )
}

/// The devcluster's decoder over `chunks`, driven the same way.
fn devcluster_decode(chunks: &[&[u8]], cap: usize) -> Outcome<devcluster::DecodeError> {
    let mut decoder = devcluster::Decoder::new(cap as u64);
    let mut records = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk);
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => records.push(record),
                Ok(None) => break,
                Err(error) => {
                    return Outcome {
                        records,
                        error: Some(error),
                    };
                }
            }
        }
    }
    Outcome {
        records,
        error: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let [cap, count, rest @ ..] = data else {
        return;
    };
    let cap = if *cap < 128 {
        usize::from(*cap)
    } else {
        broker::DEFAULT_MAX_RECORD
    };
    let (sizes, stream) = rest.split_at(usize::from(count % 16).min(rest.len()));
    within_budget(data.len(), PER_BYTE, SLACK, || {
        let cut = chunks(stream, sizes);
        let (whole, whole_clean) = broker_decode(&[stream], cap);
        let (pieces, pieces_clean) = broker_decode(&cut, cap);
        assert_eq!(whole.records, pieces.records, "cut into {sizes:?}");
        assert_eq!(
            whole.failed(),
            pieces.failed(),
            "cut into {sizes:?}: {whole:?} {pieces:?}"
        );
        assert_eq!(whole_clean, pieces_clean, "cut into {sizes:?}");
        for record in &whole.records {
            assert!(!record.is_empty() && record.len() <= cap);
        }
        if let Some(RecordIoError::RecordTooLarge { length, max }) = whole.error {
            assert!(length > max as u64 && max == cap);
        }
        for stream_chunks in [vec![stream], cut] {
            let other = devcluster_decode(&stream_chunks, cap);
            assert_eq!(other.records, whole.records, "the decoders disagree");
            assert_eq!(
                other.failed(),
                whole.failed(),
                "the decoders disagree: {:?} {:?}",
                other.error,
                whole.error
            );
        }
    });
});
