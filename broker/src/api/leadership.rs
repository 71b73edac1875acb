//! Which replica serves. Several `agora serve` replicas may share one etcd
//! store; only the elected leader holds the Mesos connection and the core.
//! A standby still listens, so that callers find out where to go: its
//! health is NOT_SERVING, and every Broker and Admin call is answered
//! UNAVAILABLE with the leader's address in the `ErrorInfo` metadata
//! (`leader`), which clients follow.

use agora_proto::agora::v1::ErrorReason;
use tokio::sync::watch;
use tonic::{Code, Request, Status, service::Interceptor};

use super::status::with_reason;

/// This replica's part, as the API answers by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// It leads: calls reach its core.
    Leader,
    /// Another replica leads, at `leader` when known.
    Standby {
        /// The leader's advertised gRPC address, such as
        /// `http://10.0.0.2:50051`.
        leader: Option<String>,
    },
}

/// An interceptor that lets calls through only while this replica leads,
/// then hands them to `inner` (authentication).
#[derive(Clone)]
pub struct LeaderOnly<I> {
    role: watch::Receiver<Role>,
    inner: I,
}

impl<I> LeaderOnly<I> {
    /// Guards `inner` with the replica's `role`.
    pub fn new(role: watch::Receiver<Role>, inner: I) -> Self {
        LeaderOnly { role, inner }
    }
}

impl<I: Interceptor> Interceptor for LeaderOnly<I> {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if let Role::Standby { leader } = &*self.role.borrow() {
            return Err(not_the_leader(leader.as_deref()));
        }
        self.inner.call(request)
    }
}

/// UNAVAILABLE from a standby, naming the leader when it is known.
fn not_the_leader(leader: Option<&str>) -> Status {
    match leader {
        Some(leader) => with_reason(
            Code::Unavailable,
            ErrorReason::NotReady,
            format!("this Agora replica is a standby; the leader is at {leader}"),
            &[("leader", leader.to_owned())],
        ),
        None => with_reason(
            Code::Unavailable,
            ErrorReason::NotReady,
            "this Agora replica is a standby and no leader is elected right now; retry shortly",
            &[],
        ),
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    fn passes(request: Request<()>) -> Result<Request<()>, Status> {
        Ok(request)
    }

    #[test]
    fn a_standby_names_the_leader_and_a_leader_lets_calls_through() {
        let (role_tx, role) = watch::channel(Role::Standby {
            leader: Some("http://10.0.0.2:50051".into()),
        });
        let mut gate = LeaderOnly::new(role, passes);
        let refused = gate.call(Request::new(())).unwrap_err();
        assert_eq!(refused.code(), Code::Unavailable);
        let info = refused.get_details_error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "NOT_READY");
        assert_eq!(
            info.metadata.get("leader").map(String::as_str),
            Some("http://10.0.0.2:50051")
        );

        role_tx.send_replace(Role::Standby { leader: None });
        let refused = gate.call(Request::new(())).unwrap_err();
        assert_eq!(refused.code(), Code::Unavailable);

        role_tx.send_replace(Role::Leader);
        assert!(gate.call(Request::new(())).is_ok());
    }
}
