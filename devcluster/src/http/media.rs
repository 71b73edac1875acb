//! Media types of the scheduler API as a master serves them: the exact
//! `Content-Type` check, the `Accept` negotiation for SUBSCRIBE (JSON
//! first, then protobuf), and reading a call with the errors a master
//! words. The encodings themselves are [`Encoding`], shared with the
//! broker's client.

use agora_proto::wire::{DecodeError, Encoding};
use prost::{Message, Name};

/// `application/json`.
pub(crate) const JSON: &str = Encoding::Json.content_type();
/// `application/x-protobuf`.
pub(crate) const PROTOBUF: &str = Encoding::Protobuf.content_type();

/// Reads a request body in `encoding` (a scheduler or an operator `Call`:
/// Mesos words the errors the same for both).
pub fn decode_call<M: Message + Name + Default>(
    encoding: Encoding,
    body: &[u8],
) -> Result<M, String> {
    encoding.decode(body).map_err(|error| match error {
        DecodeError::Protobuf(_) => "Failed to parse body into Call protobuf".to_string(),
        DecodeError::Json(error) => format!("Failed to convert JSON into Call protobuf: {error}"),
    })
}

/// Refuses a body that lacks a proto2 `required` field, as Mesos's parser
/// does: protobuf without details, JSON naming the fields. prost itself
/// decodes such a body, with defaults in their place.
pub(crate) fn check_required<M: Name>(encoding: Encoding, body: &[u8]) -> Result<(), String> {
    let missing = super::required::missing::<M>(encoding, body);
    if missing.is_empty() {
        return Ok(());
    }
    Err(match encoding {
        Encoding::Protobuf => "Failed to parse body into Call protobuf".to_string(),
        Encoding::Json => format!(
            "Failed to convert JSON into Call protobuf: Missing required fields: {}",
            missing.join(", ")
        ),
    })
}

/// The request's `Content-Type`, compared exactly as Mesos does.
pub(crate) enum ContentType {
    /// The header is absent (Mesos: 400).
    Missing,
    /// Neither of the two (Mesos: 415).
    Unsupported,
    /// A supported encoding.
    Supported(Encoding),
}

/// Classifies a `Content-Type` header value.
pub(crate) fn content_type(value: Option<&str>) -> ContentType {
    match value {
        None => ContentType::Missing,
        Some(value) => Encoding::from_content_type(value)
            .map_or(ContentType::Unsupported, ContentType::Supported),
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
pub(crate) fn negotiate(accept: Option<&str>) -> Option<Encoding> {
    if accepts(accept, JSON) {
        Some(Encoding::Json)
    } else if accepts(accept, PROTOBUF) {
        Some(Encoding::Protobuf)
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
            ContentType::Supported(Encoding::Json)
        ));
        assert!(matches!(
            content_type(Some(PROTOBUF)),
            ContentType::Supported(Encoding::Protobuf)
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
        assert_eq!(negotiate(None), Some(Encoding::Json));
        assert_eq!(negotiate(Some("*/*")), Some(Encoding::Json));
        assert_eq!(negotiate(Some(PROTOBUF)), Some(Encoding::Protobuf));
        assert_eq!(negotiate(Some("application/*")), Some(Encoding::Json));
        assert_eq!(
            negotiate(Some("application/json;q=0, */*")),
            Some(Encoding::Protobuf)
        );
        assert_eq!(negotiate(Some("application/recordio")), None);
        assert_eq!(negotiate(Some("text/html")), None);
    }
}
