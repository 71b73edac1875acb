//! The one error type of the SDK.

use std::{fmt, time::Duration};

use tonic::Code;
use tonic_types::StatusExt;

/// What can go wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address is not a valid URI.
    #[error("invalid broker address {0:?}: expected a URI such as http://127.0.0.1:50051")]
    Address(String),
    /// No connection could be made.
    #[error("cannot connect to the broker at {address}: {}", root_cause(source))]
    Connect {
        /// The address as the caller gave it, so the message shows which
        /// broker was unreachable.
        address: String,
        /// Why the transport gave up.
        #[source]
        source: tonic::transport::Error,
    },
    /// The broker took longer than `within` to answer, as a frozen or
    /// cut-off replica does; another replica is tried.
    #[error("the broker at {address} did not answer within {within:?}")]
    NoAnswer {
        /// The address that stayed silent.
        address: String,
        /// How long it was given.
        within: Duration,
    },
    /// The token cannot be sent as an `authorization` header.
    #[error("the token must be printable ASCII to travel as `authorization: Bearer <token>`")]
    Token,
    /// The TLS settings were refused.
    #[error("invalid TLS settings: {0}")]
    Tls(#[source] tonic::transport::Error),
    /// The broker answered with an error status.
    #[error("broker refused the call: {0}")]
    Status(#[from] tonic::Status),
    /// The stream ended or sent something else before `Subscribed`.
    #[error("the broker did not confirm the subscription")]
    NotSubscribed,
    /// [`crate::Endpoints`] named no address.
    #[error("no broker endpoints given: name at least one, such as http://127.0.0.1:50051")]
    NoEndpoints,
    /// No replica led and answered within the [`crate::Failover`]
    /// deadline; `tried` says what each endpoint answered last.
    #[error("no Agora leader answered within {within:?}; tried {tried}")]
    NoLeader {
        /// The deadline that passed.
        within: Duration,
        /// Every endpoint tried, with its last failure.
        tried: Tried,
    },
}

impl Error {
    /// Whether the broker is away rather than refusing the call: it cannot
    /// be reached, is a standby or restarting, or is not subscribed to Mesos
    /// yet (UNAVAILABLE). The same call may succeed once the leader is back
    /// or [`crate::Events`] has followed it; repeat it only if it is safe to
    /// repeat (see the crate's documentation on failover).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::NoAnswer { .. }
            | Error::NotSubscribed
            | Error::NoLeader { .. } => true,
            Error::Status(status) => {
                status.code() == Code::Unavailable || failed_in_transport(status)
            }
            Error::Address(_) | Error::Token | Error::Tls(_) | Error::NoEndpoints => false,
        }
    }

    /// The leader's address, when a standby refused the call and named it:
    /// UNAVAILABLE with an `ErrorInfo` of reason `NOT_READY` in domain
    /// `agora.v1` whose metadata has `leader`.
    pub fn leader(&self) -> Option<String> {
        let Error::Status(status) = self else {
            return None;
        };
        if status.code() != Code::Unavailable {
            return None;
        }
        let info = status.get_details_error_info()?;
        if info.domain != "agora.v1" || info.reason != "NOT_READY" {
            return None;
        }
        info.metadata.get("leader").cloned()
    }
}

/// Whether the call failed on the way rather than at the broker: tonic
/// reports a connection reset mid-call as UNKNOWN "transport error", with
/// the transport's error as its source (a broker's own statuses have none).
pub fn failed_in_transport(status: &tonic::Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        if error.is::<tonic::transport::Error>() || error.is::<std::io::Error>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The endpoints a search for the leader tried, in the order first tried,
/// each with the last way it failed.
#[derive(Debug, Default)]
pub struct Tried(Vec<(String, Error)>);

impl Tried {
    /// Each endpoint with its last failure.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Error)> {
        self.0
            .iter()
            .map(|(address, error)| (address.as_str(), error))
    }

    /// Keeps `error` as the last word of `address`.
    pub(crate) fn record(&mut self, address: &str, error: Error) {
        match self.0.iter_mut().find(|(tried, _)| tried == address) {
            Some((_, last)) => *last = error,
            None => self.0.push((address.to_owned(), error)),
        }
    }
}

/// `a (why); b (why)`, so one line names every endpoint.
impl fmt::Display for Tried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (address, error)) in self.0.iter().enumerate() {
            let separator = if n == 0 { "" } else { "; " };
            match error {
                // A status's own Display carries its details and metadata.
                Error::Status(status) => write!(
                    f,
                    "{separator}{address} ({:?}: {})",
                    status.code(),
                    status.message()
                )?,
                other => write!(f, "{separator}{address} ({other})")?,
            }
        }
        Ok(())
    }
}

/// The innermost cause, which says what happened ("Connection refused")
/// where the transport's own message says only "transport error".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use tonic::Status;
    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;

    fn refused(code: Code, reason: &str, leader: Option<&str>) -> Error {
        let metadata: std::collections::HashMap<String, String> = leader
            .map(|leader| ("leader".to_owned(), leader.to_owned()))
            .into_iter()
            .collect();
        let details = ErrorDetails::with_error_info(reason, "agora.v1", metadata);
        Error::Status(Status::with_error_details(code, "refused", details))
    }

    #[test]
    fn a_standby_naming_the_leader_is_read_as_such() {
        let standby = refused(Code::Unavailable, "NOT_READY", Some("http://b:1"));
        assert_eq!(standby.leader().as_deref(), Some("http://b:1"));
        assert!(standby.is_unavailable());
        let no_leader = refused(Code::Unavailable, "NOT_READY", None);
        assert_eq!(no_leader.leader(), None);
        assert!(no_leader.is_unavailable());
        let other = refused(Code::FailedPrecondition, "NOT_READY", Some("http://b:1"));
        assert_eq!(other.leader(), None);
        assert!(!other.is_unavailable());
    }

    #[test]
    fn a_connection_reset_mid_call_is_the_broker_being_away() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let status = Status::from_error(Box::new(reset));
        assert!(Error::Status(status).is_unavailable());
        assert!(!Error::Status(Status::unknown("a broker's own answer")).is_unavailable());
    }

    #[test]
    fn tried_keeps_the_last_failure_of_each_endpoint_in_first_tried_order() {
        let mut tried = Tried::default();
        tried.record("a", Error::NotSubscribed);
        tried.record("b", Error::Token);
        tried.record("a", refused(Code::Unavailable, "NOT_READY", None));
        assert_eq!(
            tried.to_string(),
            "a (Unavailable: refused); b (the token must be printable ASCII to travel as \
             `authorization: Bearer <token>`)"
        );
    }
}
