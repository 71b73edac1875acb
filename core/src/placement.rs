//! Where the slots of a request go: constraints on agents, ports, and the
//! search of the pool for offers with room.

use std::collections::{BTreeMap, HashMap};

use super::model::{
    Agent, AgentId, Constraint, CoreError, HOSTNAME, OfferId, RevocablePolicy, Rule, Slot,
    Timestamp,
};
use super::pool::{Pool, PooledOffer};
use super::resources::Resources;

/// One slot placed on one offer: exactly what it takes, ports as numbers.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub(super) offer: OfferId,
    pub(super) agent: Agent,
    pub(super) resources: Resources,
    /// Taken from the offer's revocable resources.
    pub(super) revocable: bool,
}

/// What a placement must respect besides room in an offer.
pub(super) struct Demand<'a> {
    pub(super) role: &'a str,
    pub(super) slots: &'a [Slot],
    pub(super) constraints: &'a [Constraint],
    /// All slots or none.
    pub(super) gang: bool,
    /// Agents the frontend released with `refuse_for`, until when.
    pub(super) refused: Option<&'a BTreeMap<AgentId, Timestamp>>,
    pub(super) now: Timestamp,
    /// The namespace's limit (only the scalars named are limited) and what
    /// it uses now: grants stop where the limit would be crossed.
    pub(super) limit: &'a Resources,
    pub(super) usage: Option<&'a Resources>,
    /// Whether and when the offer's revocable resources may serve a slot,
    /// within the namespace's cap on them and its revocable usage.
    pub(super) revocable: RevocablePolicy,
    pub(super) max_revocable: &'a Resources,
    pub(super) revocable_usage: Option<&'a Resources>,
    /// Set when the demand borrows another namespace's offers: that
    /// namespace's cap on lending and what it lends now. Borrowed capacity
    /// counts against the borrower's revocable cap, not its limit.
    pub(super) lender: Option<Cap<'a>>,
}

/// A cap and what is used of it: only the scalars the cap names are capped.
#[derive(Clone, Copy)]
pub(super) struct Cap<'a> {
    pub(super) cap: &'a Resources,
    pub(super) used: Option<&'a Resources>,
}

impl Cap<'_> {
    fn admits(&self, more: &Resources) -> bool {
        let used = |name| self.used.map_or(0, |used| used.milli(name));
        self.cap
            .scalars()
            .all(|(name, _)| used(name) + more.milli(name) <= self.cap.milli(name))
    }
}

impl Demand<'_> {
    /// Whether an agent passes the refusals and the per-agent constraints
    /// (everything but the per-value limits, which depend on other slots).
    fn admits(&self, agent: &Agent) -> bool {
        let refused = self
            .refused
            .and_then(|r| r.get(&agent.id))
            .is_some_and(|until| *until > self.now);
        !refused && self.constraints.iter().all(|c| c.admits(agent))
    }

    /// Whether granting `more` from one bag on top of what the namespace
    /// uses of it stays within its cap: the limit for regular resources,
    /// the revocable cap for revocable ones (which Mesos quota never caps).
    fn within_limit(&self, more: &Resources, revocable: bool) -> bool {
        let own = if revocable || self.lender.is_some() {
            Cap {
                cap: self.max_revocable,
                used: self.revocable_usage,
            }
        } else {
            Cap {
                cap: self.limit,
                used: self.usage,
            }
        };
        own.admits(more) && self.lender.is_none_or(|lender| lender.admits(more))
    }

    /// Whether a slot could go on this offer's free resources, alone.
    pub(super) fn could_use(&self, pooled: &PooledOffer) -> bool {
        self.admits(&pooled.offer.agent)
            && self.revocable.bags().iter().any(|&revocable| {
                let free = pooled.free(revocable);
                self.slots
                    .iter()
                    .any(|slot| carve(free, slot, revocable).is_some())
            })
    }
}

impl Constraint {
    /// The per-agent part of the constraint.
    pub(super) fn admits(&self, agent: &Agent) -> bool {
        let value = field(agent, &self.field);
        match &self.rule {
            Rule::Equals(wanted) => value == Some(wanted.as_str()),
            Rule::In(values) => value.is_some_and(|v| values.contains(v)),
            Rule::NotIn(values) => value.is_none_or(|v| !values.contains(v)),
            Rule::Exists | Rule::MaxPer(_) => value.is_some(),
        }
    }

    /// Refuses constraints that could never be satisfied as written.
    pub(super) fn validate(&self, index: usize) -> Result<(), CoreError> {
        let bad = |field: &str, reason: &str| {
            Err(CoreError::InvalidRequest {
                field: format!("constraints[{index}].{field}"),
                reason: reason.to_owned(),
            })
        };
        match &self.rule {
            _ if self.field.trim().is_empty() => bad("field", "name an attribute or \"hostname\""),
            Rule::In(values) | Rule::NotIn(values) if values.is_empty() => {
                bad("values", "list at least one value")
            }
            Rule::MaxPer(0) => bad("max_per", "must be at least 1"),
            _ => Ok(()),
        }
    }
}

