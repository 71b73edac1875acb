//! Durability: which durable records the inputs touched (the journal),
//! taken by the runtime as [`Change`]s to write before the effects leave;
//! and recovery after a crash: the records loaded back, every lease told
//! lost, every task reconciled with Mesos and the acquires held off until
//! Mesos has reported the tasks the quota counts. See [`crate::durable`].

use std::time::Duration;

use super::*;
use crate::durable::{Change, Durable, FrontendRecord, LeaseRecord, ReclaimRecord};

/// How long after subscribing a recovering broker waits for Mesos to report
/// every task it restored before it serves acquires anyway (an agent that
/// is partitioned away may not answer reconciliation for minutes, and its
/// tasks stay counted against their quota meanwhile, which errs on the
/// safe side); and how long it adopts live tasks it does not know, which
/// the implicit reconciliation reports.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The durable records the inputs touched since the runtime last took
/// them. Tasks and leases note their own ([`TaskBook`], [`LeaseBook`]).
#[derive(Debug, Default)]
pub(crate) struct Journal {
    frontends: BTreeSet<FrontendName>,
    pub(super) reclaims: bool,
}

/// A restart under way: acquires wait until the tasks restored from the
/// store are settled, i.e. Mesos has reported each of them since the
/// framework subscribed again; until `settle_by`, unknown live tasks that
/// Mesos reports are adopted.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// Restored tasks Mesos has not reported on yet.
    unsettled: BTreeSet<TaskId>,
    /// Whether acquires are served: at once when no task was restored,
    /// else once each is reported.
    settled: bool,
    /// Set once subscribed: the recovery ends then.
    settle_by: Option<Timestamp>,
}

impl Core {
    /// Notes that `frontend`'s record or events changed.
    pub(super) fn touch_frontend(&mut self, frontend: &FrontendName) {
        if !self.journal.frontends.contains(frontend) {
            self.journal.frontends.insert(frontend.clone());
        }
    }

    /// Notes that the recent reclaims changed.
    pub(super) fn touch_reclaims(&mut self) {
        self.journal.reclaims = true;
    }

