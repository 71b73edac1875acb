//! ACCEPT and DECLINE: offer validation, LAUNCH / LAUNCH_GROUP task
//! validation (§8.3 of the protocol digest), and returning what an
//! answered offer did not use, under the call's refuse filter.

use agora_proto::mesos::v1::executor_info::Type as ExecutorType;
use agora_proto::mesos::v1::framework_info::capability::Type as Capability;
use agora_proto::mesos::v1::offer::operation::Type as OperationType;
use agora_proto::mesos::v1::scheduler::call;
use agora_proto::mesos::v1::task_status::Reason;
use agora_proto::mesos::v1::{
    ExecutorInfo, Filters, OfferId, Resource, TaskInfo, TaskState, TaskStatus,
};

use super::model::{Executor, Master, OfferEntry, Task};
use super::tasks::{master_status, update_event};
use crate::allocator::refuse_duration;
use crate::clock::Now;
use crate::resources::Resources;

/// Checks a task or executor id as Mesos's `validateID` does.
pub(super) fn validate_id(kind: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{kind} ID must not be empty"));
    }
    if id.len() > 255 {
        return Err(format!("{kind} ID must not be longer than 255 bytes"));
    }
    if id == "." || id == ".." {
        return Err(format!("{kind} ID '{id}' is disallowed"));
    }
    if id.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(format!("{kind} ID '{id}' contains invalid characters"));
    }
    Ok(())
}

/// Checks every resource is valid and allocated to `role`, filling in a
/// missing `allocation_info`; returns them normalized.
fn task_resources(
    resources: &mut [Resource],
    role: &str,
    whose: &str,
) -> Result<Resources, String> {
    for r in resources.iter_mut() {
        if let Some(scalar) = r.scalar
            && (!scalar.value.is_finite() || scalar.value < 0.0)
        {
            return Err(format!(
                "Invalid {whose} resource '{}': {}",
                r.name, scalar.value
            ));
        }
        match r.allocation_info.as_ref().and_then(|a| a.role.as_deref()) {
            Some(allocated) if allocated != role => {
                return Err(format!(
                    "{whose} resource '{}' is allocated to role '{allocated}' but the offers are allocated to role '{role}'",
                    r.name
                ));
            }
            Some(_) => {}
            None => {
                r.allocation_info = Some(agora_proto::mesos::v1::resource::AllocationInfo {
                    role: Some(role.to_string()),
                })
            }
        }
    }
    Ok(Resources::from_protos(resources.iter()))
}

/// What the offers being accepted add up to.
struct Pool {
    agent: String,
    role: String,
    resources: Resources,
}

impl Master {
    /// DECLINE: the offers' resources go back under a refuse filter.
    pub(super) fn decline(&mut self, now: Now, framework: &str, decline: call::Decline) {
        for offer_id in &decline.offer_ids {
            let Some(entry) = self.take_offer(framework, &offer_id.value) else {
                tracing::warn!(%framework, offer = %offer_id.value, "ignoring decline of an unknown offer");
                continue;
            };
            self.recover(
                now,
                framework,
                &entry.agent,
                &entry.role,
                entry.resources,
                decline.filters.as_ref(),
            );
        }
    }

    fn take_offer(&mut self, framework: &str, offer_id: &str) -> Option<OfferEntry> {
        if self
            .offers
            .get(offer_id)
            .is_some_and(|o| o.framework == framework)
        {
            self.offers.remove(offer_id)
        } else {
            None
        }
    }

    /// Returns resources of answered offers to their agent, installing the
    /// refuse filter of `filters` (default 5 s when absent).
    fn recover(
        &mut self,
        now: Now,
        framework: &str,
        agent: &str,
        role: &str,
        resources: Resources,
        filters: Option<&Filters>,
    ) {
        if resources.is_empty() {
            return;
        }
        if let Some(a) = self.agents.get_mut(agent) {
            a.available.add_all(&resources);
        }
        let refuse = filters.map_or(5.0, Filters::refuse_seconds);
        if let Some(duration) = refuse_duration(refuse, self.allocation_interval) {
            self.allocator.filters.install(
                framework,
                role,
                agent,
                resources,
                duration,
                now.instant,
            );
        }
    }

