//! The allocator: which (framework, role) gets each agent's free resources.
//!
//! Like Mesos's hierarchical DRF allocator (`__generateOffers`), a cycle
//! runs in two stages over the agents (in random order). For each agent,
//! roles are visited in hierarchical weighted-DRF order (the `drf` module) and
//! each role's frameworks in DRF order; the first framework not blocked by
//! a refuse filter gets everything on the agent the role may use: offers
//! are coarse-grained, one agent and one role each. Suppressed roles never
//! ask.
//!
//! 1. Roles below their quota guarantee are served first, and only if the
//!    agent brings them closer to it.
//! 2. Every role, with what is left.
//!
//! In both stages reservations, non-scalar and revocable resources always
//! go with the offer, while unreserved scalars are cut to the role's quota
//! limit and to what must be held back for other roles' unmet guarantees
//! (see [`quota`]). Pure: time and randomness come in, so a cycle's
//! outcome follows from its arguments alone.

mod drf;
mod filters;
mod quantity;
pub mod quota;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use rand::RngCore;
use rand::seq::SliceRandom;

use crate::resources::Resources;

pub use filters::{RefuseFilters, refuse_duration};
pub use quantity::{Quantities, add_quantities, quantities};
use quota::{
    Absent, Quota, Quotas, is_quota_resource, limit_headroom, quota_role, shrink, subtract,
};

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
    /// Whether the framework takes revocable resources
    /// (REVOCABLE_RESOURCES); others never see them.
    pub revocable: bool,
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

/// What a cycle starts from.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every agent with something free.
    pub agents: Vec<AgentSlot>,
    /// Who wants offers.
    pub demands: Vec<Demand>,
    /// What each (framework, role) holds, offered or used (for DRF).
    pub usage: HashMap<(String, String), Quantities>,
    /// Quota consumption of each top-level role (see [`quota`]).
    pub consumed: HashMap<String, Quantities>,
    /// The cluster's total scalars.
    pub totals: Quantities,
}

/// Allocator state that outlives a cycle: filters, role weights, quota.
#[derive(Debug, Default)]
pub struct Allocator {
    /// Refuse filters from DECLINE / ACCEPT.
    pub filters: RefuseFilters,
    /// Quota per top-level role.
    pub quotas: Quotas,
    weights: BTreeMap<String, f64>,
}

/// `available` with its quota resources replaced by the `chosen` part of
/// them, in `available`'s order (offers list resources as the agent does).
fn in_order(available: &Resources, chosen: &Resources) -> Resources {
    let mut out = Resources::default();
    for resource in available.iter() {
        if !is_quota_resource(resource) {
            out.add(resource);
        } else if let Some(part) = chosen.iter().find(|c| c.name == resource.name) {
            out.add(part);
        }
    }
    out
}

fn allocatable(resources: &Resources) -> bool {
    resources.scalar("cpus") >= MIN_CPUS || resources.scalar("mem") >= MIN_MEM
}

/// The state one cycle mutates as it hands resources out.
struct Cycle<'a> {
    allocator: &'a mut Allocator,
    now: Instant,
    snapshot: Snapshot,
    roles: Vec<String>,
    required_headroom: Quantities,
    available_headroom: Quantities,
    out: Vec<Allocation>,
}

/// Which stage of a cycle is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Guarantees,
    Everyone,
}

