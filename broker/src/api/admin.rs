//! The `Admin` service: namespaces (put, get, list, delete), usage against
//! quota, recent reclaims, frontends (list, drain and undo a drain), and
//! the operator's views of every frontend's leases and tasks, the agents,
//! and the requests that wait with why they wait.

use agora_proto::agora::v1::{self as api, admin_server::Admin};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};
use tracing::{info, instrument};

use super::{
    convert::timestamp,
    errors::core_status,
    mismatched,
    namespace::{from_api, to_api, usage},
    status::invalid_field,
};
use crate::runtime::{Command, NamespaceChange};
use agora_core::{
    self as core, Answer, Core, CoreError, FrontendName, FrontendView, Timestamp, WaitReason,
    WaitingFilter, WaitingView,
};

/// Serves `agora.v1.Admin` by talking to the runtime.
#[derive(Clone)]
pub struct AdminService {
    commands: mpsc::Sender<Command>,
    /// Prefix of the role of a namespace put without one.
    role_prefix: String,
}

impl AdminService {
    /// Sends every call to the runtime behind `commands`; a namespace put
    /// without a role gets `role_prefix` + its name.
    pub fn new(commands: mpsc::Sender<Command>, role_prefix: String) -> Self {
        AdminService {
            commands,
            role_prefix,
        }
    }

    async fn request(&self, request: core::Request) -> Result<Answer, Status> {
        super::request(&self.commands, request).await
    }

