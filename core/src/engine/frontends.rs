//! Frontends as operators see and steer them: the frontends view, drains,
//! and the forgetting of frontends that hold nothing.
//!
//! **Drains** work like cordoning a node (`kubectl drain`): a drained
//! frontend gets no new capacity — its waiting acquires are refused, its
//! leases are taken back and new acquires are refused — until an operator
//! undoes the drain; its tasks keep running unless the operator asks for
//! them to be killed. Its sessions stay open, so that it hears of all this
//! and can still watch, kill and acknowledge. A drain is complete once the
//! frontend holds no lease, no live task and no waiting request.
//!
//! **Forgetting.** Frontend names are chosen by callers, so a core that
//! kept every name it ever saw would grow with them for as long as it
//! runs. A frontend that holds nothing — no live session, lease, live task,
//! unacknowledged event or waiting request — and is not drained is
//! forgotten `frontend_retention` after its last session ended, with all
//! that was kept under its name (request ids, refused agents, the principal
//! that owned the name).
//!
//! Without a live session a frontend's unacknowledged events can only grow
//! (only Acknowledge, which takes a session, removes them), and each of its
//! leases and tasks ends with an event. So the end of its last session is
//! the one moment it can begin to hold nothing (besides an operator undoing
//! its drain). It is put in the `forgettable` index then, ordered by when
//! it is due, and looked at once more when due: no walk of every frontend,
//! on a command or on a tick.

use super::*;

impl Core {
    /// Every frontend the core knows, by name; `now` is the time shown as
    /// last seen for those with a live session.
    pub fn frontends(&self, now: Timestamp) -> Vec<FrontendView> {
        let mut waiting: BTreeMap<&FrontendName, usize> = BTreeMap::new();
        for w in &self.queue.waiting {
            *waiting.entry(&w.frontend).or_default() += 1;
        }
        self.sessions
            .frontends
            .iter()
            .map(|(name, state)| {
                let waiting = waiting.get(name).copied().unwrap_or_default();
                self.view(now, name, state, waiting)
            })
            .collect()
    }

    /// One frontend, as [`Core::frontends`] shows it.
    pub fn frontend(&self, now: Timestamp, name: &FrontendName) -> Result<FrontendView, CoreError> {
        let state = self
            .sessions
            .frontends
            .get(name)
            .ok_or_else(|| CoreError::FrontendNotFound(name.clone()))?;
        let waiting = self
            .queue
            .waiting
            .iter()
            .filter(|w| &w.frontend == name)
            .count();
        Ok(self.view(now, name, state, waiting))
    }

    fn view(
        &self,
        now: Timestamp,
        name: &FrontendName,
        state: &FrontendState,
        waiting_requests: usize,
    ) -> FrontendView {
        let namespaces = if state.sessions.is_empty() {
            state.namespaces.iter().cloned().collect()
        } else {
            let live: BTreeSet<&String> = state
                .sessions
                .iter()
                .filter_map(|s| self.sessions.open.get(s))
                .flat_map(|s| &s.namespaces)
                .collect();
            live.into_iter().cloned().collect()
        };
        FrontendView {
            name: name.clone(),
            namespaces,
            sessions: state.sessions.len(),
            leases: self.leases.count_of(name),
            live_tasks: self.tasks.live_count(name),
            unacknowledged_events: state.outbox.len(),
            waiting_requests,
            last_seen: if state.sessions.is_empty() {
                state.last_seen
            } else {
                now
            },
            draining_since: state.draining,
            forget_at: state.forget_at,
        }
    }

    /// Drains `frontend`: refuses its waiting acquires and every new one,
    /// takes its leases back (telling it `Drained`) and, with `kill_tasks`,
    /// asks Mesos to kill its live tasks. Draining a drained frontend
    /// again takes whatever it still holds, so an operator can repeat the
    /// call to follow the drain and to kill what a first call left alone.
    pub(crate) fn drain_frontend(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        kill_tasks: bool,
    ) -> Result<DrainReport, CoreError> {
        let state = self
            .sessions
            .frontends
            .get_mut(frontend)
            .ok_or_else(|| CoreError::FrontendNotFound(frontend.clone()))?;
        state.draining.get_or_insert(now);
        self.touch_frontend(frontend);
        self.unschedule_forget(frontend);
        let (refused, kept): (VecDeque<Waiting>, _) = std::mem::take(&mut self.queue.waiting)
            .into_iter()
            .partition(|w| &w.frontend == frontend);
        self.queue.waiting = kept;
        let requests_refused = refused.len();
        for waiting in refused {
            let refusal = CoreError::FrontendDraining {
                frontend: frontend.clone(),
            };
            self.answer_waiting(waiting, Err(refusal));
        }
        let leases = self.leases.of_frontend(frontend);
        for id in &leases {
            self.lose_lease(
                id,
                LeaseLostReason::Drained,
                "an operator drained this frontend".into(),
            );
        }
        // Launches waiting for those leases to be re-bound are refused now.
        self.retry_launches(now);
        let tasks_killed = if kill_tasks {
            self.kill_all_tasks_of(now, frontend)
        } else {
            0
        };
        self.serve_waiting(now);
        Ok(DrainReport {
            leases_released: leases.len(),
            requests_refused,
            tasks_killed,
            frontend: self.frontend(now, frontend)?,
        })
    }

