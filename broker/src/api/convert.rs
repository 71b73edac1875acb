//! Protobuf requests into domain values, refusing bad input as
//! `INVALID_ARGUMENT` naming the field; domain values back into protobuf.
//! Every count, list and string is bounded first (see [`limits`]).

use std::time::{Duration, UNIX_EPOCH};

use agora_proto::agora::v1::{self as api};
use tonic::Status;

use super::{limits, status::invalid_field};
use crate::runtime::SessionEvent;
use agora_core::{self as core, Resources, Timestamp};

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
    limits::count(
        &format!("{path}.scalars"),
        resources.scalars.len(),
        limits::MAX_SCALARS,
    )?;
    limits::list(
        &format!("{path}.ports"),
        &resources.ports,
        limits::MAX_PORT_RANGES,
    )?;
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
        limits::text(
            &format!("{path}.scalars[{:?}] (name)", limits::truncated(name)),
            name,
            limits::MAX_RESOURCE_NAME_BYTES,
        )?;
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
    limits::name("namespace", &request.namespace)?;
    limits::text("request_id", &request.request_id, limits::MAX_ID_BYTES)?;
    limits::list("slots", &request.slots, limits::MAX_SLOT_REQUESTS)?;
    limits::list("constraints", &request.constraints, limits::MAX_CONSTRAINTS)?;
    let slots = request
        .slots
        .iter()
        .enumerate()
        .map(|(i, slot)| self::slot(&format!("slots[{i}]"), slot))
        .collect::<Result<Vec<_>, Status>>()?;
    let total: u64 = slots.iter().map(|slot| u64::from(slot.count)).sum();
    if total > u64::from(limits::MAX_SLOTS) {
        return Err(invalid_field(
            "slots",
            format!(
                "at most {} slots in one call, counting every count; {total} asked: acquire the rest in further calls",
                limits::MAX_SLOTS
            ),
        ));
    }
    let constraints = request
        .constraints
        .iter()
        .enumerate()
        .map(|(i, c)| constraint(&format!("constraints[{i}]"), c))
        .collect::<Result<Vec<_>, Status>>()?;
    let wait_for = duration("wait_for", request.wait_for.as_ref())?.unwrap_or_default();
    if wait_for > Duration::from_secs(limits::MAX_WAIT_SECS) {
        return Err(invalid_field(
            "wait_for",
            format!(
                "at most {} s; acquire again to wait longer",
                limits::MAX_WAIT_SECS
            ),
        ));
    }
    Ok(core::AcquireRequest {
        namespace: request.namespace.clone(),
        slots,
        constraints,
        gang: request.gang,
        hold_for: duration("hold_for", request.hold_for.as_ref())?,
        wait_for,
        request_id: Some(request.request_id.clone()).filter(|id| !id.is_empty()),
        revocable,
    })
}

/// The domain form of one slot request; `path` names it in errors. A
/// count of zero means one.
fn slot(path: &str, slot: &api::SlotRequest) -> Result<core::Slot, Status> {
    let resources = resources(&format!("{path}.resources"), slot.resources.as_ref())?;
    limits::count(
        &format!("{path}.count"),
        slot.count as usize,
        limits::MAX_SLOTS as usize,
    )?;
    let specific: u64 = resources
        .port_ranges()
        .iter()
        .map(|(begin, end)| end - begin + 1)
        .sum();
    let ports = specific + u64::from(slot.port_count);
    if ports > limits::MAX_PORTS_PER_SLOT {
        return Err(invalid_field(
            &format!("{path}.port_count"),
            format!(
                "at most {} ports per slot, counting the specific ones; {ports} asked",
                limits::MAX_PORTS_PER_SLOT
            ),
        ));
    }
    Ok(core::Slot {
        resources,
        port_count: slot.port_count,
        count: slot.count.max(1),
    })
}

