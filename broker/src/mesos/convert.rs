//! Conversions between Mesos wire types and the core's domain types, in
//! both directions and without I/O: events (offers, rescinds, statuses,
//! lost agents) in, calls out. Protobuf types stop here: the runtime sees
//! only [`MesosEvent`]s and sends only [`MesosCall`]s.

use std::time::Duration;

use agora_proto::mesos::v1::{
    self as mesos, CommandInfo, DurationInfo, Environment, ExecutorInfo, Filters, FrameworkInfo,
    KillPolicy, Label, Labels, Resource, TaskGroupInfo, TaskInfo, executor_info, master,
    quota::QuotaConfig,
    scheduler::{Call, Event, call, event},
};

use super::event::MesosEvent;
use agora_core::{self as core, MesosCall, Resources, StatusUpdate, TaskState};

/// The domain event for a scheduler event the core acts on, `None` (logged
/// at debug) for the others. SUBSCRIBED, HEARTBEAT and ERROR belong to the
/// subscription, which handles them before anything comes here.
pub fn event(event: Event) -> Option<MesosEvent> {
    match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
        Some(event::Type::Offers) => {
            let offers = event.offers.map(|o| o.offers).unwrap_or_default();
            Some(MesosEvent::Offers(offers.iter().map(offer).collect()))
        }
        Some(event::Type::Rescind) => event
            .rescind
            .map(|rescind| MesosEvent::Rescind(core::OfferId(rescind.offer_id.value))),
        Some(event::Type::Update) => event
            .update
            .map(|update| MesosEvent::Update(status(&update.status))),
        // A FAILURE naming an executor is that executor's end, which its
        // tasks' updates report; without one, the whole agent is gone.
        Some(event::Type::Failure) => event
            .failure
            .filter(|failure| failure.executor_id.is_none())
            .and_then(|failure| failure.agent_id)
            .map(|agent| MesosEvent::AgentLost(core::AgentId(agent.value))),
        other => {
            tracing::debug!(event = ?other, "ignoring Mesos event");
            None
        }
    }
}

/// The core's view of a Mesos offer, its revocable resources apart.
pub fn offer(offer: &mesos::Offer) -> core::Offer {
    let role = offer
        .allocation_info
        .as_ref()
        .and_then(|a| a.role.clone())
        .or_else(|| {
            offer
                .resources
                .iter()
                .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
        })
        .unwrap_or_else(|| "*".into());
    // Reservations are parts of the regular resources: when those are
    // dropped as unusable, so are they.
    let regular = usable(offer.resources.iter().filter(|r| r.revocable.is_none()));
    let reserved = match regular {
        Some(_) => reserved(&offer.resources),
        None => Vec::new(),
    };
    core::Offer {
        id: core::OfferId(offer.id.value.clone()),
        agent: core::Agent {
            id: core::AgentId(offer.agent_id.value.clone()),
            hostname: offer.hostname.clone(),
            attributes: offer.attributes.iter().map(attribute).collect(),
        },
        role,
        resources: regular.unwrap_or_default(),
        revocable: resources(offer.resources.iter().filter(|r| r.revocable.is_some())),
        reserved,
    }
}

/// Sums scalar resources by name and collects `ports` ranges. Values Mesos
/// sent are trusted to be sane; anything that is not is dropped rather than
/// let into the core.
fn resources<'a>(list: impl Iterator<Item = &'a Resource>) -> Resources {
    usable(list).unwrap_or_default()
}

/// [`resources`], or `None` (with a warning) when any amount or range in
/// `list` is not sane.
fn usable<'a>(list: impl Iterator<Item = &'a Resource>) -> Option<Resources> {
    let mut scalars = Vec::new();
    let mut ports = Vec::new();
    for resource in list {
        if let Some(scalar) = &resource.scalar {
            scalars.push((resource.name.as_str(), scalar.value));
        } else if resource.name == "ports"
            && let Some(ranges) = &resource.ranges
        {
            ports.extend(ranges.range.iter().map(|r| (r.begin, r.end)));
        }
    }
    Resources::from_scalars(scalars.iter().copied(), ports.iter().copied())
        .inspect_err(|error| tracing::warn!(%error, "ignoring an offer's unusable resources"))
        .ok()
}

