//! The two encodings of Mesos's v1 HTTP APIs: protobuf (what Mesos itself
//! prefers) and Mesos's JSON dialect ([`crate::mesos_json`]).

use prost::{Message, Name};

use crate::mesos_json::{self, JsonError};

/// How a call, an event or an operator response is encoded on the wire.
/// Protobuf is the default: it is smaller, faster and exact, where Mesos's
/// JSON has quirks of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Protobuf binary, `application/x-protobuf`.
    #[default]
    Protobuf,
    /// Mesos's JSON dialect, `application/json`.
    Json,
}

/// A body that is not a valid message in the encoding it was read in.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not valid protobuf for the message.
    #[error("invalid protobuf")]
    Protobuf(#[source] prost::DecodeError),
    /// Not valid Mesos JSON for the message.
    #[error("invalid Mesos JSON")]
    Json(#[source] JsonError),
}

impl Encoding {
    /// The media type, as `Content-Type` and `Accept` carry it. A master
    /// compares it exactly: no parameters such as `charset`.
    pub const fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }

    /// The encoding a `Content-Type` names, compared exactly as a Mesos
    /// master does; `None` for anything else.
    pub fn from_content_type(value: &str) -> Option<Encoding> {
        [Encoding::Protobuf, Encoding::Json]
            .into_iter()
            .find(|encoding| encoding.content_type() == value)
    }

    /// Writes a message in this encoding.
    pub fn encode<M: Message + Name>(self, message: &M) -> Vec<u8> {
        match self {
            Encoding::Protobuf => message.encode_to_vec(),
            Encoding::Json => mesos_json::to_json(message),
        }
    }

    /// Reads a message written in this encoding.
    pub fn decode<M: Message + Name + Default>(self, body: &[u8]) -> Result<M, DecodeError> {
        match self {
            Encoding::Protobuf => M::decode(body).map_err(DecodeError::Protobuf),
            Encoding::Json => mesos_json::from_json(body).map_err(DecodeError::Json),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesos::v1::scheduler::{Call, Event, call, event};

    #[test]
    fn content_types_are_matched_exactly() {
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            assert_eq!(
                Encoding::from_content_type(encoding.content_type()),
                Some(encoding)
            );
        }
        for other in ["application/json; charset=utf-8", "text/plain", ""] {
            assert_eq!(Encoding::from_content_type(other), None, "{other}");
        }
    }

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
            assert_eq!(encoding.decode::<Event>(&bytes).unwrap(), event);
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
        let event: Event = Encoding::Protobuf.decode(&bytes).unwrap();
        assert_eq!(event.r#type, Some(99));
        let event: Event = Encoding::Json
            .decode(br#"{"type": "SOMETHING_NEW"}"#)
            .unwrap();
        assert_eq!(event.r#type, None);
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(
            Encoding::Protobuf.decode::<Event>(&[0xff, 0xff, 0xff]),
            Err(DecodeError::Protobuf(_))
        ));
        assert!(matches!(
            Encoding::Json.decode::<Event>(b"not json"),
            Err(DecodeError::Json(_))
        ));
    }
}
