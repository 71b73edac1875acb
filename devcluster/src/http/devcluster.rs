//! Endpoints that only a devcluster has, under `/devcluster/`: fault
//! injection and changes to the cluster's shape for tests and operators
//! that run the devcluster as a separate process.
//!
//! - `GET /devcluster/agents` → `{"agents": ["<id>", ...]}`
//! - `POST /devcluster/agents` with `{"resources": "cpus:2;mem:1024",
//!   "attributes": "rack:r1", "hostname": "h", "revocable": "cpus:2"}`
//!   (every key optional) →
//!   `{"id": "<agent id>"}`
//! - `DELETE /devcluster/agents/{id}` → `204`, the agent is removed as if
//!   it died; `404` for an unknown agent.
//! - `PUT /devcluster/agents/{id}/revocable` with `{"resources": "cpus:2"}`
//!   → `204`, the agent's revocable estimate changes.
//! - `GET /devcluster/calls` → the last scheduler calls of each framework
//!   (10,000 unless `--calls-kept` says otherwise):
//!   `{"calls_per_framework": 10000, "frameworks": {"<id>": {"dropped": 0,
//!   "calls": [{"type": "ACCEPT", "stream_id": "...", "received":
//!   1733059200.5, "status": 202}, ...]}}}`, oldest first. A
//!   refused call has `"error"`; an ACCEPT has the ids of the tasks it
//!   asked to launch in `"tasks"` (a KILL, the task it names), and those
//!   the master refused in `"refused_tasks"` (`task_id`, `state`,
//!   `reason`, `message`). A real master has no such endpoint.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::media;
use super::reply::plain;
use crate::agent::{AgentError, AgentSpec};
use crate::shared::Shared;

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, media::JSON)],
        body.to_string(),
    )
        .into_response()
}

fn agent_error(error: &AgentError) -> Response {
    let status = match error {
        AgentError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    plain(status, error.to_string())
}

pub(super) async fn calls(State(shared): State<Arc<Shared>>) -> Response {
    let calls = shared.step_quietly(|master, _| master.calls_json());
    json(StatusCode::OK, calls)
}

pub(super) async fn list_agents(State(shared): State<Arc<Shared>>) -> Response {
    let agents = shared.step(|master, _| master.agent_ids());
    json(StatusCode::OK, serde_json::json!({ "agents": agents }))
}

pub(super) async fn add_agent(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let spec = if body.iter().all(u8::is_ascii_whitespace) {
        AgentSpec::default()
    } else {
        match serde_json::from_slice::<AgentSpec>(&body) {
            Ok(spec) => spec,
            Err(error) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to parse the agent JSON: {error}"),
                );
            }
        }
    };
    match shared.add_agent(&spec) {
        Ok(id) => json(StatusCode::OK, serde_json::json!({ "id": id })),
        Err(error) => agent_error(&error),
    }
}

pub(super) async fn remove_agent(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    match shared.remove_agent(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => agent_error(&error),
    }
}

/// The body of `PUT /devcluster/agents/{id}/revocable`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevocableEstimate {
    resources: String,
}

pub(super) async fn set_revocable(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let estimate = match serde_json::from_slice::<RevocableEstimate>(&body) {
        Ok(estimate) => estimate,
        Err(error) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse the revocable estimate JSON: {error}"),
            );
        }
    };
    match shared.set_revocable(&id, &estimate.resources) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => agent_error(&error),
    }
}
