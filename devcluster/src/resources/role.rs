//! Roles as resources see them: valid names, the role a resource is
//! reserved to, and which roles may use a reservation. Apart from the
//! bag, so that the text parser checks roles without depending on it.

use agora_proto::mesos::v1::Resource;

/// Whether `role` is a valid Mesos role name (`*`, or `/`-separated
/// components that are not `.`, `..` or `*`, do not start with `-` and hold
/// no whitespace or DEL).
pub fn is_valid_role(role: &str) -> bool {
    if role == "*" {
        return true;
    }
    if role.is_empty() || role.starts_with('/') || role.ends_with('/') || role.contains("//") {
        return false;
    }
    role.split('/').all(|part| {
        !matches!(part, "." | ".." | "*")
            && !part.starts_with('-')
            && !part
                .chars()
                .any(|c| matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{7f}'))
    })
}

/// The reservation role of `resource` (`*` when unreserved), reading both
/// the pre- and the post-refinement format.
pub fn reservation_role(resource: &Resource) -> &str {
    if let Some(last) = resource.reservations.last() {
        return last.role.as_deref().unwrap_or("*");
    }
    #[allow(deprecated)]
    resource.role.as_deref().unwrap_or("*")
}

/// Whether resources reserved to `reserved` may be allocated to `role`:
/// unreserved, reserved to the role itself or to one of its ancestors.
pub fn usable_by(reserved: &str, role: &str) -> bool {
    reserved == "*"
        || reserved == role
        || role
            .strip_prefix(reserved)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_role_names() {
        for good in ["*", "web", "eng/frontend", "k8s-payments", "a.b"] {
            assert!(is_valid_role(good), "{good}");
        }
        for bad in ["", "/a", "a/", "a//b", ".", "a/..", "-a", "a b", "a/*"] {
            assert!(!is_valid_role(bad), "{bad}");
        }
    }
}
