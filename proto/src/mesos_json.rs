//! Mesos's own JSON dialect for the types in [`crate::mesos`].
//!
//! Mesos does not speak proto3 JSON: keys are the `.proto` field names
//! (snake_case), enums are symbolic names, 64-bit integers are plain numbers,
//! bytes are padded base64, unknown keys are ignored, and on output every
//! unset optional field that declares an explicit, non-deprecated
//! `[default = …]` is written out. This module reproduces that dialect by
//! transcoding through the descriptors generated in `build.rs`, so it stays
//! correct for every message without per-type code.

use std::sync::LazyLock;

use prost::{Message, Name};
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, Kind, MessageDescriptor, ReflectMessage,
    SerializeOptions, Value,
};

use crate::FILE_DESCRIPTOR_SET;

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set written by build.rs decodes")
});

/// Why a JSON body could not be read as the expected Mesos message.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The body is not JSON, or does not fit the message's schema.
    #[error("invalid JSON for {message}: {source}")]
    Invalid {
        /// The expected message's full protobuf name, so the error says
        /// what the body was read as.
        message: String,
        /// Where the body stopped making sense.
        #[source]
        source: serde_json::Error,
    },
    /// The JSON fit the schema but could not be carried into the Rust type.
    #[error("JSON for {message} does not fit its protobuf type: {source}")]
    Transcode {
        /// The expected message's full protobuf name.
        message: String,
        /// Why prost refused the transcoded bytes.
        #[source]
        source: prost::DecodeError,
    },
}

fn descriptor<M: Name>() -> MessageDescriptor {
    POOL.get_message_by_name(&M::full_name())
        .expect("every generated message has a descriptor in the set")
}

/// Encodes `message` the way a Mesos master writes JSON.
pub fn to_json<M: Message + Name>(message: &M) -> Vec<u8> {
    let mut dynamic = DynamicMessage::decode(descriptor::<M>(), message.encode_to_vec().as_slice())
        .expect("a message re-decodes with its own descriptor");
    emit_explicit_defaults(&mut dynamic);
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false)
        .skip_default_fields(true);
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    dynamic
        .serialize_with_options(&mut serializer, &options)
        .expect("serializing a valid dynamic message to memory cannot fail");
    out
}

