//! Connecting to a broker that authenticates its callers: a bearer token
//! sent on every call, and TLS with the CA that signed the broker's
//! certificate and, for mutual TLS, the client's own certificate and key.

use std::fmt;

use tonic::{
    Request, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

use agora_proto::agora::v1::{admin_client::AdminClient, broker_client::BrokerClient};

use crate::{error::Error, leader::Failover};

/// A channel whose every call carries the caller's [`Credentials`].
pub type Authenticated = InterceptedService<Channel, Credentials>;

/// The generated `Broker` client over an [`Authenticated`] channel.
pub type Client = BrokerClient<Authenticated>;

/// The generated `Admin` client over an [`Authenticated`] channel.
pub type Admin = AdminClient<Authenticated>;

/// How to reach a broker: plaintext with no credentials by default (a
/// broker run with `agora dev` or `--insecure`), or with a bearer token
/// and/or TLS.
///
/// ```no_run
/// # async fn demo() -> Result<(), agora_client::Error> {
/// use agora_client::{ConnectOptions, Frontend, TlsOptions};
/// let ca = std::fs::read("ca.pem").expect("the CA");
/// let options = ConnectOptions::new()
///     .token(std::env::var("AGORA_TOKEN").unwrap_or_default())
///     .tls(TlsOptions::new(ca));
/// let (frontend, events) =
///     Frontend::subscribe_with_options("https://agora:50051", "ci", &["ci"], &options).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct ConnectOptions {
    token: Option<String>,
    tls: Option<TlsOptions>,
    failover: Failover,
}

impl ConnectOptions {
    /// No token, no TLS.
    pub fn new() -> ConnectOptions {
        ConnectOptions::default()
    }

    /// Sends `authorization: Bearer <token>` on every call.
    pub fn token(mut self, token: impl Into<String>) -> ConnectOptions {
        self.token = Some(token.into());
        self
    }

    /// Speaks TLS (use an `https://` address).
    pub fn tls(mut self, tls: TlsOptions) -> ConnectOptions {
        self.tls = Some(tls);
        self
    }

    /// How long and how often to look for the leader when given several
    /// [`crate::Endpoints`] ([`crate::Frontend::subscribe_to`]).
    pub fn failover(mut self, failover: Failover) -> ConnectOptions {
        self.failover = failover;
        self
    }

    pub(crate) fn failover_settings(&self) -> Failover {
        self.failover
    }
}

/// Keeps the token out of logs.
impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("failover", &self.failover)
            .finish()
    }
}

/// TLS towards the broker: the CA that signed its certificate and,
/// for mutual TLS, the client's certificate and key (PEM).
#[derive(Clone)]
pub struct TlsOptions {
    ca_pem: Vec<u8>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

impl TlsOptions {
    /// Trusts broker certificates signed by `ca_pem`.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> TlsOptions {
        TlsOptions {
            ca_pem: ca_pem.into(),
            identity: None,
            domain: None,
        }
    }

    /// Presents this client certificate; the broker takes its subject CN
    /// as the principal's name.
    pub fn identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> TlsOptions {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Checks the broker's certificate for this name instead of the
    /// address's host (e.g. when connecting by IP).
    pub fn domain(mut self, name: impl Into<String>) -> TlsOptions {
        self.domain = Some(name.into());
        self
    }

    fn config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(cert, key));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        config
    }
}

/// Keeps the private key out of logs.
impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("identity", &self.identity.as_ref().map(|_| "<redacted>"))
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// Adds the bearer token, if any, to each call.
#[derive(Clone, Default)]
pub struct Credentials {
    authorization: Option<MetadataValue<Ascii>>,
}

impl Credentials {
    fn new(token: Option<&str>) -> Result<Credentials, Error> {
        let authorization = token
            .map(|token| {
                format!("Bearer {token}")
                    .parse::<MetadataValue<Ascii>>()
                    .map_err(|_| Error::Token)
            })
            .transpose()?;
        Ok(Credentials { authorization })
    }
}

impl Interceptor for Credentials {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        Ok(request)
    }
}

/// Keeps the token out of logs.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.authorization.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Opens an authenticated channel to the broker at `address`.
async fn channel(address: &str, options: &ConnectOptions) -> Result<Authenticated, Error> {
    let credentials = Credentials::new(options.token.as_deref())?;
    let mut endpoint =
        Channel::from_shared(address.to_owned()).map_err(|_| Error::Address(address.to_owned()))?;
    if let Some(tls) = &options.tls {
        endpoint = endpoint.tls_config(tls.config()).map_err(Error::Tls)?;
    }
    let channel = endpoint.connect().await.map_err(|source| Error::Connect {
        address: address.to_owned(),
        source,
    })?;
    Ok(InterceptedService::new(channel, credentials))
}

/// A `Broker` client for the broker at `address`, with `options`.
pub async fn connect_with(address: &str, options: &ConnectOptions) -> Result<Client, Error> {
    Ok(BrokerClient::new(channel(address, options).await?))
}

/// An `Admin` client for the broker at `address`, with `options`; the
/// principal must be an admin.
pub async fn connect_admin(address: &str, options: &ConnectOptions) -> Result<Admin, Error> {
    Ok(AdminClient::new(channel(address, options).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_travels_as_a_bearer_header() {
        let mut credentials = Credentials::new(Some("s3cret")).unwrap();
        let request = credentials.call(Request::new(())).unwrap();
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
        let mut none = Credentials::default();
        let request = none.call(Request::new(())).unwrap();
        assert!(request.metadata().get("authorization").is_none());
    }

    #[test]
    fn refuses_a_token_that_cannot_be_a_header() {
        assert!(matches!(
            Credentials::new(Some("bad\ntoken")),
            Err(Error::Token)
        ));
    }

    #[test]
    fn never_prints_secrets() {
        let options = ConnectOptions::new()
            .token("s3cret")
            .tls(TlsOptions::new("ca").identity("cert", "PRIVATE KEY"));
        let shown = format!(
            "{options:?} {:?}",
            Credentials::new(Some("s3cret")).unwrap()
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}