    /// The durable changes since the last call, for the runtime to write
    /// before it carries out the effects decided meanwhile.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let mut changes = Vec::new();
        for name in std::mem::take(&mut self.journal.frontends) {
            let Some(state) = self.sessions.frontends.get_mut(&name) else {
                changes.push(Change::FrontendGone(name));
                continue;
            };
            changes.push(Change::Frontend(frontend_record(&name, state)));
            let new_events = state
                .outbox
                .iter()
                .filter(|(sequence, _)| *sequence > state.journaled);
            for (sequence, event) in new_events {
                changes.push(Change::Event {
                    frontend: name.clone(),
                    sequence: *sequence,
                    event: event.clone(),
                });
            }
            state.journaled = state.next_sequence;
            let acknowledged = acknowledged_through(state);
            if acknowledged > state.journaled_acknowledged {
                state.journaled_acknowledged = acknowledged;
                changes.push(Change::Acknowledged {
                    frontend: name,
                    through: acknowledged,
                });
            }
        }
        for id in self.tasks.take_touched() {
            changes.push(match self.tasks.get(&id) {
                Some(record) if !record.state.is_terminal() => {
                    Change::Task(Box::new(record.clone()))
                }
                _ => Change::TaskGone(id),
            });
        }
        for id in self.leases.take_touched() {
            changes.push(match self.leases.get(&id) {
                Some(state) => Change::Lease(LeaseRecord {
                    id,
                    frontend: state.lease.frontend.clone(),
                }),
                None => Change::LeaseGone(id),
            });
        }
        if std::mem::take(&mut self.journal.reclaims) {
            changes.push(Change::Reclaims(self.reclaim_records()));
        }
        changes
    }

    /// Forgets what was touched since the last call, for a broker whose
    /// store does not outlive it: cheaper than taking changes nobody
    /// writes.
    pub fn discard_changes(&mut self) {
        self.journal.frontends.clear();
        self.journal.reclaims = false;
        self.tasks.take_touched();
        self.leases.take_touched();
    }

    /// Every durable record as it stands: what a store holds once every
    /// change taken so far is written.
    pub fn durable(&self) -> Durable {
        let mut durable = Durable::default();
        for (name, state) in &self.sessions.frontends {
            durable
                .frontends
                .insert(name.clone(), frontend_record(name, state));
            if !state.outbox.is_empty() {
                durable
                    .events
                    .insert(name.clone(), state.outbox.iter().cloned().collect());
            }
        }
        durable.tasks = self
            .tasks
            .values()
            .filter(|task| !task.state.is_terminal())
            .map(|task| (task.id.clone(), task.clone()))
            .collect();
        durable.leases = self
            .leases
            .values()
            .map(|state| {
                let id = state.lease.id.clone();
                let frontend = state.lease.frontend.clone();
                (id.clone(), LeaseRecord { id, frontend })
            })
            .collect();
        durable.reclaims = self.reclaim_records();
        durable
    }

    fn reclaim_records(&self) -> Vec<ReclaimRecord> {
        self.reclaims
            .iter()
            .map(|state| ReclaimRecord {
                reclaim: state.reclaim.clone(),
                enforced: state.enforced,
            })
            .collect()
    }

    /// Starts again from `durable`, as stored by a broker that crashed or
    /// stopped: frontends with their unacknowledged events, live tasks
    /// counted against their namespaces, reclaims. Every lease it held is
    /// lost (Mesos rescinds every offer when a framework fails over) and
    /// its holder told so. Acquires wait until Mesos has reported the
    /// restored tasks.
    pub(crate) fn recover(&mut self, now: Timestamp, durable: Durable) {
        let Durable {
            frontends,
            mut events,
            tasks,
            leases,
            reclaims,
        } = durable;
        for (name, record) in frontends {
            let outbox = events.remove(&name).unwrap_or_default();
            self.restore_frontend(name, Some(record), outbox);
        }
        for (name, outbox) in events {
            self.restore_frontend(name, None, outbox);
        }
        let mut unsettled = BTreeSet::new();
        for (id, task) in tasks {
            self.ensure_frontend(&task.frontend);
            self.accounting
                .charge(&task.namespace, &task.resources, Holder::of_task(&task));
            unsettled.insert(id);
            self.tasks.insert(task);
        }
        self.tasks.take_touched();
        for (id, lease) in leases {
            self.ensure_frontend(&lease.frontend);
            self.leases.touch(id.clone());
            self.notify(
                &lease.frontend,
                FrontendEvent::LeaseLost {
                    lease: id,
                    reason: LeaseLostReason::BrokerRestarted,
                    message: "the broker restarted, and Mesos takes back every offer \
                              when its framework fails over"
                        .into(),
                },
            );
        }
        self.reclaims = reclaims
            .into_iter()
            .map(|record| ReclaimState {
                reclaim: record.reclaim,
                enforced: record.enforced,
            })
            .collect();
        let names: Vec<FrontendName> = self.sessions.frontends.keys().cloned().collect();
        for name in names {
            self.schedule_forget(now, &name);
        }
        self.recovery = Some(Recovery {
            settled: unsettled.is_empty(),
            unsettled,
            settle_by: None,
        });
    }

    fn restore_frontend(
        &mut self,
        name: FrontendName,
        record: Option<FrontendRecord>,
        outbox: BTreeMap<u64, FrontendEvent>,
    ) {
        let last_event = outbox.keys().next_back().copied().unwrap_or(0);
        let first_event = outbox.keys().next().copied();
        let mut state = FrontendState::default();
        if let Some(record) = record {
            state.owner = record.owner;
            state.namespaces = record.namespaces.into_iter().collect();
            state.next_sequence = record.next_sequence;
            state.draining = record.draining;
        } else {
            self.touch_frontend(&name);
        }
        state.next_sequence = state.next_sequence.max(last_event);
        state.journaled = state.next_sequence;
        state.journaled_acknowledged = first_event.map_or(state.next_sequence, |first| first - 1);
        state.outbox = outbox.into_iter().collect();
        self.sessions.frontends.insert(name, state);
    }

    /// A frontend for records whose owner the store does not name (they
    /// were written, the owner's record was not): owned by whoever
    /// subscribes under its name first.
    fn ensure_frontend(&mut self, frontend: &FrontendName) {
        if !self.sessions.frontends.contains_key(frontend) {
            self.sessions
                .frontends
                .insert(frontend.clone(), FrontendState::default());
            self.touch_frontend(frontend);
        }
    }

    /// On subscribing while recovering: every restored task is reconciled
    /// by id, then all of them implicitly, so that Mesos also reports tasks
    /// launched just before the crash that the store missed.
    pub(super) fn reconcile_after_restart(&mut self, now: Timestamp) {
        let Some(recovery) = self.recovery.as_mut() else {
            return;
        };
        recovery.settle_by = Some(now.after(SETTLE_TIMEOUT));
        self.effects
            .push(Effect::Mesos(MesosCall::Reconcile { tasks: Vec::new() }));
        self.settle_if_done();
    }

    /// Notes that Mesos reported `task`.
    pub(super) fn settled(&mut self, task: &TaskId) {
        if let Some(recovery) = self.recovery.as_mut() {
            recovery.unsettled.remove(task);
            self.settle_if_done();
        }
    }

    /// Ends the recovery once the settle timeout passed.
    pub(super) fn settle_if_due(&mut self, now: Timestamp) {
        if self
            .recovery
            .as_ref()
            .and_then(|r| r.settle_by)
            .is_some_and(|by| by <= now)
        {
            self.recovery = None;
        }
    }

    /// Serves acquires again once subscribed with nothing left unsettled.
    fn settle_if_done(&mut self) {
        if let Some(recovery) = self.recovery.as_mut()
            && recovery.settle_by.is_some()
            && recovery.unsettled.is_empty()
        {
            recovery.settled = true;
        }
    }

    /// When the recovery ends at the latest.
    pub(super) fn settle_deadline(&self) -> Option<Timestamp> {
        self.recovery.as_ref().and_then(|r| r.settle_by)
    }

    /// Refuses acquires while restored tasks are unsettled: until Mesos
    /// reports them, what the quota has left is not known.
    pub(super) fn refuse_while_recovering(&self) -> Result<(), CoreError> {
        match &self.recovery {
            Some(recovery) if !recovery.settled => Err(CoreError::Recovering {
                unsettled: recovery.unsettled.len(),
            }),
            _ => Ok(()),
        }
    }

    /// A live task Mesos reports while recovering that the core does not
    /// know: launched just before a crash that lost its record. Its id names
    /// its namespace and frontend, which own it from now on; what it holds
    /// is not in a status update, so it counts for nothing against the
    /// quota. Outside a recovery an unknown task is a finished one already
    /// forgotten, whose stale update changes nothing.
    pub(super) fn adopt(&mut self, now: Timestamp, update: &StatusUpdate) {
        if self.recovery.is_none() || update.state.is_terminal() {
            return;
        }
        let Some(agent) = update.agent_id.clone() else {
            return;
        };
        let Some((namespace, frontend, client_id)) = self.owner_named_in(&update.task_id) else {
            return;
        };
        self.ensure_frontend(&frontend);
        self.unschedule_forget(&frontend);
        self.tasks.insert(TaskRecord {
            id: update.task_id.clone(),
            client_id,
            frontend,
            namespace,
            agent,
            lease: LeaseId(String::new()),
            resources: Resources::default(),
            revocable: false,
            borrowed_from: None,
            launched_at: now,
            state: TaskState::Staging,
            reason: None,
            message: None,
            timestamp: None,
            kill: None,
        });
    }

    /// The namespace, frontend and client id that a task id of Agora's
    /// names: `{namespace}.{frontend}.{client id}.t-{boot}-{n}`. Names may
    /// hold dots, so known namespaces and frontends are matched first.
    fn owner_named_in(&self, task: &TaskId) -> Option<(String, FrontendName, String)> {
        let (named, _suffix) = task.0.rsplit_once(".t-")?;
        let namespace = self
            .tenancy
            .namespaces
            .keys()
            .filter(|ns| named.starts_with(&format!("{ns}.")))
            .max_by_key(|ns| ns.len())?;
        let rest = &named[namespace.len() + 1..];
        let known = self
            .sessions
            .frontends
            .keys()
            .filter(|f| rest.starts_with(&format!("{f}.")))
            .max_by_key(|f| f.0.len())
            .map(|f| f.0.as_str());
        let frontend = known.or_else(|| rest.split_once('.').map(|(f, _)| f))?;
        let client_id = rest.get(frontend.len() + 1..)?;
        if frontend.is_empty() || client_id.is_empty() {
            return None;
        }
        Some((
            namespace.clone(),
            FrontendName(frontend.to_owned()),
            client_id.to_owned(),
        ))
    }
}

fn frontend_record(name: &FrontendName, state: &FrontendState) -> FrontendRecord {
    FrontendRecord {
        name: name.clone(),
        owner: state.owner.clone(),
        namespaces: state.namespaces.iter().cloned().collect(),
        next_sequence: state.next_sequence,
        draining: state.draining,
    }
}

/// The last sequence a frontend has let go of.
fn acknowledged_through(state: &FrontendState) -> u64 {
    state
        .outbox
        .front()
        .map_or(state.next_sequence, |(sequence, _)| sequence - 1)
}

#[cfg(test)]
mod tests;
