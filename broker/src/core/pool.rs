//! The pool: offers Agora holds and the part of each that is not leased,
//! indexed by role and free cpus so that finding room for a slot is a
//! logarithmic search, not a scan of every agent.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Offer, OfferId, Timestamp};
use super::resources::Resources;

/// An offer in the pool and what of it is not leased.
#[derive(Debug, Clone)]
pub(super) struct PooledOffer {
    pub(super) offer: Offer,
    pub(super) free: Resources,
    pub(super) received_at: Timestamp,
}

/// The scalar the index orders offers by: most slots ask for cpus, so the
/// first offer at or above a slot's cpus is usually a fit.
const INDEX_SCALAR: &str = "cpus";

/// Offers by id, plus per role an ordered set of (free cpus, id), and the
/// sum of what is free, for fair shares.
#[derive(Debug, Default)]
pub(super) struct Pool {
    offers: BTreeMap<OfferId, PooledOffer>,
    by_role: BTreeMap<String, BTreeSet<(u64, OfferId)>>,
    total_free: Resources,
}

impl Pool {
    pub(super) fn insert(&mut self, pooled: PooledOffer) {
        let id = pooled.offer.id.clone();
        if self.offers.contains_key(&id) {
            self.remove(&id);
        }
        self.index(&pooled).insert(key(&pooled));
        self.total_free.add(&pooled.free);
        self.offers.insert(id, pooled);
    }

    pub(super) fn remove(&mut self, id: &OfferId) -> Option<PooledOffer> {
        let pooled = self.offers.remove(id)?;
        self.total_free.subtract(&pooled.free);
        let role = &pooled.offer.role;
        if let Some(index) = self.by_role.get_mut(role) {
            index.remove(&key(&pooled));
            if index.is_empty() {
                self.by_role.remove(role);
            }
        }
        Some(pooled)
    }

    /// Takes `resources` from the offer's free part; `false` and no change
    /// when the offer is gone or does not hold them.
    pub(super) fn take(&mut self, id: &OfferId, resources: &Resources) -> bool {
        let taken = self.update(id, |free| free.subtract(resources));
        if taken {
            self.total_free.subtract(resources);
        }
        taken
    }

    /// Gives `resources` back to the offer's free part, if it is still here.
    pub(super) fn give_back(&mut self, id: &OfferId, resources: &Resources) {
        if self.update(id, |free| {
            free.add(resources);
            true
        }) {
            self.total_free.add(resources);
        }
    }

    /// Everything free in the pool.
    pub(super) fn total_free(&self) -> &Resources {
        &self.total_free
    }

    fn update(&mut self, id: &OfferId, change: impl FnOnce(&mut Resources) -> bool) -> bool {
        let Some(pooled) = self.offers.get_mut(id) else {
            return false;
        };
        let old_key = key(pooled);
        if !change(&mut pooled.free) {
            return false;
        }
        let new_key = key(pooled);
        if old_key != new_key
            && let Some(index) = self.by_role.get_mut(&pooled.offer.role)
        {
            index.remove(&old_key);
            index.insert(new_key);
        }
        true
    }

    /// Offers of `role` with at least `cpus_milli` thousandths of a cpu
    /// free, tightest first.
    pub(super) fn fitting<'a>(
        &'a self,
        role: &str,
        cpus_milli: u64,
    ) -> impl Iterator<Item = &'a PooledOffer> + 'a {
        self.by_role
            .get(role)
            .into_iter()
            .flat_map(move |index| index.range((cpus_milli, OfferId(String::new()))..))
            .filter_map(|(_, id)| self.offers.get(id))
    }

    /// How many offers of `role` the pool holds.
    pub(super) fn count(&self, role: &str) -> usize {
        self.by_role.get(role).map_or(0, BTreeSet::len)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &PooledOffer> {
        self.offers.values()
    }

    /// Removes every offer; what was in the pool, by id.
    pub(super) fn clear(&mut self) -> Vec<OfferId> {
        self.by_role.clear();
        self.total_free = Resources::default();
        std::mem::take(&mut self.offers).into_keys().collect()
    }

    fn index(&mut self, pooled: &PooledOffer) -> &mut BTreeSet<(u64, OfferId)> {
        self.by_role.entry(pooled.offer.role.clone()).or_default()
    }
}

fn key(pooled: &PooledOffer) -> (u64, OfferId) {
    (pooled.free.milli(INDEX_SCALAR), pooled.offer.id.clone())
}
