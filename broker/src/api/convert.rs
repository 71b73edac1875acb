//! Protobuf requests into domain values, refusing bad input as
//! `INVALID_ARGUMENT` naming the field; domain values back into protobuf.

use std::time::{Duration, UNIX_EPOCH};

use agora_proto::agora::v1::{self as api};
use tonic::Status;

use super::status::invalid_field;
use crate::core::{self, Resources, Timestamp};

/// The Mesos name of each named scalar field of `agora.v1.Resources`.
const NAMED_SCALARS: [(&str, &str); 4] = [
    ("cpus", "cpus"),
    ("mem_mb", "mem"),
    ("disk_mb", "disk"),
    ("gpus", "gpus"),
];

/// Resources at `path` in the request.
pub fn resources(path: &str, resources: Option<&api::Resources>) -> Result<Resources, Status> {
    let Some(resources) = resources else {
        return Ok(Resources::default());
    };
    let named = [
        resources.cpus,
        resources.mem_mb,
        resources.disk_mb,
        resources.gpus,
    ];
    let mut scalars: Vec<(String, &str, f64)> = NAMED_SCALARS
        .iter()
        .zip(named)
        .map(|(&(field, mesos), value)| (format!("{path}.{field}"), mesos, value))
        .collect();
    for (name, &value) in &resources.scalars {
        if NAMED_SCALARS.iter().any(|(_, mesos)| mesos == name) || name == "ports" {
            return Err(invalid_field(
                &format!("{path}.scalars[{name:?}]"),
                "use the named field for this resource",
            ));
        }
        scalars.push((format!("{path}.scalars[{name:?}]"), name.as_str(), value));
    }
    for (field, mesos, value) in &scalars {
        Resources::from_scalars([(*mesos, *value)], [])
            .map_err(|error| invalid_field(field, error.reason))?;
    }
    let ports: Vec<(u64, u64)> = resources
        .ports
        .iter()
        .map(|r| (u64::from(r.begin), u64::from(r.end)))
        .collect();
    Resources::from_scalars(
        scalars.iter().map(|(_, name, value)| (*name, *value)),
        ports,
    )
    .map_err(|error| invalid_field(&format!("{path}.ports"), error.reason))
}

/// An optional duration at `field`; negative or out-of-range is refused.
pub fn duration(
    field: &str,
    duration: Option<&prost_types::Duration>,
) -> Result<Option<Duration>, Status> {
    let Some(duration) = duration else {
        return Ok(None);
    };
    Duration::try_from(*duration)
        .map(Some)
        .map_err(|_| invalid_field(field, "must be a non-negative duration"))
}