/// The domain form of a constraint; `path` names it in errors.
fn constraint(path: &str, c: &api::Constraint) -> Result<core::Constraint, Status> {
    use api::constraint::Operator;
    limits::text(
        &format!("{path}.field"),
        &c.field,
        limits::MAX_ATTRIBUTE_BYTES,
    )?;
    limits::list(
        &format!("{path}.values"),
        &c.values,
        limits::MAX_CONSTRAINT_VALUES,
    )?;
    for (i, value) in c.values.iter().enumerate() {
        limits::text(
            &format!("{path}.values[{i}]"),
            value,
            limits::MAX_ATTRIBUTE_BYTES,
        )?;
    }
    let first_value = || {
        c.values
            .first()
            .cloned()
            .ok_or_else(|| invalid_field(&format!("{path}.values"), "EQUALS needs one value"))
    };
    let rule = match Operator::try_from(c.operator) {
        Ok(Operator::Equals) => core::Rule::Equals(first_value()?),
        Ok(Operator::In) => core::Rule::In(c.values.iter().cloned().collect()),
        Ok(Operator::NotIn) => core::Rule::NotIn(c.values.iter().cloned().collect()),
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
    let tasks: usize = request
        .launches
        .iter()
        .map(|launch| match &launch.work {
            Some(api::launch::Work::TaskGroup(group)) => group.tasks.len(),
            _ => 1,
        })
        .sum();
    limits::count("launches", tasks, limits::MAX_LAUNCH_TASKS)?;
    request
        .launches
        .iter()
        .enumerate()
        .map(|(i, launch)| {
            let path = format!("launches[{i}]");
            limits::mesos_id(
                &format!("{path}.lease_id"),
                &launch.lease_id,
                limits::MAX_ID_BYTES,
            )?;
            let work = match &launch.work {
                Some(api::launch::Work::Task(task)) => {
                    core::Work::Task(task_spec(&format!("{path}.task"), task)?)
                }
                Some(api::launch::Work::TaskGroup(group)) => {
                    let field = format!("{path}.task_group.tasks");
                    if group.tasks.is_empty() {
                        return Err(invalid_field(&field, "a task group needs tasks"));
                    }
                    limits::list(&field, &group.tasks, limits::MAX_GROUP_TASKS)?;
                    let tasks = group
                        .tasks
                        .iter()
                        .enumerate()
                        .map(|(t, task)| task_spec(&format!("{field}[{t}]"), task))
                        .collect::<Result<Vec<_>, Status>>()?;
                    core::Work::Group(tasks)
                }
                None => return Err(invalid_field(&format!("{path}.task"), "say what to run")),
            };
            Ok((core::LeaseId(launch.lease_id.clone()), work))
        })
        .collect()
}

/// One task as Mesos would take it: an id Mesos accepts, some resources,
/// exactly one of shell and argv, every string and map bounded.
fn task_spec(path: &str, task: &api::TaskSpec) -> Result<core::TaskSpec, Status> {
    let field = |name: &str| format!("{path}.{name}");
    if task.id.trim().is_empty() {
        return Err(invalid_field(&field("id"), "give the task an id"));
    }
    limits::mesos_id(&field("id"), &task.id, limits::MAX_CLIENT_TASK_ID_BYTES)?;
    limits::text(&field("name"), &task.name, limits::MAX_TASK_NAME_BYTES)?;
    limits::map(
        &field("labels"),
        task.labels.iter(),
        limits::MAX_LABELS,
        limits::MAX_LABEL_KEY_BYTES,
        limits::MAX_LABEL_VALUE_BYTES,
    )?;
    let command = task
        .command
        .as_ref()
        .ok_or_else(|| invalid_field(&field("command"), "say what to run"))?;
    let command_field = |name: &str| format!("{path}.command.{name}");
    limits::text(
        &command_field("shell"),
        &command.shell,
        limits::MAX_COMMAND_BYTES,
    )?;
    limits::list(&command_field("argv"), &command.argv, limits::MAX_ARGV)?;
    for (i, arg) in command.argv.iter().enumerate() {
        limits::text(
            &command_field(&format!("argv[{i}]")),
            arg,
            limits::MAX_COMMAND_BYTES,
        )?;
    }
    limits::map(
        &command_field("environment"),
        command.environment.iter(),
        limits::MAX_ENVIRONMENT,
        limits::MAX_ENV_NAME_BYTES,
        limits::MAX_ENV_VALUE_BYTES,
    )?;
    limits::text(
        &command_field("user"),
        &command.user,
        limits::MAX_USER_BYTES,
    )?;
    let run = match (command.shell.is_empty(), command.argv.is_empty()) {
        (false, true) => core::Command::Shell(command.shell.clone()),
        (true, false) => core::Command::Exec(command.argv.clone()),
        _ => {
            return Err(invalid_field(
                &field("command"),
                "set exactly one of shell and argv",
            ));
        }
    };
    let resources = resources(&field("resources"), task.resources.as_ref())?;
    if resources.is_empty() {
        return Err(invalid_field(
            &field("resources"),
            "a task needs some resources (cpus, mem_mb, ...); Mesos refuses tasks that use none",
        ));
    }
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
        resources,
        command: run,
        environment,
        user: (!command.user.is_empty()).then(|| command.user.clone()),
        labels,
    })
}

