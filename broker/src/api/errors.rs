//! The one place domain errors become gRPC statuses: each [`CoreError`]
//! maps to its canonical code, a message saying what to fix, and an
//! `ErrorInfo` with its reason and facts.

use agora_proto::agora::v1::ErrorReason;
use tonic::{Code, Status};

use super::{
    auth::AuthError,
    ownership::OwnershipError,
    status::{invalid_field, with_reason},
};
use crate::{runtime::AdminError, store::StoreError};
use agora_core::CoreError;

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Status {
        let message = error.to_string();
        match error {
            AuthError::NoCredentials
            | AuthError::MalformedAuthorization
            | AuthError::UnknownToken
            | AuthError::UnknownSubject { .. }
            | AuthError::NoSubject
            | AuthError::Conflicting { .. } => Status::unauthenticated(message),
            AuthError::NotAdmin { .. } => Status::permission_denied(message),
            AuthError::NamespaceNotGranted { namespace, .. } => with_reason(
                Code::PermissionDenied,
                ErrorReason::NamespaceNotGranted,
                message,
                &[("namespace", namespace)],
            ),
        }
    }
}

/// A foreign session is answered exactly as a missing one: the same code,
/// message and details, so its existence is not revealed.
impl From<OwnershipError> for Status {
    fn from(error: OwnershipError) -> Status {
        match error {
            OwnershipError::SessionNotFound(session) => {
                core_status(CoreError::SessionNotFound(session))
            }
        }
    }
}

/// The gRPC status for a core refusal: the code the caller acts on, and an
/// `ErrorInfo` reason with the details that say what to fix. A function,
/// not a `From` impl, because neither type is this crate's.
pub fn core_status(error: CoreError) -> Status {
    let message = error.to_string();
    match error {
        CoreError::InvalidResource(invalid) => invalid_field(&invalid.name, invalid.reason),
        CoreError::InvalidRequest { field, reason } => invalid_field(&field, reason),
        CoreError::SessionNotFound(session) => with_reason(
            Code::NotFound,
            ErrorReason::SessionNotFound,
            message,
            &[("session", session.0)],
        ),
        CoreError::NamespaceNotFound(namespace) => with_reason(
            Code::NotFound,
            ErrorReason::NamespaceNotFound,
            message,
            &[("namespace", namespace)],
        ),
        CoreError::Recovering { unsettled } => with_reason(
            Code::Unavailable,
            ErrorReason::NotReady,
            message,
            &[("unsettled_tasks", unsettled.to_string())],
        ),
        CoreError::NamespaceNotSubscribed { namespace } => with_reason(
            Code::PermissionDenied,
            ErrorReason::NamespaceNotGranted,
            message,
            &[("namespace", namespace)],
        ),
        CoreError::LeaseNotFound(lease) => with_reason(
            Code::NotFound,
            ErrorReason::LeaseNotFound,
            message,
            &[("lease", lease.0)],
        ),
        CoreError::TaskExceedsLease {
            lease,
            resource,
            asked,
            available,
        } => with_reason(
            Code::InvalidArgument,
            ErrorReason::TaskExceedsLease,
            message,
            &[
                ("lease", lease.0),
                ("resource", resource),
                ("asked", asked.to_string()),
                ("available", available.to_string()),
            ],
        ),
        CoreError::DuplicateTask { client_id } => invalid_field(
            "task.id",
            format!("a live task with id {client_id:?} already exists for this frontend"),
        ),
        CoreError::TaskNotFound(task) => with_reason(
            Code::NotFound,
            ErrorReason::TaskNotFound,
            message,
            &[("task", task.0)],
        ),
        CoreError::RequestIdReused { .. } => invalid_field("request_id", message),
        CoreError::QuotaExceeded {
            namespace,
            resource,
            asked,
            used,
            allowed,
        } => with_reason(
            Code::ResourceExhausted,
            ErrorReason::QuotaExceeded,
            message,
            &[
                ("namespace", namespace),
                ("resource", resource),
                ("asked", asked.to_string()),
                ("used", used.to_string()),
                ("allowed", allowed.to_string()),
            ],
        ),
        CoreError::InvalidNamespace { .. } => invalid_field("namespace", message),
        CoreError::NamespaceInUse { namespace, .. } => with_reason(
            Code::FailedPrecondition,
            ErrorReason::NamespaceInUse,
            message,
            &[("namespace", namespace)],
        ),
        CoreError::CannotFit {
            field,
            resource,
            asked,
            available,
        } => with_reason(
            Code::FailedPrecondition,
            ErrorReason::CannotFit,
            message,
            &[
                ("field", field),
                ("resource", resource),
                ("asked", asked.to_string()),
                ("available", available.to_string()),
            ],
        ),
        CoreError::NoCapacity { waited } => with_reason(
            Code::DeadlineExceeded,
            ErrorReason::NoCapacity,
            format!("{message}; wait longer (wait_for) or ask for less"),
            &[("waited", format!("{waited:?}"))],
        ),
        CoreError::FrontendNotFound(frontend) => with_reason(
            Code::NotFound,
            ErrorReason::FrontendNotFound,
            message,
            &[("frontend", frontend.0)],
        ),
        CoreError::FrontendTaken { .. } => Status::permission_denied(message),
        CoreError::FrontendDraining { frontend } => with_reason(
            Code::FailedPrecondition,
            ErrorReason::FrontendDraining,
            message,
            &[("frontend", frontend.0)],
        ),
    }
}

