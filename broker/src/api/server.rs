//! Assembles the gRPC server: the Broker and Admin services, standard
//! health (`grpc.health.v1`, SERVING only while Agora is subscribed to
//! Mesos and its core answers) and server reflection, with a span per request that continues the
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
use std::time::Duration;

use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming};
use tonic_health::{ServingStatus, server::HealthReporter};

use super::{
    admin::AdminService,
    auth::Authenticator,
    leadership::{LeaderOnly, Role},
};
use crate::{
    config::{Config, TlsSettings},
    runtime::{Command, core_answers},
    telemetry::grpc_request_span,
};

/// How the server tells its callers apart, and whether it speaks TLS.
#[derive(Debug, Clone)]
pub struct Security {
    /// Who is let in, and which callers may use `Admin`.
    pub authenticator: Authenticator,
    /// The server's identity and, optionally, the CA that verifies client
    /// certificates; plaintext when `None`.
    pub tls: Option<ServerTlsConfig>,
}

/// Why the server's security settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// Authentication is on and `auth.principals` is empty, so nobody could
    /// call the broker.
    #[error(
        "no principals are configured: add [[auth.principals]] with a token_sha256 or tls_subject to the configuration (see `agora hash-token`), or pass --insecure to let every caller in"
    )]
    NoPrincipals,
    /// A TLS file named in `[tls]` cannot be read.
    #[error("cannot read {setting} from {path}: {source}")]
    Read {
        /// The key that names the file, such as `tls.cert`.
        setting: &'static str,
        /// The file.
        path: String,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The certificate, key or CA was read but TLS cannot use it (not PEM,
    /// or an unsupported key).
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
    /// The embedded descriptor sets cannot be decoded; a build bug, not a
    /// setting.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The TLS configuration was refused at start, or the server failed
    /// while serving.
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `broker` on `listener` with `security` until `shutdown`
/// resolves, then finishes in-flight calls. Health follows the Mesos
/// subscription and whether the runtime behind `commands` answers; Broker
/// and Admin calls are refused while this replica stands by.
pub async fn serve<B: Broker>(
    broker: B,
    admin: AdminService,
    security: Security,
    listener: TcpListener,
    readiness: Readiness,
    commands: mpsc::Sender<Command>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let Readiness { subscribed, role } = readiness;
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = reflection_builder().build_v1()?;
    // Python's grpcio-reflection, grpc_cli and several GUI clients speak
    // only the older v1alpha.
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;
    let health_task = tokio::spawn(follow_health(reporter, subscribed, commands));
    let mut server = Server::builder();
    if let Some(tls) = security.tls {
        server = server.tls_config(tls)?;
    }
    let admins = security.authenticator.admin_only();
    let result = server
        .trace_fn(grpc_request_span)
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(BrokerServer::with_interceptor(
            broker,
            LeaderOnly::new(role.clone(), security.authenticator),
        ))
        .add_service(AdminServer::with_interceptor(
            admin,
            LeaderOnly::new(role, admins),
        ))
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await;
    health_task.abort();
    Ok(result?)
}

/// Server reflection over Agora's services and health, before a version
/// is chosen.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// What decides whether this replica serves: whether it leads, and
/// whether the leader is subscribed to Mesos.
pub struct Readiness {
    /// Whether the Mesos subscription is live; health follows it.
    pub subscribed: watch::Receiver<bool>,
    /// Whether this replica leads; Broker and Admin calls follow it.
    pub role: watch::Receiver<Role>,
}

/// How often health asks the core whether it answers.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// A core that takes longer than this to answer is stuck: every call waits
/// on it, so the broker is not serving.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Keeps health in step with what serving needs: the Mesos subscription
/// (a broker that cannot reach Mesos cannot serve acquires or launches) and
/// a core that answered its last probe (a stuck runtime loop serves
/// nobody, whatever the subscription says).
async fn follow_health(
    reporter: HealthReporter,
    mut subscribed: watch::Receiver<bool>,
    commands: mpsc::Sender<Command>,
) {
    let mut last = None;
    let mut probes = tokio::time::interval(PROBE_INTERVAL);
    probes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let serving =
            *subscribed.borrow_and_update() && core_answers(&commands, PROBE_TIMEOUT).await;
        if last != Some(serving) {
            if serving {
                tracing::info!("health: SERVING (subscribed to Mesos, the core answers)");
            } else {
                tracing::warn!(
                    subscribed = *subscribed.borrow(),
                    "health: NOT_SERVING (not subscribed to Mesos, or the core does not answer)"
                );
            }
            let status = if serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            reporter
                .set_service_status(broker_server::SERVICE_NAME, status)
                .await;
            last = Some(serving);
        }
        tokio::select! {
            changed = subscribed.changed() => if changed.is_err() { return },
            _ = probes.tick() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus as Wire, health_server::Health,
    };

    async fn status_of(health: &impl Health) -> Wire {
        let request = tonic::Request::new(HealthCheckRequest {
            service: broker_server::SERVICE_NAME.into(),
        });
        match health.check(request).await {
            Ok(response) => response.into_inner().status(),
            Err(_) => Wire::Unknown,
        }
    }

    /// Runs `follow_health` against a runtime that answers probes while
    /// `answering` is set, subscribed to Mesos throughout.
    #[tokio::test(start_paused = true)]
    async fn health_says_not_serving_while_the_core_does_not_answer() {
        let reporter = HealthReporter::new();
        let health = tonic_health::server::HealthService::from_health_reporter(reporter.clone());
        let (_subscribed_tx, subscribed) = watch::channel(true);
        let (commands, mut runtime) = mpsc::channel(8);
        let (answering_tx, answering) = watch::channel(true);
        tokio::spawn(follow_health(reporter, subscribed, commands));
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some(command) = runtime.recv().await {
                if let Command::Probe(reply) = command {
                    if *answering.borrow() {
                        let _ = reply.send(());
                    } else {
                        held.push(reply);
                    }
                }
            }
        });
        tokio::time::sleep(PROBE_INTERVAL).await;
        assert_eq!(status_of(&health).await, Wire::Serving);
        answering_tx.send_replace(false);
        tokio::time::sleep(PROBE_INTERVAL * 2 + PROBE_TIMEOUT).await;
        assert_eq!(status_of(&health).await, Wire::NotServing);
        answering_tx.send_replace(true);
        tokio::time::sleep(PROBE_INTERVAL * 2 + PROBE_TIMEOUT).await;
        assert_eq!(status_of(&health).await, Wire::Serving);
    }
}
