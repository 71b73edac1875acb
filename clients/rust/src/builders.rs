//! Builders for the requests frontends send most, so a test or a small
//! frontend reads as what it asks for.

use std::time::Duration;

use agora_proto::agora::v1 as api;

/// `count` identical slots of resources.
#[derive(Debug, Clone)]
pub struct Slot(api::SlotRequest);

impl Slot {
    /// One slot of `cpus` cores and `mem_mb` megabytes.
    pub fn new(cpus: f64, mem_mb: f64) -> Self {
        Slot(api::SlotRequest {
            resources: Some(api::Resources {
                cpus,
                mem_mb,
                ..Default::default()
            }),
            count: 1,
            port_count: 0,
        })
    }

    /// Asks for `count` such slots.
    pub fn count(mut self, count: u32) -> Self {
        self.0.count = count;
        self
    }

    /// Adds `ports` ports of any number.
    pub fn ports(mut self, ports: u32) -> Self {
        self.0.port_count = ports;
        self
    }
}

/// An Acquire request for one namespace.
#[derive(Debug, Clone)]
pub struct Acquire(api::AcquireRequest);

impl Acquire {
    /// An empty request in `namespace`; add slots with [`Acquire::slot`].
    pub fn new(namespace: &str) -> Self {
        Acquire(api::AcquireRequest {
            namespace: namespace.to_owned(),
            ..Default::default()
        })
    }

    /// Adds slots.
    pub fn slot(mut self, slot: Slot) -> Self {
        self.0.slots.push(slot.0);
        self
    }

    /// Waits up to `wait_for` for capacity instead of failing at once.
    pub fn wait_for(mut self, wait_for: Duration) -> Self {
        self.0.wait_for = Some(duration(wait_for));
        self
    }

    /// Asks for leases that last `hold_for` before launch.
    pub fn hold_for(mut self, hold_for: Duration) -> Self {
        self.0.hold_for = Some(duration(hold_for));
        self
    }

    /// Makes the call idempotent under retries.
    pub fn request_id(mut self, request_id: &str) -> Self {
        self.0.request_id = request_id.to_owned();
        self
    }

    /// All slots or none.
    pub fn gang(mut self) -> Self {
        self.0.gang = true;
        self
    }

    /// Whether revocable capacity may serve the slots (regular only when not
    /// called).
    pub fn revocable(mut self, policy: api::Revocable) -> Self {
        self.0.revocable = policy as i32;
        self
    }

    /// Places every slot on agents that satisfy `constraint`.
    pub fn constraint(mut self, constraint: Constraint) -> Self {
        self.0.constraints.push(constraint.0);
        self
    }

    pub(crate) fn into_request(self, session_id: &str) -> api::AcquireRequest {
        api::AcquireRequest {
            session_id: session_id.to_owned(),
            ..self.0
        }
    }
}

/// A placement rule on an agent attribute or `"hostname"`.
#[derive(Debug, Clone)]
pub struct Constraint(api::Constraint);

impl Constraint {
    fn new(field: &str, operator: api::constraint::Operator, values: &[&str]) -> Self {
        Constraint(api::Constraint {
            field: field.to_owned(),
            operator: operator as i32,
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            max_per: 0,
        })
    }

    /// The field equals `value`.
    pub fn equals(field: &str, value: &str) -> Self {
        Self::new(field, api::constraint::Operator::Equals, &[value])
    }

    /// The field is one of `values`.
    pub fn one_of(field: &str, values: &[&str]) -> Self {
        Self::new(field, api::constraint::Operator::In, values)
    }

    /// The field is none of `values`.
    pub fn none_of(field: &str, values: &[&str]) -> Self {
        Self::new(field, api::constraint::Operator::NotIn, values)
    }

    /// The agent has the field.
    pub fn exists(field: &str) -> Self {
        Self::new(field, api::constraint::Operator::Exists, &[])
    }

    /// At most one slot per value of the field, e.g. one per host.
    pub fn unique(field: &str) -> Self {
        Self::new(field, api::constraint::Operator::Unique, &[])
    }

    /// At most `n` slots per value of the field.
    pub fn max_per(field: &str, n: u32) -> Self {
        let mut constraint = Self::new(field, api::constraint::Operator::MaxPer, &[]);
        constraint.0.max_per = n;
        constraint
    }
}

/// A task to launch on a lease.
#[derive(Debug, Clone)]
pub struct Task(api::TaskSpec);

impl Task {
    /// A task with the frontend's id `id` running `command` under `/bin/sh -c`.
    pub fn shell(id: &str, command: &str) -> Self {
        Task(api::TaskSpec {
            id: id.to_owned(),
            name: id.to_owned(),
            command: Some(api::Command {
                shell: command.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// The resources the task uses; they must fit its lease.
    pub fn resources(mut self, cpus: f64, mem_mb: f64) -> Self {
        self.0.resources = Some(api::Resources {
            cpus,
            mem_mb,
            ..Default::default()
        });
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        if let Some(command) = self.0.command.as_mut() {
            command
                .environment
                .insert(name.to_owned(), value.to_owned());
        }
        self
    }

    pub(crate) fn into_spec(self) -> api::TaskSpec {
        self.0
    }
}

/// The wire form, for requests built by hand with [`crate::Frontend::raw`].
impl From<Task> for api::TaskSpec {
    fn from(task: Task) -> api::TaskSpec {
        task.0
    }
}

/// A duration as protobuf carries it; one past `i64` seconds saturates.
pub(crate) fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}
