//! What the master does when time passes: heartbeats, failover and offer
//! timeouts, status-update retries and simulated tasks, all due at the
//! `now` the runtime passes in, and the next instant anything is due.

use std::time::Instant;

use agora_proto::mesos::v1::scheduler::event;

use super::model::{Master, event_of};
use crate::clock::Now;

impl Master {
    /// Runs everything due at `now`: heartbeats, failover timeouts, offer
    /// timeouts, status-update retries, simulated task progress.
    pub(crate) fn tick(&mut self, now: Now) {
        let mut heartbeats = Vec::new();
        let mut expired = Vec::new();
        for f in self.frameworks.values_mut() {
            if let Some(at) = f.next_heartbeat
                && at <= now.instant
            {
                heartbeats.push(f.id.clone());
                f.next_heartbeat = Some(now.instant + self.heartbeat_interval);
            }
            if f.failover_deadline.is_some_and(|at| at <= now.instant) {
                expired.push(f.id.clone());
            }
        }
        for id in heartbeats {
            self.send(&id, event_of(event::Type::Heartbeat));
        }
        for id in expired {
            tracing::info!(framework = %id, "failover timeout elapsed");
            self.remove_framework(now, &id);
        }
        if let Some(timeout) = self.offer_timeout {
            let stale: Vec<String> = self
                .offers
                .iter()
                .filter(|(_, o)| o.created + timeout <= now.instant)
                .map(|(id, _)| id.clone())
                .collect();
            for id in stale {
                self.remove_offer(&id, true);
            }
        }
        self.retry_status_updates(now);
        self.advance_simulated(now);
    }

    /// The earliest instant at which [`Master::tick`] has work.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let frameworks = self
            .frameworks
            .values()
            .flat_map(|f| [f.next_heartbeat, f.failover_deadline]);
        let offers = self
            .offer_timeout
            .into_iter()
            .flat_map(|t| self.offers.values().map(move |o| Some(o.created + t)));
        let updates = self.agents.values().map(|a| a.updates.next_deadline());
        let simulated = self.tasks.values().map(|t| t.simulated_end);
        frameworks
            .chain(offers)
            .chain(updates)
            .chain(simulated)
            .flatten()
            .min()
    }
}
