//! The `Admin` service: namespaces (put, get, list, delete), usage against
//! quota, recent reclaims, and frontends (list, drain and undo a drain).

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
use agora_core::{self as core, Answer, Core, CoreError, FrontendName, FrontendView, Timestamp};

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
