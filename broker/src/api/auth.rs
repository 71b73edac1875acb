//! Who is calling: authentication of each gRPC request, by a bearer token
//! or by the subject CN of a verified client certificate, into a
//! [`Principal`] with the namespaces it was granted and whether it is an
//! admin.
//!
//! The [`Authenticator`] is a tonic interceptor. It runs before any handler,
//! refuses callers it cannot identify with `UNAUTHENTICATED`, and puts the
//! caller's `Arc<Principal>` into the request's extensions, where the
//! handlers read it with [`caller`]. What a principal may touch (its
//! sessions, its frontend names) is tracked in [`super::ownership`].

use std::{collections::BTreeSet, sync::Arc};

use tonic::{Request, Status, metadata::MetadataMap, service::Interceptor};

use crate::config::{PrincipalSettings, TokenHash};

/// The namespaces a principal may subscribe in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Every namespace, present and future (`namespaces = ["*"]`).
    Every,
    /// Only these.
    Only(BTreeSet<String>),
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The name from the configuration; sessions and frontend names are
    /// bound to it.
    pub name: String,
    /// Where it may subscribe; checked at `Subscribe`, and every other
    /// call goes through a session opened there.
    pub namespaces: Grant,
    /// Whether the `Admin` service is open to it.
    pub admin: bool,
}

impl Principal {
    /// The one principal of a broker without authentication (`agora dev`,
    /// `agora serve --insecure`): every namespace, admin.
    pub fn anonymous() -> Principal {
        Principal {
            name: "anonymous".into(),
            namespaces: Grant::Every,
            admin: true,
        }
    }

    /// Refuses the first of `namespaces` not granted to this principal.
    pub fn check_namespaces(&self, namespaces: &[String]) -> Result<(), AuthError> {
        let Grant::Only(granted) = &self.namespaces else {
            return Ok(());
        };
        match namespaces.iter().find(|ns| !granted.contains(*ns)) {
            Some(namespace) => Err(AuthError::NamespaceNotGranted {
                principal: self.name.clone(),
                namespace: namespace.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Why a caller was refused before any handler ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The broker requires authentication and the call carried neither a
    /// bearer token nor a client certificate (or a service was reached
    /// without the interceptor, a wiring bug).
    #[error(
        "this broker needs credentials: send `authorization: Bearer <token>` metadata or connect with a client certificate"
    )]
    NoCredentials,
    /// The `authorization` metadata is not `Bearer <token>`: another
    /// scheme, no token, or bytes that are not text.
    #[error("the authorization metadata must read `Bearer <token>`")]
    MalformedAuthorization,
    /// The bearer token hashes to no configured `token_sha256`.
    #[error(
        "the bearer token belongs to no principal: check the token, or ask an operator to add its SHA-256 (`agora hash-token`) to auth.principals"
    )]
    UnknownToken,
    /// A verified client certificate's CN matches no principal's
    /// `tls_subject`.
    #[error(
        "the client certificate's subject CN {subject:?} names no principal: ask an operator to set tls_subject = {subject:?} on one in auth.principals"
    )]
    UnknownSubject {
        /// The certificate's subject CN.
        subject: String,
    },
    /// The client certificate cannot be parsed, or its subject has no CN
    /// readable as text.
    #[error("the client certificate has no readable subject CN to name a principal by")]
    NoSubject,
    /// The certificate and the bearer token name two different principals.
    #[error(
        "the client certificate names principal {certificate:?} and the token names {token:?}: send the credentials of one principal"
    )]
    Conflicting {
        /// The principal the certificate names.
        certificate: String,
        /// The principal the token names.
        token: String,
    },
    /// A principal without `admin = true` called the `Admin` service.
    #[error(
        "principal {principal:?} is not an admin: Admin calls need a principal with admin = true"
    )]
    NotAdmin {
        /// The caller.
        principal: String,
    },
    /// A `Subscribe` names a namespace outside the caller's grant.
    #[error(
        "namespace {namespace:?} is not granted to principal {principal:?}: ask an operator to add it to that principal's namespaces"
    )]
    NamespaceNotGranted {
        /// The caller.
        principal: String,
        /// The first namespace it was refused.
        namespace: String,
    },
}

/// One configured principal with the credentials that prove it.
#[derive(Debug)]
struct Credentials {
    principal: Arc<Principal>,
    token: Option<TokenHash>,
    tls_subject: Option<String>,
}

#[derive(Debug)]
enum Access {
    /// Authentication is off: everyone is [`Principal::anonymous`].
    Open(Arc<Principal>),
    Principals(Vec<Credentials>),
}

/// Authenticates each request and puts the caller's `Arc<Principal>` into
/// its extensions; for the `Admin` service ([`Authenticator::admin_only`])
/// it also requires the admin role.
#[derive(Debug, Clone)]
pub struct Authenticator {
    access: Arc<Access>,
    admin_only: bool,
}

