//! The master's HTTP endpoints: the v1 scheduler API, `/version`,
//! `/redirect` and `/state`, with the status codes and headers of a real
//! master (§2 of the protocol digest), and the devcluster's own
//! `/devcluster/` endpoints.

mod devcluster;
pub(crate) mod media;
mod operator;
mod reply;
mod required;

use std::convert::Infallible;
use std::sync::Arc;

use agora_proto::{
    mesos::v1::scheduler::call,
    wire::{Encoding, recordio},
};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, put};
use tokio::sync::mpsc;

use crate::master::{Connection, VERSION};
use crate::shared::Shared;
use reply::{plain, post_media};

/// The header carrying a subscription's id.
const STREAM_ID: &str = "Mesos-Stream-Id";

/// Builds the router over the shared cluster state.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/scheduler", any(scheduler))
        .route("/master/api/v1/scheduler", any(scheduler))
        .route("/api/v1", any(operator::operator))
        .route("/master/api/v1", any(operator::operator))
        .route("/version", get(version))
        .route("/redirect", any(redirect))
        .route("/master/redirect", any(redirect))
        .route("/state", get(state))
        .route("/state.json", get(state))
        .route("/master/state", get(state))
        .route("/master/state.json", get(state))
        .route(
            "/devcluster/agents",
            get(devcluster::list_agents).post(devcluster::add_agent),
        )
        .route("/devcluster/agents/{id}", delete(devcluster::remove_agent))
        .route("/devcluster/calls", get(devcluster::calls))
        .route(
            "/devcluster/agents/{id}/revocable",
            put(devcluster::set_revocable),
        )
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(shared)
}

async fn scheduler(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let media = match post_media(&method, &headers) {
        Ok(media) => media,
        Err(response) => return *response,
    };
    let header_text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    type SchedulerCall = agora_proto::mesos::v1::scheduler::Call;
    let call = match media::decode_call::<SchedulerCall>(media, &body) {
        Ok(call) => call,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message),
    };
    // Mesos's parser refuses a missing required field in any call. It is
    // checked for SUBSCRIBE, where defaults would register a framework
    // with no `FrameworkInfo`, `user` or `name`; the frequent calls
    // (ACCEPT, ACKNOWLEDGE, ...) are spared a second decoding.
    if call.r#type == Some(call::Type::Subscribe as i32)
        && let Err(message) = media::check_required::<SchedulerCall>(media, &body)
    {
        return plain(StatusCode::BAD_REQUEST, message);
    }
    if let Err(message) = crate::master::validate_call(&call) {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate scheduler::Call: {message}"),
        );
    }
    let stream_id = header_text(STREAM_ID);
    if call.r#type == Some(call::Type::Subscribe as i32) {
        let Some(accept) = media::negotiate(header_text(header::ACCEPT.as_str())) else {
            return plain(
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "Expecting 'Accept' to allow '{}' or '{}'",
                    media::PROTOBUF,
                    media::JSON
                ),
            );
        };
        if stream_id.is_some() {
            return plain(
                StatusCode::BAD_REQUEST,
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            );
        }
        let subscribe = call.subscribe.unwrap_or_default();
        return subscribe_stream(shared, subscribe, accept);
    }
    match shared.step(|master, now| master.call(now, call, stream_id)) {
        Ok(outcome) => status_code(outcome.http_status()).into_response(),
        Err(error) => plain(status_code(error.http_status()), error.to_string()),
    }
}

/// The status code the master chose for a call.
fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("the master answers with valid status codes")
}

/// Reports the end of a subscription stream to the master when the
/// response body is dropped (client gone, or the master closed it).
struct StreamGuard {
    shared: Arc<Shared>,
    framework: Option<String>,
    stream_id: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if let Some(framework) = &self.framework {
            self.shared
                .step(|master, now| master.disconnected(now, framework, &self.stream_id));
        }
    }
}

fn subscribe_stream(shared: Arc<Shared>, subscribe: call::Subscribe, media: Encoding) -> Response {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let stream_id = uuid::Uuid::new_v4().to_string();
    let connection = Connection {
        stream_id: stream_id.clone(),
        events: events_tx,
    };
    let framework = shared.step(|master, now| master.subscribe(now, subscribe, connection));
    let guard = StreamGuard {
        shared,
        framework,
        stream_id: stream_id.clone(),
    };
    let records = futures::stream::unfold((events_rx, guard), move |(mut rx, guard)| async move {
        let event = rx.recv().await?;
        let record = Bytes::from(recordio::encode(&media.encode(&event)));
        Some((Ok::<_, Infallible>(record), (rx, guard)))
    });
    let mut response = Response::new(Body::from_stream(records));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type()),
    );
    headers.insert(
        STREAM_ID,
        HeaderValue::from_str(&stream_id).expect("a UUID is a valid header value"),
    );
    response
}

async fn version() -> Response {
    let body = serde_json::json!({
        "version": VERSION,
        "build_date": "",
        "build_time": 0.0,
        "build_user": "devcluster",
    });
    ([(header::CONTENT_TYPE, media::JSON)], body.to_string()).into_response()
}

async fn redirect(State(shared): State<Arc<Shared>>) -> Response {
    let location = format!("//{}", shared.address);
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("an address is a valid header value"),
    );
    response
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let body = shared.step(|master, _| master.state_json());
    ([(header::CONTENT_TYPE, media::JSON)], body.to_string()).into_response()
}
