//! Proto2 `required` fields, which prost does not enforce.
//!
//! prost decodes a message that lacks a required field and fills the
//! field with its default, so a SUBSCRIBE without a `framework_info`, a
//! `user` or a `name` reads as one with empty ones. A Mesos master's
//! parser refuses such a body before anything else happens. Telling
//! "absent" from "empty" needs the field presence that a dynamic
//! message, read with the descriptors, keeps.

use std::sync::LazyLock;

use agora_proto::{FILE_DESCRIPTOR_SET, wire::Encoding};
use prost::Name;
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, ReflectMessage, Value};

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("the descriptor set built with agora-proto decodes")
});

/// The paths of the required fields absent from `body`, a message `M` in
/// `media`, in the order and notation protobuf's own check reports them
/// (`subscribe.framework_info.user`, `labels[1].key`). Empty when all are
/// there, or when the body does not even decode (the caller's decoding
/// reports that).
pub(super) fn missing<M: Name>(encoding: Encoding, body: &[u8]) -> Vec<String> {
    let Some(descriptor) = POOL.get_message_by_name(&M::full_name()) else {
        return Vec::new();
    };
    let message = match encoding {
        Encoding::Protobuf => DynamicMessage::decode(descriptor, body).ok(),
        Encoding::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(false);
            DynamicMessage::deserialize_with_options(descriptor, &mut deserializer, &options).ok()
        }
    };
    let mut paths = Vec::new();
    if let Some(message) = message {
        collect(&message, "", &mut paths);
    }
    paths
}

/// Adds the absent required fields of `message` (declaration order), then
/// those of the messages it holds (field-number order), each path
/// prefixed by `prefix`.
fn collect(message: &DynamicMessage, prefix: &str, paths: &mut Vec<String>) {
    let descriptor = message.descriptor();
    for field in descriptor.fields() {
        if field.is_required() && !message.has_field(&field) {
            paths.push(format!("{prefix}{}", field.name()));
        }
    }
    let mut present: Vec<_> = message.fields().collect();
    present.sort_by_key(|(field, _)| field.number());
    for (field, value) in present {
        let name = field.name();
        match value {
            Value::Message(child) => collect(child, &format!("{prefix}{name}."), paths),
            Value::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Message(child) = item {
                        collect(child, &format!("{prefix}{name}[{index}]."), paths);
                    }
                }
            }
            Value::Map(entries) => {
                for (key, item) in entries {
                    if let Value::Message(child) = item {
                        let key = map_key(key);
                        collect(child, &format!("{prefix}{name}[{key}]."), paths);
                    }
                }
            }
            _ => {}
        }
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(value) => value.to_string(),
        MapKey::I32(value) => value.to_string(),
        MapKey::I64(value) => value.to_string(),
        MapKey::U32(value) => value.to_string(),
        MapKey::U64(value) => value.to_string(),
        MapKey::String(value) => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::mesos::v1::scheduler::Call;

    fn json(body: &str) -> Vec<String> {
        missing::<Call>(Encoding::Json, body.as_bytes())
    }

    #[test]
    fn absent_required_fields_are_named_by_their_path() {
        assert!(json(r#"{"type":"SUBSCRIBE"}"#).is_empty());
        assert_eq!(
            json(r#"{"type":"SUBSCRIBE","subscribe":{}}"#),
            ["subscribe.framework_info"]
        );
        assert_eq!(
            json(r#"{"subscribe":{"framework_info":{"name":""}}}"#),
            ["subscribe.framework_info.user"]
        );
        assert_eq!(
            json(r#"{"framework_id":{},"subscribe":{"framework_info":{"id":{}}}}"#),
            [
                "framework_id.value",
                "subscribe.framework_info.user",
                "subscribe.framework_info.name",
                "subscribe.framework_info.id.value"
            ]
        );
        let offer_filters = r#"{"subscribe":{"framework_info":{"user":"u","name":"n",
            "offer_filters":{"ci":{"min_allocatable_resources":{"quantities":[
                {"quantities":{"cpus":{}}}]}}}}}}"#;
        assert_eq!(
            json(offer_filters),
            [
                "subscribe.framework_info.offer_filters[ci].min_allocatable_resources.quantities[0].quantities[cpus].value"
            ]
        );
    }

    #[test]
    fn present_but_empty_is_present() {
        assert!(json(r#"{"subscribe":{"framework_info":{"user":"","name":""}}}"#).is_empty());
    }

    #[test]
    fn a_body_that_does_not_decode_is_left_to_the_decoder() {
        assert!(json("{").is_empty());
        assert!(missing::<Call>(Encoding::Protobuf, &[0xff]).is_empty());
    }
}