/// The domain form of an Acquire, with its session.
pub fn acquire(request: &api::AcquireRequest) -> Result<core::AcquireRequest, Status> {
    let revocable = match api::Revocable::try_from(request.revocable) {
        Ok(api::Revocable::Deny) => core::RevocablePolicy::Deny,
        Ok(api::Revocable::Allow) => core::RevocablePolicy::Allow,
        Ok(api::Revocable::Require) => core::RevocablePolicy::Require,
        Err(_) => {
            return Err(invalid_field(
                "revocable",
                "choose REVOCABLE_DENY, REVOCABLE_ALLOW or REVOCABLE_REQUIRE",
            ));
        }
    };
    if request.namespace.is_empty() {
        return Err(invalid_field(
            "namespace",
            "name the namespace to acquire in",
        ));
    }
    let slots = request
        .slots
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            Ok(core::Slot {
                resources: resources(&format!("slots[{i}].resources"), slot.resources.as_ref())?,
                port_count: slot.port_count,
                count: slot.count.max(1),
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let constraints = request
        .constraints
        .iter()
        .enumerate()
        .map(|(i, c)| constraint(&format!("constraints[{i}]"), c))
        .collect::<Result<Vec<_>, Status>>()?;
    Ok(core::AcquireRequest {
        namespace: request.namespace.clone(),
        slots,
        constraints,
        gang: request.gang,
        hold_for: duration("hold_for", request.hold_for.as_ref())?,
        wait_for: duration("wait_for", request.wait_for.as_ref())?.unwrap_or_default(),
        request_id: Some(request.request_id.clone()).filter(|id| !id.is_empty()),
        revocable,
    })
}

/// The domain form of a constraint; `path` names it in errors.
fn constraint(path: &str, c: &api::Constraint) -> Result<core::Constraint, Status> {
    use api::constraint::Operator;
    let first_value = || {
        c.values
            .first()
            .cloned()
            .ok_or_else(|| invalid_field(&format!("{path}.values"), "EQUALS needs one value"))
    };
    let rule = match Operator::try_from(c.operator) {
        Ok(Operator::Equals) => core::Rule::Equals(first_value()?),
        Ok(Operator::In) => core::Rule::In(c.values.clone()),
        Ok(Operator::NotIn) => core::Rule::NotIn(c.values.clone()),
        Ok(Operator::Exists) => core::Rule::Exists,
        Ok(Operator::Unique) => core::Rule::MaxPer(1),
        Ok(Operator::MaxPer) => core::Rule::MaxPer(c.max_per),
        Ok(Operator::Unspecified) | Err(_) => {
            return Err(invalid_field(
                &format!("{path}.operator"),
                "choose EQUALS, IN, NOT_IN, EXISTS, UNIQUE or MAX_PER",
            ));
        }
    };
    Ok(core::Constraint {
        field: c.field.clone(),
        rule,
    })
}

/// The domain form of the launches in a Launch request.
pub fn launches(request: &api::LaunchRequest) -> Result<Vec<(core::LeaseId, core::Work)>, Status> {
    if request.launches.is_empty() {
        return Err(invalid_field("launches", "launch at least one task"));
    }
    request
        .launches
        .iter()
        .enumerate()
        .map(|(i, launch)| {
            let path = format!("launches[{i}]");
            let work = match &launch.work {
                Some(api::launch::Work::Task(task)) => {
                    core::Work::Task(task_spec(&format!("{path}.task"), task)?)
                }
                Some(api::launch::Work::TaskGroup(group)) => {
                    if group.tasks.is_empty() {
                        return Err(invalid_field(
                            &format!("{path}.task_group.tasks"),
                            "a task group needs tasks",
                        ));
                    }
                    let tasks = group
                        .tasks
                        .iter()
                        .enumerate()
                        .map(|(t, task)| task_spec(&format!("{path}.task_group.tasks[{t}]"), task))
                        .collect::<Result<Vec<_>, Status>>()?;
                    core::Work::Group(tasks)
                }
                None => return Err(invalid_field(&format!("{path}.task"), "say what to run")),
            };
            Ok((core::LeaseId(launch.lease_id.clone()), work))
        })
        .collect()
}

fn task_spec(path: &str, task: &api::TaskSpec) -> Result<core::TaskSpec, Status> {
    if task.id.trim().is_empty() {
        return Err(invalid_field(&format!("{path}.id"), "give the task an id"));
    }
    let command = task
        .command
        .as_ref()
        .ok_or_else(|| invalid_field(&format!("{path}.command"), "say what to run"))?;
    let run = match (command.shell.is_empty(), command.argv.is_empty()) {
        (false, true) => core::Command::Shell(command.shell.clone()),
        (true, false) => core::Command::Exec(command.argv.clone()),
        _ => {
            return Err(invalid_field(
                &format!("{path}.command"),
                "set exactly one of shell and argv",
            ));
        }
    };
    let mut environment: Vec<(String, String)> = command
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    environment.sort();
    let mut labels: Vec<(String, String)> = task
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.sort();
    Ok(core::TaskSpec {
        client_id: task.id.clone(),
        name: if task.name.is_empty() {
            task.id.clone()
        } else {
            task.name.clone()
        },
        resources: resources(&format!("{path}.resources"), task.resources.as_ref())?,
        command: run,
        environment,
        user: (!command.user.is_empty()).then(|| command.user.clone()),
        labels,
    })
}

/// Ids from a request, each non-empty.
pub fn ids<T>(field: &str, ids: &[String], wrap: fn(String) -> T) -> Result<Vec<T>, Status> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            if id.is_empty() {
                Err(invalid_field(&format!("{field}[{i}]"), "must not be empty"))
            } else {
                Ok(wrap(id.clone()))
            }
        })
        .collect()
}

// ----- domain to protobuf ----------------------------------------------------

pub fn timestamp(at: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp::from(UNIX_EPOCH + Duration::from_millis(at.0))
}

pub fn api_resources(resources: &Resources) -> api::Resources {
    let mut out = api::Resources::default();
    for (name, amount) in resources.scalars() {
        match name {
            "cpus" => out.cpus = amount,
            "mem" => out.mem_mb = amount,
            "disk" => out.disk_mb = amount,
            "gpus" => out.gpus = amount,
            other => {
                out.scalars.insert(other.to_owned(), amount);
            }
        }
    }
    out.ports = resources
        .port_ranges()
        .iter()
        .map(|&(begin, end)| api::PortRange {
            begin: begin as u32,
            end: end as u32,
        })
        .collect();
    out
}

