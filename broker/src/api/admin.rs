//! The `Admin` service: namespaces (put, get, list, delete), usage against
//! quota and recent reclaims. Frontends and drains answer `UNIMPLEMENTED`
//! with what to do instead, never a made-up answer.

use agora_proto::agora::v1::{self as api, admin_server::Admin};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::namespace::{from_api, to_api, usage};
use crate::runtime::{AdminCommand, AdminError, Command};

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
        super::ask(&self.commands, |reply| Command::Admin(command(reply))).await
    }
}

fn not_yet(method: &str, instead: &str) -> Status {
    Status::unimplemented(format!(
        "Admin.{method} is not implemented in this version of Agora; {instead}"
    ))
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

    async fn list_frontends(
        &self,
        _: Request<api::ListFrontendsRequest>,
    ) -> Result<Response<api::ListFrontendsResponse>, Status> {
        Err(not_yet(
            "ListFrontends",
            "the broker's logs name each session",
        ))
    }

    async fn drain_frontend(
        &self,
        _: Request<api::DrainFrontendRequest>,
    ) -> Result<Response<api::DrainFrontendResponse>, Status> {
        Err(not_yet(
            "DrainFrontend",
            "the frontend can release its own leases",
        ))
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
