//! What a master accepts in a FrameworkInfo on SUBSCRIBE and
//! UPDATE_FRAMEWORK, and the roles it subscribes with. A SUBSCRIBE that
//! fails these checks still gets its stream (`200`), which carries one
//! ERROR event and ends, as from a Mesos master; an UPDATE_FRAMEWORK gets
//! a `400`.

use std::collections::HashSet;

use agora_proto::mesos::v1::FrameworkInfo;
use agora_proto::mesos::v1::framework_info::capability::Type as Capability;

use super::model::has_capability;
use crate::resources::is_valid_role;

/// The longest framework id: ids name directories on agents, so Mesos
/// holds them to a file name's limit (`NAME_MAX`).
const MAX_ID_BYTES: usize = 255;

/// The framework id a FrameworkInfo asks for. An empty id asks for none:
/// Mesos registers a new framework, as if the id were unset.
pub(super) fn requested_id(info: &FrameworkInfo) -> Option<&str> {
    info.id
        .as_ref()
        .map(|id| id.value.as_str())
        .filter(|id| !id.is_empty())
}

/// A framework id Mesos can use as a directory name: not too long, not
/// `.` or `..`, without control characters or path separators.
fn validate_id(id: &str) -> Result<(), String> {
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "'FrameworkInfo.id' is longer than {MAX_ID_BYTES} bytes"
        ));
    }
    if id == "." || id == ".." {
        return Err(format!("'FrameworkInfo.id' must not be '{id}'"));
    }
    if id
        .bytes()
        .any(|b| b.is_ascii_control() || b == b'/' || b == b'\\')
    {
        return Err(format!(
            "'FrameworkInfo.id' {id:?} holds a control character, '/' or '\\'"
        ));
    }
    Ok(())
}

/// Whether `seconds` fits the master's durations, a signed 64-bit count
/// of nanoseconds. Negative timeouts fit (they expire at once), and so
/// does NaN, which no comparison rejects in Mesos either.
fn fits_a_duration(seconds: f64) -> bool {
    let nanos = seconds * 1e9;
    let out_of_range = nanos > i64::MAX as f64 || nanos < i64::MIN as f64;
    !out_of_range
}

/// The roles a framework subscribes with: `roles` for MULTI_ROLE
/// frameworks, else its single `role` (default `*`).
pub(super) fn effective_roles(info: &FrameworkInfo) -> Vec<String> {
    if has_capability(info, Capability::MultiRole) {
        info.roles.clone()
    } else {
        #[allow(deprecated)]
        let role = info.role.clone().unwrap_or_else(|| "*".into());
        vec![role]
    }
}

/// Checks a FrameworkInfo (and a suppressed-role set) as the master does
/// on SUBSCRIBE and UPDATE_FRAMEWORK.
pub(super) fn validate_framework_info(
    info: &FrameworkInfo,
    suppressed: &[String],
) -> Result<(), String> {
    let multi_role = has_capability(info, Capability::MultiRole);
    #[allow(deprecated)]
    let role_set = info.role.is_some();
    if multi_role && role_set {
        return Err(
            "'FrameworkInfo.role' must not be set when the MULTI_ROLE capability is set".into(),
        );
    }
    if !multi_role && !info.roles.is_empty() {
        return Err("'FrameworkInfo.roles' is set but the MULTI_ROLE capability is not".into());
    }
    let roles = effective_roles(info);
    let mut seen = HashSet::new();
    for role in &roles {
        if !is_valid_role(role) {
            return Err(format!("Role '{role}' is invalid"));
        }
        if !seen.insert(role) {
            return Err(format!(
                "'FrameworkInfo.roles' contains duplicate role '{role}'"
            ));
        }
    }
    if let Some(id) = requested_id(info) {
        validate_id(id)?;
    }
    if let Some(timeout) = info.failover_timeout
        && !fits_a_duration(timeout)
    {
        return Err(format!(
            "'FrameworkInfo.failover_timeout' ({timeout}) is out of range"
        ));
    }
    for role in suppressed {
        if !roles.contains(role) {
            return Err(format!(
                "Suppressed role '{role}' is not contained in the set of roles"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::mesos::v1::framework_info::Capability as Cap;

    fn info(multi_role: bool, roles: &[&str]) -> FrameworkInfo {
        FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            capabilities: if multi_role {
                vec![Cap {
                    r#type: Some(Capability::MultiRole as i32),
                }]
            } else {
                Vec::new()
            },
            ..Default::default()
        }
    }

    #[test]
    fn framework_info_validation_follows_the_master() {
        assert!(validate_framework_info(&info(true, &["a", "b/c"]), &["a".into()]).is_ok());
        assert!(validate_framework_info(&info(false, &[]), &["*".into()]).is_ok());
        assert!(validate_framework_info(&info(false, &["a"]), &[]).is_err());
        assert!(validate_framework_info(&info(true, &["a", "a"]), &[]).is_err());
        assert!(validate_framework_info(&info(true, &["a b"]), &[]).is_err());
        assert!(validate_framework_info(&info(true, &["a"]), &["b".into()]).is_err());
        let mut single = info(true, &["a"]);
        #[allow(deprecated)]
        {
            single.role = Some("a".into());
        }
        assert!(validate_framework_info(&single, &[]).is_err());
        assert_eq!(effective_roles(&info(false, &[])), vec!["*".to_string()]);
    }

    #[test]
    fn framework_ids_must_make_directory_names_and_empty_means_none() {
        let with_id = |id: &str| FrameworkInfo {
            id: Some(agora_proto::mesos::v1::FrameworkId { value: id.into() }),
            ..info(false, &[])
        };
        for valid in ["", "abc-0001", "a.b", &"x".repeat(MAX_ID_BYTES)] {
            assert!(
                validate_framework_info(&with_id(valid), &[]).is_ok(),
                "{valid:?}"
            );
        }
        let too_long = "x".repeat(MAX_ID_BYTES + 1);
        for invalid in [
            ".",
            "..",
            "a/b",
            "a\\b",
            "a\nb",
            "a\u{7f}b",
            too_long.as_str(),
        ] {
            assert!(
                validate_framework_info(&with_id(invalid), &[]).is_err(),
                "{invalid:?}"
            );
        }
        assert_eq!(requested_id(&with_id("")), None);
        assert_eq!(requested_id(&with_id("a")), Some("a"));
        assert_eq!(requested_id(&info(false, &[])), None);
    }

    #[test]
    fn a_failover_timeout_must_fit_a_duration_in_nanoseconds() {
        let with_timeout = |seconds: f64| FrameworkInfo {
            failover_timeout: Some(seconds),
            ..info(false, &[])
        };
        for valid in [0.0, -1.0, 1_209_600.0, 9.2e9, -9.2e9, f64::NAN] {
            assert!(
                validate_framework_info(&with_timeout(valid), &[]).is_ok(),
                "{valid}"
            );
        }
        for invalid in [9.3e9, -9.3e9, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(
                validate_framework_info(&with_timeout(invalid), &[]).is_err(),
                "{invalid}"
            );
        }
    }
}