/// The statically reserved scalars among `list`, by reservation role (the
/// innermost of refined reservations, else the pre-refinement `role`).
fn reserved(list: &[Resource]) -> Vec<(String, Resources)> {
    let mut by_role: Vec<(String, Resources)> = Vec::new();
    for resource in list.iter().filter(|r| r.revocable.is_none()) {
        let Some(role) = reservation_role(resource) else {
            continue;
        };
        let amount = resources(std::iter::once(resource));
        match by_role.iter_mut().find(|(r, _)| r == role) {
            Some((_, bag)) => bag.add(&amount),
            None => by_role.push((role.to_owned(), amount)),
        }
    }
    by_role
}

/// The role a resource is reserved to; `None` when unreserved. An empty
/// role is no role Mesos allows, and is read as unreserved too rather than
/// handed to the core as a reservation nobody can name.
#[allow(deprecated)]
fn reservation_role(resource: &Resource) -> Option<&str> {
    let role = match resource.reservations.last() {
        Some(reservation) => reservation.role.as_deref(),
        None => resource.role.as_deref(),
    };
    role.filter(|role| !role.is_empty() && *role != "*")
}

/// Renders an attribute's value as Mesos prints it.
fn attribute(attribute: &mesos::Attribute) -> (String, String) {
    let value = if let Some(text) = &attribute.text {
        text.value.clone()
    } else if let Some(scalar) = &attribute.scalar {
        scalar.value.to_string()
    } else if let Some(ranges) = &attribute.ranges {
        let parts: Vec<String> = ranges
            .range
            .iter()
            .map(|r| format!("{}-{}", r.begin, r.end))
            .collect();
        format!("[{}]", parts.join(","))
    } else if let Some(set) = &attribute.set {
        format!("{{{}}}", set.item.join(","))
    } else {
        String::new()
    };
    (attribute.name.clone(), value)
}

/// The core's view of a status update. Unknown states map to `Unknown`.
pub fn status(status: &mesos::TaskStatus) -> StatusUpdate {
    StatusUpdate {
        task_id: core::TaskId(status.task_id.value.clone()),
        agent_id: status
            .agent_id
            .as_ref()
            .map(|a| core::AgentId(a.value.clone())),
        state: task_state(status.state),
        reason: status
            .reason
            .and_then(|r| mesos::task_status::Reason::try_from(r).ok())
            .map(|r| r.as_str_name().to_owned()),
        message: status.message.clone(),
        timestamp: status.timestamp,
        uuid: status.uuid.clone(),
    }
}

fn task_state(state: i32) -> TaskState {
    use mesos::TaskState as M;
    match M::try_from(state) {
        Ok(M::TaskStaging) => TaskState::Staging,
        Ok(M::TaskStarting) => TaskState::Starting,
        Ok(M::TaskRunning) => TaskState::Running,
        Ok(M::TaskKilling) => TaskState::Killing,
        Ok(M::TaskFinished) => TaskState::Finished,
        Ok(M::TaskFailed) => TaskState::Failed,
        Ok(M::TaskKilled) => TaskState::Killed,
        Ok(M::TaskError) => TaskState::Error,
        Ok(M::TaskLost) => TaskState::Lost,
        Ok(M::TaskDropped) => TaskState::Dropped,
        Ok(M::TaskUnreachable) => TaskState::Unreachable,
        Ok(M::TaskGone) => TaskState::Gone,
        Ok(M::TaskGoneByOperator) => TaskState::GoneByOperator,
        Ok(M::TaskUnknown) | Err(_) => TaskState::Unknown,
    }
}

/// A call for one of the master's two APIs.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    /// The scheduler API, on the subscription.
    Scheduler(Box<Call>),
    /// The operator API, on the leading master.
    Operator(master::Call),
}

