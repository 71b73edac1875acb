//! The `Admin` service: namespaces (put, get, list, delete), usage against
//! quota, recent reclaims, and frontends (list, drain and undo a drain).

use agora_proto::agora::v1::{self as api, admin_server::Admin};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::{
    convert::timestamp,
    namespace::{from_api, to_api, usage},
    status::invalid_field,
};
use crate::{
    core::{FrontendName, FrontendView},
    runtime::{AdminCommand, AdminError, Command},
};

/// Serves `agora.v1.Admin` by talking to the runtime.
#[derive(Clone)]
pub struct AdminService {
    commands: mpsc::Sender<Command>,
    /// Prefix of the role of a namespace put without one.
    role_prefix: String,
}

impl AdminService {
    pub fn new(commands: mpsc::Sender<Command>, role_prefix: String) -> Self {
        AdminService {
            commands,
            role_prefix,
        }
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, AdminError>>) -> AdminCommand,
    ) -> Result<T, Status> {
        super::ask(
            &self.commands,
            |reply| Command::Admin(command(reply)),
            Status::from,
        )
        .await
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
        let namespace = Box::new(from_api(&asked, &self.role_prefix)?);
        tracing::Span::current().record("namespace", asked.name.as_str());
        let put = self
            .ask(|reply| AdminCommand::PutNamespace { namespace, reply })
            .await?;
        Ok(Response::new(to_api(&put)))
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
            .ask(|reply| AdminCommand::GetNamespace { name, reply })
            .await?;
        Ok(Response::new(to_api(&namespace)))
    }

    #[instrument(skip_all)]
    async fn list_namespaces(
        &self,
        _: Request<api::ListNamespacesRequest>,
    ) -> Result<Response<api::ListNamespacesResponse>, Status> {
        let namespaces = self
            .ask(|reply| AdminCommand::ListNamespaces { reply })
            .await?;
        Ok(Response::new(api::ListNamespacesResponse {
            namespaces: namespaces.iter().map(to_api).collect(),
        }))
    }

    #[instrument(skip_all, fields(namespace))]
    async fn delete_namespace(
        &self,
        request: Request<api::DeleteNamespaceRequest>,
    ) -> Result<Response<api::DeleteNamespaceResponse>, Status> {
        let name = request.into_inner().name;
        super::limits::name("name", &name)?;
        tracing::Span::current().record("namespace", name.as_str());
        self.ask(|reply| AdminCommand::DeleteNamespace { name, reply })
            .await?;
        Ok(Response::new(api::DeleteNamespaceResponse {}))
    }

    #[instrument(skip_all, fields(namespace))]
    async fn get_usage(
        &self,
        request: Request<api::GetUsageRequest>,
    ) -> Result<Response<api::GetUsageResponse>, Status> {
        let namespace = super::convert::namespace_filter(&request.into_inner().namespace)?;
        tracing::Span::current().record("namespace", namespace.as_deref().unwrap_or_default());
        let report = self
            .ask(|reply| AdminCommand::GetUsage { namespace, reply })
            .await?;
        Ok(Response::new(api::GetUsageResponse {
            namespaces: report.iter().map(usage).collect(),
        }))
    }

    #[instrument(skip_all)]
    async fn list_frontends(
        &self,
        _: Request<api::ListFrontendsRequest>,
    ) -> Result<Response<api::ListFrontendsResponse>, Status> {
        let frontends = self
            .ask(|reply| AdminCommand::ListFrontends { reply })
            .await?;
        Ok(Response::new(api::ListFrontendsResponse {
            frontends: frontends.iter().map(frontend).collect(),
        }))
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
            let view = self
                .ask(|reply| AdminCommand::UndrainFrontend { name, reply })
                .await?;
            return Ok(Response::new(api::DrainFrontendResponse {
                frontend: Some(frontend(&view)),
                ..Default::default()
            }));
        }
        let kill_tasks = request.kill_tasks;
        let report = self
            .ask(|reply| AdminCommand::DrainFrontend {
                name,
                kill_tasks,
                reply,
            })
            .await?;
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
            .ask(|reply| AdminCommand::ListReclaims { owner, reply })
            .await?;
        Ok(Response::new(api::ListReclaimsResponse {
            reclaims: reclaims.iter().map(super::convert::reclaim).collect(),
        }))
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
        for bad in ["", "  ", "*", &"x".repeat(crate::core::MAX_NAME_BYTES + 1)] {
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
