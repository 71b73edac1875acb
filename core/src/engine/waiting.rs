//! What operators see of the demand that waits, and why each request
//! waits: worked out from the state the core decides by — the pool it
//! places in, the namespace's limit and borrowing cap, the constraints,
//! the gang rule and the backfill queue — by dry runs of placement on
//! copies of the pool, so the answer is what the core would decide now.

use super::*;
use crate::namespaces::cap_exceeded;
use crate::placement::place;
use crate::resources::Resources;
use crate::views::{WaitReason, WaitingFilter, WaitingView};

impl Core {
    /// The requests waiting for capacity that `filter` admits, in arrival
    /// order, each with what holds it back: at most `filter.max` of them
    /// (each costs dry runs of placement), and how many more there are.
    pub fn waiting_requests(
        &self,
        now: Timestamp,
        filter: &WaitingFilter,
    ) -> (Vec<WaitingView>, usize) {
        let mut positions: BTreeMap<&str, usize> = BTreeMap::new();
        let mut views = Vec::new();
        let mut omitted = 0;
        for (index, waiting) in self.queue.waiting.iter().enumerate() {
            let request = &waiting.request;
            let position = positions.entry(request.namespace.as_str()).or_default();
            *position += 1;
            if filter
                .namespace
                .as_deref()
                .is_some_and(|ns| ns != request.namespace)
                || filter
                    .frontend
                    .as_deref()
                    .is_some_and(|f| f != waiting.frontend.0)
                || filter
                    .request_id
                    .as_ref()
                    .is_some_and(|id| Some(id) != request.request_id.as_ref())
            {
                continue;
            }
            if views.len() == filter.max {
                omitted += 1;
                continue;
            }
            let mut asked = Resources::default();
            for slot in &request.slots {
                for _ in 0..slot.count {
                    asked.add(&slot.resources);
                }
            }
            views.push(WaitingView {
                frontend: waiting.frontend.clone(),
                namespace: request.namespace.clone(),
                request_id: request.request_id.clone(),
                position: *position,
                slots: slot_count(request),
                asked,
                gang: request.gang,
                revocable: request.revocable,
                constraints: request.constraints.len(),
                since: waiting.since,
                deadline: waiting.deadline,
                reasons: self.why_waiting(now, index),
            });
        }
        (views, omitted)
    }

    /// Why the `index`th waiting request is not served now.
    fn why_waiting(&self, now: Timestamp, index: usize) -> Vec<WaitReason> {
        let waiting = &self.queue.waiting[index];
        let request = &waiting.request;
        let Some(namespace) = self.tenancy.namespaces.get(&request.namespace) else {
            return vec![WaitReason::Ready];
        };
        let mut reasons = Vec::new();
        if let Some(CoreError::CannotFit {
            field,
            resource,
            asked,
            available,
        }) = self.accounting.capacity.why_not(request)
        {
            reasons.push(WaitReason::CannotFit {
                field,
                resource,
                asked,
                available,
            });
        }
        let slots = slot_count(request);
        let needed = if request.gang { slots } else { 1 };
        let refused = self.sessions.refused(&waiting.frontend);
        let full = self.accounting.demand(namespace, refused, request, now);
        let unlimited = Resources::default();
        // The same search without caps, then without constraints either:
        // what each rule takes away from what the pool could give.
        let uncapped = Demand {
            gang: false,
            limit: &unlimited,
            usage: None,
            max_revocable: &unlimited,
            revocable_usage: None,
            ..self.accounting.demand(namespace, refused, request, now)
        };
        let anywhere = Demand {
            constraints: &[],
            refused: None,
            gang: false,
            limit: &unlimited,
            usage: None,
            max_revocable: &unlimited,
            revocable_usage: None,
            ..self.accounting.demand(namespace, refused, request, now)
        };
        let fit_anywhere = self.dry_run(&anywhere);
        let fit_constrained = self.dry_run(&uncapped);
        let fit = self.dry_run(&Demand {
            gang: false,
            ..full
        });
        if fit_anywhere < needed {
            reasons.push(WaitReason::Capacity {
                role: namespace.role.clone(),
                fit: fit_anywhere,
                needed,
            });
        } else if fit_constrained < needed {
            reasons.push(WaitReason::Constraints {
                fit_anywhere,
                fit_constrained,
                needed,
            });
        }
        let asks = smallest_ask(request);
        if request.revocable == RevocablePolicy::Deny {
            let usage = self.usage(&namespace.name);
            if let Some((resource, asked, used, allowed)) =
                cap_exceeded(&namespace.limit, &usage, &asks)
            {
                reasons.push(WaitReason::Quota {
                    resource,
                    asked,
                    used,
                    allowed,
                });
            }
        } else {
            let usage = self
                .accounting
                .revocable_usage
                .get(&namespace.name)
                .cloned()
                .unwrap_or_default();
            if let Some((resource, asked, used, allowed)) =
                cap_exceeded(&namespace.max_borrowed, &usage, &asks)
            {
                reasons.push(WaitReason::BorrowCap {
                    resource,
                    asked,
                    used,
                    allowed,
                });
            }
        }
        if request.gang && fit < slots {
            reasons.push(WaitReason::Gang { fit, needed: slots });
        }
        let window = self.config.backfill_window;
        if let Some(ahead) = self
            .queue
            .waiting
            .iter()
            .take(index)
            .find(|w| w.request.namespace == request.namespace && w.since.after(window) <= now)
        {
            reasons.push(WaitReason::Queue {
                ahead: ahead.frontend.clone(),
                since: ahead.since,
            });
        }
        if reasons.is_empty() {
            reasons.push(WaitReason::Ready);
        }
        reasons
    }

    /// How many slots `demand` would be granted from the pool now; the
    /// pool is a copy, so nothing is taken.
    fn dry_run(&self, demand: &Demand) -> u32 {
        let mut pool = self.offers.clone();
        u32::try_from(place(&mut pool, demand).len()).unwrap_or(u32::MAX)
    }
}

/// Slots asked, every count counted.
fn slot_count(request: &AcquireRequest) -> u32 {
    request.slots.iter().map(|slot| slot.count).sum()
}

/// What the request needs of its namespace's caps to make progress: all
/// its slots for a gang, its smallest slot (by cpus) otherwise.
fn smallest_ask(request: &AcquireRequest) -> Resources {
    if request.gang {
        let mut all = Resources::default();
        for slot in &request.slots {
            for _ in 0..slot.count {
                all.add(&slot.resources);
            }
        }
        return all;
    }
    request
        .slots
        .iter()
        .map(|slot| &slot.resources)
        .min_by_key(|resources| resources.milli("cpus"))
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