    /// ACCEPT: validates the offers, runs the operations in order against
    /// their union, and recovers the rest under the call's filter. Returns
    /// the statuses sent for the tasks it refused to launch.
    pub(super) fn accept(
        &mut self,
        now: Now,
        framework: &str,
        mut accept: call::Accept,
    ) -> Vec<TaskStatus> {
        let mut refused = Vec::new();
        let pool = match self.validate_offers(framework, &accept.offer_ids) {
            Ok(pool) => pool,
            Err(error) => {
                tracing::info!(%framework, %error, "ACCEPT with invalid offers");
                for id in &accept.offer_ids {
                    if self
                        .offers
                        .get(&id.value)
                        .is_some_and(|o| o.framework == framework)
                    {
                        self.remove_offer(&id.value, false);
                    }
                }
                self.lose_launches(now, framework, &accept.operations, &error, &mut refused);
                return refused;
            }
        };
        for id in &accept.offer_ids {
            self.offers.remove(&id.value);
        }
        let mut pool = pool;
        for operation in std::mem::take(&mut accept.operations) {
            let kind = operation
                .r#type
                .and_then(|t| OperationType::try_from(t).ok());
            match kind {
                Some(OperationType::Launch) if operation.id.is_none() => {
                    let launch = operation.launch.unwrap_or_default();
                    for task in launch.task_infos {
                        self.launch_task(now, framework, &mut pool, task, &mut refused);
                    }
                }
                Some(OperationType::LaunchGroup) if operation.id.is_none() => {
                    if let Some(group) = operation.launch_group {
                        self.launch_group(
                            now,
                            framework,
                            &mut pool,
                            group.executor,
                            group.task_group.tasks,
                            &mut refused,
                        );
                    }
                }
                Some(OperationType::Launch) => {
                    let tasks = operation.launch.unwrap_or_default().task_infos;
                    self.error_tasks(
                        now,
                        framework,
                        &tasks,
                        Reason::TaskInvalid,
                        "The `id` field cannot be set on LAUNCH operations",
                        &mut refused,
                    );
                }
                Some(OperationType::LaunchGroup) => {
                    let tasks = operation
                        .launch_group
                        .map(|g| g.task_group.tasks)
                        .unwrap_or_default();
                    self.error_tasks(
                        now,
                        framework,
                        &tasks,
                        Reason::TaskGroupInvalid,
                        "The `id` field cannot be set on LAUNCH_GROUP operations",
                        &mut refused,
                    );
                }
                other => {
                    tracing::warn!(%framework, operation = ?other, "dropping an unsupported offer operation");
                }
            }
        }
        self.recover(
            now,
            framework,
            &pool.agent,
            &pool.role,
            pool.resources,
            accept.filters.as_ref(),
        );
        refused
    }