pub fn agent(agent: &core::Agent) -> api::Agent {
    api::Agent {
        id: agent.id.0.clone(),
        hostname: agent.hostname.clone(),
        attributes: agent.attributes.iter().cloned().collect(),
    }
}

pub fn lease(lease: &core::Lease) -> api::Lease {
    api::Lease {
        id: lease.id.0.clone(),
        namespace: lease.namespace.clone(),
        agent: Some(agent(&lease.agent)),
        resources: Some(api_resources(&lease.resources)),
        revocable: lease.revocable.then(|| api_resources(&lease.resources)),
        borrowed_from: lease.borrowed_from.clone().unwrap_or_default(),
        expires_at: Some(timestamp(lease.expires_at)),
    }
}

pub fn task_status(record: &core::TaskRecord) -> api::TaskStatus {
    api::TaskStatus {
        task_id: record.id.0.clone(),
        client_task_id: record.client_id.clone(),
        namespace: record.namespace.clone(),
        agent_id: record.agent.0.clone(),
        state: task_state(record.state) as i32,
        reason: record.reason.clone().unwrap_or_default(),
        message: record.message.clone().unwrap_or_default(),
        timestamp: record
            .timestamp
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|t| timestamp(Timestamp((t * 1000.0) as u64))),
    }
}

fn task_state(state: core::TaskState) -> api::TaskState {
    use api::TaskState as A;
    use core::TaskState as C;
    match state {
        C::Staging => A::Staging,
        C::Starting => A::Starting,
        C::Running => A::Running,
        C::Killing => A::Killing,
        C::Finished => A::Finished,
        C::Failed => A::Failed,
        C::Killed => A::Killed,
        C::Error => A::Error,
        C::Lost => A::Lost,
        C::Dropped => A::Dropped,
        C::Unreachable => A::Unreachable,
        C::Gone => A::Gone,
        C::GoneByOperator => A::GoneByOperator,
        C::Unknown => A::Unknown,
    }
}

/// A frontend event as it goes on the wire.
pub fn event(sequence: u64, event: &core::FrontendEvent) -> api::Event {
    use api::event::Kind;
    let kind = match event {
        core::FrontendEvent::LeaseExpiring { lease, expires_at } => {
            Kind::LeaseExpiring(api::LeaseExpiring {
                lease_id: lease.0.clone(),
                expires_at: Some(timestamp(*expires_at)),
            })
        }
        core::FrontendEvent::LeaseLost {
            lease,
            reason,
            message,
        } => Kind::LeaseLost(api::LeaseLost {
            lease_id: lease.0.clone(),
            reason: lost_reason(*reason) as i32,
            message: message.clone(),
        }),
        core::FrontendEvent::TaskStatus(record) => Kind::TaskStatus(task_status(record)),
        core::FrontendEvent::PreemptionNotice(reclaim) => {
            Kind::PreemptionNotice(api::PreemptionNotice {
                task_ids: reclaim.tasks.iter().map(|t| t.0.clone()).collect(),
                lease_ids: Vec::new(),
                deadline: Some(timestamp(reclaim.deadline)),
                reason: reclaim.reason.clone(),
                reclaiming_namespace: reclaim.owner.clone(),
            })
        }
    };
    api::Event {
        sequence,
        kind: Some(kind),
    }
}

fn lost_reason(reason: core::LeaseLostReason) -> api::lease_lost::Reason {
    use api::lease_lost::Reason as A;
    use core::LeaseLostReason as C;
    match reason {
        C::Expired => A::Expired,
        C::OfferRescinded => A::OfferRescinded,
        C::AgentGone => A::AgentGone,
        C::RebindTimeout => A::RebindTimeout,
        C::SessionEnded => A::SessionEnded,
        C::AgentChanged => A::AgentChanged,
        C::Reclaimed => A::Reclaimed,
        C::Drained => A::Drained,
    }
}