/// The Mesos call for a core effect. `framework_id` is filled in by the
/// client. UPDATE_FRAMEWORK sets `framework`'s roles and carries it whole,
/// as Mesos requires.
pub fn call(effect: MesosCall, framework: &mut FrameworkInfo) -> Outgoing {
    let mut call = Call::default();
    match effect {
        MesosCall::UpdateQuota { quotas } => return Outgoing::Operator(update_quota(quotas)),
        MesosCall::UpdateWeights { weights } => {
            return Outgoing::Operator(update_weights(weights));
        }
        MesosCall::Accept {
            offer_ids,
            reserved,
            tasks,
            groups,
            refuse_seconds,
        } => {
            use mesos::offer::{Operation, operation};
            let mut reserved = reserved;
            let launch = (!tasks.is_empty()).then(|| Operation {
                r#type: Some(operation::Type::Launch as i32),
                launch: Some(operation::Launch {
                    task_infos: tasks
                        .into_iter()
                        .map(|task| task_info(task, &mut reserved))
                        .collect(),
                }),
                ..Default::default()
            });
            let launch_groups: Vec<Operation> = groups
                .into_iter()
                .map(|group| Operation {
                    r#type: Some(operation::Type::LaunchGroup as i32),
                    launch_group: Some(operation::LaunchGroup {
                        executor: ExecutorInfo {
                            r#type: Some(executor_info::Type::Default as i32),
                            executor_id: mesos::ExecutorId {
                                value: group.executor_id,
                            },
                            resources: mesos_resources(
                                &group.executor_resources,
                                &group.role,
                                group.revocable,
                                &mut reserved,
                            ),
                            ..Default::default()
                        },
                        task_group: TaskGroupInfo {
                            tasks: group
                                .tasks
                                .into_iter()
                                .map(|task| task_info(task, &mut reserved))
                                .collect(),
                        },
                    }),
                    ..Default::default()
                })
                .collect();
            call.r#type = Some(call::Type::Accept as i32);
            call.accept = Some(call::Accept {
                offer_ids: offer_ids.into_iter().map(offer_id).collect(),
                operations: launch.into_iter().chain(launch_groups).collect(),
                filters: Some(Filters {
                    refuse_seconds: Some(refuse_seconds),
                }),
            });
        }
        MesosCall::Decline {
            offer_ids,
            refuse_seconds,
        } => {
            call.r#type = Some(call::Type::Decline as i32);
            call.decline = Some(call::Decline {
                offer_ids: offer_ids.into_iter().map(offer_id).collect(),
                filters: Some(Filters {
                    refuse_seconds: Some(refuse_seconds),
                }),
            });
        }
        MesosCall::Acknowledge {
            agent_id,
            task_id,
            uuid,
        } => {
            call.r#type = Some(call::Type::Acknowledge as i32);
            call.acknowledge = Some(call::Acknowledge {
                agent_id: mesos::AgentId { value: agent_id.0 },
                task_id: mesos::TaskId { value: task_id.0 },
                uuid,
            });
        }
        MesosCall::Kill {
            task_id,
            agent_id,
            grace,
        } => {
            call.r#type = Some(call::Type::Kill as i32);
            call.kill = Some(call::Kill {
                task_id: mesos::TaskId { value: task_id.0 },
                agent_id: Some(mesos::AgentId { value: agent_id.0 }),
                kill_policy: grace.map(|grace| KillPolicy {
                    grace_period: Some(duration(grace)),
                }),
            });
        }
        MesosCall::Revive { roles } => {
            call.r#type = Some(call::Type::Revive as i32);
            call.revive = Some(call::Revive { roles });
        }
        MesosCall::Suppress { roles } => {
            call.r#type = Some(call::Type::Suppress as i32);
            call.suppress = Some(call::Suppress { roles });
        }
        MesosCall::UpdateFramework {
            roles,
            suppressed_roles,
        } => {
            framework.roles = roles;
            call.r#type = Some(call::Type::UpdateFramework as i32);
            call.update_framework = Some(call::UpdateFramework {
                framework_info: framework.clone(),
                suppressed_roles,
            });
        }
        MesosCall::Reconcile { tasks } => {
            call.r#type = Some(call::Type::Reconcile as i32);
            call.reconcile = Some(call::Reconcile {
                tasks: tasks
                    .into_iter()
                    .map(|(task, agent)| call::reconcile::Task {
                        task_id: mesos::TaskId { value: task.0 },
                        agent_id: Some(mesos::AgentId { value: agent.0 }),
                    })
                    .collect(),
            });
        }
    }
    Outgoing::Scheduler(Box::new(call))
}

