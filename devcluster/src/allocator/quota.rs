//! Quota as the allocator enforces it (Mesos ≥ 1.9): per role, scalar
//! *guarantees* (allocated first, headroom held back for them) and
//! *limits* (never allocated beyond), and the quantity arithmetic both
//! need.
//!
//! Mesos accepts quota only on top-level roles, and a top-level role's
//! consumption covers its whole subtree: `eng`'s limit bounds what
//! `eng/frontend` and `eng/backend` get together. Consumption is the
//! subtree's reservations (allocated or not) plus the unreserved,
//! non-revocable scalars offered to or used by it; revocable resources never
//! count.

use std::collections::{BTreeMap, HashMap};

use agora_proto::mesos::v1::Resource;

use super::quantity::{Quantities, add_quantities};
use crate::resources::{Resources, reservation_role, round_scalar};

/// Quantities below this are nothing (Mesos's scalar precision).
const EPSILON: f64 = 0.0005;

/// One role's quota. Names absent from `limits` are unlimited; names absent
/// from `guarantees` are not guaranteed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quota {
    /// Quantities the role is allocated before others get more.
    pub guarantees: Quantities,
    /// Quantities the role is never allocated beyond.
    pub limits: Quantities,
}

impl Quota {
    /// Whether this is the default quota (no guarantee, no limit).
    pub fn is_default(&self) -> bool {
        self.guarantees.is_empty() && self.limits.is_empty()
    }
}

/// The top-level role whose quota covers `role` (`eng` for `eng/web`).
pub fn quota_role(role: &str) -> &str {
    role.split('/').next().unwrap_or(role)
}

/// Whether `role` is `ancestor` or one of its descendants.
pub fn in_subtree(role: &str, ancestor: &str) -> bool {
    role == ancestor
        || role
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `a - b` per name, dropping what reaches zero.
pub fn subtract(a: &Quantities, b: &Quantities) -> Quantities {
    a.iter()
        .filter_map(|(name, value)| {
            let left = round_scalar(value - b.get(name).copied().unwrap_or(0.0));
            (left > EPSILON).then(|| (name.clone(), left))
        })
        .collect()
}

/// Whether `limits` allow `quantities` (names absent from `limits` are
/// unlimited).
pub fn within_limits(limits: &Quantities, quantities: &Quantities) -> bool {
    quantities.iter().all(|(name, value)| {
        limits
            .get(name)
            .is_none_or(|limit| *value <= limit + EPSILON)
    })
}

/// What a limit leaves once `consumed` is taken (absent names stay
/// unlimited).
pub fn limit_headroom(limits: &Quantities, consumed: &Quantities) -> Quantities {
    limits
        .iter()
        .map(|(name, limit)| {
            let used = consumed.get(name).copied().unwrap_or(0.0);
            (name.clone(), round_scalar((limit - used).max(0.0)))
        })
        .collect()
}

/// How [`shrink`] treats names absent from its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    /// Not in the target: none of it (quantities, guarantees, headroom).
    Nothing,
    /// Not in the target: all of it (limits).
    Everything,
}

/// The part of the scalar `resources` that fits in `target`, taken entry
/// by entry (Mesos's `shrinkResources`).
pub fn shrink(resources: &Resources, target: &Quantities, absent: Absent) -> Resources {
    let mut left = target.clone();
    let mut out = Resources::default();
    for resource in resources.iter() {
        let Some(scalar) = resource.scalar else {
            continue;
        };
        let room = match (left.get_mut(&resource.name), absent) {
            (Some(room), _) => room,
            (None, Absent::Everything) => {
                out.add(resource);
                continue;
            }
            (None, Absent::Nothing) => continue,
        };
        let take = round_scalar(scalar.value.min(*room));
        if take <= EPSILON {
            continue;
        }
        *room = round_scalar(*room - take);
        let mut part = resource.clone();
        part.scalar = Some(agora_proto::mesos::v1::value::Scalar { value: take });
        out.add(&part);
    }
    out
}

