//! Offers: an allocation cycle turns the allocator's choices into offers
//! in the format each framework understands; offers end when answered,
//! rescinded, or dropped with their framework.

use std::collections::BTreeMap;

use agora_proto::mesos::v1::framework_info::capability::Type as Capability;
use agora_proto::mesos::v1::scheduler::{Event, event};
use agora_proto::mesos::v1::{FrameworkId, Offer, OfferId};

use super::model::{Master, OfferEntry, event_of};
use crate::allocator::{AgentSlot, Demand, Snapshot};
use crate::clock::Now;
use crate::resources::Resources;

impl Master {
    /// Removes the framework's outstanding offers, returning their
    /// resources to the agents (no filter); sends RESCIND when asked.
    pub(super) fn drop_offers_of(&mut self, framework: &str, rescind: bool) {
        let ids: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| o.framework == framework)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.remove_offer(&id, rescind);
        }
    }

    pub(super) fn remove_offer(&mut self, offer_id: &str, rescind: bool) -> Option<OfferEntry> {
        let entry = self.offers.remove(offer_id)?;
        if let Some(agent) = self.agents.get_mut(&entry.agent) {
            agent.available.add_all(&entry.resources);
        }
        if rescind {
            let event = Event {
                rescind: Some(event::Rescind {
                    offer_id: OfferId {
                        value: offer_id.to_string(),
                    },
                }),
                ..event_of(event::Type::Rescind)
            };
            self.send(&entry.framework, event);
        }
        Some(entry)
    }

    /// One allocation cycle: offers every free resource it can.
    pub(crate) fn allocate(&mut self, now: Now) {
        self.allocation_requested = false;
        let demands: Vec<Demand> = self
            .frameworks
            .values()
            .filter(|f| f.connection.is_some())
            .flat_map(|f| {
                f.roles
                    .iter()
                    .filter(|role| !f.suppressed.contains(*role))
                    .map(|role| Demand {
                        framework: f.id.clone(),
                        role: role.clone(),
                        revocable: f.has(Capability::RevocableResources),
                    })
            })
            .collect();
        if demands.is_empty() {
            return;
        }
        let snapshot = Snapshot {
            agents: self
                .agents
                .values()
                .filter(|a| !a.available.is_empty())
                .map(|a| AgentSlot {
                    id: a.id.clone(),
                    available: a.available.clone(),
                })
                .collect(),
            demands,
            usage: self.usage(),
            consumed: self.quota_consumption(true),
            totals: self.totals(),
        };
        let allocations = self
            .allocator
            .allocate(now.instant, snapshot, Some(&mut self.rng));
        let mut by_framework: BTreeMap<String, Vec<Offer>> = BTreeMap::new();
        for allocation in allocations {
            let offer = self.make_offer(
                now,
                &allocation.framework,
                &allocation.role,
                &allocation.agent,
                allocation.resources,
            );
            by_framework
                .entry(allocation.framework)
                .or_default()
                .push(offer);
        }
        for (framework, offers) in by_framework {
            tracing::debug!(%framework, offers = offers.len(), "sending offers");
            let event = Event {
                offers: Some(event::Offers { offers }),
                ..event_of(event::Type::Offers)
            };
            self.send(&framework, event);
        }
    }

    fn make_offer(
        &mut self,
        now: Now,
        framework: &str,
        role: &str,
        agent_id: &str,
        resources: Resources,
    ) -> Offer {
        self.next_offer += 1;
        let id = format!("{}-O{}", self.id, self.next_offer - 1);
        let agent = self
            .agents
            .get_mut(agent_id)
            .expect("allocations name known agents");
        agent.available.subtract_all(&resources);
        let f = &self.frameworks[framework];
        let multi_role = f.has(Capability::MultiRole);
        let refinement = f.has(Capability::ReservationRefinement);
        let mut protos = if multi_role {
            resources.allocated_to(role)
        } else {
            resources.to_protos()
        };
        if refinement {
            for r in &mut protos {
                to_post_refinement(r);
            }
        }
        let executor_ids = self
            .executors
            .keys()
            .filter(|(a, fw, _)| a == agent_id && fw == framework)
            .map(|(_, _, e)| agora_proto::mesos::v1::ExecutorId { value: e.clone() })
            .collect();
        let offer = Offer {
            id: OfferId { value: id.clone() },
            framework_id: FrameworkId {
                value: framework.to_string(),
            },
            agent_id: agora_proto::mesos::v1::AgentId {
                value: agent_id.to_string(),
            },
            hostname: agent.hostname.clone(),
            resources: protos,
            attributes: agent.attributes.clone(),
            executor_ids,
            allocation_info: multi_role.then(|| agora_proto::mesos::v1::resource::AllocationInfo {
                role: Some(role.to_string()),
            }),
            ..Default::default()
        };
        self.offers.insert(
            id,
            OfferEntry {
                framework: framework.to_string(),
                agent: agent_id.to_string(),
                role: role.to_string(),
                resources,
                created: now.instant,
            },
        );
        offer
    }
}

/// Converts a pre-refinement resource to the post-refinement format sent
/// to RESERVATION_REFINEMENT frameworks.
#[allow(deprecated)]
fn to_post_refinement(resource: &mut agora_proto::mesos::v1::Resource) {
    use agora_proto::mesos::v1::resource::{ReservationInfo, reservation_info};
    let role = resource.role.take().unwrap_or_else(|| "*".into());
    if role != "*" {
        let dynamic = resource.reservation.take();
        resource.reservations = vec![ReservationInfo {
            r#type: Some(if dynamic.is_some() {
                reservation_info::Type::Dynamic as i32
            } else {
                reservation_info::Type::Static as i32
            }),
            role: Some(role),
            principal: dynamic.as_ref().and_then(|d| d.principal.clone()),
            labels: dynamic.and_then(|d| d.labels),
        }];
    }
}