impl Authenticator {
    /// No authentication: every caller is [`Principal::anonymous`].
    pub fn open() -> Authenticator {
        Authenticator {
            access: Arc::new(Access::Open(Arc::new(Principal::anonymous()))),
            admin_only: false,
        }
    }

    /// The principals of the configuration (validated by
    /// [`crate::config::Config::validate`]).
    pub fn new(principals: &[PrincipalSettings]) -> Authenticator {
        let principals = principals
            .iter()
            .map(|settings| Credentials {
                principal: Arc::new(Principal {
                    name: settings.name.clone(),
                    namespaces: if settings.namespaces.iter().any(|ns| ns == "*") {
                        Grant::Every
                    } else {
                        Grant::Only(settings.namespaces.iter().cloned().collect())
                    },
                    admin: settings.admin,
                }),
                token: settings.token_sha256.clone(),
                tls_subject: settings.tls_subject.clone(),
            })
            .collect();
        Authenticator {
            access: Arc::new(Access::Principals(principals)),
            admin_only: false,
        }
    }

    /// The same principals, admitting only admins.
    pub fn admin_only(&self) -> Authenticator {
        Authenticator {
            access: self.access.clone(),
            admin_only: true,
        }
    }

    /// Whether every caller is let in unauthenticated.
    pub fn is_open(&self) -> bool {
        matches!(*self.access, Access::Open(_))
    }

    /// The principal proven by `metadata`'s bearer token and/or the client
    /// certificate's subject CN `subject`, which the TLS layer has already
    /// verified against the configured CA. When both are given they must
    /// name the same principal.
    pub fn authenticate(
        &self,
        metadata: &MetadataMap,
        subject: Option<&str>,
    ) -> Result<Arc<Principal>, AuthError> {
        let credentials = match &*self.access {
            Access::Open(anonymous) => return Ok(anonymous.clone()),
            Access::Principals(credentials) => credentials,
        };
        let by_certificate = subject
            .map(|subject| {
                credentials
                    .iter()
                    .find(|c| c.tls_subject.as_deref() == Some(subject))
                    .map(|c| c.principal.clone())
                    .ok_or_else(|| AuthError::UnknownSubject {
                        subject: subject.to_owned(),
                    })
            })
            .transpose()?;
        let by_token = bearer_token(metadata)?
            .map(|token| by_token(credentials, &TokenHash::of(token)))
            .transpose()?;
        match (by_certificate, by_token) {
            (Some(certificate), Some(token)) if certificate.name != token.name => {
                Err(AuthError::Conflicting {
                    certificate: certificate.name.clone(),
                    token: token.name.clone(),
                })
            }
            (Some(principal), _) | (None, Some(principal)) => Ok(principal),
            (None, None) => Err(AuthError::NoCredentials),
        }
    }

    fn admit(&self, principal: Arc<Principal>) -> Result<Arc<Principal>, AuthError> {
        if self.admin_only && !principal.admin {
            return Err(AuthError::NotAdmin {
                principal: principal.name.clone(),
            });
        }
        Ok(principal)
    }
}

/// Looks at every principal's hash whether or not an earlier one matched,
/// so that the time taken does not tell which principal a token belongs to.
fn by_token(credentials: &[Credentials], hash: &TokenHash) -> Result<Arc<Principal>, AuthError> {
    let mut found = None;
    for credential in credentials {
        if credential.token.as_ref().is_some_and(|t| t.matches(hash)) {
            found = Some(credential.principal.clone());
        }
    }
    found.ok_or(AuthError::UnknownToken)
}

/// The token of an `authorization: Bearer <token>` header, if any.
fn bearer_token(metadata: &MetadataMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::MalformedAuthorization)?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AuthError::MalformedAuthorization)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::MalformedAuthorization);
    }
    Ok(Some(token))
}

