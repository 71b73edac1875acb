//! The tasks the broker launched: live ones, indexed by the id their
//! frontend gave them, and a bounded tail of finished ones.
//!
//! A live task must be found by `(frontend, client id)` on every launch (a
//! frontend may not run two live tasks under one id), and the broker runs
//! tasks for as long as it lives: scanning every record, or keeping every
//! finished one, would make each launch slower and the broker bigger with
//! its history. Finished records are kept, oldest forgotten first, only so
//! that a frontend can still look a recent one up; its terminal status
//! already reached it through its event stream. This mirrors Mesos's own
//! `--max_completed_tasks_per_framework`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::model::{FrontendName, TaskId, TaskRecord};

#[derive(Debug, Clone)]
pub(crate) struct TaskBook {
    records: BTreeMap<TaskId, TaskRecord>,
    /// Per frontend, the client ids of its live tasks.
    live: BTreeMap<FrontendName, BTreeSet<String>>,
    /// Finished tasks, oldest first; at most `keep_finished` of them.
    finished: VecDeque<TaskId>,
    keep_finished: usize,
    /// Tasks launched or changed since the journal last took them.
    touched: BTreeSet<TaskId>,
}

impl TaskBook {
    pub(crate) fn new(keep_finished: usize) -> TaskBook {
        TaskBook {
            records: BTreeMap::new(),
            live: BTreeMap::new(),
            finished: VecDeque::new(),
            keep_finished,
            touched: BTreeSet::new(),
        }
    }

    /// Records a task that is about to be launched (so it is live).
    pub(crate) fn insert(&mut self, record: TaskRecord) {
        debug_assert!(!record.state.is_terminal());
        self.live
            .entry(record.frontend.clone())
            .or_default()
            .insert(record.client_id.clone());
        self.touched.insert(record.id.clone());
        self.records.insert(record.id.clone(), record);
    }

    pub(crate) fn get(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.records.get(id)
    }

    /// Every task still recorded, live or recently finished.
    pub(crate) fn values(&self) -> impl Iterator<Item = &TaskRecord> {
        self.records.values()
    }

    /// Whether `frontend` runs a live task it called `client_id`.
    pub(crate) fn is_live(&self, frontend: &FrontendName, client_id: &str) -> bool {
        self.live
            .get(frontend)
            .is_some_and(|ids| ids.contains(client_id))
    }

    /// How many live tasks `frontend` runs.
    pub(crate) fn live_count(&self, frontend: &FrontendName) -> usize {
        self.live.get(frontend).map_or(0, BTreeSet::len)
    }

    /// Changes a live task and returns a copy of it as it now is; a
    /// finished or unknown task is left alone (`None`), because a terminal
    /// state is final. A change that finishes the task moves it to the
    /// finished tail, which may forget the oldest finished record.
    pub(crate) fn update_live(
        &mut self,
        id: &TaskId,
        change: impl FnOnce(&mut TaskRecord),
    ) -> Option<TaskRecord> {
        let record = self
            .records
            .get_mut(id)
            .filter(|record| !record.state.is_terminal())?;
        change(record);
        let record = record.clone();
        self.touched.insert(record.id.clone());
        if record.state.is_terminal() {
            self.finish(&record);
        }
        Some(record)
    }

    /// The tasks launched or changed since the last call.
    pub(crate) fn take_touched(&mut self) -> BTreeSet<TaskId> {
        std::mem::take(&mut self.touched)
    }

    fn finish(&mut self, record: &TaskRecord) {
        if let Some(ids) = self.live.get_mut(&record.frontend) {
            ids.remove(&record.client_id);
            if ids.is_empty() {
                self.live.remove(&record.frontend);
            }
        }
        self.finished.push_back(record.id.clone());
        while self.finished.len() > self.keep_finished {
            if let Some(oldest) = self.finished.pop_front() {
                self.records.remove(&oldest);
            }
        }
    }
}