/// UPDATE_QUOTA with Mesos ≥ 1.9 quota configs, forced: Agora enforces
/// its own limits and Mesos must take them even below current use.
fn update_quota(quotas: Vec<core::RoleQuota>) -> master::Call {
    let scalars = |resources: &Resources| {
        resources
            .scalars()
            .map(|(name, value)| (name.to_owned(), mesos::value::Scalar { value }))
            .collect()
    };
    master::Call {
        r#type: Some(master::call::Type::UpdateQuota as i32),
        update_quota: Some(master::call::UpdateQuota {
            force: Some(true),
            quota_configs: quotas
                .iter()
                .map(|quota| QuotaConfig {
                    role: quota.role.clone(),
                    guarantees: scalars(&quota.guarantee),
                    limits: scalars(&quota.limit),
                })
                .collect(),
        }),
        ..Default::default()
    }
}

fn update_weights(weights: Vec<(String, f64)>) -> master::Call {
    master::Call {
        r#type: Some(master::call::Type::UpdateWeights as i32),
        update_weights: Some(master::call::UpdateWeights {
            weight_infos: weights
                .into_iter()
                .map(|(role, weight)| mesos::WeightInfo {
                    weight,
                    role: Some(role),
                })
                .collect(),
        }),
        ..Default::default()
    }
}

fn offer_id(id: core::OfferId) -> mesos::OfferId {
    mesos::OfferId { value: id.0 }
}

fn duration(duration: Duration) -> DurationInfo {
    DurationInfo {
        nanoseconds: i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX),
    }
}

/// The task for Mesos; reserved resources of the offer that `reserved`
/// still holds are used first, and taken from it.
fn task_info(task: core::LaunchTask, reserved: &mut [(String, Resources)]) -> TaskInfo {
    let spec = task.spec;
    let (shell, value, arguments) = match spec.command {
        core::Command::Shell(line) => (true, line, Vec::new()),
        core::Command::Exec(argv) => (false, argv.first().cloned().unwrap_or_default(), argv),
    };
    TaskInfo {
        name: spec.name,
        task_id: mesos::TaskId {
            value: task.task_id.0,
        },
        agent_id: mesos::AgentId {
            value: task.agent_id.0,
        },
        resources: mesos_resources(&spec.resources, &task.role, task.revocable, reserved),
        command: Some(CommandInfo {
            shell: Some(shell),
            value: Some(value),
            arguments,
            environment: (!spec.environment.is_empty()).then(|| Environment {
                variables: spec
                    .environment
                    .into_iter()
                    .map(|(name, value)| mesos::environment::Variable {
                        name,
                        r#type: Some(mesos::environment::variable::Type::Value as i32),
                        value: Some(value),
                    })
                    .collect(),
            }),
            user: spec.user,
            ..Default::default()
        }),
        labels: (!spec.labels.is_empty()).then(|| Labels {
            labels: spec
                .labels
                .into_iter()
                .map(|(key, value)| Label {
                    key,
                    value: Some(value),
                })
                .collect(),
        }),
        ..Default::default()
    }
}

