//! Weighted dominant-resource fairness over hierarchical roles: the order
//! in which roles (and a role's frameworks) are visited.
//!
//! Like Mesos's hierarchical sorter, fairness is decided level by level:
//! `eng/web` and `ops` first compare `eng`'s whole subtree against `ops`,
//! and only siblings under `eng` compare among themselves. A role that has
//! both its own frameworks and sub-roles competes with its children as a
//! virtual leaf (`eng/.`). Each level's share is divided by that role's
//! weight.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::quantity::{Quantities, add_quantities};
use super::quota::in_subtree;

/// Dominant share of `allocated` against cluster `totals`.
pub(super) fn dominant_share(allocated: Option<&Quantities>, totals: &Quantities) -> f64 {
    let Some(allocated) = allocated else {
        return 0.0;
    };
    totals
        .iter()
        .filter(|(_, total)| **total > 0.0)
        .map(|(name, total)| allocated.get(name).copied().unwrap_or(0.0) / total)
        .fold(0.0, f64::max)
}

/// One level of a role's sort key: weighted share, then name.
type Level = (f64, String);

fn compare(a: &[Level], b: &[Level]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ordering = x.0.total_cmp(&y.0).then_with(|| x.1.cmp(&y.1));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

/// Orders `roles` for one agent of a cycle: lowest weighted share first,
/// level by level. `usage` is what each role itself holds; `weight` gives
/// each role's weight.
pub(super) fn order_roles(
    roles: &[String],
    usage: &HashMap<String, Quantities>,
    totals: &Quantities,
    weight: impl Fn(&str) -> f64,
) -> Vec<String> {
    let subtree_share = |prefix: &str| {
        let mut sum = Quantities::new();
        for (role, quantities) in usage {
            if in_subtree(role, prefix) {
                add_quantities(&mut sum, quantities);
            }
        }
        dominant_share(Some(&sum), totals) / weight(prefix)
    };
    let mut keyed: Vec<(Vec<Level>, &String)> = roles
        .iter()
        .map(|role| {
            let mut key = Vec::new();
            let mut prefix = String::new();
            for part in role.split('/') {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                key.push((subtree_share(&prefix), part.to_string()));
            }
            let has_children = roles.iter().any(|r| r != role && in_subtree(r, role));
            if has_children {
                let own = dominant_share(usage.get(role.as_str()), totals) / weight(role);
                key.push((own, ".".to_string()));
            }
            (key, role)
        })
        .collect();
    keyed.sort_by(|a, b| compare(&a.0, &b.0));
    keyed.into_iter().map(|(_, role)| role.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(pairs: &[(&str, f64)]) -> HashMap<String, Quantities> {
        pairs
            .iter()
            .map(|(role, cpus)| (role.to_string(), Quantities::from([("cpus".into(), *cpus)])))
            .collect()
    }

    fn roles(names: &[&str]) -> Vec<String> {
        names.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn siblings_compete_under_their_parent() {
        let totals = Quantities::from([("cpus".into(), 100.0)]);
        // eng's subtree (30) holds more than ops (20): ops first, although
        // eng/web alone holds the least.
        let held = usage(&[("eng/web", 5.0), ("eng/api", 25.0), ("ops", 20.0)]);
        let order = order_roles(
            &roles(&["eng/api", "eng/web", "ops"]),
            &held,
            &totals,
            |_| 1.0,
        );
        assert_eq!(order, roles(&["ops", "eng/web", "eng/api"]));
        // Weight 2 on eng halves its share: 15 < 20.
        let order = order_roles(
            &roles(&["eng/api", "eng/web", "ops"]),
            &held,
            &totals,
            |r| {
                if r == "eng" { 2.0 } else { 1.0 }
            },
        );
        assert_eq!(order, roles(&["eng/web", "eng/api", "ops"]));
    }

    #[test]
    fn a_parent_with_frameworks_competes_with_its_children() {
        let totals = Quantities::from([("cpus".into(), 100.0)]);
        let held = usage(&[("eng", 10.0), ("eng/web", 5.0)]);
        let order = order_roles(&roles(&["eng", "eng/web"]), &held, &totals, |_| 1.0);
        assert_eq!(order, roles(&["eng/web", "eng"]));
    }
}
