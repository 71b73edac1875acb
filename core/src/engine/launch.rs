//! Launch, kill, acknowledge, reconcile: tasks recorded before their
//! ACCEPT, launches on one offer coalesced, statuses owned by frontends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::*;

impl Core {
    /// Starts tasks on leases. All launches are checked before anything
    /// changes; launches on one offer go out in one ACCEPT. A lease whose
    /// sibling slice was just launched waits for its agent's next offer: the
    /// launch is then answered later, by an [`Effect::Reply`].
    pub(crate) fn launch(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        session: &SessionId,
        launches: Vec<(LeaseId, Work)>,
    ) -> Result<Outcome<Vec<Launched>>, CoreError> {
        let (frontend, bound) = self.check_launches(session, &launches)?;
        if bound {
            return Ok(Outcome::Now(self.execute_launch(now, &frontend, launches)));
        }
        self.launches.pending.push(PendingLaunch {
            ticket,
            session: session.clone(),
            launches,
        });
        Ok(Outcome::Later)
    }

    /// Everything a launch must satisfy; also whether every lease is bound
    /// to an offer now.
    pub(super) fn check_launches(
        &self,
        session: &SessionId,
        launches: &[(LeaseId, Work)],
    ) -> Result<(FrontendName, bool), CoreError> {
        let lease_ids: Vec<LeaseId> = launches.iter().map(|(lease, _)| lease.clone()).collect();
        let frontend = self.owned_leases(session, &lease_ids)?;
        let mut first_use: BTreeMap<&LeaseId, usize> = BTreeMap::new();
        let mut client_ids = BTreeSet::new();
        let mut bound = true;
        for (index, (lease_id, work)) in launches.iter().enumerate() {
            if let Some(first) = first_use.insert(lease_id, index) {
                return Err(invalid(
                    &format!("launches[{index}].lease_id"),
                    &format!(
                        "lease {lease_id} is already used by launches[{first}]: a lease takes one \
                         task or one task group; acquire a lease per task"
                    ),
                ));
            }
            let state = &self.leases[lease_id];
            bound &= state.lease.offer.is_some();
            if work.tasks().is_empty() {
                return Err(invalid("task_group.tasks", "a task group needs tasks"));
            }
            for spec in work.tasks() {
                if spec.client_id.trim().is_empty() {
                    return Err(invalid("task.id", "give the task an id"));
                }
                if self.tasks.is_live(&frontend, &spec.client_id)
                    || !client_ids.insert(spec.client_id.clone())
                {
                    return Err(CoreError::DuplicateTask {
                        client_id: spec.client_id.clone(),
                    });
                }
            }
            if let Some(short) = state.lease.resources.shortfall(&work.resources()) {
                return Err(CoreError::TaskExceedsLease {
                    lease: lease_id.clone(),
                    resource: short.resource,
                    asked: short.asked,
                    available: short.available,
                });
            }
        }
        Ok((frontend, bound))
    }

    /// Records the tasks and adds them to their offers' pending ACCEPTs;
    /// the launches were checked and every lease is bound. An offer that no
    /// other lease shares is accepted at once; one with siblings waits up to
    /// `launch_linger` for their launches.
    pub(super) fn execute_launch(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        launches: Vec<(LeaseId, Work)>,
    ) -> Vec<Launched> {
        let mut launched = Vec::new();
        let mut offers = BTreeSet::new();
        for (lease_id, work) in launches {
            let Some(LeaseState { lease, .. }) = self.leases.remove(&lease_id) else {
                continue;
            };
            let Some(offer) = lease.offer.clone() else {
                continue;
            };
            self.accounting
                .credit(&lease.namespace, &lease.resources, Holder::of_lease(&lease));
            match work {
                Work::Task(spec) => {
                    let task = self.record_task(now, frontend, &lease, spec, &mut launched);
                    self.pending_accept(now, &offer).tasks.push(task);
                }
                Work::Group(specs) => {
                    let executor_id = format!(
                        "{}.{}.{}",
                        lease.namespace,
                        frontend,
                        self.ids.fresh("group")
                    );
                    let tasks: Vec<LaunchTask> = specs
                        .into_iter()
                        .map(|spec| self.record_task(now, frontend, &lease, spec, &mut launched))
                        .collect();
                    let executor = group_executor_resources();
                    if let Some(first) = tasks.first() {
                        self.tasks
                            .update_live(&first.task_id, |t| t.resources.add(&executor));
                    }
                    self.accounting
                        .charge(&lease.namespace, &executor, Holder::of_lease(&lease));
                    let group = LaunchGroup {
                        executor_id,
                        agent_id: lease.agent.id.clone(),
                        role: lease.role.clone(),
                        revocable: lease.revocable,
                        executor_resources: executor,
                        tasks,
                    };
                    self.pending_accept(now, &offer).groups.push(group);
                }
            }
            if !lease.revocable {
                self.pending_accept(now, &offer).taken.add(&lease.resources);
            }
            offers.insert(offer);
        }
        for offer in offers {
            if !self.leases.any_bound_to(&offer) {
                self.flush_accept(now, &offer);
            }
        }
        launched
    }