impl Cycle<'_> {
    fn role_order(&self) -> Vec<String> {
        let mut by_role: HashMap<String, Quantities> = HashMap::new();
        for ((_, role), held) in &self.snapshot.usage {
            add_quantities(by_role.entry(role.clone()).or_default(), held);
        }
        drf::order_roles(&self.roles, &by_role, &self.snapshot.totals, |role| {
            self.allocator.weight(role)
        })
    }

    fn framework_order(&self, role: &str) -> Vec<(String, bool)> {
        let mut frameworks: Vec<(f64, &str, bool)> = self
            .snapshot
            .demands
            .iter()
            .filter(|d| d.role == role)
            .map(|d| {
                let key = (d.framework.clone(), role.to_string());
                let share =
                    drf::dominant_share(self.snapshot.usage.get(&key), &self.snapshot.totals);
                (share, d.framework.as_str(), d.revocable)
            })
            .collect();
        frameworks.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        frameworks
            .into_iter()
            .map(|(_, f, revocable)| (f.to_string(), revocable))
            .collect()
    }

    fn consumed(&self, role: &str) -> Quantities {
        self.snapshot
            .consumed
            .get(quota_role(role))
            .cloned()
            .unwrap_or_default()
    }

    /// Offers what `role` may get of `agent` to its frameworks in turn.
    fn serve(&mut self, stage: Stage, agent: usize, role: &str) {
        let quota = self.allocator.quotas.get(quota_role(role));
        for (framework, takes_revocable) in self.framework_order(role) {
            let mut unmet = subtract(&quota.guarantees, &self.consumed(role));
            if stage == Stage::Guarantees && unmet.is_empty() {
                return;
            }
            let usable = self.snapshot.agents[agent].available.usable_by(role);
            if usable.is_empty() {
                return;
            }
            let available = usable.filter(|r| takes_revocable || r.revocable.is_none());
            if !allocatable(&available) {
                continue;
            }
            let quota_part = available.filter(is_quota_resource);
            let guaranteed = match stage {
                Stage::Guarantees => shrink(&quota_part, &unmet, Absent::Nothing),
                Stage::Everyone => Resources::default(),
            };
            if stage == Stage::Guarantees && guaranteed.is_empty() {
                continue;
            }
            let mut additional = quota_part.clone();
            additional.subtract_all(&guaranteed);
            additional = self.cut(&quota, role, &guaranteed, additional);
            let mut chosen = guaranteed.clone();
            chosen.add_all(&additional);
            let to_offer = in_order(&available, &chosen);
            let agent_id = self.snapshot.agents[agent].id.clone();
            if !allocatable(&to_offer)
                || self
                    .allocator
                    .filters
                    .is_filtered(&framework, role, &agent_id, &to_offer, self.now)
            {
                continue;
            }
            let guaranteed = quantities(&guaranteed);
            let mut increase = guaranteed.clone();
            add_quantities(&mut increase, &quantities(&additional));
            unmet = subtract(&unmet, &increase);
            add_quantities(
                self.snapshot
                    .consumed
                    .entry(quota_role(role).to_string())
                    .or_default(),
                &increase,
            );
            if stage == Stage::Guarantees {
                self.required_headroom = subtract(&self.required_headroom, &guaranteed);
            }
            self.available_headroom = subtract(&self.available_headroom, &increase);
            self.commit(agent, &framework, role, to_offer);
            if stage == Stage::Guarantees && unmet.is_empty() {
                return;
            }
        }
    }

    /// Cuts unreserved scalars beyond the guarantee to the role's limit and
    /// to the headroom other roles' unmet guarantees need.
    fn cut(
        &self,
        quota: &Quota,
        role: &str,
        guaranteed: &Resources,
        additional: Resources,
    ) -> Resources {
        let mut additional = additional;
        if !quota.limits.is_empty() {
            let mut consumed = self.consumed(role);
            add_quantities(&mut consumed, &quantities(guaranteed));
            let room = limit_headroom(&quota.limits, &consumed);
            additional = shrink(&additional, &room, Absent::Everything);
        }
        if !self.required_headroom.is_empty() {
            let surplus = subtract(&self.available_headroom, &self.required_headroom);
            additional = shrink(&additional, &surplus, Absent::Nothing);
        }
        additional
    }

    fn commit(&mut self, agent: usize, framework: &str, role: &str, resources: Resources) {
        let slot = &mut self.snapshot.agents[agent];
        slot.available.subtract_all(&resources);
        add_quantities(
            self.snapshot
                .usage
                .entry((framework.to_string(), role.to_string()))
                .or_default(),
            &quantities(&resources),
        );
        let existing = self
            .out
            .iter_mut()
            .find(|a| a.framework == framework && a.role == role && a.agent == slot.id);
        match existing {
            Some(allocation) => allocation.resources.add_all(&resources),
            None => self.out.push(Allocation {
                framework: framework.to_string(),
                role: role.to_string(),
                agent: slot.id.clone(),
                resources,
            }),
        }
    }

    fn run_stage<R: RngCore + ?Sized>(&mut self, stage: Stage, shuffle: Option<&mut R>) {
        let mut order: Vec<usize> = (0..self.snapshot.agents.len()).collect();
        if let Some(rng) = shuffle {
            order.shuffle(rng);
        }
        for agent in order {
            for role in self.role_order() {
                if self.snapshot.agents[agent].available.is_empty() {
                    break;
                }
                let has_guarantee = !self
                    .allocator
                    .quotas
                    .get(quota_role(&role))
                    .guarantees
                    .is_empty();
                if stage == Stage::Guarantees && !has_guarantee {
                    continue;
                }
                self.serve(stage, agent, &role);
            }
        }
    }
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

    /// Roles with a weight set, by name.
    pub fn weights(&self) -> impl Iterator<Item = (&String, &f64)> {
        self.weights.iter()
    }

    /// Runs one cycle over `snapshot`. With `shuffle`, agents are visited
    /// in an order drawn from it (as Mesos does, so that no agent is
    /// always offered first); without, in the snapshot's order.
    pub fn allocate(
        &mut self,
        now: Instant,
        snapshot: Snapshot,
        mut shuffle: Option<&mut dyn RngCore>,
    ) -> Vec<Allocation> {
        let mut roles: Vec<String> = snapshot.demands.iter().map(|d| d.role.clone()).collect();
        roles.sort();
        roles.dedup();
        let required_headroom = self.quotas.required_headroom(&snapshot.consumed);
        let mut available_headroom = Quantities::new();
        for agent in &snapshot.agents {
            add_quantities(
                &mut available_headroom,
                &quantities(&agent.available.filter(is_quota_resource)),
            );
        }
        let mut cycle = Cycle {
            allocator: self,
            now,
            snapshot,
            roles,
            required_headroom,
            available_headroom,
            out: Vec::new(),
        };
        cycle.run_stage(Stage::Guarantees, shuffle.as_deref_mut());
        cycle.run_stage(Stage::Everyone, shuffle);
        cycle.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::parse_resources;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
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
            revocable: false,
        }
    }

    fn snapshot(slots: Vec<AgentSlot>, demands: &[Demand]) -> Snapshot {
        let mut totals = Quantities::new();
        for slot in &slots {
            add_quantities(&mut totals, &quantities(&slot.available));
        }
        Snapshot {
            agents: slots,
            demands: demands.to_vec(),
            totals,
            ..Snapshot::default()
        }
    }

    fn q(pairs: &[(&str, f64)]) -> Quantities {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    fn count_by_role(allocations: &[Allocation]) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for a in allocations {
            *out.entry(a.role.clone()).or_default() += 1;
        }
        out
    }

    fn cpus_by_role(allocations: &[Allocation]) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for a in allocations {
            *out.entry(a.role.clone()).or_default() += a.resources.scalar("cpus");
        }
        out
    }

    #[test]
    fn offers_are_coarse_grained_per_agent_and_role() {
        let slots = agents(2, "cpus:4;mem:1024;ports:[1-10]");
        let mut allocator = Allocator::default();
        let out = allocator.allocate(
            Instant::now(),
            snapshot(slots, &[demand("fw", "web")]),
            None,
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
        let mut allocator = Allocator::default();
        let demands = [demand("f1", "a"), demand("f2", "b")];
        let out = allocator.allocate(
            Instant::now(),
            snapshot(slots, &demands),
            Some(&mut StdRng::seed_from_u64(7)),
        );
        let counts = count_by_role(&out);
        assert_eq!(counts.get("a"), Some(&5));
        assert_eq!(counts.get("b"), Some(&5));
    }

    #[test]
    fn weights_scale_the_fair_share() {
        let slots = agents(9, "cpus:4;mem:1024");
        let mut allocator = Allocator::default();
        allocator.set_weight("heavy", 2.0);
        let demands = [demand("f1", "heavy"), demand("f2", "light")];
        let out = allocator.allocate(Instant::now(), snapshot(slots, &demands), None);
        let counts = count_by_role(&out);
        assert_eq!(counts.get("heavy"), Some(&6));
        assert_eq!(counts.get("light"), Some(&3));
    }

    #[test]
    fn existing_usage_counts_and_frameworks_share_a_role_fairly() {
        let slots = agents(4, "cpus:4;mem:1024");
        let mut allocator = Allocator::default();
        let mut snap = snapshot(slots, &[demand("f1", "r"), demand("f2", "r")]);
        add_quantities(&mut snap.totals, &q(&[("cpus", 8.0), ("mem", 2048.0)]));
        snap.usage.insert(
            ("f1".into(), "r".into()),
            q(&[("cpus", 8.0), ("mem", 2048.0)]),
        );
        let out = allocator.allocate(Instant::now(), snap, None);
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
        let mut allocator = Allocator::default();
        allocator.filters.install(
            "f1",
            "web",
            "a0",
            parse_resources("cpus:2;mem:512").unwrap(),
            Duration::from_secs(5),
            now,
        );
        let demands = [demand("f1", "web"), demand("f2", "web"), demand("f3", "x")];
        let out = allocator.allocate(now, snapshot(slots, &demands), None);
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
        let mut allocator = Allocator::default();
        let out = allocator.allocate(Instant::now(), snapshot(slots, &[demand("f", "r")]), None);
        assert!(out.is_empty());
    }

    #[test]
    fn limits_cut_offers_and_cover_the_subtree() {
        let slots = agents(4, "cpus:4;mem:1024;ports:[1-10]");
        let mut allocator = Allocator::default();
        allocator.quotas.set(
            "eng",
            Quota {
                guarantees: Quantities::new(),
                limits: q(&[("cpus", 6.0)]),
            },
        );
        let demands = [demand("f1", "eng/web"), demand("f2", "eng/api")];
        let mut snap = snapshot(slots, &demands);
        snap.consumed.insert("eng".into(), q(&[("cpus", 1.0)]));
        let out = allocator.allocate(Instant::now(), snap, None);
        let total: f64 = out.iter().map(|a| a.resources.scalar("cpus")).sum();
        assert_eq!(total, 5.0, "the subtree stays within 6 cpus with 1 in use");
        assert!(
            out.iter()
                .all(|a| a.resources.iter().any(|r| r.name == "ports"))
        );
    }

    #[test]
    fn guarantees_come_first_and_keep_their_headroom() {
        let slots = agents(4, "cpus:4;mem:1024");
        let mut allocator = Allocator::default();
        allocator.quotas.set(
            "prod",
            Quota {
                guarantees: q(&[("cpus", 10.0)]),
                limits: q(&[("cpus", 10.0)]),
            },
        );
        // "dev" holds nothing and would win on DRF, but prod is below its
        // guarantee: it is served first and dev gets only the surplus.
        let demands = [demand("f1", "prod"), demand("f2", "dev")];
        let out = allocator.allocate(
            Instant::now(),
            snapshot(slots, &demands),
            Some(&mut StdRng::seed_from_u64(7)),
        );
        let cpus = cpus_by_role(&out);
        assert_eq!(cpus.get("prod"), Some(&10.0));
        assert_eq!(cpus.get("dev"), Some(&6.0));

        // With prod absent, its unmet guarantee is held back from dev.
        let slots = agents(4, "cpus:4;mem:1024");
        let out = allocator.allocate(
            Instant::now(),
            snapshot(slots, &[demand("f2", "dev")]),
            Some(&mut StdRng::seed_from_u64(7)),
        );
        assert_eq!(cpus_by_role(&out).get("dev"), Some(&6.0));
    }

    #[test]
    fn the_agent_order_follows_the_randomness_passed_in() {
        let demands = [demand("f1", "a"), demand("f2", "b")];
        let cycle = |seed: u64| {
            Allocator::default().allocate(
                Instant::now(),
                snapshot(agents(10, "cpus:4;mem:1024"), &demands),
                Some(&mut StdRng::seed_from_u64(seed)),
            )
        };
        assert_eq!(cycle(1), cycle(1));
        assert!(
            (2..20).any(|seed| cycle(seed) != cycle(1)),
            "the agent order never changed with the seed"
        );
    }
}
