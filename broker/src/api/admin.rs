//! The `Admin` service. Namespaces are declared in the configuration file in
//! this version; run-time management, usage, frontends and reclaims answer
//! `UNIMPLEMENTED` with what to do instead, never a made-up answer.

use tonic::{Request, Response, Status};

use agora_proto::agora::v1::{self as api, admin_server::Admin};

/// Serves `agora.v1.Admin`.
#[derive(Debug, Default)]
pub struct AdminService;

fn not_yet(method: &str, instead: &str) -> Status {
    Status::unimplemented(format!(
        "Admin.{method} is not implemented in this version of Agora; {instead}"
    ))
}

const NAMESPACES_IN_CONFIG: &str = "declare namespaces under [[namespaces]] in agora.toml";

#[tonic::async_trait]
impl Admin for AdminService {
    async fn put_namespace(
        &self,
        _: Request<api::PutNamespaceRequest>,
    ) -> Result<Response<api::Namespace>, Status> {
        Err(not_yet("PutNamespace", NAMESPACES_IN_CONFIG))
    }

    async fn get_namespace(
        &self,
        _: Request<api::GetNamespaceRequest>,
    ) -> Result<Response<api::Namespace>, Status> {
        Err(not_yet("GetNamespace", NAMESPACES_IN_CONFIG))
    }

    async fn list_namespaces(
        &self,
        _: Request<api::ListNamespacesRequest>,
    ) -> Result<Response<api::ListNamespacesResponse>, Status> {
        Err(not_yet("ListNamespaces", NAMESPACES_IN_CONFIG))
    }

    async fn delete_namespace(
        &self,
        _: Request<api::DeleteNamespaceRequest>,
    ) -> Result<Response<api::DeleteNamespaceResponse>, Status> {
        Err(not_yet("DeleteNamespace", NAMESPACES_IN_CONFIG))
    }

    async fn get_usage(
        &self,
        _: Request<api::GetUsageRequest>,
    ) -> Result<Response<api::GetUsageResponse>, Status> {
        Err(not_yet(
            "GetUsage",
            "use Broker.ListLeases and Broker.ListTasks",
        ))
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

    async fn list_reclaims(
        &self,
        _: Request<api::ListReclaimsRequest>,
    ) -> Result<Response<api::ListReclaimsResponse>, Status> {
        Err(not_yet(
            "ListReclaims",
            "no capacity is lent in this version",
        ))
    }
}