    /// Checks, stores and applies a namespace change.
    async fn change(&self, change: NamespaceChange) -> Result<Answer, Status> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Namespace { change, reply };
        super::answered(&self.commands, command, answer, Status::from).await
    }

    async fn read<T: Send + 'static>(
        &self,
        view: impl FnOnce(&Core, Timestamp) -> T + Send + 'static,
    ) -> Result<T, Status> {
        super::read(&self.commands, view).await
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    #[instrument(skip_all, fields(namespace))]
    async fn put_namespace(
        &self,
        request: Request<api::PutNamespaceRequest>,
    ) -> Result<Response<api::Namespace>, Status> {
        let asked = request
            .into_inner()
            .namespace
            .ok_or_else(|| super::status::invalid_field("namespace", "give the namespace"))?;
        let namespace = from_api(&asked, &self.role_prefix)?;
        tracing::Span::current().record("namespace", asked.name.as_str());
        let stored = to_api(&namespace);
        self.change(NamespaceChange::Put {
            namespace: Box::new(namespace),
            stored: Box::new(stored.clone()),
        })
        .await?;
        Ok(Response::new(stored))
    }

    #[instrument(skip_all, fields(namespace))]
    async fn get_namespace(
        &self,
        request: Request<api::GetNamespaceRequest>,
    ) -> Result<Response<api::Namespace>, Status> {
        let name = request.into_inner().name;
        super::limits::name("name", &name)?;
        tracing::Span::current().record("namespace", name.as_str());
        let namespace = self
            .read(move |core, _| {
                core.namespace(&name)
                    .map(to_api)
                    .ok_or(CoreError::NamespaceNotFound(name))
            })
            .await?
            .map_err(core_status)?;
        Ok(Response::new(namespace))
    }

    #[instrument(skip_all)]
    async fn list_namespaces(
        &self,
        _: Request<api::ListNamespacesRequest>,
    ) -> Result<Response<api::ListNamespacesResponse>, Status> {
        let namespaces = self
            .read(|core, _| core.namespaces().map(to_api).collect())
            .await?;
        Ok(Response::new(api::ListNamespacesResponse { namespaces }))
    }

    #[instrument(skip_all, fields(namespace))]
    async fn delete_namespace(
        &self,
        request: Request<api::DeleteNamespaceRequest>,
    ) -> Result<Response<api::DeleteNamespaceResponse>, Status> {
        let name = request.into_inner().name;
        super::limits::name("name", &name)?;
        tracing::Span::current().record("namespace", name.as_str());
        self.change(NamespaceChange::Delete(name)).await?;
        Ok(Response::new(api::DeleteNamespaceResponse {}))
    }

    #[instrument(skip_all, fields(namespace))]
    async fn get_usage(
        &self,
        request: Request<api::GetUsageRequest>,
    ) -> Result<Response<api::GetUsageResponse>, Status> {
        let namespace = super::convert::namespace_filter(&request.into_inner().namespace)?;
        tracing::Span::current().record("namespace", namespace.as_deref().unwrap_or_default());
        let namespaces = self
            .read(move |core, _| core.usage_report(namespace.as_deref()))
            .await?
            .map_err(core_status)?;
        Ok(Response::new(api::GetUsageResponse {
            namespaces: namespaces.iter().map(usage).collect(),
        }))
    }

    #[instrument(skip_all)]
    async fn list_frontends(
        &self,
        _: Request<api::ListFrontendsRequest>,
    ) -> Result<Response<api::ListFrontendsResponse>, Status> {
        let frontends = self
            .read(|core, now| core.frontends(now).iter().map(frontend).collect())
            .await?;
        Ok(Response::new(api::ListFrontendsResponse { frontends }))
    }

    #[instrument(skip_all, fields(frontend, kill_tasks, undo))]
    async fn drain_frontend(
        &self,
        request: Request<api::DrainFrontendRequest>,
    ) -> Result<Response<api::DrainFrontendResponse>, Status> {
        let request = request.into_inner();
        let name = frontend_name(&request.name)?;
        let span = tracing::Span::current();
        span.record("frontend", name.0.as_str());
        span.record("kill_tasks", request.kill_tasks);
        span.record("undo", request.undo);
        if request.undo {
            if request.kill_tasks {
                return Err(invalid_field(
                    "kill_tasks",
                    "cannot be combined with undo: undo lifts a drain, it kills nothing",
                ));
            }
            let view = match self
                .request(core::Request::UndrainFrontend(name.clone()))
                .await?
            {
                Answer::Frontend(view) => view,
                other => return Err(mismatched(&other)),
            };
            info!(frontend = %name, "frontend drain undone");
            return Ok(Response::new(api::DrainFrontendResponse {
                frontend: Some(frontend(&view)),
                ..Default::default()
            }));
        }
        let kill_tasks = request.kill_tasks;
        let drain = core::Request::DrainFrontend {
            frontend: name.clone(),
            kill_tasks,
        };
        let report = match self.request(drain).await? {
            Answer::Drained(report) => report,
            other => return Err(mismatched(&other)),
        };
        info!(
            frontend = %name,
            kill_tasks,
            leases_released = report.leases_released,
            requests_refused = report.requests_refused,
            tasks_killed = report.tasks_killed,
            "frontend drained"
        );
        Ok(Response::new(api::DrainFrontendResponse {
            leases_released: count(report.leases_released),
            requests_refused: count(report.requests_refused),
            tasks_killed: count(report.tasks_killed),
            complete: report.frontend.drained(),
            frontend: Some(frontend(&report.frontend)),
        }))
    }

    #[instrument(skip_all, fields(namespace))]
    async fn list_reclaims(
        &self,
        request: Request<api::ListReclaimsRequest>,
    ) -> Result<Response<api::ListReclaimsResponse>, Status> {
        let owner = super::convert::namespace_filter(&request.into_inner().namespace)?;
        tracing::Span::current().record("namespace", owner.as_deref().unwrap_or_default());
        let reclaims = self
            .read(move |core, _| {
                let reclaims = core.reclaims(owner.as_deref());
                reclaims.iter().map(super::convert::reclaim).collect()
            })
            .await?;
        Ok(Response::new(api::ListReclaimsResponse { reclaims }))
    }

    #[instrument(skip_all, fields(namespace, frontend))]
    async fn list_all_leases(
        &self,
        request: Request<api::ListAllLeasesRequest>,
    ) -> Result<Response<api::ListAllLeasesResponse>, Status> {
        let request = request.into_inner();
        let (namespace, frontend) = filters(&request.namespace, &request.frontend)?;
        let leases = self
            .read(move |core, _| {
                core.all_leases(namespace.as_deref(), frontend.as_deref())
                    .iter()
                    .map(|lease| api::FrontendLease {
                        frontend: lease.frontend.0.clone(),
                        lease: Some(super::convert::lease(lease)),
                    })
                    .collect()
            })
            .await?;
        Ok(Response::new(api::ListAllLeasesResponse { leases }))
    }

    #[instrument(skip_all, fields(namespace, frontend))]
    async fn list_all_tasks(
        &self,
        request: Request<api::ListAllTasksRequest>,
    ) -> Result<Response<api::ListAllTasksResponse>, Status> {
        let request = request.into_inner();
        let (namespace, frontend) = filters(&request.namespace, &request.frontend)?;
        let live_only = request.live_only;
        let tasks = self
            .read(move |core, _| {
                core.all_tasks(namespace.as_deref(), frontend.as_deref(), live_only)
                    .iter()
                    .map(|task| api::FrontendTask {
                        frontend: task.frontend.0.clone(),
                        status: Some(super::convert::task_status(task)),
                        resources: Some(super::convert::api_resources(&task.resources)),
                    })
                    .collect()
            })
            .await?;
        Ok(Response::new(api::ListAllTasksResponse { tasks }))
    }

    #[instrument(skip_all)]
    async fn list_all_agents(
        &self,
        _: Request<api::ListAllAgentsRequest>,
    ) -> Result<Response<api::ListAllAgentsResponse>, Status> {
        let agents = self
            .read(|core, _| {
                core.agents()
                    .iter()
                    .map(super::convert::agent_view)
                    .collect()
            })
            .await?;
        Ok(Response::new(api::ListAllAgentsResponse { agents }))
    }

    #[instrument(skip_all, fields(namespace, frontend))]
    async fn list_waiting_requests(
        &self,
        request: Request<api::ListWaitingRequestsRequest>,
    ) -> Result<Response<api::ListWaitingRequestsResponse>, Status> {
        let request = request.into_inner();
        let filter = waiting_filters(&request)?;
        let (requests, omitted) = self
            .read(move |core, now| {
                let (views, omitted) = core.waiting_requests(now, &filter);
                (views.iter().map(waiting_request).collect(), omitted)
            })
            .await?;
        Ok(Response::new(api::ListWaitingRequestsResponse {
            requests,
            omitted: count(omitted),
        }))
    }
}

