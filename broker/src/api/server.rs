//! Assembles the gRPC server: the Broker and Admin services, standard
//! health (`grpc.health.v1`, SERVING only while Agora is subscribed to
//! Mesos) and server reflection, with a span per request that continues the
//! caller's trace.

use std::future::Future;

use agora_proto::{
    FILE_DESCRIPTOR_SET,
    agora::v1::{
        admin_server::AdminServer,
        broker_server::{self, Broker, BrokerServer},
    },
};
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;
use tonic_health::{ServingStatus, server::HealthReporter};

use super::admin::AdminService;
use crate::telemetry::grpc_request_span;

/// Why the gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `broker` on `listener` until `shutdown` resolves, then finishes
/// in-flight calls. Health follows `subscribed`.
pub async fn serve<B: Broker>(
    broker: B,
    admin: AdminService,
    listener: TcpListener,
    subscribed: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let health_task = tokio::spawn(follow_subscription(reporter, subscribed));
    let result = Server::builder()
        .trace_fn(grpc_request_span)
        .add_service(health)
        .add_service(reflection)
        .add_service(BrokerServer::new(broker))
        .add_service(AdminServer::new(admin))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    health_task.abort();
    Ok(result?)
}

/// Keeps health in step with the Mesos subscription: a broker that cannot
/// reach Mesos cannot serve acquires or launches.
async fn follow_subscription(reporter: HealthReporter, mut subscribed: watch::Receiver<bool>) {
    loop {
        let status = if *subscribed.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status("", status).await;
        reporter
            .set_service_status(broker_server::SERVICE_NAME, status)
            .await;
        if subscribed.changed().await.is_err() {
            return;
        }
    }
}
