//! The forgetting of frontends that hold nothing.
//!
//! Frontend names are chosen by callers, so a core that kept every name it
//! ever saw would grow with them for as long as it runs. A frontend that
//! holds nothing — no live session, lease, live task, unacknowledged event
//! or waiting request — is forgotten `frontend_retention` after its last
//! session ended, with all that was kept under its name (request ids,
//! refused agents, the principal that owned the name).
//!
//! Without a live session a frontend's unacknowledged events can only grow
//! (only Acknowledge, which takes a session, removes them), and each of its
//! leases and tasks ends with an event. So the end of its last session is
//! the one moment it can begin to hold nothing. It is put in the
//! `forgettable` index then, ordered by when it is due, and looked at once
//! more when due: no walk of every frontend, on a command or on a tick.

use super::*;

impl Core {
    /// Whether `frontend` holds nothing that forgetting it would lose: no
    /// live session, lease, live task, unacknowledged event or waiting
    /// request.
    fn holds_nothing(&self, frontend: &FrontendName, state: &FrontendState) -> bool {
        state.sessions.is_empty()
            && state.outbox.is_empty()
            && self.leases.count_of(frontend) == 0
            && self.tasks.live_count(frontend) == 0
            && !self.waiting.iter().any(|w| &w.frontend == frontend)
    }

    /// Puts `frontend` in the forgettable index, due `frontend_retention`
    /// from `now`, if it holds nothing.
    pub(super) fn schedule_forget(&mut self, now: Timestamp, frontend: &FrontendName) {
        let idle = self
            .frontends
            .get(frontend)
            .is_some_and(|state| self.holds_nothing(frontend, state));
        if !idle {
            return;
        }
        self.unschedule_forget(frontend);
        let at = now.after(self.config.frontend_retention);
        if let Some(state) = self.frontends.get_mut(frontend) {
            state.forget_at = Some(at);
            self.forgettable.insert((at, frontend.clone()));
        }
    }

    /// Takes `frontend` out of the forgettable index.
    pub(super) fn unschedule_forget(&mut self, frontend: &FrontendName) {
        if let Some(at) = self
            .frontends
            .get_mut(frontend)
            .and_then(|state| state.forget_at.take())
        {
            self.forgettable.remove(&(at, frontend.clone()));
        }
    }

    /// Forgets the frontends due by `now` that still hold nothing; the
    /// others leave the index until their next session ends.
    pub(super) fn forget_idle_frontends(&mut self, now: Timestamp) {
        while let Some((at, frontend)) = self.forgettable.first().cloned()
            && at <= now
        {
            self.forgettable.pop_first();
            let idle = self
                .frontends
                .get(&frontend)
                .is_some_and(|state| self.holds_nothing(&frontend, state));
            if idle {
                self.forget(&frontend);
            } else if let Some(state) = self.frontends.get_mut(&frontend) {
                state.forget_at = None;
            }
        }
    }

    /// Drops everything kept under `frontend`'s name.
    fn forget(&mut self, frontend: &FrontendName) {
        self.frontends.remove(frontend);
        let remembered: Vec<(FrontendName, String)> = self
            .requests
            .range((frontend.clone(), String::new())..)
            .take_while(|((name, _), _)| name == frontend)
            .map(|(key, _)| key.clone())
            .collect();
        for key in remembered {
            self.requests.remove(&key);
        }
    }

    /// When the next frontend may be forgotten.
    pub(super) fn next_forget(&self) -> Option<Timestamp> {
        self.forgettable.first().map(|(at, _)| *at)
    }
}
