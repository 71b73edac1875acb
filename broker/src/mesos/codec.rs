//! The two encodings of the scheduler API: protobuf (the default, and what
//! Mesos itself prefers) and Mesos's JSON dialect.

use agora_proto::{mesos::v1::scheduler::Event, mesos_json};
use prost::{Message, Name};

/// How calls and events are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    #[default]
    Protobuf,
    Json,
}

/// A body that is not a valid event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid protobuf event: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error(transparent)]
    Json(#[from] mesos_json::JsonError),
}

impl Encoding {
    /// The `Content-Type` (and `Accept`) header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    /// Encodes a call (of either API).
    pub fn encode<M: Message + Name>(self, call: &M) -> Vec<u8> {
        match self {
            Encoding::Protobuf => call.encode_to_vec(),
            Encoding::Json => mesos_json::to_json(call),
        }
    }

    /// Decodes one event record.
    pub fn decode(self, record: &[u8]) -> Result<Event, DecodeError> {
        Ok(match self {
            Encoding::Protobuf => Event::decode(record)?,
            Encoding::Json => mesos_json::from_json(record)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::mesos::v1::scheduler::{Call, call, event};

    #[test]
    fn both_encodings_round_trip_a_call_and_an_event() {
        let event = Event {
            r#type: Some(event::Type::Heartbeat as i32),
            ..Default::default()
        };
        let call = Call {
            r#type: Some(call::Type::Revive as i32),
            revive: Some(call::Revive {
                roles: vec!["a".into()],
            }),
            ..Default::default()
        };
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            let bytes = match encoding {
                Encoding::Protobuf => event.encode_to_vec(),
                Encoding::Json => mesos_json::to_json(&event),
            };
            assert_eq!(encoding.decode(&bytes).unwrap(), event);
            let wire = encoding.encode(&call);
            let back = match encoding {
                Encoding::Protobuf => Call::decode(wire.as_slice()).unwrap(),
                Encoding::Json => mesos_json::from_json(&wire).unwrap(),
            };
            assert_eq!(back, call);
        }
    }

    #[test]
    fn keeps_unknown_enum_numbers_and_drops_unknown_enum_names() {
        let mut bytes = Event::default().encode_to_vec();
        // Field 1 (type), varint 99: an event type from a newer master.
        bytes.extend([0x08, 99]);
        assert_eq!(Encoding::Protobuf.decode(&bytes).unwrap().r#type, Some(99));
        let event = Encoding::Json
            .decode(br#"{"type": "SOMETHING_NEW"}"#)
            .unwrap();
        assert_eq!(event.r#type, None);
    }

    #[test]
    fn refuses_garbage() {
        assert!(Encoding::Protobuf.decode(&[0xff, 0xff, 0xff]).is_err());
        assert!(Encoding::Json.decode(b"not json").is_err());
    }
}
