//! Which principal owns each live session: the one that opened it.
//!
//! The core checks leases and tasks per frontend, and that a frontend name
//! belongs to the first principal that subscribed with it (the core keeps
//! that beside the rest of the frontend, so the two are forgotten together
//! and no Subscribe can slip between a claim and its session). This module
//! makes sure a caller can only speak through its own sessions. Session ids
//! are predictable, so a session id is not a secret: a call naming a
//! session of another principal is answered exactly as one naming no
//! session at all.
//!
//! A std mutex guards the books: it is held for a map lookup or insert and
//! never across an `.await`.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
};

use agora_core::SessionId;

/// Why a caller may not use a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnershipError {
    /// No live session with this id was opened by this principal; told
    /// apart from "no such session" by nobody.
    #[error("session {0} is unknown or has ended; subscribe again")]
    SessionNotFound(SessionId),
}

#[derive(Debug, Default)]
struct Books {
    /// Live session → principal name.
    sessions: HashMap<SessionId, String>,
}

/// The session bookkeeping of one broker.
#[derive(Debug, Default)]
pub struct Ownership {
    books: Mutex<Books>,
}

impl Ownership {
    fn books(&self) -> MutexGuard<'_, Books> {
        // A panic elsewhere while holding the lock cannot leave the maps
        // half-updated (each update is a single insert or remove).
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `principal` opened `session`.
    pub fn open_session(&self, session: &SessionId, principal: &str) {
        self.books()
            .sessions
            .insert(session.clone(), principal.to_owned());
    }

    /// Forgets an ended session: its id is no use to anyone any more.
    pub fn close_session(&self, session: &SessionId) {
        self.books().sessions.remove(session);
    }

    /// Lets `principal` use `session` only if it opened it; unknown sessions
    /// are refused here too, so that no id guessed before the bookkeeping
    /// caught up slips through to the core.
    pub fn check_session(
        &self,
        session: &SessionId,
        principal: &str,
    ) -> Result<(), OwnershipError> {
        match self.books().sessions.get(session) {
            Some(owner) if owner == principal => Ok(()),
            _ => Err(OwnershipError::SessionNotFound(session.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str) -> SessionId {
        SessionId(id.into())
    }

    #[test]
    fn a_session_answers_only_to_its_principal() {
        let books = Ownership::default();
        books.open_session(&session("s-1"), "ci");
        assert_eq!(books.check_session(&session("s-1"), "ci"), Ok(()));
        let not_found = Err(OwnershipError::SessionNotFound(session("s-1")));
        assert_eq!(books.check_session(&session("s-1"), "mallory"), not_found);
    }

    #[test]
    fn a_foreign_session_looks_exactly_like_a_missing_one() {
        let books = Ownership::default();
        books.open_session(&session("s-1"), "ci");
        let foreign = books.check_session(&session("s-1"), "mallory").unwrap_err();
        let missing = books
            .check_session(&session("s-1"), "nobody-opened-it")
            .unwrap_err();
        assert_eq!(foreign.to_string(), missing.to_string());
        assert_eq!(
            books.check_session(&session("s-9"), "ci"),
            Err(OwnershipError::SessionNotFound(session("s-9")))
        );
    }

    #[test]
    fn a_closed_session_is_refused() {
        let books = Ownership::default();
        books.open_session(&session("s-1"), "ci");
        books.close_session(&session("s-1"));
        assert!(books.check_session(&session("s-1"), "ci").is_err());
    }
}
