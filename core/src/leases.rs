//! The leases granted and not yet launched or given back, with the indexes
//! every command would otherwise pay for with a walk of all of them: their
//! deadlines in time order (for the runtime's next wake-up and for
//! [`Core::tick`](super::Core::tick)), the leases bound to each offer and
//! on each agent (for launches, rescinds and new offers), the leases of
//! each frontend (for ended sessions, drains and the frontends view), and
//! how many of each role wait for their agent's next offer (for
//! suppression).
//!
//! A frontend may hold thousands of leases; without these indexes each
//! acquire and release cost a walk of all of them twice.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Index;
use std::time::Duration;

use super::model::{AgentId, FrontendName, Lease, LeaseId, OfferId, Timestamp};

/// A lease and where it stands.
#[derive(Debug, Clone)]
pub(crate) struct LeaseState {
    pub(crate) lease: Lease,
    pub(crate) expiring_sent: bool,
    /// Set while the lease waits for its agent's next offer.
    pub(crate) rebind_deadline: Option<Timestamp>,
}

impl LeaseState {
    /// When something is due for this lease: its expiry, its rebind
    /// timeout, and the expiry warning `notice` ahead, until it is sent.
    fn deadlines(&self, notice: Duration) -> impl Iterator<Item = Timestamp> {
        let expires_at = self.lease.expires_at;
        let notice_millis = u64::try_from(notice.as_millis()).unwrap_or(u64::MAX);
        let warn =
            (!self.expiring_sent).then(|| Timestamp(expires_at.0.saturating_sub(notice_millis)));
        [Some(expires_at), self.rebind_deadline, warn]
            .into_iter()
            .flatten()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct LeaseBook {
    records: BTreeMap<LeaseId, LeaseState>,
    deadlines: BTreeSet<(Timestamp, LeaseId)>,
    by_offer: BTreeMap<OfferId, BTreeSet<LeaseId>>,
    by_agent: BTreeMap<AgentId, BTreeSet<LeaseId>>,
    by_frontend: BTreeMap<FrontendName, BTreeSet<LeaseId>>,
    /// Per role, the leases that wait for their agent's next offer.
    unbound: BTreeMap<String, usize>,
    /// How long before its expiry a lease's holder is warned.
    notice: Duration,
    /// Leases granted or ended since the journal last took them.
    touched: BTreeSet<LeaseId>,
}

impl LeaseBook {
    pub(crate) fn new(notice: Duration) -> LeaseBook {
        LeaseBook {
            records: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            by_offer: BTreeMap::new(),
            by_agent: BTreeMap::new(),
            by_frontend: BTreeMap::new(),
            unbound: BTreeMap::new(),
            notice,
            touched: BTreeSet::new(),
        }
    }

    pub(crate) fn insert(&mut self, state: LeaseState) {
        let id = state.lease.id.clone();
        self.remove(&id);
        self.touched.insert(id.clone());
        self.index(&id, &state);
        self.records.insert(id, state);
    }

    pub(crate) fn remove(&mut self, id: &LeaseId) -> Option<LeaseState> {
        let state = self.records.remove(id)?;
        self.unindex(id, &state);
        self.touched.insert(id.clone());
        Some(state)
    }

    pub(crate) fn get(&self, id: &LeaseId) -> Option<&LeaseState> {
        self.records.get(id)
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&LeaseId, &LeaseState)> {
        self.records.iter()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &LeaseState> {
        self.records.values()
    }

    /// Notes a lease of an earlier run, which this book never held, as
    /// ended.
    pub(crate) fn touch(&mut self, id: LeaseId) {
        self.touched.insert(id);
    }

    /// The leases granted or ended since the last call.
    pub(crate) fn take_touched(&mut self) -> BTreeSet<LeaseId> {
        std::mem::take(&mut self.touched)
    }

    /// Changes a lease, keeping the indexes true; `None` if it is gone.
    pub(crate) fn update<R>(
        &mut self,
        id: &LeaseId,
        change: impl FnOnce(&mut LeaseState) -> R,
    ) -> Option<R> {
        let mut state = self.records.remove(id)?;
        self.unindex(id, &state);
        let result = change(&mut state);
        self.index(id, &state);
        self.records.insert(id.clone(), state);
        Some(result)
    }

    /// The leases bound to `offer`, by id.
    pub(crate) fn bound_to(&self, offer: &OfferId) -> Vec<LeaseId> {
        ids(self.by_offer.get(offer))
    }

    /// Whether any lease is bound to `offer`.
    pub(crate) fn any_bound_to(&self, offer: &OfferId) -> bool {
        self.by_offer.contains_key(offer)
    }

    /// The leases on `agent`, by id.
    pub(crate) fn on_agent(&self, agent: &AgentId) -> Vec<LeaseId> {
        ids(self.by_agent.get(agent))
    }

    /// The leases of `frontend`, by id.
    pub(crate) fn of_frontend(&self, frontend: &FrontendName) -> Vec<LeaseId> {
        ids(self.by_frontend.get(frontend))
    }

    /// How many leases `frontend` holds.
    pub(crate) fn count_of(&self, frontend: &FrontendName) -> usize {
        self.by_frontend.get(frontend).map_or(0, BTreeSet::len)
    }

    /// The offers that leases are bound to.
    pub(crate) fn held_offers(&self) -> impl Iterator<Item = &OfferId> {
        self.by_offer.keys()
    }

    /// Every lease bound to an offer, by id.
    pub(crate) fn bound(&self) -> Vec<LeaseId> {
        self.by_offer.values().flatten().cloned().collect()
    }

    /// Whether a lease of `role` waits for its agent's next offer.
    pub(crate) fn any_unbound(&self, role: &str) -> bool {
        self.unbound.contains_key(role)
    }

    /// The earliest time something is due for a lease.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// The leases with something due by `now`, by id.
    pub(crate) fn due(&self, now: Timestamp) -> Vec<LeaseId> {
        let due: BTreeSet<&LeaseId> = self
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| id)
            .collect();
        due.into_iter().cloned().collect()
    }

    /// Whether every index says what a rebuild from the leases would.
    #[cfg(test)]
    pub(crate) fn indexes_agree(&self) -> bool {
        let mut rebuilt = LeaseBook::new(self.notice);
        for state in self.records.values() {
            rebuilt.insert(state.clone());
        }
        rebuilt.deadlines == self.deadlines
            && rebuilt.by_offer == self.by_offer
            && rebuilt.by_agent == self.by_agent
            && rebuilt.by_frontend == self.by_frontend
            && rebuilt.unbound == self.unbound
    }

    fn index(&mut self, id: &LeaseId, state: &LeaseState) {
        for at in state.deadlines(self.notice) {
            self.deadlines.insert((at, id.clone()));
        }
        let lease = &state.lease;
        match &lease.offer {
            Some(offer) => {
                self.by_offer
                    .entry(offer.clone())
                    .or_default()
                    .insert(id.clone());
            }
            None => *self.unbound.entry(lease.role.clone()).or_default() += 1,
        }
        self.by_agent
            .entry(lease.agent.id.clone())
            .or_default()
            .insert(id.clone());
        self.by_frontend
            .entry(lease.frontend.clone())
            .or_default()
            .insert(id.clone());
    }

    fn unindex(&mut self, id: &LeaseId, state: &LeaseState) {
        for at in state.deadlines(self.notice) {
            self.deadlines.remove(&(at, id.clone()));
        }
        let lease = &state.lease;
        match &lease.offer {
            Some(offer) => remove_from(&mut self.by_offer, offer, id),
            None => {
                if let Some(count) = self.unbound.get_mut(&lease.role) {
                    *count -= 1;
                    if *count == 0 {
                        self.unbound.remove(&lease.role);
                    }
                }
            }
        }
        remove_from(&mut self.by_agent, &lease.agent.id, id);
        remove_from(&mut self.by_frontend, &lease.frontend, id);
    }
}

impl Index<&LeaseId> for LeaseBook {
    type Output = LeaseState;

    fn index(&self, id: &LeaseId) -> &LeaseState {
        &self.records[id]
    }
}

fn ids(set: Option<&BTreeSet<LeaseId>>) -> Vec<LeaseId> {
    set.map(|ids| ids.iter().cloned().collect())
        .unwrap_or_default()
}

fn remove_from<K: Ord>(index: &mut BTreeMap<K, BTreeSet<LeaseId>>, key: &K, id: &LeaseId) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}