/// The most waiting requests one ListWaitingRequests answers: each is
/// explained by dry runs of placement in the core's loop, so the answer's
/// cost is bounded.
pub const MAX_WAITING_EXPLAINED: usize = 256;

/// The filters of ListWaitingRequests: those of [`filters`] and a request
/// id of at most 128 bytes, each `None` when empty; at most
/// [`MAX_WAITING_EXPLAINED`] requests.
pub fn waiting_filters(request: &api::ListWaitingRequestsRequest) -> Result<WaitingFilter, Status> {
    let (namespace, frontend) = filters(&request.namespace, &request.frontend)?;
    super::limits::text(
        "request_id",
        &request.request_id,
        super::limits::MAX_ID_BYTES,
    )?;
    Ok(WaitingFilter {
        namespace,
        frontend,
        request_id: Some(request.request_id.clone()).filter(|id| !id.is_empty()),
        max: MAX_WAITING_EXPLAINED,
    })
}

/// The optional namespace and frontend filters of an Admin listing, each
/// a name when given (INVALID_ARGUMENT naming the field otherwise);
/// records them on the current span.
pub fn filters(
    namespace: &str,
    frontend: &str,
) -> Result<(Option<String>, Option<String>), Status> {
    let namespace = super::convert::namespace_filter(namespace)?;
    let frontend = if frontend.is_empty() {
        None
    } else {
        super::limits::name("frontend", frontend)?;
        Some(frontend.to_owned())
    };
    let span = tracing::Span::current();
    span.record("namespace", namespace.as_deref().unwrap_or_default());
    span.record("frontend", frontend.as_deref().unwrap_or_default());
    Ok((namespace, frontend))
}

/// A waiting request as Admin shows it.
fn waiting_request(view: &WaitingView) -> api::WaitingRequest {
    let revocable = match view.revocable {
        core::RevocablePolicy::Deny => api::Revocable::Deny,
        core::RevocablePolicy::Allow => api::Revocable::Allow,
        core::RevocablePolicy::Require => api::Revocable::Require,
    };
    api::WaitingRequest {
        frontend: view.frontend.0.clone(),
        namespace: view.namespace.clone(),
        request_id: view.request_id.clone().unwrap_or_default(),
        position: count(view.position),
        slots: view.slots,
        asked: Some(super::convert::api_resources(&view.asked)),
        gang: view.gang,
        revocable: revocable as i32,
        constraints: count(view.constraints),
        since: Some(timestamp(view.since)),
        deadline: Some(timestamp(view.deadline)),
        reasons: view.reasons.iter().map(wait_reason).collect(),
    }
}