/// The subject CN of the leaf certificate the client presented.
fn subject_cn(leaf: &[u8]) -> Result<String, AuthError> {
    let (_, certificate) =
        x509_parser::parse_x509_certificate(leaf).map_err(|_| AuthError::NoSubject)?;
    let cn = certificate
        .subject()
        .iter_common_name()
        .next()
        .ok_or(AuthError::NoSubject)?;
    cn.as_str()
        .map(str::to_owned)
        .map_err(|_| AuthError::NoSubject)
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let subject = request
            .peer_certs()
            .and_then(|certs| certs.first().map(|leaf| subject_cn(leaf)))
            .transpose()?;
        let principal = self.authenticate(request.metadata(), subject.as_deref())?;
        let principal = self.admit(principal)?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The principal the [`Authenticator`] put on `request`; a service reached
/// without it refuses the call rather than guess.
pub fn caller<T>(request: &Request<T>) -> Result<Arc<Principal>, AuthError> {
    request
        .extensions()
        .get::<Arc<Principal>>()
        .cloned()
        .ok_or(AuthError::NoCredentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(name: &str, token: Option<&str>, subject: Option<&str>) -> PrincipalSettings {
        PrincipalSettings {
            name: name.into(),
            token_sha256: token.map(TokenHash::of),
            tls_subject: subject.map(str::to_owned),
            namespaces: vec!["a".into()],
            admin: name == "ops",
        }
    }

    fn authenticator() -> Authenticator {
        Authenticator::new(&[
            settings("ci", Some("ci-token"), None),
            settings("ops", Some("ops-token"), Some("ops")),
        ])
    }

    fn bearer(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", value.parse().unwrap());
        metadata
    }

    #[test]
    fn a_token_names_its_principal() {
        let principal = authenticator()
            .authenticate(&bearer("Bearer ci-token"), None)
            .unwrap();
        assert_eq!(principal.name, "ci");
        let principal = authenticator()
            .authenticate(&bearer("bearer  ops-token "), None)
            .unwrap();
        assert_eq!(principal.name, "ops");
    }

    #[test]
    fn refuses_missing_wrong_and_malformed_credentials() {
        let auth = authenticator();
        let table = [
            (MetadataMap::new(), AuthError::NoCredentials),
            (bearer("Bearer nope"), AuthError::UnknownToken),
            (bearer("ci-token"), AuthError::MalformedAuthorization),
            (bearer("Basic ci-token"), AuthError::MalformedAuthorization),
            (bearer("Bearer "), AuthError::MalformedAuthorization),
        ];
        for (metadata, error) in table {
            assert_eq!(auth.authenticate(&metadata, None), Err(error));
        }
    }

    #[test]
    fn a_certificate_subject_names_its_principal_and_must_agree_with_a_token() {
        let auth = authenticator();
        let none = MetadataMap::new();
        assert_eq!(auth.authenticate(&none, Some("ops")).unwrap().name, "ops");
        assert_eq!(
            auth.authenticate(&none, Some("ci")),
            Err(AuthError::UnknownSubject {
                subject: "ci".into()
            })
        );
        assert_eq!(
            auth.authenticate(&bearer("Bearer ops-token"), Some("ops"))
                .unwrap()
                .name,
            "ops"
        );
        assert_eq!(
            auth.authenticate(&bearer("Bearer ci-token"), Some("ops")),
            Err(AuthError::Conflicting {
                certificate: "ops".into(),
                token: "ci".into()
            })
        );
    }

    #[test]
    fn open_access_lets_everyone_in_as_anonymous() {
        let auth = Authenticator::open();
        let principal = auth.authenticate(&MetadataMap::new(), None).unwrap();
        assert_eq!(*principal, Principal::anonymous());
        assert!(principal.check_namespaces(&["any".into()]).is_ok());
    }

    #[test]
    fn the_admin_interceptor_refuses_non_admins() {
        let mut admin = authenticator().admin_only();
        let mut request = Request::new(());
        *request.metadata_mut() = bearer("Bearer ci-token");
        let status = admin.call(request).unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(status.message().contains("\"ci\""), "{}", status.message());

        let mut request = Request::new(());
        *request.metadata_mut() = bearer("Bearer ops-token");
        let admitted = admin.call(request).unwrap();
        assert_eq!(caller(&admitted).unwrap().name, "ops");
    }

    #[test]
    fn grants_are_checked_per_namespace() {
        let mut principal = Principal {
            name: "ci".into(),
            namespaces: Grant::Only(["a".to_owned()].into()),
            admin: false,
        };
        assert!(principal.check_namespaces(&["a".into()]).is_ok());
        assert_eq!(
            principal.check_namespaces(&["a".into(), "b".into()]),
            Err(AuthError::NamespaceNotGranted {
                principal: "ci".into(),
                namespace: "b".into()
            })
        );
        principal.namespaces = Grant::Every;
        assert!(principal.check_namespaces(&["b".into()]).is_ok());
    }

    #[test]
    fn a_star_grants_every_namespace() {
        let mut star = settings("ci", Some("t"), None);
        star.namespaces = vec!["*".into()];
        let principal = Authenticator::new(&[star])
            .authenticate(&bearer("Bearer t"), None)
            .unwrap();
        assert_eq!(principal.namespaces, Grant::Every);
    }

    #[test]
    fn reads_the_cn_of_a_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ops");
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        assert_eq!(subject_cn(certificate.der()).unwrap(), "ops");
        assert_eq!(subject_cn(b"not a certificate"), Err(AuthError::NoSubject));
    }
}
