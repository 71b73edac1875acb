//! What roles hold: offers and tasks per (framework, role) for fair
//! sharing, quota consumption per top-level role, and the cluster's size.

use std::collections::HashMap;

use super::model::Master;
use crate::allocator::quota::{is_quota_resource, quota_role};
use crate::allocator::{Quantities, add_quantities, quantities};
use crate::resources::reservation_role;

impl Master {
    /// What each (framework, role) holds, offered or used by live tasks.
    pub(super) fn usage(&self) -> HashMap<(String, String), Quantities> {
        let mut usage: HashMap<(String, String), Quantities> = HashMap::new();
        let held = self
            .offers
            .values()
            .map(|o| (&o.framework, &o.role, &o.resources))
            .chain(
                self.tasks
                    .values()
                    .filter(|t| !t.is_terminal())
                    .map(|t| (&t.framework, &t.role, &t.resources)),
            );
        for (framework, role, resources) in held {
            add_quantities(
                usage.entry((framework.clone(), role.clone())).or_default(),
                &quantities(resources),
            );
        }
        usage
    }

    /// Quota consumption of each top-level role: the reservations of its
    /// subtree (used or not) plus the unreserved non-revocable scalars its
    /// subtree's live tasks use, and, when `with_offers`, those it is
    /// offered (the allocator counts offers; the master's reported
    /// consumption does not).
    pub(super) fn quota_consumption(&self, with_offers: bool) -> HashMap<String, Quantities> {
        let mut consumed: HashMap<String, Quantities> = HashMap::new();
        for agent in self.agents.values() {
            for r in agent.total.iter() {
                let role = reservation_role(r);
                if role != "*" && r.revocable.is_none() {
                    let held = quantities(&crate::resources::Resources::from_protos([r]));
                    add_quantities(
                        consumed.entry(quota_role(role).to_string()).or_default(),
                        &held,
                    );
                }
            }
        }
        let offered = self
            .offers
            .values()
            .filter(|_| with_offers)
            .map(|o| (&o.role, &o.resources));
        let used = self
            .tasks
            .values()
            .filter(|t| !t.is_terminal())
            .map(|t| (&t.role, &t.resources));
        for (role, resources) in offered.chain(used) {
            let held = quantities(&resources.filter(is_quota_resource));
            add_quantities(
                consumed.entry(quota_role(role).to_string()).or_default(),
                &held,
            );
        }
        consumed
    }

    /// The cluster's total scalars.
    pub(super) fn totals(&self) -> Quantities {
        let mut totals = Quantities::new();
        for agent in self.agents.values() {
            add_quantities(&mut totals, &quantities(&agent.total));
        }
        totals
    }
}