/// The value of `field` on `agent`: its hostname or an attribute.
pub(super) fn field<'a>(agent: &'a Agent, field: &str) -> Option<&'a str> {
    if field == HOSTNAME {
        return Some(&agent.hostname);
    }
    agent
        .attributes
        .iter()
        .find(|(name, _)| name == field)
        .map(|(_, value)| value.as_str())
}

/// Counts slots per value of each constraint, for the per-value limits;
/// kept up to date grant by grant, so that placing many slots never
/// recounts the ones placed before.
struct Spread {
    /// By constraint index: slots per value of its field.
    counts: Vec<HashMap<String, u32>>,
}

impl Spread {
    fn new(constraints: &[Constraint]) -> Spread {
        Spread {
            counts: vec![HashMap::new(); constraints.len()],
        }
    }

    fn allows(&self, constraints: &[Constraint], agent: &Agent) -> bool {
        constraints
            .iter()
            .zip(&self.counts)
            .all(|(c, counts)| match c.rule {
                Rule::MaxPer(limit) => field(agent, &c.field)
                    .is_some_and(|v| counts.get(v).copied().unwrap_or(0) < limit),
                _ => true,
            })
    }

    fn add(&mut self, constraints: &[Constraint], agent: &Agent) {
        for (c, counts) in constraints.iter().zip(&mut self.counts) {
            if let (Rule::MaxPer(_), Some(value)) = (&c.rule, field(agent, &c.field)) {
                *counts.entry(value.to_owned()).or_default() += 1;
            }
        }
    }
}

/// Places the demand's slots on pool offers, taking what each grant needs
/// from the pool. A gang gets every slot or nothing (and the pool is left
/// as it was); otherwise every slot that fits is granted.
pub(super) fn place(pool: &mut Pool, demand: &Demand) -> Vec<Grant> {
    let mut grants: Vec<Grant> = Vec::new();
    let mut spread = Spread::new(demand.constraints);
    // What this request was granted so far, regular and revocable.
    let mut granted = [Resources::default(), Resources::default()];
    for slot in demand.slots {
        for _ in 0..slot.count {
            let room = demand.revocable.bags().iter().find_map(|&revocable| {
                find_room(pool, demand, slot, &spread, revocable).filter(|grant| {
                    let mut total = granted[usize::from(revocable)].clone();
                    total.add(&grant.resources);
                    demand.within_limit(&total, revocable)
                })
            });
            match room {
                Some(grant) => {
                    granted[usize::from(grant.revocable)].add(&grant.resources);
                    pool.take(&grant.offer, &grant.resources, grant.revocable);
                    spread.add(demand.constraints, &grant.agent);
                    grants.push(grant);
                }
                None if demand.gang => {
                    for grant in &grants {
                        pool.give_back(&grant.offer, &grant.resources, grant.revocable);
                    }
                    return Vec::new();
                }
                None => break,
            }
        }
    }
    grants
}

/// The tightest offer with room for `slot` on an agent the demand admits,
/// within the per-value limits given the grants so far.
fn find_room(
    pool: &Pool,
    demand: &Demand,
    slot: &Slot,
    spread: &Spread,
    revocable: bool,
) -> Option<Grant> {
    pool.fitting(demand.role, revocable, slot.resources.milli("cpus"))
        .filter(|pooled| demand.admits(&pooled.offer.agent))
        .filter(|pooled| spread.allows(demand.constraints, &pooled.offer.agent))
        .find_map(|pooled| {
            carve(pooled.free(revocable), slot, revocable).map(|resources| Grant {
                offer: pooled.offer.id.clone(),
                agent: pooled.offer.agent.clone(),
                resources,
                revocable,
            })
        })
}

/// What `slot` would take from `free`: its resources plus the lowest free
/// ports it asks a count of; `None` when it does not fit. Ports are never
/// revocable, so a slot with ports takes nothing from the revocable bag.
fn carve(free: &Resources, slot: &Slot, revocable: bool) -> Option<Resources> {
    let wants_ports = slot.port_count > 0 || !slot.resources.port_ranges().is_empty();
    if revocable && wants_ports {
        return None;
    }
    if !free.contains(&slot.resources) {
        return None;
    }
    let mut granted = slot.resources.clone();
    if slot.port_count > 0 {
        granted.add(&free.pick_ports(slot.port_count, &slot.resources)?);
    }
    Some(granted)
}

#[cfg(test)]
mod tests;
