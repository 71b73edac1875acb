//! Media types of the scheduler API: the exact `Content-Type` check, the
//! `Accept` negotiation for SUBSCRIBE (JSON first, then protobuf), and
//! encoding and decoding in either.

use agora_proto::mesos_json::{from_json, to_json};
use prost::{Message, Name};

/// `application/json`.
pub(crate) const JSON: &str = "application/json";
/// `application/x-protobuf`.
pub(crate) const PROTOBUF: &str = "application/x-protobuf";

/// One of the two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// Mesos's JSON dialect.
    Json,
    /// Protobuf binary.
    Protobuf,
}

impl Media {
    /// The media type string.
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Json => JSON,
            Media::Protobuf => PROTOBUF,
        }
    }

    /// Reads a request body in this encoding (a scheduler or an operator
    /// `Call`: Mesos words the errors the same for both).
    pub fn decode_call<M: Message + Name + Default>(self, body: &[u8]) -> Result<M, String> {
        match self {
            Media::Protobuf => {
                M::decode(body).map_err(|_| "Failed to parse body into Call protobuf".to_string())
            }
            Media::Json => from_json::<M>(body)
                .map_err(|e| format!("Failed to convert JSON into Call protobuf: {e}")),
        }
    }

    /// Refuses a body that lacks a proto2 `required` field, as Mesos's
    /// parser does: protobuf without details, JSON naming the fields.
    /// prost itself decodes such a body, with defaults in their place.
    pub fn check_required<M: Name>(self, body: &[u8]) -> Result<(), String> {
        let missing = super::required::missing::<M>(self, body);
        if missing.is_empty() {
            return Ok(());
        }
        Err(match self {
            Media::Protobuf => "Failed to parse body into Call protobuf".to_string(),
            Media::Json => format!(
                "Failed to convert JSON into Call protobuf: Missing required fields: {}",
                missing.join(", ")
            ),
        })
    }

    /// Writes a message (an event, an operator response) in this encoding.
    pub fn encode<M: Message + Name>(self, message: &M) -> Vec<u8> {
        match self {
            Media::Protobuf => message.encode_to_vec(),
            Media::Json => to_json(message),
        }
    }
}

/// The request's `Content-Type`, compared exactly as Mesos does.
pub(crate) enum ContentType {
    /// The header is absent (Mesos: 400).
    Missing,
    /// Neither of the two (Mesos: 415).
    Unsupported,
    /// A supported encoding.
    Supported(Media),
}

/// Classifies a `Content-Type` header value.
pub(crate) fn content_type(value: Option<&str>) -> ContentType {
    match value {
        None => ContentType::Missing,
        Some(JSON) => ContentType::Supported(Media::Json),
        Some(PROTOBUF) => ContentType::Supported(Media::Protobuf),
        Some(_) => ContentType::Unsupported,
    }
}

/// Whether an `Accept` header allows `media` (absent: anything). The most
/// specific matching range decides; `q=0` refuses.
pub(crate) fn accepts(accept: Option<&str>, media: &str) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    let (kind, _) = media.split_once('/').unwrap_or((media, ""));
    let mut best: Option<(u8, f64)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let Some(pattern) = parts.next() else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f64>().ok())
            .unwrap_or(1.0);
        let specificity = if pattern.eq_ignore_ascii_case(media) {
            2
        } else if pattern == "*/*" {
            0
        } else if pattern
            .strip_suffix("/*")
            .is_some_and(|k| k.eq_ignore_ascii_case(kind))
        {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.is_some_and(|(_, q)| q > 0.0)
}

/// The response encoding for SUBSCRIBE: JSON if acceptable, else
/// protobuf, else none (Mesos: 406).
pub(crate) fn negotiate(accept: Option<&str>) -> Option<Media> {
    if accepts(accept, JSON) {
        Some(Media::Json)
    } else if accepts(accept, PROTOBUF) {
        Some(Media::Protobuf)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_is_matched_exactly() {
        assert!(matches!(content_type(None), ContentType::Missing));
        assert!(matches!(
            content_type(Some(JSON)),
            ContentType::Supported(Media::Json)
        ));
        assert!(matches!(
            content_type(Some(PROTOBUF)),
            ContentType::Supported(Media::Protobuf)
        ));
        assert!(matches!(
            content_type(Some("application/json; charset=utf-8")),
            ContentType::Unsupported
        ));
        assert!(matches!(
            content_type(Some("text/plain")),
            ContentType::Unsupported
        ));
    }

    #[test]
    fn accept_negotiation_prefers_json_then_protobuf() {
        assert_eq!(negotiate(None), Some(Media::Json));
        assert_eq!(negotiate(Some("*/*")), Some(Media::Json));
        assert_eq!(negotiate(Some(PROTOBUF)), Some(Media::Protobuf));
        assert_eq!(negotiate(Some("application/*")), Some(Media::Json));
        assert_eq!(
            negotiate(Some("application/json;q=0, */*")),
            Some(Media::Protobuf)
        );
        assert_eq!(negotiate(Some("application/recordio")), None);
        assert_eq!(negotiate(Some("text/html")), None);
    }
}