/// Resources allocated to `role`, as a task must carry them in a
/// MULTI_ROLE framework: scalars marked revocable when they came from the
/// offer's revocable resources (ports never do); otherwise taken first from
/// the offer's reservations that `reserved` still holds, naming them as
/// Mesos offered them to a framework without RESERVATION_REFINEMENT.
#[allow(deprecated)]
fn mesos_resources(
    resources: &Resources,
    role: &str,
    revocable: bool,
    reserved: &mut [(String, Resources)],
) -> Vec<Resource> {
    let allocation = Some(mesos::resource::AllocationInfo {
        role: Some(role.to_owned()),
    });
    let scalar = |name: &str, value: f64, reservation: Option<&str>| Resource {
        name: name.to_owned(),
        r#type: mesos::value::Type::Scalar as i32,
        scalar: Some(mesos::value::Scalar { value }),
        role: reservation.map(str::to_owned),
        allocation_info: allocation.clone(),
        revocable: revocable.then_some(mesos::resource::RevocableInfo {}),
        ..Default::default()
    };
    let mut list = Vec::new();
    for (name, amount) in resources.scalars() {
        let mut left = Resources::from_scalars([(name, amount)], []).unwrap_or_default();
        for (reservation, bag) in reserved.iter_mut().filter(|_| !revocable) {
            let take = left.scalar(name).min(bag.scalar(name));
            let Ok(taken) = Resources::from_scalars([(name, take)], []) else {
                continue;
            };
            if !taken.is_empty() && bag.subtract(&taken) && left.subtract(&taken) {
                list.push(scalar(name, take, Some(reservation)));
            }
        }
        if !left.is_empty() {
            list.push(scalar(name, left.scalar(name), None));
        }
    }
    if !resources.port_ranges().is_empty() {
        list.push(Resource {
            name: "ports".into(),
            r#type: mesos::value::Type::Ranges as i32,
            ranges: Some(mesos::value::Ranges {
                range: resources
                    .port_ranges()
                    .iter()
                    .map(|&(begin, end)| mesos::value::Range { begin, end })
                    .collect(),
            }),
            allocation_info: allocation,
            ..Default::default()
        });
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(name: &str, value: f64, role: &str) -> Resource {
        Resource {
            name: name.into(),
            r#type: mesos::value::Type::Scalar as i32,
            scalar: Some(mesos::value::Scalar { value }),
            allocation_info: Some(mesos::resource::AllocationInfo {
                role: Some(role.into()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reads_an_offer_with_its_role_ports_attributes_and_revocable_apart() {
        let mut revocable = scalar("cpus", 8.0, "ci");
        revocable.revocable = Some(mesos::resource::RevocableInfo {});
        let ports = Resource {
            name: "ports".into(),
            r#type: mesos::value::Type::Ranges as i32,
            ranges: Some(mesos::value::Ranges {
                range: vec![mesos::value::Range {
                    begin: 31000,
                    end: 31005,
                }],
            }),
            ..Default::default()
        };
        let wire = mesos::Offer {
            id: mesos::OfferId { value: "o1".into() },
            agent_id: mesos::AgentId { value: "a1".into() },
            hostname: "h1".into(),
            resources: vec![
                scalar("cpus", 2.5, "ci"),
                scalar("mem", 512.0, "ci"),
                revocable,
                ports,
            ],
            attributes: vec![mesos::Attribute {
                name: "rack".into(),
                r#type: mesos::value::Type::Text as i32,
                text: Some(mesos::value::Text { value: "r1".into() }),
                ..Default::default()
            }],
            allocation_info: Some(mesos::resource::AllocationInfo {
                role: Some("ci".into()),
            }),
            ..Default::default()
        };
        let offer = offer(&wire);
        assert_eq!(offer.role, "ci");
        assert_eq!(offer.resources.scalar("cpus"), 2.5);
        assert_eq!(offer.revocable.scalar("cpus"), 8.0);
        assert_eq!(offer.resources.port_ranges(), &[(31000, 31005)]);
        assert_eq!(
            offer.agent.attributes,
            vec![("rack".to_owned(), "r1".to_owned())]
        );
    }

    #[test]
    #[allow(deprecated)]
    fn drops_the_reservations_of_an_offer_whose_resources_are_unusable() {
        let reserved_cpus = Resource {
            role: Some("batch".into()),
            ..scalar("cpus", 2.0, "batch")
        };
        let inverted_ports = Resource {
            name: "ports".into(),
            r#type: mesos::value::Type::Ranges as i32,
            ranges: Some(mesos::value::Ranges {
                range: vec![mesos::value::Range {
                    begin: 31_000,
                    end: 0,
                }],
            }),
            ..Default::default()
        };
        let read = offer(&mesos::Offer {
            id: mesos::OfferId { value: "o1".into() },
            agent_id: mesos::AgentId { value: "a1".into() },
            hostname: "h".into(),
            resources: vec![reserved_cpus, inverted_ports],
            ..Default::default()
        });
        assert!(read.resources.is_empty());
        assert_eq!(read.reserved, []);
    }

    #[test]
    fn an_empty_reservation_role_is_no_reservation() {
        let mut cpus = scalar("cpus", 2.0, "batch");
        cpus.reservations = vec![mesos::resource::ReservationInfo {
            role: Some(String::new()),
            ..Default::default()
        }];
        let read = offer(&mesos::Offer {
            id: mesos::OfferId { value: "o1".into() },
            agent_id: mesos::AgentId { value: "a1".into() },
            hostname: "h".into(),
            resources: vec![cpus],
            ..Default::default()
        });
        assert_eq!(read.resources.scalar("cpus"), 2.0);
        assert_eq!(read.reserved, []);
    }

    #[test]
    fn reads_statuses_with_unknown_states_and_reasons() {
        let status = status(&mesos::TaskStatus {
            task_id: mesos::TaskId { value: "t".into() },
            state: 99,
            reason: Some(mesos::task_status::Reason::CommandExecutorFailed as i32),
            uuid: Some(vec![7]),
            ..Default::default()
        });
        assert_eq!(status.state, TaskState::Unknown);
        assert_eq!(
            status.reason.as_deref(),
            Some("REASON_COMMAND_EXECUTOR_FAILED")
        );
        assert_eq!(status.uuid, Some(vec![7]));
    }

    #[test]
    fn writes_an_accept_with_allocated_resources_and_refuse_zero() {
        let resources =
            Resources::from_scalars([("cpus", 0.5), ("mem", 128.0)], [(31000, 31001)]).unwrap();
        let call = scheduler(call(
            MesosCall::Accept {
                offer_ids: vec![core::OfferId("o1".into())],
                reserved: vec![],
                tasks: vec![core::LaunchTask {
                    revocable: false,
                    task_id: core::TaskId("ns.fe.t.1".into()),
                    agent_id: core::AgentId("a1".into()),
                    role: "ns".into(),
                    spec: core::TaskSpec {
                        client_id: "t".into(),
                        name: "t".into(),
                        resources,
                        command: core::Command::Shell("echo hello".into()),
                        environment: vec![("A".into(), "1".into())],
                        user: None,
                        labels: vec![],
                    },
                }],
                groups: vec![],
                refuse_seconds: 0.0,
            },
            &mut FrameworkInfo::default(),
        ));
        let accept = call.accept.unwrap();
        assert_eq!(accept.filters.unwrap().refuse_seconds, Some(0.0));
        let task = &accept.operations[0].launch.as_ref().unwrap().task_infos[0];
        assert_eq!(
            task.command.as_ref().unwrap().value.as_deref(),
            Some("echo hello")
        );
        assert_eq!(task.resources.len(), 3);
        assert!(
            task.resources.iter().all(|r| r
                .allocation_info
                .as_ref()
                .and_then(|a| a.role.as_deref())
                == Some("ns"))
        );
    }

    #[test]
    fn writes_a_task_group_as_launch_group_under_the_default_executor() {
        let task = launch_task(
            "web",
            "ns",
            0.5,
            core::Command::Exec(vec!["/bin/echo".into(), "hi".into()]),
        );
        let call = scheduler(call(
            MesosCall::Accept {
                offer_ids: vec![core::OfferId("o1".into())],
                reserved: vec![],
                tasks: vec![],
                groups: vec![core::LaunchGroup {
                    revocable: false,
                    executor_id: "ns.fe.group-1".into(),
                    agent_id: core::AgentId("a1".into()),
                    role: "ns".into(),
                    executor_resources: core::group_executor_resources(),
                    tasks: vec![task],
                }],
                refuse_seconds: 0.0,
            },
            &mut FrameworkInfo::default(),
        ));
        let operations = call.accept.unwrap().operations;
        assert_eq!(operations.len(), 1, "no empty LAUNCH beside the group");
        let group = operations[0].launch_group.as_ref().unwrap();
        assert_eq!(
            group.executor.r#type,
            Some(executor_info::Type::Default as i32)
        );
        assert_eq!(group.executor.resources.len(), 2);
        let command = group.task_group.tasks[0].command.as_ref().unwrap();
        assert_eq!(command.shell, Some(false));
        assert_eq!(
            command.arguments,
            vec!["/bin/echo".to_owned(), "hi".to_owned()]
        );
    }

    /// A regular task `id` of `cpus` for `role` on agent a1.
    fn launch_task(id: &str, role: &str, cpus: f64, command: core::Command) -> core::LaunchTask {
        core::LaunchTask {
            revocable: false,
            task_id: core::TaskId(id.into()),
            agent_id: core::AgentId("a1".into()),
            role: role.into(),
            spec: core::TaskSpec {
                client_id: id.into(),
                name: id.into(),
                resources: Resources::from_scalars([("cpus", cpus)], []).unwrap(),
                command,
                environment: vec![],
                user: None,
                labels: vec![],
            },
        }
    }

    /// The scheduler call, failing the test for an operator call.
    fn scheduler(outgoing: Outgoing) -> Call {
        match outgoing {
            Outgoing::Scheduler(call) => *call,
            Outgoing::Operator(call) => panic!("expected a scheduler call, got {call:?}"),
        }
    }

    #[test]
    fn quota_and_weights_go_to_the_operator_api() {
        let quota = core::RoleQuota {
            role: "eng".into(),
            guarantee: Resources::default(),
            limit: Resources::from_scalars([("cpus", 8.0)], []).unwrap(),
        };
        let outgoing = call(
            MesosCall::UpdateQuota {
                quotas: vec![quota],
            },
            &mut FrameworkInfo::default(),
        );
        let Outgoing::Operator(update) = outgoing else {
            panic!("quota is an operator call");
        };
        let configs = update.update_quota.unwrap().quota_configs;
        assert_eq!(configs[0].role, "eng");
        assert_eq!(configs[0].limits["cpus"].value, 8.0);
        assert!(configs[0].guarantees.is_empty());
    }

    #[test]
    fn update_framework_carries_the_whole_framework_with_its_new_roles() {
        let mut framework = FrameworkInfo {
            name: "agora".into(),
            roles: vec!["a".into()],
            ..Default::default()
        };
        let call = scheduler(call(
            MesosCall::UpdateFramework {
                roles: vec!["a".into(), "eng/b".into()],
                suppressed_roles: vec!["a".into()],
            },
            &mut framework,
        ));
        let update = call.update_framework.unwrap();
        assert_eq!(update.framework_info.name, "agora");
        assert_eq!(update.framework_info.roles, ["a", "eng/b"]);
        assert_eq!(update.suppressed_roles, ["a"]);
        assert_eq!(framework.roles, ["a", "eng/b"], "kept for resubscribing");
    }

    #[test]
    #[allow(deprecated)]
    fn launches_use_the_offers_reservations_first_and_name_them() {
        let reserved_cpus = Resource {
            role: Some("batch".into()),
            ..scalar("cpus", 2.0, "batch")
        };
        let mesos_offer = mesos::Offer {
            id: mesos::OfferId { value: "o1".into() },
            agent_id: mesos::AgentId { value: "a1".into() },
            hostname: "h".into(),
            resources: vec![reserved_cpus, scalar("cpus", 2.0, "batch")],
            ..Default::default()
        };
        let read = offer(&mesos_offer);
        assert_eq!(read.resources.scalar("cpus"), 4.0);
        assert_eq!(read.reserved.len(), 1);
        assert_eq!(read.reserved[0].0, "batch");
        let task = |id: &str, cpus: f64| {
            launch_task(id, "batch", cpus, core::Command::Shell("true".into()))
        };
        let call = scheduler(call(
            MesosCall::Accept {
                offer_ids: vec![core::OfferId("o1".into())],
                reserved: read.reserved,
                tasks: vec![task("a", 1.5), task("b", 1.5)],
                groups: vec![],
                refuse_seconds: 0.0,
            },
            &mut FrameworkInfo::default(),
        ));
        let launch = call.accept.unwrap().operations.remove(0).launch.unwrap();
        let split = |task: &TaskInfo| -> Vec<(Option<String>, f64)> {
            task.resources
                .iter()
                .map(|r| (r.role.clone(), r.scalar.as_ref().unwrap().value))
                .collect()
        };
        assert_eq!(split(&launch.task_infos[0]), [(Some("batch".into()), 1.5)]);
        assert_eq!(
            split(&launch.task_infos[1]),
            [(Some("batch".into()), 0.5), (None, 1.0)],
            "the second task gets what is left of the reservation"
        );
    }

    #[test]
    fn events_the_core_acts_on_become_domain_events_and_the_rest_nothing() {
        let typed = |t: event::Type| Event {
            r#type: Some(t as i32),
            ..Default::default()
        };
        let offers = Event {
            offers: Some(event::Offers {
                offers: vec![mesos::Offer {
                    id: mesos::OfferId { value: "o1".into() },
                    agent_id: mesos::AgentId { value: "a1".into() },
                    resources: vec![scalar("cpus", 2.0, "r")],
                    ..Default::default()
                }],
            }),
            ..typed(event::Type::Offers)
        };
        let rescind = Event {
            rescind: Some(event::Rescind {
                offer_id: mesos::OfferId { value: "o1".into() },
            }),
            ..typed(event::Type::Rescind)
        };
        let update = Event {
            update: Some(event::Update {
                status: mesos::TaskStatus {
                    task_id: mesos::TaskId { value: "t1".into() },
                    state: mesos::TaskState::TaskRunning as i32,
                    ..Default::default()
                },
            }),
            ..typed(event::Type::Update)
        };
        let failure = |executor: Option<&str>| Event {
            failure: Some(event::Failure {
                agent_id: Some(mesos::AgentId { value: "a1".into() }),
                executor_id: executor.map(|value| mesos::ExecutorId {
                    value: value.into(),
                }),
                status: None,
            }),
            ..typed(event::Type::Failure)
        };
        let Some(MesosEvent::Offers(converted)) = super::event(offers) else {
            panic!("OFFERS is offers");
        };
        assert_eq!(converted.len(), 1);
        assert_eq!(converted[0].id, core::OfferId("o1".into()));
        assert_eq!(converted[0].role, "r");
        let Some(MesosEvent::Update(status)) = super::event(update) else {
            panic!("UPDATE is a status update");
        };
        assert_eq!(
            (status.task_id, status.state),
            (core::TaskId("t1".into()), TaskState::Running)
        );
        for (event, expected) in [
            (
                rescind,
                Some(MesosEvent::Rescind(core::OfferId("o1".into()))),
            ),
            (
                failure(None),
                Some(MesosEvent::AgentLost(core::AgentId("a1".into()))),
            ),
            (failure(Some("e1")), None),
            (typed(event::Type::Rescind), None),
            (typed(event::Type::Message), None),
            (Event::default(), None),
        ] {
            let name = format!("{event:?}");
            assert_eq!(super::event(event), expected, "{name}");
        }
    }
}
