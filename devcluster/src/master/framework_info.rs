//! What a master accepts in a FrameworkInfo on SUBSCRIBE and
//! UPDATE_FRAMEWORK, and the roles it subscribes with. A SUBSCRIBE that
//! fails these checks still gets its stream (`200`), which carries one
//! ERROR event and ends, as from a Mesos master; an UPDATE_FRAMEWORK gets
//! a `400`.

use std::collections::HashSet;

use agora_proto::mesos::v1::FrameworkInfo;
use agora_proto::mesos::v1::framework_info::capability::Type as Capability;

use super::has_capability;
use crate::resources::is_valid_role;

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
    if let Some(id) = &info.id
        && id.value.is_empty()
    {
        return Err("'FrameworkInfo.id' must not be empty".into());
    }
    if let Some(timeout) = info.failover_timeout
        && (!timeout.is_finite() || timeout < 0.0)
    {
        return Err(format!("Invalid failover_timeout: {timeout}"));
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
}
