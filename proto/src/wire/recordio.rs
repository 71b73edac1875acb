//! RecordIO, the framing of Mesos's event streams: a decimal length, a
//! newline, then exactly that many bytes, repeated. Records and HTTP chunks
//! are unrelated — a record may span many reads and one read may hold many
//! records — so the decoder is incremental over a growable buffer. Protobuf
//! payloads may contain newlines; nothing here splits on them.

use bytes::{Buf, Bytes, BytesMut};

/// The default cap on one record: generous for OFFERS on big clusters,
/// small enough that a corrupt length cannot exhaust memory.
pub const DEFAULT_MAX_RECORD: usize = 64 * 1024 * 1024;

/// At most this many digits in a length (u64::MAX has 20).
const MAX_DIGITS: usize = 20;

/// A stream that is not valid RecordIO. After one, the rest of the stream
/// cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// A length prefix holds this byte, which is neither a digit nor the
    /// newline that ends it.
    #[error("invalid byte {0:#04x} in a record length")]
    NotADigit(u8),
    /// A length prefix runs past the digits any 64-bit length needs.
    #[error("a record length has more than {MAX_DIGITS} digits")]
    LengthTooLong,
    /// A newline with no digits before it.
    #[error("an empty record length")]
    EmptyLength,
    /// A record announces more bytes than the decoder accepts: the peer is
    /// broken or hostile, and reading on would buffer it all.
    #[error("record of {length} bytes exceeds the cap of {max} bytes")]
    RecordTooLarge {
        /// The length the prefix announced, in bytes.
        length: u64,
        /// The decoder's cap, in bytes.
        max: usize,
    },
    /// The stream ended between a length prefix and the end of its record.
    #[error("the stream ended inside a record")]
    Truncated,
}

/// Incremental RecordIO decoder: feed it bytes as they are read, take the
/// complete records out.
#[derive(Debug)]
pub struct Decoder {
    buffer: BytesMut,
    max_record: usize,
    /// The length of the record being read, once its header is complete.
    pending: Option<usize>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_RECORD)
    }
}

impl Decoder {
    /// A decoder refusing records longer than `max_record` bytes.
    pub fn new(max_record: usize) -> Decoder {
        Decoder {
            buffer: BytesMut::new(),
            max_record,
            pending: None,
        }
    }

    /// Adds bytes read from the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete record, if the buffer holds one. Zero-length
    /// records are skipped.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        loop {
            let length = match self.pending {
                Some(length) => length,
                None => match self.read_length()? {
                    Some(0) => continue,
                    Some(length) => length,
                    None => return Ok(None),
                },
            };
            if self.buffer.len() < length {
                self.pending = Some(length);
                return Ok(None);
            }
            self.pending = None;
            return Ok(Some(self.buffer.split_to(length).freeze()));
        }
    }

    fn read_length(&mut self) -> Result<Option<usize>, RecordIoError> {
        let Some(newline) = self.buffer.iter().position(|&b| b == b'\n') else {
            if let Some(&bad) = self.buffer.iter().find(|b| !b.is_ascii_digit()) {
                return Err(RecordIoError::NotADigit(bad));
            }
            if self.buffer.len() > MAX_DIGITS {
                return Err(RecordIoError::LengthTooLong);
            }
            return Ok(None);
        };
        let digits = &self.buffer[..newline];
        if digits.is_empty() {
            return Err(RecordIoError::EmptyLength);
        }
        if digits.len() > MAX_DIGITS {
            return Err(RecordIoError::LengthTooLong);
        }
        let mut length: u64 = 0;
        for &digit in digits {
            if !digit.is_ascii_digit() {
                return Err(RecordIoError::NotADigit(digit));
            }
            length = length
                .checked_mul(10)
                .and_then(|l| l.checked_add(u64::from(digit - b'0')))
                .ok_or(RecordIoError::LengthTooLong)?;
        }
        if length > self.max_record as u64 {
            return Err(RecordIoError::RecordTooLarge {
                length,
                max: self.max_record,
            });
        }
        self.buffer.advance(newline + 1);
        Ok(Some(length as usize))
    }

    /// Call at end of stream: a clean end has no partial record left.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        if self.buffer.is_empty() && self.pending.is_none() {
            Ok(())
        } else {
            Err(RecordIoError::Truncated)
        }
    }
}

