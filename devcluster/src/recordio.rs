//! RecordIO, the framing of the SUBSCRIBE stream: each record is its
//! length in ASCII decimal, a `\n`, then exactly that many bytes. Records
//! and HTTP chunks are unrelated, and protobuf payloads may hold `\n`, so
//! the decoder works on a byte buffer, never on lines.

use bytes::{Buf, Bytes, BytesMut};

/// Frames one record.
pub fn encode(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 21);
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(payload);
    out.freeze()
}

/// Why a stream is not valid RecordIO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The length prefix holds a non-digit, is empty or too long.
    #[error("invalid RecordIO length prefix")]
    BadLength,
    /// A record is larger than the decoder's cap.
    #[error("RecordIO record of {0} bytes exceeds the cap")]
    TooLarge(u64),
}

/// Incremental decoder: feed bytes as they come, take complete records.
#[derive(Debug)]
pub struct Decoder {
    buffer: BytesMut,
    max: u64,
}

impl Decoder {
    /// A decoder refusing records above `max` bytes.
    pub fn new(max: u64) -> Self {
        Self {
            buffer: BytesMut::new(),
            max,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete record, if one is buffered. Zero-length records
    /// are skipped.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, DecodeError> {
        loop {
            let Some(newline) = self.buffer.iter().position(|b| *b == b'\n') else {
                if self.buffer.len() > 20 || !self.buffer.iter().all(u8::is_ascii_digit) {
                    return Err(DecodeError::BadLength);
                }
                return Ok(None);
            };
            let digits = &self.buffer[..newline];
            if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
                return Err(DecodeError::BadLength);
            }
            let length: u64 = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
                .ok_or(DecodeError::BadLength)?;
            if length > self.max {
                return Err(DecodeError::TooLarge(length));
            }
            let length = usize::try_from(length).map_err(|_| DecodeError::TooLarge(length))?;
            if self.buffer.len() < newline + 1 + length {
                return Ok(None);
            }
            self.buffer.advance(newline + 1);
            let record = self.buffer.split_to(length).freeze();
            if !record.is_empty() {
                return Ok(Some(record));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_chunking_decodes_the_same_records() {
        let records: Vec<&[u8]> = vec![b"{\"type\":\"HEARTBEAT\"}", b"a\nb\n", b"x"];
        let mut stream = Vec::new();
        for r in &records {
            stream.extend_from_slice(&encode(r));
        }
        stream.extend_from_slice(b"0\n");
        for chunk in 1..=stream.len() {
            let mut decoder = Decoder::new(1024);
            let mut out = Vec::new();
            for piece in stream.chunks(chunk) {
                decoder.feed(piece);
                while let Some(record) = decoder.next_record().unwrap() {
                    out.push(record);
                }
            }
            assert_eq!(out, records, "chunk size {chunk}");
        }
    }

    #[test]
    fn rejects_bad_prefixes_and_oversized_records() {
        let mut decoder = Decoder::new(10);
        decoder.feed(b"x\n");
        assert_eq!(decoder.next_record(), Err(DecodeError::BadLength));
        let mut decoder = Decoder::new(10);
        decoder.feed(b"11\n");
        assert_eq!(decoder.next_record(), Err(DecodeError::TooLarge(11)));
        assert_eq!(&encode(b"abc")[..], b"3\nabc");
    }
}
