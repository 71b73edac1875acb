//! The pool: offers Agora holds and the part of each that is not leased,
//! indexed by role and free cpus so that finding room for a slot is a
//! logarithmic search, not a scan of every agent. An offer's revocable
//! resources (Mesos oversubscription) are a bag of their own with an index
//! of their own: a slot is served from one bag or the other, never both.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Offer, OfferId, Timestamp};
use super::resources::Resources;

/// An offer in the pool and what of it is not leased.
#[derive(Debug, Clone)]
pub(super) struct PooledOffer {
    pub(super) offer: Offer,
    pub(super) free: Resources,
    /// Revocable resources not leased.
    pub(super) free_revocable: Resources,
    pub(super) received_at: Timestamp,
}

impl PooledOffer {
    /// The free part of one bag.
    pub(super) fn free(&self, revocable: bool) -> &Resources {
        if revocable {
            &self.free_revocable
        } else {
            &self.free
        }
    }

    fn free_mut(&mut self, revocable: bool) -> &mut Resources {
        if revocable {
            &mut self.free_revocable
        } else {
            &mut self.free
        }
    }
}

/// The scalar the index orders offers by: most slots ask for cpus, so the
/// first offer at or above a slot's cpus is usually a fit.
const INDEX_SCALAR: &str = "cpus";

/// Offers by id, plus per (role, revocable bag) an ordered set of (free
/// cpus, id), the offers in the order they arrived (so the next time to
/// live that ends is found without a walk), and the sum of what is free and
/// regular, for fair shares.
#[derive(Debug, Default, Clone)]
pub(super) struct Pool {
    offers: BTreeMap<OfferId, PooledOffer>,
    by_role: BTreeMap<(String, bool), BTreeSet<(u64, OfferId)>>,
    by_arrival: BTreeSet<(Timestamp, OfferId)>,
    total_free: Resources,
}

impl Pool {
    pub(super) fn insert(&mut self, pooled: PooledOffer) {
        let id = pooled.offer.id.clone();
        if self.offers.contains_key(&id) {
            self.remove(&id);
        }
        for revocable in [false, true] {
            self.index(&pooled, revocable)
                .insert(key(&pooled, revocable));
        }
        self.total_free.add(&pooled.free);
        self.by_arrival.insert((pooled.received_at, id.clone()));
        self.offers.insert(id, pooled);
    }

    pub(super) fn remove(&mut self, id: &OfferId) -> Option<PooledOffer> {
        let pooled = self.offers.remove(id)?;
        self.total_free.subtract(&pooled.free);
        self.by_arrival.remove(&(pooled.received_at, id.clone()));
        for revocable in [false, true] {
            let index_key = (pooled.offer.role.clone(), revocable);
            if let Some(index) = self.by_role.get_mut(&index_key) {
                index.remove(&key(&pooled, revocable));
                if index.is_empty() {
                    self.by_role.remove(&index_key);
                }
            }
        }
        Some(pooled)
    }

    /// Takes `resources` from the free part of one of the offer's bags;
    /// `false` and no change when the offer is gone or does not hold them.
    pub(super) fn take(&mut self, id: &OfferId, resources: &Resources, revocable: bool) -> bool {
        let taken = self.update(id, revocable, |free| free.subtract(resources));
        if taken && !revocable {
            self.total_free.subtract(resources);
        }
        taken
    }

    /// Gives `resources` back to one of the offer's bags, if it is still here.
    pub(super) fn give_back(&mut self, id: &OfferId, resources: &Resources, revocable: bool) {
        let given = self.update(id, revocable, |free| {
            free.add(resources);
            true
        });
        if given && !revocable {
            self.total_free.add(resources);
        }
    }

    /// Everything free in the pool.
    pub(super) fn total_free(&self) -> &Resources {
        &self.total_free
    }

    fn update(
        &mut self,
        id: &OfferId,
        revocable: bool,
        change: impl FnOnce(&mut Resources) -> bool,
    ) -> bool {
        let Some(pooled) = self.offers.get_mut(id) else {
            return false;
        };
        let old_key = key(pooled, revocable);
        if !change(pooled.free_mut(revocable)) {
            return false;
        }
        let new_key = key(pooled, revocable);
        let index_key = (pooled.offer.role.clone(), revocable);
        if old_key != new_key
            && let Some(index) = self.by_role.get_mut(&index_key)
        {
            index.remove(&old_key);
            index.insert(new_key);
        }
        true
    }

    /// Offers of `role` with at least `cpus_milli` thousandths of a cpu
    /// free in the chosen bag, tightest first.
    pub(super) fn fitting<'a>(
        &'a self,
        role: &str,
        revocable: bool,
        cpus_milli: u64,
    ) -> impl Iterator<Item = &'a PooledOffer> + 'a {
        self.by_role
            .get(&(role.to_owned(), revocable))
            .into_iter()
            .flat_map(move |index| index.range((cpus_milli, OfferId(String::new()))..))
            .filter_map(|(_, id)| self.offers.get(id))
    }

    /// How many offers of `role` the pool holds.
    pub(super) fn count(&self, role: &str) -> usize {
        self.by_role
            .get(&(role.to_owned(), false))
            .map_or(0, BTreeSet::len)
    }

    /// When the earliest offer that arrived after `after` (or the earliest
    /// of all, without a bound) arrived.
    pub(super) fn first_arrival_after(&self, after: Option<Timestamp>) -> Option<Timestamp> {
        let from = after.map_or(0, |after| after.0.saturating_add(1));
        self.by_arrival
            .range((Timestamp(from), OfferId(String::new()))..)
            .next()
            .map(|(at, _)| *at)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &PooledOffer> {
        self.offers.values()
    }

    /// Removes every offer; what was in the pool, by id.
    pub(super) fn clear(&mut self) -> Vec<OfferId> {
        self.by_role.clear();
        self.by_arrival.clear();
        self.total_free = Resources::default();
        std::mem::take(&mut self.offers).into_keys().collect()
    }

    fn index(&mut self, pooled: &PooledOffer, revocable: bool) -> &mut BTreeSet<(u64, OfferId)> {
        let index_key = (pooled.offer.role.clone(), revocable);
        self.by_role.entry(index_key).or_default()
    }
}

fn key(pooled: &PooledOffer, revocable: bool) -> (u64, OfferId) {
    let free = pooled.free(revocable);
    (free.milli(INDEX_SCALAR), pooled.offer.id.clone())
}