impl From<AdminError> for Status {
    fn from(error: AdminError) -> Status {
        match error {
            AdminError::Core(error) => core_status(error),
            AdminError::Store(StoreError::Fenced) => with_reason(
                Code::Unavailable,
                ErrorReason::NotReady,
                "this replica is no longer the leader; nothing was changed, retry on the leader",
                &[],
            ),
            AdminError::Store(error) => Status::internal(format!(
                "{error}; nothing was changed, retry or check the store"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use agora_core::{FrontendName, LeaseId, SessionId, TaskId};
    use tonic_types::StatusExt;

    #[test]
    fn every_error_has_its_code_and_reason() {
        let lease = || LeaseId("l-1".into());
        let table = [
            (
                CoreError::LeaseNotFound(lease()),
                Code::NotFound,
                "LEASE_NOT_FOUND",
            ),
            (
                CoreError::TaskNotFound(TaskId("t".into())),
                Code::NotFound,
                "TASK_NOT_FOUND",
            ),
            (
                CoreError::SessionNotFound(SessionId("s".into())),
                Code::NotFound,
                "SESSION_NOT_FOUND",
            ),
            (
                CoreError::NamespaceNotFound("x".into()),
                Code::NotFound,
                "NAMESPACE_NOT_FOUND",
            ),
            (
                CoreError::NamespaceNotSubscribed {
                    namespace: "x".into(),
                },
                Code::PermissionDenied,
                "NAMESPACE_NOT_GRANTED",
            ),
            (
                CoreError::TaskExceedsLease {
                    lease: lease(),
                    resource: "cpus".into(),
                    asked: 2.0,
                    available: 1.0,
                },
                Code::InvalidArgument,
                "TASK_EXCEEDS_LEASE",
            ),
            (
                CoreError::NoCapacity {
                    waited: Duration::from_secs(1),
                },
                Code::DeadlineExceeded,
                "NO_CAPACITY",
            ),
            (
                CoreError::CannotFit {
                    field: "slots[0]".into(),
                    resource: "cpus".into(),
                    asked: 100.0,
                    available: 4.0,
                },
                Code::FailedPrecondition,
                "CANNOT_FIT",
            ),
            (
                CoreError::InvalidRequest {
                    field: "slots".into(),
                    reason: "empty".into(),
                },
                Code::InvalidArgument,
                "INVALID_FIELD",
            ),
            (
                CoreError::DuplicateTask {
                    client_id: "t".into(),
                },
                Code::InvalidArgument,
                "INVALID_FIELD",
            ),
            (
                CoreError::FrontendNotFound(FrontendName("spark".into())),
                Code::NotFound,
                "FRONTEND_NOT_FOUND",
            ),
            (
                CoreError::FrontendDraining {
                    frontend: FrontendName("spark".into()),
                },
                Code::FailedPrecondition,
                "FRONTEND_DRAINING",
            ),
        ];
        for (error, code, reason) in table {
            let status = core_status(error.clone());
            assert_eq!(status.code(), code, "{error}");
            assert_eq!(
                status.get_error_details().error_info().unwrap().reason,
                reason,
                "{error}"
            );
        }
    }

    #[test]
    fn refused_callers_get_unauthenticated_or_permission_denied() {
        let table = [
            (AuthError::NoCredentials, Code::Unauthenticated),
            (AuthError::MalformedAuthorization, Code::Unauthenticated),
            (AuthError::UnknownToken, Code::Unauthenticated),
            (
                AuthError::UnknownSubject {
                    subject: "x".into(),
                },
                Code::Unauthenticated,
            ),
            (AuthError::NoSubject, Code::Unauthenticated),
            (
                AuthError::Conflicting {
                    certificate: "a".into(),
                    token: "b".into(),
                },
                Code::Unauthenticated,
            ),
            (
                AuthError::NotAdmin {
                    principal: "ci".into(),
                },
                Code::PermissionDenied,
            ),
        ];
        for (error, code) in table {
            assert_eq!(Status::from(error.clone()).code(), code, "{error}");
        }
        let status = Status::from(AuthError::NamespaceNotGranted {
            principal: "ci".into(),
            namespace: "prod".into(),
        });
        assert_eq!(status.code(), Code::PermissionDenied);
        assert!(
            status.message().contains("\"prod\""),
            "{}",
            status.message()
        );
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "NAMESPACE_NOT_GRANTED");
        assert_eq!(info.metadata["namespace"], "prod");
    }

    #[test]
    fn a_foreign_session_is_indistinguishable_from_a_missing_one() {
        let session = SessionId("session-1".into());
        let foreign = Status::from(OwnershipError::SessionNotFound(session.clone()));
        let missing = core_status(CoreError::SessionNotFound(session));
        assert_eq!(foreign.code(), missing.code());
        assert_eq!(foreign.message(), missing.message());
        assert_eq!(foreign.details(), missing.details());
        let taken = core_status(CoreError::FrontendTaken {
            frontend: FrontendName("spark".into()),
        });
        assert_eq!(taken.code(), Code::PermissionDenied);
        assert!(taken.message().contains("\"spark\""), "{}", taken.message());
    }

    #[test]
    fn a_drained_frontend_is_told_which_frontend_and_how_to_get_out() {
        let status = core_status(CoreError::FrontendDraining {
            frontend: FrontendName("spark".into()),
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("until the drain is undone"));
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.metadata["frontend"], "spark");
    }

    #[test]
    fn a_task_too_big_tells_the_numbers() {
        let status = core_status(CoreError::TaskExceedsLease {
            lease: LeaseId("l-1".into()),
            resource: "cpus".into(),
            asked: 2.0,
            available: 1.0,
        });
        assert_eq!(
            status.message(),
            "lease l-1 holds 1 cpus, the task asks for 2"
        );
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.metadata["asked"], "2");
    }
}