/// The `lease_ids` of a Hold or Release.
pub fn lease_ids(ids: &[String]) -> Result<Vec<core::LeaseId>, Status> {
    self::ids("lease_ids", ids, limits::MAX_ID_BYTES, core::LeaseId)
}

/// The `task_ids` of a Kill or Reconcile: Mesos task ids.
pub fn task_ids(ids: &[String]) -> Result<Vec<core::TaskId>, Status> {
    self::ids("task_ids", ids, limits::MAX_MESOS_ID_BYTES, core::TaskId)
}

/// Ids from a request: at most [`limits::MAX_IDS`], each an id Mesos
/// accepts of at most `max_bytes`.
fn ids<T>(
    field: &str,
    ids: &[String],
    max_bytes: usize,
    wrap: fn(String) -> T,
) -> Result<Vec<T>, Status> {
    limits::list(field, ids, limits::MAX_IDS)?;
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            limits::mesos_id(&format!("{field}[{i}]"), id, max_bytes)?;
            Ok(wrap(id.clone()))
        })
        .collect()
}

/// The names a Subscribe carries, checked: a frontend name, at most
/// [`limits::MAX_SESSION_NAMESPACES`] namespace names, a few capabilities.
pub fn subscribe(request: &api::SubscribeRequest) -> Result<(), Status> {
    limits::name("frontend", &request.frontend)?;
    limits::list(
        "namespaces",
        &request.namespaces,
        limits::MAX_SESSION_NAMESPACES,
    )?;
    for (i, namespace) in request.namespaces.iter().enumerate() {
        limits::name(&format!("namespaces[{i}]"), namespace)?;
    }
    limits::list(
        "capabilities",
        &request.capabilities,
        limits::MAX_CAPABILITIES,
    )
}

/// An optional namespace filter of a List call: empty means every one.
pub fn namespace_filter(namespace: &str) -> Result<Option<String>, Status> {
    if namespace.is_empty() {
        return Ok(None);
    }
    limits::name("namespace", namespace)?;
    Ok(Some(namespace.to_owned()))
}

// ----- domain to protobuf ----------------------------------------------------

/// Core time (milliseconds since the Unix epoch) as a protobuf timestamp.
pub fn timestamp(at: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp::from(UNIX_EPOCH + Duration::from_millis(at.0))
}

/// Resources on the wire: `cpus`, `mem` (MB), `disk` (MB) and `gpus` in
/// their own fields, other scalars by name, ports as inclusive ranges.
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

/// An agent with its hostname and attributes, as constraints match them.
pub fn agent(agent: &core::Agent) -> api::Agent {
    api::Agent {
        id: agent.id.0.clone(),
        hostname: agent.hostname.clone(),
        attributes: agent.attributes.iter().cloned().collect(),
    }
}