    /// The offer's pending ACCEPT, opened now if there is none.
    pub(super) fn pending_accept(&mut self, now: Timestamp, offer: &OfferId) -> &mut PendingAccept {
        let flush_at = now.after(self.config.launch_linger);
        self.launches
            .accepts
            .entry(offer.clone())
            .or_insert_with(|| PendingAccept {
                flush_at,
                ..PendingAccept::default()
            })
    }

    /// Sends an offer's pending ACCEPT. Mesos consumes the whole offer, so
    /// sibling leases wait for the agent's next offer. The ACCEPT refuses
    /// for zero seconds, yet Mesos offers recovered resources only at its
    /// next allocation run (MESOS-3078; a second by default): their role is
    /// marked stranded, and revived when the effects are drained.
    pub(super) fn flush_accept(&mut self, now: Timestamp, offer: &OfferId) {
        let Some(pending) = self.launches.accepts.remove(offer) else {
            return;
        };
        let reserved = self
            .offers
            .remove(offer)
            .map(|pooled| pooled.offer.reserved)
            .unwrap_or_default();
        let deadline = now.after(self.config.rebind_timeout);
        for id in self.leases.bound_to(offer) {
            let role = self.leases.update(&id, |state| {
                state.lease.offer = None;
                state.rebind_deadline = Some(deadline);
                state.lease.role.clone()
            });
            self.tenancy.stranded.extend(role);
        }
        self.effects.push(Effect::Mesos(MesosCall::Accept {
            offer_ids: vec![offer.clone()],
            reserved,
            tasks: pending.tasks,
            groups: pending.groups,
            refuse_seconds: 0.0,
        }));
    }

    /// Records ownership of one task before it is launched.
    pub(super) fn record_task(
        &mut self,
        now: Timestamp,
        frontend: &FrontendName,
        lease: &Lease,
        spec: TaskSpec,
        launched: &mut Vec<Launched>,
    ) -> LaunchTask {
        let task_id = TaskId(format!(
            "{}.{}.{}.{}",
            lease.namespace,
            frontend,
            spec.client_id,
            self.ids.fresh("t")
        ));
        self.accounting
            .charge(&lease.namespace, &spec.resources, Holder::of_lease(lease));
        self.tasks.insert(TaskRecord {
            id: task_id.clone(),
            client_id: spec.client_id.clone(),
            frontend: frontend.clone(),
            namespace: lease.namespace.clone(),
            agent: lease.agent.id.clone(),
            lease: lease.id.clone(),
            resources: spec.resources.clone(),
            revocable: lease.revocable,
            borrowed_from: lease.borrowed_from.clone(),
            launched_at: now,
            state: TaskState::Staging,
            reason: None,
            message: None,
            timestamp: None,
            kill: None,
        });
        launched.push(Launched {
            task_id: task_id.clone(),
            client_id: spec.client_id.clone(),
            lease: lease.id.clone(),
            agent: lease.agent.id.clone(),
        });
        LaunchTask {
            task_id,
            agent_id: lease.agent.id.clone(),
            role: lease.role.clone(),
            revocable: lease.revocable,
            spec,
        }
    }