    fn validate_offers(&self, framework: &str, ids: &[OfferId]) -> Result<Pool, String> {
        let mut pool: Option<Pool> = None;
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if !seen.insert(&id.value) {
                return Err(format!("Duplicate offer {} in the same ACCEPT", id.value));
            }
            let offer = self
                .offers
                .get(&id.value)
                .filter(|o| o.framework == framework)
                .ok_or_else(|| format!("Offer {} is no longer valid", id.value))?;
            match &mut pool {
                None => {
                    pool = Some(Pool {
                        agent: offer.agent.clone(),
                        role: offer.role.clone(),
                        resources: offer.resources.clone(),
                    })
                }
                Some(pool) => {
                    if pool.agent != offer.agent {
                        return Err("Aggregated offers must belong to one single agent".into());
                    }
                    if pool.role != offer.role {
                        return Err("Aggregated offers must be allocated to the same role".into());
                    }
                    pool.resources.add_all(&offer.resources);
                }
            }
        }
        pool.ok_or_else(|| "No offers specified".into())
    }

    /// Every task of the launches becomes TASK_LOST (TASK_DROPPED for
    /// PARTITION_AWARE frameworks) with REASON_INVALID_OFFERS.
    fn lose_launches(
        &mut self,
        now: Now,
        framework: &str,
        operations: &[agora_proto::mesos::v1::offer::Operation],
        error: &str,
        refused: &mut Vec<TaskStatus>,
    ) {
        let state = if self
            .frameworks
            .get(framework)
            .is_some_and(|f| f.has(Capability::PartitionAware))
        {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        for operation in operations {
            let tasks = operation
                .launch
                .iter()
                .flat_map(|l| l.task_infos.iter())
                .chain(
                    operation
                        .launch_group
                        .iter()
                        .flat_map(|g| g.task_group.tasks.iter()),
                );
            for task in tasks {
                let status = master_status(
                    now,
                    &task.task_id.value,
                    Some(&task.agent_id.value),
                    state,
                    Reason::InvalidOffers,
                    format!("Task launched with invalid offers: {error}"),
                );
                self.refuse(framework, status, refused);
            }
        }
    }

    fn error_tasks(
        &mut self,
        now: Now,
        framework: &str,
        tasks: &[TaskInfo],
        reason: Reason,
        message: &str,
        refused: &mut Vec<TaskStatus>,
    ) {
        for task in tasks {
            let status = master_status(
                now,
                &task.task_id.value,
                Some(&task.agent_id.value),
                TaskState::TaskError,
                reason,
                message.to_string(),
            );
            self.refuse(framework, status, refused);
        }
    }

    /// Sends the status of a task the master refused to launch, and keeps
    /// it in `refused` for the call's record.
    fn refuse(&mut self, framework: &str, status: TaskStatus, refused: &mut Vec<TaskStatus>) {
        refused.push(status.clone());
        self.send(framework, update_event(status));
    }

    /// Validates one task of a LAUNCH against the remaining pool; returns
    /// its normalized resources (including a new custom executor's).
    fn validate_task(
        &self,
        framework: &str,
        pool: &Pool,
        task: &mut TaskInfo,
        in_group: bool,
    ) -> Result<Resources, String> {
        validate_id("Task", &task.task_id.value)?;
        if self
            .tasks
            .contains_key(&(framework.to_string(), task.task_id.value.clone()))
        {
            return Err(format!("Task has duplicate ID: {}", task.task_id.value));
        }
        if task.agent_id.value != pool.agent {
            return Err(format!(
                "Task uses agent ID {} which does not match the offers' agent {}",
                task.agent_id.value, pool.agent
            ));
        }
        if in_group {
            if task.executor.is_some() {
                return Err("'TaskInfo.executor' must not be set in a task group".into());
            }
            if task.command.is_none() {
                return Err("'TaskInfo.command' must be set in a task group".into());
            }
        } else if task.command.is_some() == task.executor.is_some() {
            return Err("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present".into());
        }
        if task.resources.is_empty() {
            return Err("Task uses no resources".into());
        }
        let mut resources = task_resources(&mut task.resources, &pool.role, "Task")?;
        if let Some(executor) = &mut task.executor {
            validate_id("Executor", &executor.executor_id.value)?;
            let key = (
                pool.agent.clone(),
                framework.to_string(),
                executor.executor_id.value.clone(),
            );
            if !self.executors.contains_key(&key) {
                resources.add_all(&task_resources(
                    &mut executor.resources,
                    &pool.role,
                    "Executor",
                )?);
            }
        }
        if !pool.resources.contains(&resources) {
            return Err(format!(
                "Task uses more resources {} than available {}",
                describe(&resources),
                describe(&pool.resources)
            ));
        }
        Ok(resources)
    }

    fn launch_task(
        &mut self,
        now: Now,
        framework: &str,
        pool: &mut Pool,
        mut info: TaskInfo,
        refused: &mut Vec<TaskStatus>,
    ) {
        match self.validate_task(framework, pool, &mut info, false) {
            Err(message) => {
                tracing::info!(%framework, task = %info.task_id.value, %message, "TASK_ERROR");
                let reason = Reason::TaskInvalid;
                self.error_tasks(now, framework, &[info], reason, &message, refused);
            }
            Ok(resources) => {
                pool.resources.subtract_all(&resources);
                let executor = info.executor.as_ref().map_or_else(
                    || info.task_id.value.clone(),
                    |e| e.executor_id.value.clone(),
                );
                let task = new_task(info, framework, pool, executor, None, resources);
                self.start_task(now, task);
            }
        }
    }

    fn launch_group(
        &mut self,
        now: Now,
        framework: &str,
        pool: &mut Pool,
        mut executor: ExecutorInfo,
        mut tasks: Vec<TaskInfo>,
        refused: &mut Vec<TaskStatus>,
    ) {
        let mut validated = Vec::new();
        let result = (|| {
            validate_id("Executor", &executor.executor_id.value)?;
            match executor.r#type.and_then(|t| ExecutorType::try_from(t).ok()) {
                Some(ExecutorType::Default) => {}
                Some(_) => {
                    return Err(
                        "'ExecutorInfo.type' must be 'DEFAULT' for a task group".to_string()
                    );
                }
                None => return Err("'ExecutorInfo.type' must be set".to_string()),
            }
            if executor.command.is_some() {
                return Err(
                    "'ExecutorInfo.command' must not be set for the DEFAULT executor".to_string(),
                );
            }
            if tasks.is_empty() {
                return Err("Task group must not be empty".to_string());
            }
            let key = (
                pool.agent.clone(),
                framework.to_string(),
                executor.executor_id.value.clone(),
            );
            let mut total = Resources::default();
            if !self.executors.contains_key(&key) {
                total.add_all(&task_resources(
                    &mut executor.resources,
                    &pool.role,
                    "Executor",
                )?);
            }
            let executor_resources = total.clone();
            let mut ids = std::collections::HashSet::new();
            for task in &mut tasks {
                if !ids.insert(task.task_id.value.clone()) {
                    return Err(format!("Task has duplicate ID: {}", task.task_id.value));
                }
                let resources = self.validate_task(framework, pool, task, true)?;
                total.add_all(&resources);
                validated.push(resources);
            }
            if !pool.resources.contains(&total) {
                return Err(format!(
                    "Task group uses more resources {} than available {}",
                    describe(&total),
                    describe(&pool.resources)
                ));
            }
            Ok((total, executor_resources, key))
        })();
        match result {
            Err(message) => {
                tracing::info!(%framework, %message, "task group TASK_ERROR");
                let reason = Reason::TaskGroupInvalid;
                self.error_tasks(now, framework, &tasks, reason, &message, refused);
            }
            Ok((total, executor_resources, key)) => {
                pool.resources.subtract_all(&total);
                let executor_id = executor.executor_id.value.clone();
                let entry = self.executors.entry(key).or_insert_with(|| Executor {
                    resources: executor_resources,
                    tasks: Vec::new(),
                });
                entry
                    .tasks
                    .extend(tasks.iter().map(|t| t.task_id.value.clone()));
                for (info, resources) in tasks.into_iter().zip(validated) {
                    let task = new_task(
                        info,
                        framework,
                        pool,
                        executor_id.clone(),
                        Some(executor_id.clone()),
                        resources,
                    );
                    self.start_task(now, task);
                }
            }
        }
    }
}

