//! Namespaces as the core checks them: Mesos's rules for role names, and
//! quota that makes sense (weights above zero, guarantees within limits).

use std::collections::BTreeMap;

use super::model::{CoreError, Namespace, RoleQuota};
use super::names::check_name;
use super::resources::Resources;

impl Namespace {
    /// Refuses a namespace Mesos or the quota rules would not accept, with
    /// the reason in words.
    pub fn validate(&self) -> Result<(), CoreError> {
        let invalid = |reason: String| CoreError::InvalidNamespace {
            namespace: self.name.clone(),
            reason,
        };
        check_name(&self.name).map_err(invalid)?;
        validate_role(&self.role)
            .map_err(|reason| invalid(format!("role {:?}: {reason}", self.role)))?;
        if !self.weight.is_finite() || self.weight <= 0.0 {
            return Err(invalid(format!(
                "weight must be above zero (got {})",
                self.weight
            )));
        }
        if let Some((resource, guarantee, limit)) = above_limit(&self.guarantee, &self.limit) {
            return Err(invalid(format!(
                "guarantee of {guarantee} {resource} is above its limit of {limit}"
            )));
        }
        Ok(())
    }

    /// The first limited scalar that `usage` plus `asked` would exceed:
    /// (resource, asked, used, allowed).
    pub(super) fn exceeded_by(
        &self,
        usage: &Resources,
        asked: &Resources,
    ) -> Option<(String, f64, f64, f64)> {
        cap_exceeded(&self.limit, usage, asked)
    }
}

/// The first scalar named by `cap` that `usage` plus `asked` would exceed:
/// (resource, asked, used, allowed). Scalars `cap` does not name are not
/// capped.
pub(super) fn cap_exceeded(
    cap: &Resources,
    usage: &Resources,
    asked: &Resources,
) -> Option<(String, f64, f64, f64)> {
    cap.scalars().find_map(|(name, allowed)| {
        let (used, wanted) = (usage.scalar(name), asked.scalar(name));
        (wanted > 0.0 && usage.milli(name) + asked.milli(name) > cap.milli(name))
            .then(|| (name.to_owned(), wanted, used, allowed))
    })
}

/// The quota to set in Mesos for the top-level roles of `namespaces`: Mesos
/// (≥ 1.9) takes quota on top-level roles, a limit covering the subtree. So
/// guarantees add up, and a resource is limited only if every namespace in
/// the subtree limits it (then by the sum of their limits).
pub(super) fn role_quotas<'a>(
    namespaces: impl IntoIterator<Item = &'a Namespace>,
) -> Vec<RoleQuota> {
    let mut subtrees: BTreeMap<&str, Vec<&Namespace>> = BTreeMap::new();
    for namespace in namespaces {
        let top = namespace.role.split('/').next().unwrap_or_default();
        if top != "*" {
            subtrees.entry(top).or_default().push(namespace);
        }
    }
    subtrees
        .into_iter()
        .map(|(role, members)| {
            let mut guarantee = Resources::default();
            let mut limit = Resources::default();
            for namespace in &members {
                guarantee.add(&namespace.guarantee);
                limit.add(&namespace.limit);
            }
            let limited_by_all: Vec<(String, f64)> = limit
                .scalars()
                .filter(|(name, _)| members.iter().all(|ns| ns.limit.milli(name) > 0))
                .map(|(name, amount)| (name.to_owned(), amount))
                .collect();
            let limit = Resources::from_scalars(
                limited_by_all
                    .iter()
                    .map(|(name, amount)| (name.as_str(), *amount)),
                [],
            )
            .unwrap_or_default();
            RoleQuota {
                role: role.to_owned(),
                guarantee,
                limit,
            }
        })
        .collect()
}

/// The first scalar `guarantee` holds more of than a limit allows.
fn above_limit(guarantee: &Resources, limit: &Resources) -> Option<(String, f64, f64)> {
    guarantee.scalars().find_map(|(name, amount)| {
        let limited = limit.milli(name) > 0;
        (limited && guarantee.milli(name) > limit.milli(name))
            .then(|| (name.to_owned(), amount, limit.scalar(name)))
    })
}