/// A reclaim decision as Admin shows it.
pub fn reclaim(reclaim: &core::Reclaim) -> api::Reclaim {
    api::Reclaim {
        owner_namespace: reclaim.owner.clone(),
        borrower_namespace: reclaim.borrower.clone(),
        lease_ids: Vec::new(),
        task_ids: reclaim.tasks.iter().map(|t| t.0.clone()).collect(),
        decided_at: Some(timestamp(reclaim.decided_at)),
        deadline: Some(timestamp(reclaim.deadline)),
        reason: reclaim.reason.clone(),
    }
}

pub fn agent_view(view: &core::AgentView) -> api::AgentView {
    api::AgentView {
        agent: Some(agent(&view.agent)),
        pooled: Some(api_resources(&view.pooled)),
        leased: Some(api_resources(&view.leased)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn acquire_with(cpus: f64) -> api::AcquireRequest {
        api::AcquireRequest {
            namespace: "default".into(),
            slots: vec![api::SlotRequest {
                resources: Some(api::Resources {
                    cpus,
                    mem_mb: 64.0,
                    ..Default::default()
                }),
                count: 0,
                port_count: 0,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn bad_amounts_name_the_field() {
        for cpus in [-1.0, f64::NAN, f64::INFINITY] {
            let status = acquire(&acquire_with(cpus)).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(
                status.message().starts_with("slots[0].resources.cpus:"),
                "{}",
                status.message()
            );
        }
    }

    #[test]
    fn count_zero_means_one_and_mem_maps_to_mesos_mem() {
        let request = acquire(&acquire_with(0.5)).unwrap();
        assert_eq!(request.slots[0].count, 1);
        assert_eq!(request.slots[0].resources.scalar("mem"), 64.0);
    }

    #[test]
    fn constraints_map_to_rules_and_bad_ones_name_the_field() {
        use api::constraint::Operator;
        let mut request = acquire_with(1.0);
        let rule = |operator: Operator, values: &[&str], max_per| api::Constraint {
            field: "rack".into(),
            operator: operator as i32,
            values: values.iter().map(|v| v.to_string()).collect(),
            max_per,
        };
        request.constraints = vec![
            rule(Operator::Equals, &["r1"], 0),
            rule(Operator::Unique, &[], 0),
            rule(Operator::MaxPer, &[], 3),
        ];
        let rules: Vec<core::Rule> = acquire(&request)
            .unwrap()
            .constraints
            .into_iter()
            .map(|c| c.rule)
            .collect();
        assert_eq!(
            rules,
            [
                core::Rule::Equals("r1".into()),
                core::Rule::MaxPer(1),
                core::Rule::MaxPer(3)
            ]
        );
        for (bad, field) in [
            (
                rule(Operator::Unspecified, &[], 0),
                "constraints[0].operator",
            ),
            (rule(Operator::Equals, &[], 0), "constraints[0].values"),
        ] {
            request.constraints = vec![bad];
            let status = acquire(&request).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().starts_with(field), "{}", status.message());
        }
    }

    #[test]
    fn revocable_policies_map_and_unknown_ones_are_refused() {
        let mut request = acquire_with(1.0);
        request.revocable = api::Revocable::Require as i32;
        assert_eq!(
            acquire(&request).unwrap().revocable,
            core::RevocablePolicy::Require
        );
        request.revocable = 9;
        assert_eq!(acquire(&request).unwrap_err().code(), Code::InvalidArgument);
    }

    #[test]
    fn a_command_needs_exactly_one_of_shell_and_argv() {
        let launch = |command: api::Command| api::LaunchRequest {
            session_id: "s".into(),
            launches: vec![api::Launch {
                lease_id: "l".into(),
                work: Some(api::launch::Work::Task(api::TaskSpec {
                    id: "t".into(),
                    command: Some(command),
                    ..Default::default()
                })),
            }],
        };
        let both = launch(api::Command {
            shell: "true".into(),
            argv: vec!["true".into()],
            ..Default::default()
        });
        assert_eq!(
            launches(&both).unwrap_err().message(),
            "launches[0].task.command: set exactly one of shell and argv"
        );
        let argv = launch(api::Command {
            argv: vec!["/bin/echo".into(), "hi".into()],
            ..Default::default()
        });
        assert_eq!(
            launches(&argv).unwrap()[0].1.tasks()[0].command,
            core::Command::Exec(vec!["/bin/echo".into(), "hi".into()])
        );
    }

    #[test]
    fn named_scalars_cannot_be_smuggled_through_the_map() {
        let resources_in = api::Resources {
            scalars: [("mem".to_owned(), 5.0)].into(),
            ..Default::default()
        };
        assert!(resources("r", Some(&resources_in)).is_err());
    }
}
