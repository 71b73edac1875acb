//! Fair share between namespaces that wait for the same capacity: first
//! those below their guarantee, the largest unmet part first; then weighted
//! dominant-resource fairness (the smallest dominant share per unit of
//! weight first). Limits are not here: placement never crosses them.

use std::cmp::Ordering;

use super::model::Namespace;
use super::resources::Resources;

/// Where a namespace stands for fair sharing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Standing {
    /// The largest fraction of any guaranteed resource not yet used
    /// (0 when every guarantee is met).
    pub deficit: f64,
    /// The largest share of any resource of `capacity` it uses, divided by
    /// its weight.
    pub weighted_share: f64,
}

impl Standing {
    /// `namespace`'s standing with `usage` out of `capacity`.
    pub(crate) fn of(namespace: &Namespace, usage: &Resources, capacity: &Resources) -> Standing {
        let deficit = namespace
            .guarantee
            .scalars()
            .map(|(name, guaranteed)| ((guaranteed - usage.scalar(name)) / guaranteed).max(0.0))
            .fold(0.0, f64::max);
        Standing {
            deficit,
            weighted_share: dominant_share(usage, capacity) / namespace.weight,
        }
    }

    /// Who is served first: below guarantee before not, larger deficits
    /// first, then smaller weighted shares.
    pub(crate) fn serve_before(&self, other: &Standing) -> Ordering {
        let below = |s: &Standing| s.deficit > 0.0;
        below(other)
            .cmp(&below(self))
            .then_with(|| other.deficit.total_cmp(&self.deficit))
            .then_with(|| self.weighted_share.total_cmp(&other.weighted_share))
    }
}

/// The largest share of any resource of `capacity` that `usage` holds.
pub(crate) fn dominant_share(usage: &Resources, capacity: &Resources) -> f64 {
    usage
        .scalars()
        .filter_map(|(name, used)| {
            let total = capacity.scalar(name);
            (total > 0.0).then(|| used / total)
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn cpus(amount: f64) -> Resources {
        Resources::from_scalars([("cpus", amount)], []).unwrap()
    }

    fn namespace(name: &str, weight: f64, guarantee: f64, limit: f64) -> Namespace {
        Namespace {
            weight,
            guarantee: cpus(guarantee),
            limit: cpus(limit),
            ..Namespace::new(name, name)
        }
    }

    /// Hands out `capacity` one cpu at a time to the namespace served
    /// first that stays within its limit, as the core does with waiting
    /// demand that never runs out; returns each namespace's cpus.
    fn share_out(namespaces: &[Namespace], capacity: u32) -> Vec<f64> {
        let total = cpus(f64::from(capacity));
        let mut usage: BTreeMap<&str, Resources> = BTreeMap::new();
        for _ in 0..capacity {
            let next = namespaces
                .iter()
                .filter(|ns| {
                    let used = usage.get(ns.name.as_str()).cloned().unwrap_or_default();
                    ns.exceeded_by(&used, &cpus(1.0)).is_none()
                })
                .min_by(|a, b| {
                    let standing = |ns: &Namespace| {
                        let used = usage.get(ns.name.as_str()).cloned().unwrap_or_default();
                        Standing::of(ns, &used, &total)
                    };
                    standing(a).serve_before(&standing(b))
                });
            let Some(next) = next else { break };
            usage.entry(&next.name).or_default().add(&cpus(1.0));
        }
        namespaces
            .iter()
            .map(|ns| {
                usage
                    .get(ns.name.as_str())
                    .map_or(0.0, |r| r.scalar("cpus"))
            })
            .collect()
    }

    #[test]
    fn weights_divide_capacity() {
        let shares = share_out(
            &[namespace("a", 3.0, 0.0, 0.0), namespace("b", 1.0, 0.0, 0.0)],
            16,
        );
        assert_eq!(shares, [12.0, 4.0]);
    }

    #[test]
    fn a_guarantee_is_served_before_weights() {
        let shares = share_out(
            &[namespace("a", 9.0, 0.0, 0.0), namespace("b", 1.0, 6.0, 0.0)],
            10,
        );
        assert_eq!(shares, [4.0, 6.0]);
    }

    fn arb_namespaces() -> impl Strategy<Value = Vec<Namespace>> {
        proptest::collection::vec((1u32..5, 0u32..6, 0u32..12), 1..5).prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (weight, guarantee, limit))| {
                    let limit = if limit == 0 {
                        0.0
                    } else {
                        f64::from(guarantee.max(limit))
                    };
                    namespace(
                        &format!("ns{i}"),
                        f64::from(weight),
                        f64::from(guarantee),
                        limit,
                    )
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn limits_hold_guarantees_come_first_and_shares_follow_weights(
            namespaces in arb_namespaces(),
            capacity in 1u32..40,
        ) {
            let shares = share_out(&namespaces, capacity);
            let guaranteed: f64 = namespaces.iter().map(|ns| ns.guarantee.scalar("cpus")).sum();
            for (ns, &got) in namespaces.iter().zip(&shares) {
                let limit = ns.limit.scalar("cpus");
                prop_assert!(limit == 0.0 || got <= limit, "{} above its limit", ns.name);
                // Deficits first: while guarantees fit, each is met.
                if guaranteed <= f64::from(capacity) {
                    prop_assert!(got >= ns.guarantee.scalar("cpus"), "{} below guarantee", ns.name);
                }
            }
            // Past guarantees, two namespaces that both could take more hold
            // weighted shares within one cpu of each other's.
            let total: f64 = shares.iter().sum();
            if total < f64::from(capacity) {
                return Ok(());
            }
            for (i, a) in namespaces.iter().enumerate() {
                for (j, b) in namespaces.iter().enumerate() {
                    let open = |ns: &Namespace, got: f64| {
                        (ns.limit.scalar("cpus") == 0.0 || got < ns.limit.scalar("cpus"))
                            && got > ns.guarantee.scalar("cpus")
                    };
                    if i != j && open(a, shares[i]) && open(b, shares[j]) {
                        let gap = shares[i] / a.weight - shares[j] / b.weight;
                        prop_assert!(
                            gap.abs() <= 1.0 / a.weight.min(b.weight) + 1e-9,
                            "{} has {} (weight {}), {} has {} (weight {})",
                            a.name, shares[i], a.weight, b.name, shares[j], b.weight
                        );
                    }
                }
            }
        }
    }
}
