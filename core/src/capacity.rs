//! What Agora has seen of each agent: the most of each resource one of its
//! offers held (regular and revocable together), kept until the agent is
//! lost. It tells a request that waits in vain for a busy cluster from one
//! that asks more than the cluster, as Agora has seen it, holds at all:
//! that one is answered [`CoreError::CannotFit`] with the numbers, not like
//! a client's timeout.
//!
//! The verdict only ever replaces a refusal (a request that got nothing at
//! once, or whose wait ran out), never a grant: Agora sees agents only
//! through offers, so what it has seen is a lower bound of what they hold.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{AcquireRequest, Agent, AgentId, CoreError, Offer, Rule, Slot};
use super::placement::field;
use super::resources::Resources;

/// The most each agent has offered, by agent.
#[derive(Debug, Default)]
pub(super) struct SeenCapacity(BTreeMap<AgentId, (Agent, Resources)>);

impl SeenCapacity {
    /// Widens what `offer`'s agent is known to hold.
    pub(super) fn saw(&mut self, offer: &Offer) {
        let (agent, seen) = self
            .0
            .entry(offer.agent.id.clone())
            .or_insert_with(|| (offer.agent.clone(), Resources::default()));
        agent.clone_from(&offer.agent);
        let mut offered = offer.resources.clone();
        offered.add(&offer.revocable);
        seen.widen(&offered);
    }

    /// Forgets an agent that left the cluster.
    pub(super) fn forget(&mut self, agent: &AgentId) {
        self.0.remove(agent);
    }

    /// Why `request` cannot fit any agent seen, if it cannot: a slot bigger
    /// than every agent that meets the constraints, a gang bigger than all
    /// of them together, or more slots than a MAX_PER (UNIQUE) constraint
    /// allows over the distinct values seen. `None` when it might fit, or
    /// when no agent has been seen yet.
    pub(super) fn why_not(&self, request: &AcquireRequest) -> Option<CoreError> {
        if self.0.is_empty() {
            return None;
        }
        let eligible: Vec<&(Agent, Resources)> = self
            .0
            .values()
            .filter(|(agent, _)| request.constraints.iter().all(|c| c.admits(agent)))
            .collect();
        let unfit: Vec<usize> = (0..request.slots.len())
            .filter(|&i| {
                !eligible
                    .iter()
                    .any(|(_, seen)| fits(&request.slots[i], seen))
            })
            .collect();
        let all_unfit = unfit.len() == request.slots.len();
        if let Some(&slot) = unfit.first()
            && (request.gang || all_unfit)
        {
            return Some(too_big(
                &format!("slots[{slot}]"),
                &request.slots[slot],
                &eligible,
            ));
        }
        if !request.gang {
            return None;
        }
        self.gang_too_big(request, &eligible)
    }

    /// A gang's limits beyond each slot alone: per-value caps and the sum.
    fn gang_too_big(
        &self,
        request: &AcquireRequest,
        eligible: &[&(Agent, Resources)],
    ) -> Option<CoreError> {
        let slots: u64 = request.slots.iter().map(|s| u64::from(s.count)).sum();
        for (index, constraint) in request.constraints.iter().enumerate() {
            let Rule::MaxPer(per_value) = constraint.rule else {
                continue;
            };
            let values: BTreeSet<&str> = eligible
                .iter()
                .filter_map(|(agent, _)| field(agent, &constraint.field))
                .collect();
            let needed = slots.div_ceil(u64::from(per_value.max(1)));
            if needed > values.len() as u64 {
                return Some(CoreError::CannotFit {
                    field: format!("constraints[{index}]"),
                    resource: format!("distinct values of {:?}", constraint.field),
                    asked: needed as f64,
                    available: values.len() as f64,
                });
            }
        }
        let mut wanted = Resources::default();
        for slot in &request.slots {
            for _ in 0..slot.count {
                wanted.add(&slot.resources);
            }
        }
        let mut total = Resources::default();
        for (_, seen) in eligible {
            total.add(seen);
        }
        let short = total.shortfall(&wanted)?;
        (short.resource != "ports").then(|| CoreError::CannotFit {
            field: "slots".into(),
            resource: short.resource,
            asked: short.asked,
            available: short.available,
        })
    }
}

/// Whether one slot fits what an agent was seen to hold.
fn fits(slot: &Slot, seen: &Resources) -> bool {
    seen.contains(&slot.resources) && seen.pick_ports(slot.port_count, &slot.resources).is_some()
}

/// The refusal of a slot that fits no eligible agent: the first resource
/// it asks more of than any of them holds, or, when each resource alone
/// fits somewhere, that no agent holds all of it at once.
fn too_big(path: &str, slot: &Slot, eligible: &[&(Agent, Resources)]) -> CoreError {
    let cannot_fit = |resource: String, asked: f64, available: f64| CoreError::CannotFit {
        field: path.to_owned(),
        resource,
        asked,
        available,
    };
    if eligible.is_empty() {
        return cannot_fit("agents meeting the constraints".into(), 1.0, 0.0);
    }
    for (name, asked) in slot.resources.scalars() {
        let most = eligible
            .iter()
            .map(|(_, seen)| seen.scalar(name))
            .fold(0.0, f64::max);
        if asked > most {
            return cannot_fit(name.to_owned(), asked, most);
        }
    }
    cannot_fit("agents holding all of it at once".into(), 1.0, 0.0)
}