/// Mesos's rules for role names: `*`, or `/`-separated components that are
/// not empty, `.`, `..` or `*`, do not start with `-` and hold no
/// whitespace or backspace.
pub(super) fn validate_role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    if role.is_empty() {
        return Err("a role cannot be empty".into());
    }
    if role.starts_with('/') || role.ends_with('/') {
        return Err("a role cannot start or end with '/'".into());
    }
    if role.contains("//") {
        return Err("a role cannot hold two adjacent '/'".into());
    }
    for component in role.split('/') {
        if matches!(component, "." | ".." | "*") {
            return Err(format!("{component:?} cannot be a component of a role"));
        }
        if component.starts_with('-') {
            return Err(format!("component {component:?} starts with '-'"));
        }
        if component
            .chars()
            .any(|c| c.is_whitespace() || c == '\u{8}' || c == '\u{7f}')
        {
            return Err(format!(
                "component {component:?} holds whitespace or backspace"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_mesos_rules() {
        for good in ["*", "batch", "eng/frontend", "a.b", "team-1/x_y"] {
            assert_eq!(validate_role(good), Ok(()), "{good}");
        }
        for bad in [
            "", "/eng", "eng/", "eng//x", ".", "eng/..", "a/*", "-x", "a b", "a/\tb",
        ] {
            assert!(validate_role(bad).is_err(), "{bad:?}");
        }
    }

    fn res(cpus: f64) -> Resources {
        Resources::from_scalars([("cpus", cpus)], []).unwrap()
    }

    #[test]
    fn quota_must_make_sense() {
        let mut ns = Namespace::new("web", "web");
        assert_eq!(ns.validate(), Ok(()));
        ns.weight = 0.0;
        assert!(ns.validate().is_err());
        ns.weight = 2.0;
        ns.guarantee = res(8.0);
        ns.limit = res(4.0);
        let error = ns.validate().unwrap_err().to_string();
        assert!(
            error.contains("guarantee of 8 cpus is above its limit of 4"),
            "{error}"
        );
        ns.limit = Resources::default();
        assert_eq!(ns.validate(), Ok(()), "no limit: anything goes");
    }

    #[test]
    fn quota_adds_up_over_a_subtree_and_unlimited_wins() {
        let with = |name: &str, role: &str, guarantee: f64, limit: f64| Namespace {
            guarantee: res(guarantee),
            limit: if limit > 0.0 {
                res(limit)
            } else {
                Resources::default()
            },
            ..Namespace::new(name, role)
        };
        let quotas = role_quotas(&[
            with("web", "eng/web", 1.0, 4.0),
            with("api", "eng/api", 2.0, 6.0),
            with("batch", "batch", 0.0, 8.0),
            with("ml", "ml", 0.0, 8.0),
            with("ml-dev", "ml/dev", 0.0, 0.0),
        ]);
        let by_role: Vec<(&str, f64, f64)> = quotas
            .iter()
            .map(|q| {
                (
                    q.role.as_str(),
                    q.guarantee.scalar("cpus"),
                    q.limit.scalar("cpus"),
                )
            })
            .collect();
        assert_eq!(
            by_role,
            [("batch", 0.0, 8.0), ("eng", 3.0, 10.0), ("ml", 0.0, 0.0)],
            "ml/dev is unlimited, so ml is"
        );
    }

    #[test]
    fn only_limited_scalars_are_checked() {
        let mut ns = Namespace::new("web", "web");
        ns.limit = res(4.0);
        let mem = Resources::from_scalars([("mem", 1e6)], []).unwrap();
        assert_eq!(ns.exceeded_by(&res(3.0), &mem), None);
        assert_eq!(ns.exceeded_by(&res(3.0), &res(1.0)), None);
        assert_eq!(
            ns.exceeded_by(&res(3.0), &res(1.5)),
            Some(("cpus".into(), 1.5, 3.0, 4.0))
        );
    }
}
