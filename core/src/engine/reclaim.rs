//! Taking lent capacity back from running borrowed tasks: when an owner's
//! waiting demand cannot be served even after its unlaunched loans are
//! reclaimed, the newest borrowed tasks that together free enough are
//! named in a `PreemptionNotice` with a deadline (the owner's
//! `reclaim_grace`). A frontend that ends them first has cooperated;
//! at the deadline Agora kills exactly those still alive, by task id.
//! Never an owner's task, never a regular one, never more than needed.

use super::*;
use crate::resources::Resources;

/// How many reclaim decisions are kept for operators.
const RECLAIMS_KEPT: usize = 100;

impl Core {
    /// Starts a reclaim for `request` of the owner namespace if none of its
    /// own is under way and running borrowed tasks can free what it asks.
    /// A request that takes revocable capacity only is never served by what
    /// its namespace lent (that comes back as regular capacity), so it
    /// stops nobody's tasks.
    pub(super) fn preempt_for(&mut self, now: Timestamp, request: &AcquireRequest) {
        if request.revocable == RevocablePolicy::Require {
            return;
        }
        let owner = &request.namespace;
        let Some(grace) = self
            .tenancy
            .namespaces
            .get(owner)
            .filter(|ns| ns.lending.lend_idle)
            .map(|ns| ns.lending.reclaim_grace)
        else {
            return;
        };
        let under_way = self.reclaims.iter().any(|state| {
            let reclaim = &state.reclaim;
            let alive =
                |task: &TaskId| self.tasks.get(task).is_some_and(|t| !t.state.is_terminal());
            &reclaim.owner == owner && (reclaim.deadline > now || reclaim.tasks.iter().any(alive))
        });
        if under_way {
            return;
        }
        let mut borrowed: Vec<&TaskRecord> = self
            .tasks
            .values()
            .filter(|t| t.borrowed_from.as_ref() == Some(owner) && !t.state.is_terminal())
            .collect();
        borrowed.sort_by(|a, b| (b.launched_at, &b.id).cmp(&(a.launched_at, &a.id)));
        // Unlaunched loans go back first: what they return is not asked of
        // running tasks, so no more tasks stop than needed.
        let loans = self.unlaunched_loans(owner);
        let mut returned = Resources::default();
        for state in loans.iter().filter_map(|id| self.leases.get(id)) {
            returned.add(&state.lease.resources);
        }
        let needed = beyond(&self.shortfall(owner, request), &returned);
        let mut freed = Resources::default();
        let mut chosen: Vec<&TaskRecord> = Vec::new();
        for task in borrowed {
            if freed.contains(&needed) {
                break;
            }
            freed.add(&task.resources);
            chosen.push(task);
        }
        if chosen.is_empty() || !freed.contains(&needed) {
            return;
        }
        let mut by_frontend: BTreeMap<(FrontendName, String), Vec<TaskId>> = BTreeMap::new();
        for task in chosen {
            by_frontend
                .entry((task.frontend.clone(), task.namespace.clone()))
                .or_default()
                .push(task.id.clone());
        }
        for id in loans {
            self.lose_lease(
                &id,
                LeaseLostReason::Reclaimed,
                format!("namespace {owner} needs the capacity it lent"),
            );
        }
        for ((frontend, borrower), tasks) in by_frontend {
            let reclaim = Reclaim {
                owner: owner.clone(),
                borrower,
                frontend: frontend.clone(),
                reason: format!(
                    "namespace {owner} needs {needed} of the capacity it lent; \
                     the newest borrowed tasks that free it"
                ),
                tasks,
                decided_at: now,
                deadline: now.after(grace),
            };
            self.notify(
                &frontend,
                FrontendEvent::PreemptionNotice(Box::new(reclaim.clone())),
            );
            self.touch_reclaims();
            self.reclaims.push_back(ReclaimState {
                reclaim,
                enforced: false,
            });
            if self.reclaims.len() > RECLAIMS_KEPT {
                self.reclaims.pop_front();
            }
        }
    }

    /// What `request` asks beyond what the owner's role has free in the
    /// pool: what stopping borrowed tasks must free.
    fn shortfall(&self, owner: &str, request: &AcquireRequest) -> Resources {
        let mut asked = Resources::default();
        for slot in &request.slots {
            for _ in 0..slot.count {
                asked.add(&slot.resources);
            }
        }
        let role = self.role_of(owner);
        let mut free = Resources::default();
        for pooled in self
            .offers
            .iter()
            .filter(|p| Some(p.offer.role.as_str()) == role)
        {
            free.add(&pooled.free);
        }
        beyond(&asked, &free)
    }

    /// Kills the tasks of reclaims whose deadline passed and that their
    /// frontends did not end themselves.
    pub(super) fn enforce_reclaims(&mut self, now: Timestamp) {
        let mut due: Vec<TaskId> = Vec::new();
        for state in self.reclaims.iter_mut() {
            if !state.enforced && state.reclaim.deadline <= now {
                state.enforced = true;
                self.journal.reclaims = true;
                due.extend(state.reclaim.tasks.iter().cloned());
            }
        }
        for task in due {
            self.kill_task(&task, None);
        }
    }

    /// The reclaims decided recently, optionally of one owner's capacity.
    pub fn reclaims(&self, owner: Option<&str>) -> Vec<Reclaim> {
        self.reclaims
            .iter()
            .map(|state| &state.reclaim)
            .filter(|r| owner.is_none_or(|o| r.owner == o))
            .cloned()
            .collect()
    }
}

/// The scalars of `needed` that `covered` does not cover.
fn beyond(needed: &Resources, covered: &Resources) -> Resources {
    let left: Vec<(&str, f64)> = needed
        .scalars()
        .map(|(name, amount)| (name, (amount - covered.scalar(name)).max(0.0)))
        .collect();
    Resources::from_scalars(left, []).unwrap_or_default()
}

#[cfg(test)]
mod tests;
