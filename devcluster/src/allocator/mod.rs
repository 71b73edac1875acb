//! The allocator: which (framework, role) gets each agent's free resources.
//!
//! Like Mesos's hierarchical DRF allocator, one cycle visits every agent (in
//! random order) and, for each role in weighted dominant-resource-fair order
//! (lowest share first), each of that role's frameworks in DRF order; the
//! first one not blocked by a refuse filter gets *everything* on the agent
//! the role may use (unreserved plus its reservations): offers are
//! coarse-grained, one agent and one role each. Suppressed roles never ask.
//! Weights are per role (default 1); quota will slot in where a role's
//! candidate resources are computed. Pure: time and randomness come in.

mod filters;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rand::seq::SliceRandom;

use crate::resources::Resources;

pub use filters::{RefuseFilters, refuse_duration};

/// Scalar quantities by resource name.
pub type Quantities = BTreeMap<String, f64>;

/// Mesos's default `--min_allocatable_resources` is `cpus:0.01|mem:32`.
const MIN_CPUS: f64 = 0.01;
const MIN_MEM: f64 = 32.0;

/// Free resources of one agent, as input to a cycle.
#[derive(Debug, Clone)]
pub struct AgentSlot {
    /// Agent id.
    pub id: String,
    /// Resources not offered and not used by tasks.
    pub available: Resources,
}

/// A (framework, role) pair that wants offers (active, not suppressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    /// Framework id.
    pub framework: String,
    /// Role.
    pub role: String,
}

/// One offer to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// Framework id.
    pub framework: String,
    /// The role the resources are allocated to.
    pub role: String,
    /// Agent id.
    pub agent: String,
    /// The resources.
    pub resources: Resources,
}

/// Allocator state that outlives a cycle: filters and role weights.
#[derive(Debug, Default)]
pub struct Allocator {
    /// Refuse filters from DECLINE / ACCEPT.
    pub filters: RefuseFilters,
    weights: HashMap<String, f64>,
}

/// Scalar quantities of `resources`.
pub fn quantities(resources: &Resources) -> Quantities {
    let mut out = Quantities::new();
    for r in resources.iter() {
        if let Some(scalar) = r.scalar {
            *out.entry(r.name.clone()).or_default() += scalar.value;
        }
    }
    out
}

fn add_quantities(into: &mut Quantities, other: &Quantities) {
    for (name, value) in other {
        *into.entry(name.clone()).or_default() += value;
    }
}

/// Dominant share of `allocated` against cluster `totals`.
fn dominant_share(allocated: Option<&Quantities>, totals: &Quantities) -> f64 {
    let Some(allocated) = allocated else {
        return 0.0;
    };
    totals
        .iter()
        .filter(|(_, total)| **total > 0.0)
        .map(|(name, total)| allocated.get(name).copied().unwrap_or(0.0) / total)
        .fold(0.0, f64::max)
}

fn allocatable(resources: &Resources) -> bool {
    resources.scalar("cpus") >= MIN_CPUS || resources.scalar("mem") >= MIN_MEM
}

impl Allocator {
    /// Sets a role's weight (must be positive; others are ignored).
    pub fn set_weight(&mut self, role: &str, weight: f64) {
        if weight.is_finite() && weight > 0.0 {
            self.weights.insert(role.to_string(), weight);
        }
    }

    /// A role's weight (1 unless set).
    pub fn weight(&self, role: &str) -> f64 {
        self.weights.get(role).copied().unwrap_or(1.0)
    }