/// A lease as the `Broker` service returns it. A slot comes wholly from
/// regular or wholly from revocable resources, so `revocable` is either all
/// of `resources` or unset.
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

/// A task's latest status; the Mesos timestamp is left out when it is not
/// a valid time.
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

/// The first event of every session: who it is, and how often to expect
/// a heartbeat.
pub fn subscribed(frontend: &str, session: &core::SessionId, heartbeat: Duration) -> api::Event {
    api::Event {
        sequence: 0,
        kind: Some(api::event::Kind::Subscribed(api::Subscribed {
            frontend_id: frontend.to_owned(),
            session_id: session.0.clone(),
            heartbeat_interval: prost_types::Duration::try_from(heartbeat).ok(),
        })),
    }
}

/// A session event as it goes on the wire.
pub fn session_event(event: &SessionEvent) -> api::Event {
    match event {
        SessionEvent::Event { sequence, event } => self::event(*sequence, event),
        SessionEvent::MesosConnection(connection) => api::Event {
            sequence: 0,
            kind: Some(api::event::Kind::MesosConnection(api::MesosConnection {
                connected: connection.connected,
                since: Some(timestamp(connection.since)),
                reason: connection.reason.clone(),
            })),
        },
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
        C::BrokerRestarted => A::BrokerRestarted,
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

/// An agent as `ListAgents` shows it: what is pooled and what is leased.
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
                    resources: Some(api::Resources {
                        cpus: 0.1,
                        ..Default::default()
                    }),
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

    /// The message of the error `result` carries, failing on success or on
    /// another code than INVALID_ARGUMENT.
    fn refusal<T: std::fmt::Debug>(result: Result<T, Status>) -> String {
        let status = result.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        status.message().to_owned()
    }

    #[test]
    fn counts_are_bounded_per_slot_and_per_call() {
        let mut request = acquire_with(1.0);
        request.slots[0].count = u32::MAX;
        assert_eq!(
            refusal(acquire(&request)),
            "slots[0].count: at most 256 allowed, 4294967295 given"
        );
        request.slots[0].count = 200;
        request.slots.push(request.slots[0].clone());
        assert!(refusal(acquire(&request)).starts_with("slots: at most 256 slots in one call"));
        request.slots = vec![request.slots[0].clone(); 65];
        for slot in &mut request.slots {
            slot.count = 1;
        }
        assert_eq!(
            refusal(acquire(&request)),
            "slots: at most 64 allowed, 65 given"
        );
    }

    #[test]
    fn ports_constraints_and_waits_are_bounded() {
        let mut request = acquire_with(1.0);
        request.slots[0].port_count = 1000;
        request.slots[0].resources.as_mut().unwrap().ports =
            vec![api::PortRange { begin: 1, end: 100 }];
        assert!(refusal(acquire(&request)).starts_with("slots[0].port_count: at most 1024 ports"));

        let mut request = acquire_with(1.0);
        request.constraints = vec![api::Constraint {
            field: "rack".into(),
            operator: api::constraint::Operator::In as i32,
            values: vec!["r".into(); 257],
            max_per: 0,
        }];
        assert_eq!(
            refusal(acquire(&request)),
            "constraints[0].values: at most 256 allowed, 257 given"
        );
        request.constraints[0].values = vec!["r".repeat(300)];
        assert!(
            refusal(acquire(&request)).starts_with("constraints[0].values[0]: at most 256 bytes")
        );

        let mut request = acquire_with(1.0);
        request.wait_for = Some(prost_types::Duration {
            seconds: 3601,
            nanos: 0,
        });
        assert!(refusal(acquire(&request)).starts_with("wait_for: at most 3600 s"));
        request.wait_for = None;
        request.namespace = "../etc".into();
        assert!(refusal(acquire(&request)).starts_with("namespace: "));
    }

    fn launch_of(task: api::TaskSpec) -> api::LaunchRequest {
        api::LaunchRequest {
            session_id: "s".into(),
            launches: vec![api::Launch {
                lease_id: "l".into(),
                work: Some(api::launch::Work::Task(task)),
            }],
        }
    }

    fn good_task() -> api::TaskSpec {
        api::TaskSpec {
            id: "t".into(),
            resources: Some(api::Resources {
                cpus: 0.1,
                ..Default::default()
            }),
            command: Some(api::Command {
                shell: "true".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn task_ids_are_checked_as_mesos_checks_them() {
        assert!(launches(&launch_of(good_task())).is_ok());
        for bad in ["a/b", "new\nline", ".", "..", &"t".repeat(65)] {
            let task = api::TaskSpec {
                id: bad.to_owned(),
                ..good_task()
            };
            assert!(
                refusal(launches(&launch_of(task))).starts_with("launches[0].task.id: "),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_task_without_resources_is_refused_up_front() {
        let task = api::TaskSpec {
            resources: Some(api::Resources::default()),
            ..good_task()
        };
        assert!(
            refusal(launches(&launch_of(task)))
                .starts_with("launches[0].task.resources: a task needs some resources")
        );
    }

    #[test]
    fn task_maps_lists_and_groups_are_bounded() {
        let mut task = good_task();
        task.labels = (0..65).map(|i| (i.to_string(), String::new())).collect();
        assert_eq!(
            refusal(launches(&launch_of(task))),
            "launches[0].task.labels: at most 64 allowed, 65 given"
        );
        let mut task = good_task();
        task.command.as_mut().unwrap().environment =
            [("BIG".to_owned(), "x".repeat(40_000))].into();
        assert!(
            refusal(launches(&launch_of(task)))
                .starts_with("launches[0].task.command.environment[\"BIG\"]: at most 32768 bytes")
        );
        let group = api::LaunchRequest {
            session_id: "s".into(),
            launches: vec![api::Launch {
                lease_id: "l".into(),
                work: Some(api::launch::Work::TaskGroup(api::TaskGroupSpec {
                    tasks: vec![good_task(); 65],
                })),
            }],
        };
        assert_eq!(
            refusal(launches(&group)),
            "launches[0].task_group.tasks: at most 64 allowed, 65 given"
        );
        let many = api::LaunchRequest {
            session_id: "s".into(),
            launches: vec![launch_of(good_task()).launches[0].clone(); 1001],
        };
        assert_eq!(
            refusal(launches(&many)),
            "launches: at most 1000 allowed, 1001 given"
        );
    }

    #[test]
    fn subscribe_names_are_checked() {
        let subscribe = |frontend: &str, namespaces: Vec<String>| api::SubscribeRequest {
            frontend: frontend.into(),
            namespaces,
            ..Default::default()
        };
        assert!(super::subscribe(&subscribe("ci-runner.1", vec!["default".into()])).is_ok());
        assert!(refusal(super::subscribe(&subscribe("*", vec![]))).starts_with("frontend: "));
        assert!(
            refusal(super::subscribe(&subscribe(&"f".repeat(1 << 20), vec![])))
                .starts_with("frontend: at most 64 bytes")
        );
        assert!(
            refusal(super::subscribe(&subscribe("f", vec!["a/b".into()])))
                .starts_with("namespaces[0]: ")
        );
        assert!(
            refusal(super::subscribe(&subscribe("f", vec!["n".into(); 65])))
                .starts_with("namespaces: at most 64")
        );
    }

    #[test]
    fn id_lists_are_bounded() {
        let ids = vec!["l".to_owned(); 1001];
        assert!(
            refusal(super::ids("lease_ids", &ids, 128, core::LeaseId))
                .starts_with("lease_ids: at most 1000")
        );
        let ids = vec!["ok".to_owned(), "x".repeat(129)];
        assert!(
            refusal(super::ids("lease_ids", &ids, 128, core::LeaseId))
                .starts_with("lease_ids[1]: at most 128 bytes")
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
