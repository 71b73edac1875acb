//! Group commit: the journal's writer, a task of its own beside the
//! runtime loop.
//!
//! The loop hands over each turn's writes and goes on deciding while they
//! are committed; what the turn decided waits for that commit
//! ([`super::Runtime`] holds it). Whatever turns queue up behind a commit
//! in flight are merged into the next one, so under load one synced write
//! serves many turns, and a turn waits for at most the commit in flight
//! and its own.
//!
//! Turns are numbered in the order they are handed over (their
//! *generation*); commits cover them in that order, so "generation `g` is
//! committed" means every turn up to `g` is on disk.

use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::RuntimeError;
use crate::store::{Store, StoreError, Write};

/// How many turns may wait behind the commit in flight before the loop
/// waits too: the loop may run ahead of the store, but not without bound.
const QUEUED_TURNS: usize = 16;

/// The loop's handle on the writer task.
pub(super) struct Writer {
    turns: mpsc::Sender<(u64, Vec<Write>)>,
    committed: watch::Receiver<u64>,
    task: JoinHandle<Result<(), StoreError>>,
    /// The generation of the last turn handed over.
    handed_over: u64,
}

impl Writer {
    /// Starts the writer task, committing to `store`.
    pub(super) fn start(store: Store) -> Writer {
        let (turns, queued) = mpsc::channel(QUEUED_TURNS);
        let (committed_tx, committed) = watch::channel(0);
        Writer {
            turns,
            committed,
            task: tokio::spawn(write(store, queued, committed_tx)),
            handed_over: 0,
        }
    }

    /// Hands over a turn's writes; waits only while [`QUEUED_TURNS`] turns
    /// are queued already.
    pub(super) async fn hand_over(&mut self, writes: Vec<Write>) -> Result<(), RuntimeError> {
        self.handed_over += 1;
        if self.turns.send((self.handed_over, writes)).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// The generation of the last turn handed over: what an effect decided
    /// now waits for.
    pub(super) fn handed_over(&self) -> u64 {
        self.handed_over
    }

    /// Waits for the next commit.
    pub(super) async fn next_commit(&mut self) -> Result<(), RuntimeError> {
        if self.committed.changed().await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// Whether every turn up to `generation` is committed.
    pub(super) fn is_committed(&self, generation: u64) -> bool {
        *self.committed.borrow() >= generation
    }

    /// Why the writer stopped: the store refused a commit, or it panicked.
    async fn failure(&mut self) -> RuntimeError {
        match (&mut self.task).await {
            Ok(Err(error)) => RuntimeError::Store(error),
            // It ends on its own only once the loop is gone.
            Ok(Ok(())) => RuntimeError::WriterGone(None),
            Err(panicked) => RuntimeError::WriterGone(Some(panicked)),
        }
    }
}

/// The writer task: takes the oldest turn, merges every turn queued behind
/// it, commits them as one, and publishes the last generation committed.
/// Stops at the first failed commit (the loop then stops the broker) or
/// when the loop is gone.
async fn write(
    store: Store,
    mut queued: mpsc::Receiver<(u64, Vec<Write>)>,
    committed: watch::Sender<u64>,
) -> Result<(), StoreError> {
    while let Some((mut generation, mut writes)) = queued.recv().await {
        // A loop that is busy hands over its next turn within a yield:
        // waiting that long lets one commit, whose sync costs the same
        // CPU however much it writes, serve it too.
        tokio::task::yield_now().await;
        while let Ok((next, more)) = queued.try_recv() {
            generation = next;
            writes.extend(more);
        }
        store.commit(writes).await?;
        committed.send_replace(generation);
    }
    Ok(())
}