/// Decodes a JSON body written in Mesos's dialect (snake_case or camelCase
/// keys; unknown keys and unknown enum names are ignored, as Mesos does).
pub fn from_json<M: Message + Name + Default>(json: &[u8]) -> Result<M, JsonError> {
    let invalid = |source| JsonError::Invalid {
        message: M::full_name(),
        source,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let options = DeserializeOptions::new().deny_unknown_fields(false);
    let dynamic =
        DynamicMessage::deserialize_with_options(descriptor::<M>(), &mut deserializer, &options)
            .map_err(invalid)?;
    deserializer.end().map_err(invalid)?;
    dynamic
        .transcode_to::<M>()
        .map_err(|source| JsonError::Transcode {
            message: M::full_name(),
            source,
        })
}

/// Sets every unset singular field that declares an explicit, non-deprecated
/// default, recursively, because the master's JSON writer emits those.
fn emit_explicit_defaults(message: &mut DynamicMessage) {
    for field in message.descriptor().fields() {
        if message.has_field(&field) {
            match message.get_field_mut(&field) {
                Value::Message(child) => emit_explicit_defaults(child),
                Value::List(items) => items.iter_mut().for_each(|item| {
                    if let Value::Message(child) = item {
                        emit_explicit_defaults(child);
                    }
                }),
                Value::Map(entries) => entries.values_mut().for_each(|value| {
                    if let Value::Message(child) = value {
                        emit_explicit_defaults(child);
                    }
                }),
                _ => {}
            }
            continue;
        }
        let proto = field.field_descriptor_proto();
        let explicit_default = proto.default_value.is_some();
        let deprecated = proto.options.as_ref().and_then(|o| o.deprecated) == Some(true);
        let singular =
            !field.is_list() && !field.is_map() && !matches!(field.kind(), Kind::Message(_));
        if explicit_default && !deprecated && singular {
            let value = field.default_value();
            message.set_field(&field, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesos::v1::{
        AgentId, Filters, OfferId, TaskId, TaskState, TaskStatus,
        scheduler::{Call, Event, call, event},
    };
    use serde_json::json;

    fn as_value(bytes: &[u8]) -> serde_json::Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn writes_snake_case_enum_names_and_base64_bytes() {
        let event = Event {
            r#type: Some(event::Type::Update as i32),
            update: Some(event::Update {
                status: TaskStatus {
                    task_id: TaskId { value: "t1".into() },
                    state: TaskState::TaskRunning as i32,
                    agent_id: Some(AgentId { value: "a1".into() }),
                    uuid: Some(vec![0xde, 0xad, 0xbe, 0xef]),
                    timestamp: Some(1_700_000_000.5),
                    ..Default::default()
                },
            }),
            ..Default::default()
        };
        assert_eq!(
            as_value(&to_json(&event)),
            json!({
                "type": "UPDATE",
                "update": {"status": {
                    "task_id": {"value": "t1"},
                    "state": "TASK_RUNNING",
                    "agent_id": {"value": "a1"},
                    "uuid": "3q2+7w==",
                    "timestamp": 1_700_000_000.5,
                }}
            })
        );
    }

    #[test]
    fn writes_explicit_non_deprecated_defaults() {
        let call = Call {
            r#type: Some(call::Type::Decline as i32),
            decline: Some(call::Decline {
                offer_ids: vec![OfferId { value: "o1".into() }],
                filters: Some(Filters::default()),
            }),
            ..Default::default()
        };
        let value = as_value(&to_json(&call));
        assert_eq!(value["decline"]["filters"]["refuse_seconds"], json!(5.0));
    }

    #[test]
    fn writes_required_fields_even_at_their_zero_value() {
        let status = TaskStatus {
            task_id: TaskId { value: "t".into() },
            state: TaskState::TaskStarting as i32,
            ..Default::default()
        };
        assert_eq!(as_value(&to_json(&status))["state"], json!("TASK_STARTING"));
    }

    #[test]
    fn writes_64_bit_integers_as_numbers() {
        let time = crate::mesos::v1::TimeInfo {
            nanoseconds: 1_700_000_000_000_000_123,
        };
        assert_eq!(
            as_value(&to_json(&time)),
            json!({"nanoseconds": 1_700_000_000_000_000_123_i64})
        );
    }

    #[test]
    fn reads_what_pymesos_sends_ignoring_unknown_keys() {
        let body = br#"{"type": "ACCEPT", "framework_id": {"value": "f"},
            "accept": {"offer_ids": [{"value": "o1"}], "operations": [],
                       "filters": {"refuse_seconds": "0"}},
            "some_future_field": {"x": 1}}"#;
        let call: Call = from_json(body).unwrap();
        assert_eq!(call.r#type, Some(call::Type::Accept as i32));
        let accept = call.accept.unwrap();
        assert_eq!(accept.offer_ids[0].value, "o1");
        assert_eq!(accept.filters.unwrap().refuse_seconds, Some(0.0));
    }

    #[test]
    fn unknown_enum_name_on_optional_field_is_left_unset() {
        let call: Call = from_json(br#"{"type": "NOT_A_CALL_TYPE"}"#).unwrap();
        assert_eq!(call.r#type, None);
    }

    #[test]
    fn rejects_malformed_json_with_the_message_name() {
        let error = from_json::<Call>(b"{\"type\": ").unwrap_err();
        assert!(
            error.to_string().contains("mesos.v1.scheduler.Call"),
            "{error}"
        );
    }

    #[test]
    fn round_trips_through_json() {
        let call = Call {
            framework_id: Some(crate::mesos::v1::FrameworkId { value: "f".into() }),
            r#type: Some(call::Type::Acknowledge as i32),
            acknowledge: Some(call::Acknowledge {
                agent_id: AgentId { value: "a".into() },
                task_id: TaskId { value: "t".into() },
                uuid: vec![1, 2, 3, 10, 13],
            }),
            ..Default::default()
        };
        assert_eq!(from_json::<Call>(&to_json(&call)).unwrap(), call);
    }
}