fn new_task(
    info: TaskInfo,
    framework: &str,
    pool: &Pool,
    executor: String,
    group: Option<String>,
    resources: Resources,
) -> Task {
    Task {
        info,
        framework: framework.to_string(),
        agent: pool.agent.clone(),
        executor,
        group,
        role: pool.role.clone(),
        resources,
        state: TaskState::TaskStaging,
        status_update_state: None,
        statuses: Vec::new(),
        killing: false,
        resources_released: false,
        simulated_end: None,
        simulated_exit: 0,
    }
}

/// Mesos's text form of resources, for messages: `cpus:1; mem:128`.
fn describe(resources: &Resources) -> String {
    let parts: Vec<String> = resources
        .iter()
        .map(|r| {
            let role = crate::resources::reservation_role(r);
            let name = if role == "*" {
                r.name.clone()
            } else {
                format!("{}({role})", r.name)
            };
            match r.scalar {
                Some(s) => format!("{name}:{}", s.value),
                None => format!("{name}:{}", crate::resources::value_text(r)),
            }
        })
        .collect();
    if parts.is_empty() {
        "{}".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated_like_mesos() {
        assert!(validate_id("Task", "web.pod-9.app").is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb"] {
            assert!(validate_id("Task", bad).is_err(), "{bad:?}");
        }
        assert!(validate_id("Task", &"x".repeat(256)).is_err());
    }

    #[test]
    fn task_resources_get_the_offer_role_and_reject_another() {
        let mut resources = crate::resources::parse_resources("cpus:1;mem:64")
            .unwrap()
            .to_protos();
        let normalized = task_resources(&mut resources, "web", "Task").unwrap();
        assert_eq!(normalized.scalar("cpus"), 1.0);
        assert!(
            resources
                .iter()
                .all(|r| r.allocation_info.as_ref().unwrap().role.as_deref() == Some("web"))
        );
        assert!(task_resources(&mut resources, "ci", "Task").is_err());
        let mut negative = crate::resources::parse_resources("cpus:1")
            .unwrap()
            .to_protos();
        negative[0].scalar = Some(agora_proto::mesos::v1::value::Scalar { value: -1.0 });
        assert!(task_resources(&mut negative, "web", "Task").is_err());
    }

    #[test]
    fn describes_resources_for_messages() {
        let resources =
            crate::resources::parse_resources("cpus:1.5;mem(db):64;ports:[1-2]").unwrap();
        assert_eq!(describe(&resources), "cpus:1.5; mem(db):64; ports:[1-2]");
    }
}
