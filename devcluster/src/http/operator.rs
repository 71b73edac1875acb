//! `POST /api/v1` (and `/master/api/v1`): the operator API, protobuf or
//! JSON like the scheduler endpoint. Queries answer `200` with a
//! `master::Response` encoded as the `Accept` header asks; updates answer
//! an empty `200`.

use std::sync::Arc;

use agora_proto::mesos::v1::master::Call;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::media;
use super::reply::{plain, post_media};
use crate::master::{OperatorError, validate_operator_call};
use crate::shared::Shared;

pub(super) async fn operator(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_media = match post_media(&method, &headers) {
        Ok(media) => media,
        Err(response) => return *response,
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let Some(response_media) = media::negotiate(accept) else {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "Expecting 'Accept' to allow '{}' or '{}'",
                media::PROTOBUF,
                media::JSON
            ),
        );
    };
    let call = match media::decode_call::<Call>(request_media, &body) {
        Ok(call) => call,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message),
    };
    if let Err(message) = validate_operator_call(&call) {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate master::Call: {message}"),
        );
    }
    match shared.step(|master, now| master.operator_call(now, call)) {
        Ok(Some(answer)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, response_media.content_type())],
            response_media.encode(&answer),
        )
            .into_response(),
        Ok(None) => StatusCode::OK.into_response(),
        Err(error) => {
            let status = match error {
                OperatorError::BadRequest(_) => StatusCode::BAD_REQUEST,
                OperatorError::NotFound(_) => StatusCode::NOT_FOUND,
                OperatorError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            };
            plain(status, error.to_string())
        }
    }
}