/// One reason a request waits, with its numbers in the fields that apply.
fn wait_reason(reason: &WaitReason) -> api::WaitReason {
    use api::wait_reason::Kind;
    let mut out = api::WaitReason {
        message: reason.to_string(),
        ..Default::default()
    };
    let kind = match reason {
        WaitReason::CannotFit {
            resource,
            asked,
            available,
            ..
        } => {
            out.resource.clone_from(resource);
            out.asked = *asked;
            out.allowed = *available;
            Kind::CannotFit
        }
        WaitReason::Capacity { fit, needed, .. } => {
            (out.slots_fit, out.slots_needed) = (*fit, *needed);
            Kind::Capacity
        }
        WaitReason::Constraints {
            fit_constrained,
            needed,
            ..
        } => {
            (out.slots_fit, out.slots_needed) = (*fit_constrained, *needed);
            Kind::Constraints
        }
        WaitReason::Quota {
            resource,
            asked,
            used,
            allowed,
        }
        | WaitReason::BorrowCap {
            resource,
            asked,
            used,
            allowed,
        } => {
            out.resource.clone_from(resource);
            (out.asked, out.used, out.allowed) = (*asked, *used, *allowed);
            if matches!(reason, WaitReason::Quota { .. }) {
                Kind::Quota
            } else {
                Kind::BorrowCap
            }
        }
        WaitReason::Gang { fit, needed } => {
            (out.slots_fit, out.slots_needed) = (*fit, *needed);
            Kind::Gang
        }
        WaitReason::Queue { ahead, .. } => {
            out.ahead_frontend.clone_from(&ahead.0);
            Kind::Queue
        }
        WaitReason::Ready => Kind::Ready,
    };
    out.kind = kind as i32;
    out
}

/// The frontend named in a request: a name as frontends subscribe with.
fn frontend_name(name: &str) -> Result<FrontendName, Status> {
    super::limits::name("name", name)?;
    Ok(FrontendName(name.to_owned()))
}

/// A count as the API carries it; counts beyond `u32` saturate.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A frontend as Admin shows it.
fn frontend(view: &FrontendView) -> api::Frontend {
    api::Frontend {
        name: view.name.0.clone(),
        namespaces: view.namespaces.clone(),
        sessions: count(view.sessions),
        leases: count(view.leases),
        live_tasks: count(view.live_tasks),
        unacknowledged_events: u64::try_from(view.unacknowledged_events).unwrap_or(u64::MAX),
        last_seen: Some(timestamp(view.last_seen)),
        draining: view.draining_since.is_some(),
        draining_since: view.draining_since.map(timestamp),
        waiting_requests: count(view.waiting_requests),
        forget_at: view.forget_at.map(timestamp),
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn listing_filters_are_names_when_given() {
        assert_eq!(filters("", "").unwrap(), (None, None));
        assert_eq!(
            filters("batch", "spark").unwrap(),
            (Some("batch".into()), Some("spark".into()))
        );
        for (namespace, frontend, field) in [("b*d", "", "namespace"), ("", "no pe", "frontend")] {
            let status = filters(namespace, frontend).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(
                status.message().starts_with(&format!("{field}: ")),
                "{}",
                status.message()
            );
        }
    }

    #[test]
    fn a_waiting_request_id_is_bounded() {
        let mut request = api::ListWaitingRequestsRequest {
            request_id: "job-7".into(),
            ..Default::default()
        };
        assert_eq!(
            waiting_filters(&request).unwrap().request_id.as_deref(),
            Some("job-7")
        );
        request.request_id = "x".repeat(super::super::limits::MAX_ID_BYTES + 1);
        let status = waiting_filters(&request).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().starts_with("request_id: "),
            "{}",
            status.message()
        );
    }

    #[test]
    fn wait_reasons_carry_their_kind_numbers_and_words() {
        let quota = wait_reason(&WaitReason::Quota {
            resource: "cpus".into(),
            asked: 2.0,
            used: 1.0,
            allowed: 2.0,
        });
        assert_eq!(quota.kind, api::wait_reason::Kind::Quota as i32);
        assert_eq!(
            (
                quota.resource.as_str(),
                quota.asked,
                quota.used,
                quota.allowed
            ),
            ("cpus", 2.0, 1.0, 2.0)
        );
        assert!(quota.message.contains("limit"), "{}", quota.message);
        let gang = wait_reason(&WaitReason::Gang { fit: 1, needed: 3 });
        assert_eq!(gang.kind, api::wait_reason::Kind::Gang as i32);
        assert_eq!((gang.slots_fit, gang.slots_needed), (1, 3));
        let queue = wait_reason(&WaitReason::Queue {
            ahead: FrontendName("big".into()),
            since: Timestamp(0),
        });
        assert_eq!(queue.ahead_frontend, "big");
        assert_eq!(
            wait_reason(&WaitReason::Ready).kind,
            api::wait_reason::Kind::Ready as i32
        );
    }

    #[test]
    fn a_frontend_name_must_be_given_and_short() {
        assert_eq!(
            frontend_name("spark").unwrap(),
            FrontendName("spark".into())
        );
        for bad in ["", "  ", "*", &"x".repeat(agora_core::MAX_NAME_BYTES + 1)] {
            let status = frontend_name(bad).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(
                status.message().starts_with("name: "),
                "{}",
                status.message()
            );
        }
    }
}
