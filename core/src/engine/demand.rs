//! Demand that waits: request ids for retries, the queue with its
//! backfill rule, and fair share between namespaces.

use std::collections::BTreeSet;

use super::*;
use crate::fair::Standing;
use crate::resources::Resources;

impl Core {
    /// A retry of a request id seen before: the same leases, or a place
    /// beside the original among the waiting. `None` for a new request.
    pub(super) fn recall(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        frontend: &FrontendName,
        request: &AcquireRequest,
    ) -> Result<Option<Outcome<Vec<Lease>>>, CoreError> {
        let Some(request_id) = &request.request_id else {
            return Ok(None);
        };
        let key = (frontend.clone(), request_id.clone());
        let Some(remembered) = self.queue.requests.get_mut(&key) else {
            return Ok(None);
        };
        if !remembered.request.same_ask(request) {
            return Err(CoreError::RequestIdReused {
                request_id: request_id.clone(),
            });
        }
        remembered.at = now;
        if let Some(granted) = &remembered.granted {
            let current = granted
                .iter()
                .map(|lease| {
                    self.leases
                        .get(&lease.id)
                        .map_or_else(|| lease.clone(), |s| s.lease.clone())
                })
                .collect();
            return Ok(Some(Outcome::Now(current)));
        }
        let original =
            self.queue.waiting.iter_mut().find(|w| {
                &w.frontend == frontend && w.request.request_id.as_ref() == Some(request_id)
            });
        Ok(original.map(|waiting| {
            waiting.tickets.push(ticket);
            Outcome::Later
        }))
    }

    /// Keeps a request id for retries, with its leases once granted.
    pub(super) fn remember(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        request: &AcquireRequest,
        granted: Option<&[Lease]>,
    ) {
        if let Some(request_id) = &request.request_id {
            self.queue.requests.insert(
                (frontend.clone(), request_id.clone()),
                Remembered {
                    request: request.clone(),
                    granted: granted.map(<[Lease]>::to_vec),
                    at: now,
                },
            );
        }
    }

    /// Whether a request of `namespace` that waited past the backfill
    /// window holds up newer ones.
    pub(super) fn queue_blocked(&self, now: Timestamp, namespace: &str) -> bool {
        let window = self.config.backfill_window;
        self.queue
            .waiting
            .iter()
            .any(|w| w.request.namespace == namespace && w.since.after(window) <= now)
    }

    /// Answers every caller of a waiting request; a request id is kept with
    /// its leases, or forgotten when the request failed.
    pub(super) fn answer_waiting(
        &mut self,
        waiting: Waiting,
        result: Result<Vec<Lease>, CoreError>,
    ) {
        if let Some(request_id) = &waiting.request.request_id {
            let key = (waiting.frontend.clone(), request_id.clone());
            match &result {
                Ok(leases) => {
                    if let Some(remembered) = self.queue.requests.get_mut(&key) {
                        remembered.granted = Some(leases.clone());
                    }
                }
                Err(_) => {
                    self.queue.requests.remove(&key);
                }
            }
        }
        for ticket in waiting.tickets {
            self.effects.push(Effect::Reply {
                ticket,
                answer: result.clone().map(Answer::Leases),
            });
        }
    }

    pub(super) fn expire_waits(&mut self, now: Timestamp) {
        let (expired, kept) = std::mem::take(&mut self.queue.waiting)
            .into_iter()
            .partition(|w| w.deadline <= now);
        self.queue.waiting = kept;
        for waiting in expired {
            let refusal = self.no_capacity(&waiting.request, waiting.request.wait_for);
            self.answer_waiting(waiting, Err(refusal));
        }
    }

    /// Serves waiting requests, namespace by namespace in fair-share order
    /// (recomputed after every grant, since usage changed), each
    /// namespace's in arrival order by the backfill rule of
    /// [`Core::acquire`]. A request that could not be served is not tried
    /// again in the same call: serving others only takes capacity away.
    pub(super) fn serve_waiting(&mut self, now: Timestamp) {
        let window = self.config.backfill_window;
        let mut failed: BTreeSet<Ticket> = BTreeSet::new();
        'serve: loop {
            for namespace in self.fair_order() {
                let mut index = 0;
                while index < self.queue.waiting.len() {
                    let waiting = &self.queue.waiting[index];
                    let ticket = waiting.tickets[0];
                    if waiting.request.namespace != namespace || failed.contains(&ticket) {
                        index += 1;
                        continue;
                    }
                    let Some(waiting) = self.queue.waiting.remove(index) else {
                        break;
                    };
                    if let Some(leases) =
                        self.grant_or_reclaim(now, &waiting.frontend, &waiting.request)
                    {
                        self.answer_waiting(waiting, Ok(leases));
                        continue 'serve;
                    }
                    failed.insert(ticket);
                    self.preempt_for(now, &waiting.request);
                    let blocks = waiting.since.after(window) <= now;
                    self.queue.waiting.insert(index, waiting);
                    if blocks {
                        break;
                    }
                    index += 1;
                }
            }
            break;
        }
    }

    /// The capacity shares are measured against: what Agora holds in its
    /// pool plus what its namespaces use.
    pub(super) fn capacity(&self) -> Resources {
        let mut capacity = self.offers.total_free().clone();
        for usage in self.accounting.usage.values() {
            capacity.add(usage);
        }
        capacity
    }

    /// Namespaces with waiting demand, in the order fair share serves them.
    pub(super) fn fair_order(&self) -> Vec<String> {
        let waiting: BTreeSet<&str> = self
            .queue
            .waiting
            .iter()
            .map(|w| w.request.namespace.as_str())
            .collect();
        let capacity = self.capacity();
        let mut standings: Vec<(Standing, &str)> = waiting
            .into_iter()
            .filter_map(|name| {
                let namespace = self.tenancy.namespaces.get(name)?;
                Some((Standing::of(namespace, &self.usage(name), &capacity), name))
            })
            .collect();
        standings.sort_by(|(a, a_name), (b, b_name)| a.serve_before(b).then(a_name.cmp(b_name)));
        standings
            .into_iter()
            .map(|(_, name)| name.to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests;