/// Whether a resource counts against quota when allocated: unreserved,
/// non-revocable scalars (reservations count whether allocated or not).
pub fn is_quota_resource(resource: &Resource) -> bool {
    resource.scalar.is_some() && reservation_role(resource) == "*" && resource.revocable.is_none()
}

/// Every role's quota; roles without an entry have the default.
#[derive(Debug, Default)]
pub struct Quotas {
    roles: BTreeMap<String, Quota>,
}

impl Quotas {
    /// Sets a role's quota; the default quota removes the entry.
    pub fn set(&mut self, role: &str, quota: Quota) {
        if quota.is_default() {
            self.roles.remove(role);
        } else {
            self.roles.insert(role.to_string(), quota);
        }
    }

    /// A role's quota (the default when unset).
    pub fn get(&self, role: &str) -> Quota {
        self.roles.get(role).cloned().unwrap_or_default()
    }

    /// Roles with a non-default quota, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Quota)> {
        self.roles.iter()
    }

    /// Unreserved quantities to hold back so that every role can still
    /// reach its guarantee: the sum of each role's unmet guarantee.
    pub fn required_headroom(&self, consumed: &HashMap<String, Quantities>) -> Quantities {
        let mut out = Quantities::new();
        for (role, quota) in &self.roles {
            let unmet = subtract(
                &quota.guarantees,
                consumed.get(role).unwrap_or(&Quantities::new()),
            );
            add_quantities(&mut out, &unmet);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::parse_resources;

    fn q(pairs: &[(&str, f64)]) -> Quantities {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn quota_roles_are_top_level() {
        assert_eq!(quota_role("eng/web/api"), "eng");
        assert_eq!(quota_role("ops"), "ops");
        assert!(in_subtree("eng/web", "eng"));
        assert!(in_subtree("eng", "eng"));
        assert!(!in_subtree("engineering", "eng"));
    }

    #[test]
    fn shrink_takes_what_fits() {
        let resources = parse_resources("cpus:4;mem:1024;disk:100").unwrap();
        let limited = shrink(&resources, &q(&[("cpus", 1.5)]), Absent::Everything);
        assert_eq!(
            limited,
            parse_resources("cpus:1.5;mem:1024;disk:100").unwrap()
        );
        let guaranteed = shrink(&resources, &q(&[("cpus", 1.5)]), Absent::Nothing);
        assert_eq!(guaranteed, parse_resources("cpus:1.5").unwrap());
        let none = shrink(&resources, &q(&[("cpus", 0.0)]), Absent::Nothing);
        assert!(none.is_empty());
    }

    #[test]
    fn quantity_arithmetic() {
        assert_eq!(
            subtract(&q(&[("cpus", 4.0), ("mem", 10.0)]), &q(&[("cpus", 5.0)])),
            q(&[("mem", 10.0)])
        );
        assert!(within_limits(
            &q(&[("cpus", 2.0)]),
            &q(&[("cpus", 2.0), ("mem", 1e9)])
        ));
        assert!(!within_limits(&q(&[("cpus", 2.0)]), &q(&[("cpus", 2.5)])));
        assert_eq!(
            limit_headroom(&q(&[("cpus", 2.0)]), &q(&[("cpus", 3.0)])),
            q(&[("cpus", 0.0)])
        );
        let mut quotas = Quotas::default();
        quotas.set(
            "a",
            Quota {
                guarantees: q(&[("cpus", 4.0)]),
                limits: q(&[("cpus", 8.0)]),
            },
        );
        quotas.set("b", Quota::default());
        assert_eq!(quotas.iter().count(), 1);
        let consumed = HashMap::from([("a".to_string(), q(&[("cpus", 1.0)]))]);
        assert_eq!(quotas.required_headroom(&consumed), q(&[("cpus", 3.0)]));
    }
}