    /// Launches that waited for their leases to be re-bound: each is carried
    /// out once all its leases are bound, or refused once one is gone.
    pub(super) fn retry_launches(&mut self, now: Timestamp) {
        let pending = std::mem::take(&mut self.launches.pending);
        for launch in pending {
            let result = match self.check_launches(&launch.session, &launch.launches) {
                Ok((frontend, true)) => Ok(self.execute_launch(now, &frontend, launch.launches)),
                Ok((_, false)) => {
                    self.launches.pending.push(launch);
                    continue;
                }
                Err(error) => Err(error),
            };
            self.effects.push(Effect::Reply {
                ticket: launch.ticket,
                answer: result.map(Answer::Launched),
            });
        }
    }

    /// Asks Mesos to kill the frontend's tasks; unknown ids change nothing.
    pub(crate) fn kill(
        &mut self,
        session: &SessionId,
        task_ids: &[TaskId],
        grace: Option<Duration>,
    ) -> Result<(), CoreError> {
        let frontend = self.frontend_of(session)?;
        let records = self.owned_tasks(&frontend, task_ids)?;
        for record in records {
            self.kill_task(&record.id, grace);
        }
        Ok(())
    }

    /// Asks Mesos to kill a live task, and records that it was asked, so
    /// that the kill is sent again after a restart (see
    /// [`TaskRecord::kill`]). A finished task is left alone.
    pub(super) fn kill_task(&mut self, task: &TaskId, grace: Option<Duration>) {
        let asked = self.tasks.update_live(task, |record| {
            record.kill = Some(KillRequest { grace });
        });
        if let Some(record) = asked {
            self.effects.push(Effect::Mesos(MesosCall::Kill {
                task_id: record.id,
                agent_id: record.agent,
                grace,
            }));
        }
    }

    /// Sends again every kill asked of Mesos for a task still live: one
    /// in flight when the broker died or the connection dropped was lost.
    pub(super) fn resend_kills(&mut self) {
        let asked: Vec<(TaskId, AgentId, Option<Duration>)> = self
            .tasks
            .values()
            .filter(|task| !task.state.is_terminal())
            .filter_map(|task| {
                let kill = task.kill?;
                Some((task.id.clone(), task.agent.clone(), kill.grace))
            })
            .collect();
        for (task_id, agent_id, grace) in asked {
            self.effects.push(Effect::Mesos(MesosCall::Kill {
                task_id,
                agent_id,
                grace,
            }));
        }
    }

    pub(super) fn owned_tasks(
        &self,
        frontend: &FrontendName,
        task_ids: &[TaskId],
    ) -> Result<Vec<TaskRecord>, CoreError> {
        task_ids
            .iter()
            .map(|id| match self.tasks.get(id) {
                Some(record) if &record.frontend == frontend => Ok(record.clone()),
                _ => Err(CoreError::TaskNotFound(id.clone())),
            })
            .collect()
    }

    /// Drops the frontend's events up to `up_to_sequence` from its outbox.
    pub(crate) fn acknowledge(
        &mut self,
        session: &SessionId,
        up_to_sequence: u64,
    ) -> Result<(), CoreError> {
        let frontend = self.frontend_of(session)?;
        self.touch_frontend(&frontend);
        if let Some(state) = self.sessions.frontends.get_mut(&frontend) {
            while state
                .outbox
                .front()
                .is_some_and(|(sequence, _)| *sequence <= up_to_sequence)
            {
                state.outbox.pop_front();
            }
        }
        Ok(())
    }

    /// Asks Mesos for fresh statuses of the frontend's tasks (every live one
    /// when `task_ids` is empty) and answers with what is recorded.
    pub(crate) fn reconcile(
        &mut self,
        session: &SessionId,
        task_ids: &[TaskId],
    ) -> Result<Vec<TaskRecord>, CoreError> {
        let frontend = self.frontend_of(session)?;
        let records = if task_ids.is_empty() {
            self.tasks
                .values()
                .filter(|t| t.frontend == frontend && !t.state.is_terminal())
                .cloned()
                .collect()
        } else {
            self.owned_tasks(&frontend, task_ids)?
        };
        let tasks: Vec<(TaskId, AgentId)> = records
            .iter()
            .filter(|r| !r.state.is_terminal())
            .map(|r| (r.id.clone(), r.agent.clone()))
            .collect();
        if !tasks.is_empty() {
            self.effects
                .push(Effect::Mesos(MesosCall::Reconcile { tasks }));
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests;