    /// Runs one cycle. `usage` holds what each (framework, role) already has
    /// (offered or used) and is updated with the new allocations; `totals`
    /// are the cluster's total scalars. `shuffle` randomizes agent order.
    pub fn allocate(
        &mut self,
        now: Instant,
        mut agents: Vec<AgentSlot>,
        demands: &[Demand],
        usage: &mut HashMap<(String, String), Quantities>,
        totals: &Quantities,
        shuffle: bool,
    ) -> Vec<Allocation> {
        if shuffle {
            agents.shuffle(&mut rand::rng());
        }
        let mut roles: Vec<&str> = demands.iter().map(|d| d.role.as_str()).collect();
        roles.sort();
        roles.dedup();
        let mut out = Vec::new();
        for agent in &mut agents {
            let role_usage = |usage: &HashMap<(String, String), Quantities>, role: &str| {
                let mut sum = Quantities::new();
                for ((_, r), q) in usage {
                    if r == role {
                        add_quantities(&mut sum, q);
                    }
                }
                sum
            };
            let mut order: Vec<(f64, &str)> = roles
                .iter()
                .map(|role| {
                    let share = dominant_share(Some(&role_usage(usage, role)), totals);
                    (share / self.weight(role), *role)
                })
                .collect();
            order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
            for (_, role) in order {
                let candidate = agent.available.usable_by(role);
                if candidate.is_empty() || !allocatable(&candidate) {
                    continue;
                }
                let mut frameworks: Vec<(f64, &str)> = demands
                    .iter()
                    .filter(|d| d.role == role)
                    .map(|d| {
                        let key = (d.framework.clone(), role.to_string());
                        (
                            dominant_share(usage.get(&key), totals),
                            d.framework.as_str(),
                        )
                    })
                    .collect();
                frameworks.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
                let chosen = frameworks.into_iter().map(|(_, fw)| fw).find(|fw| {
                    !self
                        .filters
                        .is_filtered(fw, role, &agent.id, &candidate, now)
                });
                let Some(framework) = chosen else {
                    continue;
                };
                agent.available.subtract_all(&candidate);
                add_quantities(
                    usage
                        .entry((framework.to_string(), role.to_string()))
                        .or_default(),
                    &quantities(&candidate),
                );
                out.push(Allocation {
                    framework: framework.to_string(),
                    role: role.to_string(),
                    agent: agent.id.clone(),
                    resources: candidate,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::parse_resources;
    use std::time::Duration;

    fn agents(n: usize, text: &str) -> Vec<AgentSlot> {
        (0..n)
            .map(|i| AgentSlot {
                id: format!("a{i}"),
                available: parse_resources(text).unwrap(),
            })
            .collect()
    }

    fn demand(framework: &str, role: &str) -> Demand {
        Demand {
            framework: framework.into(),
            role: role.into(),
        }
    }

    fn totals(slots: &[AgentSlot]) -> Quantities {
        let mut sum = Quantities::new();
        for slot in slots {
            add_quantities(&mut sum, &quantities(&slot.available));
        }
        sum
    }

    fn count_by_role(allocations: &[Allocation]) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for a in allocations {
            *out.entry(a.role.clone()).or_default() += 1;
        }
        out
    }

    #[test]
    fn offers_are_coarse_grained_per_agent_and_role() {
        let slots = agents(2, "cpus:4;mem:1024;ports:[1-10]");
        let totals = totals(&slots);
        let mut allocator = Allocator::default();
        let mut usage = HashMap::new();
        let out = allocator.allocate(
            Instant::now(),
            slots,
            &[demand("fw", "web")],
            &mut usage,
            &totals,
            false,
        );
        assert_eq!(out.len(), 2);
        for a in &out {
            assert_eq!(
                a.resources,
                parse_resources("cpus:4;mem:1024;ports:[1-10]").unwrap()
            );
        }
    }

    #[test]
    fn drf_splits_agents_evenly_between_equal_roles() {
        let slots = agents(10, "cpus:4;mem:1024");
        let totals = totals(&slots);
        let mut allocator = Allocator::default();
        let mut usage = HashMap::new();
        let out = allocator.allocate(
            Instant::now(),
            slots,
            &[demand("f1", "a"), demand("f2", "b")],
            &mut usage,
            &totals,
            true,
        );
        let counts = count_by_role(&out);
        assert_eq!(counts.get("a"), Some(&5));
        assert_eq!(counts.get("b"), Some(&5));
    }

    #[test]
    fn weights_scale_the_fair_share() {
        let slots = agents(9, "cpus:4;mem:1024");
        let totals = totals(&slots);
        let mut allocator = Allocator::default();
        allocator.set_weight("heavy", 2.0);
        let mut usage = HashMap::new();
        let out = allocator.allocate(
            Instant::now(),
            slots,
            &[demand("f1", "heavy"), demand("f2", "light")],
            &mut usage,
            &totals,
            false,
        );
        let counts = count_by_role(&out);
        assert_eq!(counts.get("heavy"), Some(&6));
        assert_eq!(counts.get("light"), Some(&3));
    }

    #[test]
    fn existing_usage_counts_and_frameworks_share_a_role_fairly() {
        let slots = agents(4, "cpus:4;mem:1024");
        let totals = totals(&slots);
        let mut allocator = Allocator::default();
        let mut usage = HashMap::new();
        usage.insert(
            ("f1".to_string(), "r".to_string()),
            quantities(&parse_resources("cpus:8;mem:2048").unwrap()),
        );
        let out = allocator.allocate(
            Instant::now(),
            slots,
            &[demand("f1", "r"), demand("f2", "r")],
            &mut usage,
            &totals,
            false,
        );
        let to_f2 = out.iter().filter(|a| a.framework == "f2").count();
        assert_eq!(to_f2, 3, "f2 catches up before f1 gets more");
    }

    #[test]
    fn filtered_frameworks_are_skipped_and_reservations_go_to_their_role() {
        let now = Instant::now();
        let slots = vec![AgentSlot {
            id: "a0".into(),
            available: parse_resources("cpus:2;mem:512;cpus(x):4;mem(x):1024").unwrap(),
        }];
        let totals = totals(&slots);
        let mut allocator = Allocator::default();
        allocator.filters.install(
            "f1",
            "web",
            "a0",
            parse_resources("cpus:2;mem:512").unwrap(),
            Duration::from_secs(5),
            now,
        );
        let mut usage = HashMap::new();
        let out = allocator.allocate(
            now,
            slots,
            &[demand("f1", "web"), demand("f2", "web"), demand("f3", "x")],
            &mut usage,
            &totals,
            false,
        );
        let got: Vec<_> = out
            .iter()
            .map(|a| {
                (
                    a.framework.as_str(),
                    a.role.as_str(),
                    a.resources.scalar("cpus"),
                )
            })
            .collect();
        // "web" goes first (equal shares, by name): f1 is filtered, so f2
        // gets the unreserved part; "x" gets its reservation.
        assert_eq!(got, vec![("f2", "web", 2.0), ("f3", "x", 4.0)]);
    }

    #[test]
    fn nothing_below_the_minimum_is_offered() {
        let slots = agents(1, "cpus:0.001;mem:16;ports:[1-2]");
        let totals = totals(&slots);
        let mut allocator = Allocator::default();
        let out = allocator.allocate(
            Instant::now(),
            slots,
            &[demand("f", "r")],
            &mut HashMap::new(),
            &totals,
            false,
        );
        assert!(out.is_empty());
    }
}