/// Frames one record.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut framed = format!("{}\n", payload.len()).into_bytes();
    framed.extend_from_slice(payload);
    framed
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(decoder: &mut Decoder) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(record) = decoder.next_record().unwrap() {
            out.push(record.to_vec());
        }
        out
    }

    #[test]
    fn frames_a_record_as_its_length_a_newline_and_the_bytes() {
        assert_eq!(encode(b"abc"), b"3\nabc");
        assert_eq!(encode(b""), b"0\n");
    }

    #[test]
    fn decodes_many_records_in_one_read_including_newlines_in_payloads() {
        let mut stream = encode(b"first\nline");
        stream.extend(encode(b""));
        stream.extend(encode(b"\n\n"));
        let mut decoder = Decoder::default();
        decoder.feed(&stream);
        assert_eq!(
            decode_all(&mut decoder),
            vec![b"first\nline".to_vec(), b"\n\n".to_vec()]
        );
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn waits_for_a_record_split_across_reads() {
        let stream = encode(b"hello world");
        let mut decoder = Decoder::default();
        for byte in &stream[..stream.len() - 1] {
            decoder.feed(std::slice::from_ref(byte));
            assert_eq!(decoder.next_record(), Ok(None));
        }
        assert_eq!(decoder.finish(), Err(RecordIoError::Truncated));
        decoder.feed(&stream[stream.len() - 1..]);
        assert_eq!(
            decoder.next_record().unwrap().unwrap(),
            Bytes::from_static(b"hello world")
        );
    }

    #[test]
    fn every_chunk_size_decodes_the_same_records() {
        let records: Vec<&[u8]> = vec![b"{\"type\":\"HEARTBEAT\"}", b"a\nb\n", b"x"];
        let mut stream: Vec<u8> = records.iter().flat_map(|r| encode(r)).collect();
        stream.extend_from_slice(b"0\n");
        for chunk in 1..=stream.len() {
            let mut decoder = Decoder::new(1024);
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.feed(piece);
                out.extend(decode_all(&mut decoder));
            }
            assert_eq!(out, records, "chunk size {chunk}");
            assert_eq!(decoder.finish(), Ok(()), "chunk size {chunk}");
        }
    }

    #[test]
    fn refuses_bad_lengths() {
        for (input, error) in [
            (&b"12x\n"[..], RecordIoError::NotADigit(b'x')),
            (b"x\n", RecordIoError::NotADigit(b'x')),
            (b"\nabc", RecordIoError::EmptyLength),
            (b"123456789012345678901\n", RecordIoError::LengthTooLong),
            (b"99999999999999999999\n", RecordIoError::LengthTooLong),
            (b"-1\n", RecordIoError::NotADigit(b'-')),
            (
                b"17\n",
                RecordIoError::RecordTooLarge {
                    length: 17,
                    max: 16,
                },
            ),
        ] {
            let mut decoder = Decoder::new(16);
            decoder.feed(input);
            assert_eq!(decoder.next_record(), Err(error), "{input:?}");
        }
    }

    #[test]
    fn refuses_a_runaway_length_before_its_newline() {
        let mut decoder = Decoder::default();
        decoder.feed(&[b'9'; 25]);
        assert_eq!(decoder.next_record(), Err(RecordIoError::LengthTooLong));
    }

    proptest! {
        #[test]
        fn any_chunking_decodes_the_same(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 0..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let stream: Vec<u8> = records.iter().flat_map(|r| encode(r)).collect();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            let mut decoder = Decoder::default();
            let mut decoded = Vec::new();
            for window in points.windows(2) {
                decoder.feed(&stream[window[0]..window[1]]);
                decoded.extend(decode_all(&mut decoder));
            }
            prop_assert_eq!(decoded, records);
            prop_assert_eq!(decoder.finish(), Ok(()));
        }
    }
}