    /// Asks Mesos to kill every live task of `frontend`; how many.
    fn kill_all_tasks_of(&mut self, now: Timestamp, frontend: &FrontendName) -> usize {
        let live: Vec<TaskId> = self
            .tasks
            .values()
            .filter(|t| &t.frontend == frontend && !t.state.is_terminal())
            .map(|t| t.id.clone())
            .collect();
        // A launch still lingering for its siblings goes out first: a KILL
        // that reached Mesos before the ACCEPT would find no task to kill,
        // and the ACCEPT would then start it.
        let lingering: Vec<OfferId> = self
            .launches
            .accepts
            .iter()
            .filter(|(_, pending)| pending.task_ids().iter().any(|id| live.contains(id)))
            .map(|(offer, _)| offer.clone())
            .collect();
        for offer in lingering {
            self.flush_accept(now, &offer);
        }
        for task in &live {
            self.kill_task(task, None);
        }
        live.len()
    }

    /// Undoes a drain: `frontend` may acquire again. What the drain took
    /// stays taken.
    pub(crate) fn undrain_frontend(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
    ) -> Result<FrontendView, CoreError> {
        let state = self
            .sessions
            .frontends
            .get_mut(frontend)
            .ok_or_else(|| CoreError::FrontendNotFound(frontend.clone()))?;
        state.draining = None;
        let idle = state.sessions.is_empty();
        self.touch_frontend(frontend);
        if idle {
            self.schedule_forget(now, frontend);
        }
        self.frontend(now, frontend)
    }

    /// Refuses the acquires of a drained frontend.
    pub(super) fn refuse_if_draining(&self, frontend: &FrontendName) -> Result<(), CoreError> {
        match self.sessions.frontends.get(frontend) {
            Some(state) if state.draining.is_some() => Err(CoreError::FrontendDraining {
                frontend: frontend.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Whether `frontend` holds nothing that forgetting it would lose: no
    /// live session, lease, live task, unacknowledged event or waiting
    /// request, and no drain an operator would expect to stay.
    fn holds_nothing(&self, frontend: &FrontendName, state: &FrontendState) -> bool {
        state.sessions.is_empty()
            && state.outbox.is_empty()
            && state.draining.is_none()
            && self.leases.count_of(frontend) == 0
            && self.tasks.live_count(frontend) == 0
            && !self.queue.waiting.iter().any(|w| &w.frontend == frontend)
    }

    /// Puts `frontend` in the forgettable index, due `frontend_retention`
    /// from `now`, if it holds nothing.
    pub(super) fn schedule_forget(&mut self, now: Timestamp, frontend: &FrontendName) {
        let idle = self
            .sessions
            .frontends
            .get(frontend)
            .is_some_and(|state| self.holds_nothing(frontend, state));
        if !idle {
            return;
        }
        self.unschedule_forget(frontend);
        let at = now.after(self.config.frontend_retention);
        if let Some(state) = self.sessions.frontends.get_mut(frontend) {
            state.forget_at = Some(at);
            self.sessions.forgettable.insert((at, frontend.clone()));
        }
    }

    /// Takes `frontend` out of the forgettable index.
    pub(super) fn unschedule_forget(&mut self, frontend: &FrontendName) {
        if let Some(at) = self
            .sessions
            .frontends
            .get_mut(frontend)
            .and_then(|state| state.forget_at.take())
        {
            self.sessions.forgettable.remove(&(at, frontend.clone()));
        }
    }

    /// Forgets the frontends due by `now` that still hold nothing; the
    /// others leave the index until their next session ends.
    pub(super) fn forget_idle_frontends(&mut self, now: Timestamp) {
        while let Some((at, frontend)) = self.sessions.forgettable.first().cloned()
            && at <= now
        {
            self.sessions.forgettable.pop_first();
            let idle = self
                .sessions
                .frontends
                .get(&frontend)
                .is_some_and(|state| self.holds_nothing(&frontend, state));
            if idle {
                self.forget(&frontend);
            } else if let Some(state) = self.sessions.frontends.get_mut(&frontend) {
                state.forget_at = None;
            }
        }
    }

    /// Drops everything kept under `frontend`'s name.
    fn forget(&mut self, frontend: &FrontendName) {
        self.touch_frontend(frontend);
        self.sessions.frontends.remove(frontend);
        let remembered: Vec<(FrontendName, String)> = self
            .queue
            .requests
            .range((frontend.clone(), String::new())..)
            .take_while(|((name, _), _)| name == frontend)
            .map(|(key, _)| key.clone())
            .collect();
        for key in remembered {
            self.queue.requests.remove(&key);
        }
    }

    /// When the next frontend may be forgotten.
    pub(super) fn next_forget(&self) -> Option<Timestamp> {
        self.sessions.forgettable.first().map(|(at, _)| *at)
    }
}

#[cfg(test)]
mod tests;
