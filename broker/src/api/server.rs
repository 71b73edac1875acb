//! Assembles the gRPC server: the Broker and Admin services, standard
//! health (`grpc.health.v1`, SERVING only while Agora is subscribed to
//! Mesos) and server reflection, with a span per request that continues the
//! caller's trace.
//!
//! Authentication wraps the Broker service (any known principal) and the
//! whole Admin service (admins only) as interceptors, so no handler runs for
//! a caller who is not let in. Health and reflection stay open so that
//! probes and standard gRPC tools work without credentials.

use std::{future::Future, path::Path};

use agora_proto::{
    FILE_DESCRIPTOR_SET,
    agora::v1::{
        admin_server::AdminServer,
        broker_server::{self, Broker, BrokerServer},
    },
};
use tokio::{net::TcpListener, sync::watch};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

use super::{admin::AdminService, auth::Authenticator};
use crate::{
    config::{Config, TlsSettings},
    telemetry::grpc_request_span,
};

/// How the server tells its callers apart, and whether it speaks TLS.
#[derive(Debug, Clone)]
pub struct Security {
    pub authenticator: Authenticator,
    pub tls: Option<ServerTlsConfig>,
}

/// Why the server's security settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(
        "no principals are configured: add [[auth.principals]] with a token_sha256 or tls_subject to the configuration (see `agora hash-token`), or pass --insecure to let every caller in"
    )]
    NoPrincipals,
    #[error("cannot read {setting} from {path}: {source}")]
    Read {
        setting: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the [tls] certificate, key or client_ca is not usable PEM: {0}")]
    Tls(#[source] tonic::transport::Error),
}

impl Security {
    /// The principals and TLS of `config`, read and checked before any port
    /// is bound. With `open`, authentication is off (`agora dev`,
    /// `agora serve --insecure`) and configured principals are ignored.
    pub fn from_config(config: &Config, open: bool) -> Result<Security, SecurityError> {
        let authenticator = if open {
            Authenticator::open()
        } else if config.auth.principals.is_empty() {
            return Err(SecurityError::NoPrincipals);
        } else {
            Authenticator::new(&config.auth.principals)
        };
        let tls = config.tls.as_ref().map(server_tls).transpose()?;
        if let Some(tls) = &tls {
            // Builds the acceptor once now, so a bad key fails at start.
            Server::builder()
                .tls_config(tls.clone())
                .map_err(SecurityError::Tls)?;
        }
        Ok(Security { authenticator, tls })
    }
}

fn server_tls(settings: &TlsSettings) -> Result<ServerTlsConfig, SecurityError> {
    let read = |setting, path: &Path| {
        std::fs::read(path).map_err(|source| SecurityError::Read {
            setting,
            path: path.display().to_string(),
            source,
        })
    };
    let identity = Identity::from_pem(
        read("tls.cert", &settings.cert)?,
        read("tls.key", &settings.key)?,
    );
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &settings.client_ca {
        tls = tls
            .client_ca_root(Certificate::from_pem(read("tls.client_ca", ca)?))
            .client_auth_optional(settings.client_cert_optional);
    }
    Ok(tls)
}

/// Accepted connections with TCP_NODELAY, as tonic sets it when it binds
/// the port itself: small gRPC frames must not wait for Nagle's algorithm.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Why the gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `broker` on `listener` with `security` until `shutdown`
/// resolves, then finishes in-flight calls. Health follows `subscribed`.
pub async fn serve<B: Broker>(
    broker: B,
    admin: AdminService,
    security: Security,
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
    let mut server = Server::builder();
    if let Some(tls) = security.tls {
        server = server.tls_config(tls)?;
    }
    let admins = security.authenticator.admin_only();
    let result = server
        .trace_fn(grpc_request_span)
        .add_service(health)
        .add_service(reflection)
        .add_service(BrokerServer::with_interceptor(
            broker,
            security.authenticator,
        ))
        .add_service(AdminServer::with_interceptor(admin, admins))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
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
