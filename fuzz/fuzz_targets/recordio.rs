//! RecordIO, the framing of the Mesos event stream, in the one decoder the
//! broker's Mesos client and the devcluster share
//! (`agora_proto::wire::recordio`). Records and HTTP chunks are unrelated,
//! so the input says how the stream is cut:
//!
//! - byte 0: the record cap, `0..=127` bytes, or the default (64 MiB) from
//!   128 up;
//! - byte 1: how many chunk sizes follow (`% 16`); each next byte is one
//!   chunk's size, cycled (a 0 feeds an empty read, as an empty HTTP frame
//!   does, and then one byte);
//! - the rest: the stream.
//!
//! Beyond not panicking, it checks that any cut yields the same records as
//! one read and fails on the same streams; that no record is empty or
//! above the cap; that what the decoder reads, framed again, reads the
//! same; and that memory stays linear in the input, so a declared length,
//! up to the cap or far beyond it, is a number and never an allocation.

#![no_main]

use agora_fuzz::alloc::within_budget;
use agora_proto::wire::recordio::{self, Decoder, RecordIoError};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

/// Heap bytes a run may hold per input byte: the buffers of three decodes
/// and, at worst, one 32-byte `Bytes` per three input bytes of records.
const PER_BYTE: usize = 64;
/// And beyond that, whatever the input's size.
const SLACK: usize = 64 << 10;

/// What the decoder made of a stream: its records, the error it stopped
/// on, if any, and whether the stream then ended cleanly.
#[derive(Debug, PartialEq)]
struct Outcome {
    records: Vec<Bytes>,
    error: Option<RecordIoError>,
    clean_end: bool,
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

/// The decoder over `chunks`, as the Mesos client drives it: after each
/// read, every complete record, until the first error; at the end,
/// `finish` when nothing failed.
fn decode(chunks: &[&[u8]], cap: usize) -> Outcome {
    let mut decoder = Decoder::new(cap);
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
                        clean_end: false,
                    };
                }
            }
        }
    }
    Outcome {
        records,
        error: None,
        clean_end: decoder.finish().is_ok(),
    }
}

fuzz_target!(|data: &[u8]| {
    let [cap, count, rest @ ..] = data else {
        return;
    };
    let cap = if *cap < 128 {
        usize::from(*cap)
    } else {
        recordio::DEFAULT_MAX_RECORD
    };
    let (sizes, stream) = rest.split_at(usize::from(count % 16).min(rest.len()));
    within_budget(data.len(), PER_BYTE, SLACK, || {
        let cut = chunks(stream, sizes);
        let whole = decode(&[stream], cap);
        let pieces = decode(&cut, cap);
        assert_eq!(whole.records, pieces.records, "cut into {sizes:?}");
        assert_eq!(
            whole.error.is_some(),
            pieces.error.is_some(),
            "cut into {sizes:?}: {whole:?} {pieces:?}"
        );
        assert_eq!(whole.clean_end, pieces.clean_end, "cut into {sizes:?}");
        for record in &whole.records {
            assert!(!record.is_empty() && record.len() <= cap);
        }
        if let Some(RecordIoError::RecordTooLarge { length, max }) = whole.error {
            assert!(length > max as u64 && max == cap);
        }
        let framed: Vec<u8> = whole
            .records
            .iter()
            .flat_map(|r| recordio::encode(r))
            .collect();
        let again = decode(&[&framed], cap);
        assert_eq!(again.records, whole.records, "framed again");
        assert!(
            again.error.is_none() && again.clean_end,
            "framed again: {again:?}"
        );
    });
});
