//! What the endpoints share: the plain-text answer a Mesos master gives
//! for every refusal, and the checks every v1 API request passes before
//! its body is read. Kept apart from the router so that the endpoint
//! modules depend on it and not on the module that assembles them.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use agora_proto::wire::Encoding;

use super::media::{self, ContentType};

/// A `text/plain` answer, the way a Mesos master explains a refusal.
pub(super) fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

/// The checks every v1 API request passes first: POST (405 with `Allow`
/// otherwise) and an exact JSON or protobuf `Content-Type` (400 when
/// absent, 415 when another).
pub(super) fn post_media(method: &Method, headers: &HeaderMap) -> Result<Encoding, Box<Response>> {
    if method != Method::POST {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting one of {{ 'POST' }}, but received '{method}'"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Err(Box::new(response));
    }
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match media::content_type(value) {
        ContentType::Missing => Err(Box::new(plain(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        ))),
        ContentType::Unsupported => Err(Box::new(plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Expecting 'Content-Type' of {} or {}",
                media::JSON,
                media::PROTOBUF
            ),
        ))),
        ContentType::Supported(media) => Ok(media),
    }
}
