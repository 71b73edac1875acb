//! Building `tonic::Status` values that a caller can act on: the canonical
//! code, a sentence saying what to fix, and machine-readable details — a
//! `google.rpc.ErrorInfo` whose reason is an `agora.v1.ErrorReason` name,
//! plus a `google.rpc.BadRequest` naming the field for invalid input.

use std::collections::HashMap;

use agora_proto::agora::v1::ErrorReason;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of every Agora error.
pub const DOMAIN: &str = "agora.v1";

/// A status with an `ErrorInfo` carrying `reason` and `facts`.
pub fn with_reason(
    code: Code,
    reason: ErrorReason,
    message: impl Into<String>,
    facts: &[(&str, String)],
) -> Status {
    let metadata: HashMap<String, String> = facts
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect();
    let details = ErrorDetails::with_error_info(reason.as_str_name(), DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// `INVALID_ARGUMENT` for one field, with a `BadRequest` naming it.
pub fn invalid_field(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    let mut details =
        ErrorDetails::with_bad_request(vec![FieldViolation::new(field, description.clone())]);
    details.set_error_info(
        ErrorReason::InvalidField.as_str_name(),
        DOMAIN,
        HashMap::from([("field".to_owned(), field.to_owned())]),
    );
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        details,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_field_names_the_field_in_message_and_details() {
        let status = invalid_field("slots[0].resources.cpus", "must not be negative");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "slots[0].resources.cpus: must not be negative"
        );
        let details = status.get_error_details();
        let violation = &details.bad_request().unwrap().field_violations[0];
        assert_eq!(violation.field, "slots[0].resources.cpus");
        assert_eq!(details.error_info().unwrap().reason, "INVALID_FIELD");
    }

    #[test]
    fn reason_and_facts_travel_in_error_info() {
        let status = with_reason(
            Code::NotFound,
            ErrorReason::LeaseNotFound,
            "no lease l-1",
            &[("lease", "l-1".into())],
        );
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "LEASE_NOT_FOUND");
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(info.metadata["lease"], "l-1");
    }
}
