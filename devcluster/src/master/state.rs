//! The master's `/state` JSON, with the field names of a real master's
//! `/master/state` so that tools and UIs reading it work.

use agora_proto::mesos::v1::value;
use agora_proto::mesos::v1::{Attribute, TaskState};
use serde_json::{Map, Value, json};

use super::model::{Framework, Master, Task, VERSION};
use crate::resources::{Resources, reservation_role, value_text};

/// Mesos's "resources map": scalars as numbers, ranges and sets as text.
fn resources_map(resources: &Resources) -> Value {
    let mut map = Map::new();
    for name in ["cpus", "mem", "disk", "gpus"] {
        map.insert(name.into(), json!(0.0));
    }
    for r in resources.iter() {
        match r.scalar {
            Some(_) => {
                map.insert(r.name.clone(), json!(resources.scalar(&r.name)));
            }
            None => {
                map.insert(r.name.clone(), json!(value_text(r)));
            }
        }
    }
    Value::Object(map)
}

fn attributes_map(attributes: &[Attribute]) -> Value {
    let mut map = Map::new();
    for a in attributes {
        let v = match value::Type::try_from(a.r#type) {
            Ok(value::Type::Scalar) => json!(a.scalar.map_or(0.0, |s| s.value)),
            Ok(value::Type::Text) => {
                json!(a.text.as_ref().map(|t| t.value.clone()).unwrap_or_default())
            }
            _ => {
                let as_resource = agora_proto::mesos::v1::Resource {
                    ranges: a.ranges.clone(),
                    set: a.set.clone(),
                    ..Default::default()
                };
                json!(value_text(&as_resource))
            }
        };
        map.insert(a.name.clone(), v);
    }
    Value::Object(map)
}

fn state_name(state: TaskState) -> &'static str {
    state.as_str_name()
}

fn task_json(task: &Task) -> Value {
    let statuses: Vec<Value> = task
        .statuses
        .iter()
        .map(|s| {
            json!({
                "state": TaskState::try_from(s.state).map_or("TASK_UNKNOWN", state_name),
                "timestamp": s.timestamp.unwrap_or_default(),
            })
        })
        .collect();
    let mut value = json!({
        "id": task.info.task_id.value,
        "name": task.info.name,
        "framework_id": task.framework,
        "executor_id": task.group.clone().unwrap_or_default(),
        "slave_id": task.agent,
        "agent_id": task.agent,
        "state": state_name(task.state),
        "resources": resources_map(&task.resources),
        "role": task.role,
        "statuses": statuses,
    });
    if let Some(state) = task.status_update_state {
        value["status_update_state"] = json!(state_name(state));
    }
    value
}

impl Master {
    fn framework_json(&self, f: &Framework, active: bool) -> Value {
        let mut used = Resources::default();
        let mut tasks = Vec::new();
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for task in self.tasks.values().filter(|t| t.framework == f.id) {
            if !task.is_terminal() {
                used.add_all(&task.resources);
            }
            *counts.entry(state_name(task.state)).or_default() += 1;
            tasks.push(task_json(task));
        }
        let mut offered = Resources::default();
        let offers: Vec<Value> = self
            .offers
            .iter()
            .filter(|(_, o)| o.framework == f.id)
            .map(|(id, o)| {
                offered.add_all(&o.resources);
                json!({
                    "id": id,
                    "framework_id": f.id,
                    "slave_id": o.agent,
                    "agent_id": o.agent,
                    "resources": resources_map(&o.resources),
                    "allocation_info": {"role": o.role},
                })
            })
            .collect();
        let capabilities: Vec<Value> = f
            .info
            .capabilities
            .iter()
            .filter_map(|c| c.r#type)
            .filter_map(|t| {
                agora_proto::mesos::v1::framework_info::capability::Type::try_from(t).ok()
            })
            .map(|t| json!(t.as_str_name()))
            .collect();
        let completed: Vec<Value> = f.completed_tasks.iter().map(task_json).collect();
        let mut value = json!({
            "id": f.id,
            "name": f.info.name,
            "user": f.info.user,
            "hostname": f.info.hostname.clone().unwrap_or_default(),
            "webui_url": f.info.webui_url.clone().unwrap_or_default(),
            "principal": f.info.principal,
            "roles": f.roles,
            "suppressed_roles": f.suppressed,
            "capabilities": capabilities,
            "failover_timeout": f.info.failover_timeout.unwrap_or(0.0),
            "checkpoint": f.info.checkpoint.unwrap_or(false),
            "active": active,
            "connected": active,
            "recovered": false,
            "registered_time": f.registered_time,
            "unregistered_time": f.unregistered_time.unwrap_or(0.0),
            "resources": resources_map(&{ let mut all = used.clone(); all.add_all(&offered); all }),
            "used_resources": resources_map(&used),
            "offered_resources": resources_map(&offered),
            "tasks": tasks,
            "completed_tasks": completed,
            "unreachable_tasks": [],
            "offers": offers,
            "executors": [],
            "completed_executors": [],
        });
        if let Some(t) = f.reregistered_time {
            value["reregistered_time"] = json!(t);
        }
        for state in [
            TaskState::TaskStaging,
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskKilling,
            TaskState::TaskFinished,
            TaskState::TaskKilled,
            TaskState::TaskFailed,
            TaskState::TaskLost,
            TaskState::TaskError,
            TaskState::TaskUnreachable,
        ] {
            let name = state_name(state);
            value[name] = json!(counts.get(name).copied().unwrap_or(0));
        }
        if !f.info.capabilities.iter().any(|c| {
            c.r#type
                == Some(agora_proto::mesos::v1::framework_info::capability::Type::MultiRole as i32)
        }) {
            value["role"] = json!(f.roles.first().cloned().unwrap_or_else(|| "*".into()));
        }
        value
    }

    /// The master flags `/state` reports, in Mesos's duration text.
    fn flags_json(&self) -> Value {
        let mut flags = json!({
            "allocation_interval": format!("{}secs", self.allocation_interval.as_secs_f64()),
            "simulate": self.simulate.to_string(),
        });
        if let Some(timeout) = self.offer_timeout {
            flags["offer_timeout"] = json!(format!("{}secs", timeout.as_secs_f64()));
        }
        flags
    }

    /// The devcluster's record of each framework's recent calls, as
    /// `GET /devcluster/calls` serves it.
    pub(crate) fn calls_json(&self) -> Value {
        self.calls.to_json()
    }

    /// The `/state` document.
    pub(crate) fn state_json(&self) -> Value {
        let address = self.info.address.clone().unwrap_or_default();
        let pid = self.info.pid.clone().unwrap_or_default();
        let slaves: Vec<Value> = self
            .agents
            .values()
            .map(|a| {
                let mut used = Resources::default();
                for task in self.tasks.values().filter(|t| t.agent == a.id && !t.is_terminal()) {
                    used.add_all(&task.resources);
                }
                for (key, executor) in &self.executors {
                    if key.0 == a.id {
                        used.add_all(&executor.resources);
                    }
                }
                let mut offered = Resources::default();
                for offer in self.offers.values().filter(|o| o.agent == a.id) {
                    offered.add_all(&offer.resources);
                }
                let mut reserved: std::collections::BTreeMap<String, Resources> = Default::default();
                let mut unreserved = Resources::default();
                for r in a.total.iter() {
                    match reservation_role(r) {
                        "*" => unreserved.add(r),
                        role => reserved.entry(role.to_string()).or_default().add(r),
                    }
                }
                let reserved: Map<String, Value> = reserved
                    .iter()
                    .map(|(role, resources)| (role.clone(), resources_map(resources)))
                    .collect();
                json!({
                    "id": a.id,
                    "pid": format!("slave({})@{}:{}", a.id, address.ip.clone().unwrap_or_default(), address.port),
                    "hostname": a.hostname,
                    "port": 5051,
                    "registered_time": a.registered_time,
                    "resources": resources_map(&a.total),
                    "used_resources": resources_map(&used),
                    "offered_resources": resources_map(&offered),
                    "reserved_resources": reserved,
                    "unreserved_resources": resources_map(&unreserved),
                    "attributes": attributes_map(&a.attributes),
                    "active": true,
                    "deactivated": false,
                    "version": VERSION,
                    "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT", "TASK_NO_KILL_POLICY"],
                })
            })
            .collect();
        let frameworks: Vec<Value> = self
            .frameworks
            .values()
            .map(|f| self.framework_json(f, f.connection.is_some()))
            .collect();
        let completed: Vec<Value> = self
            .completed_frameworks
            .iter()
            .map(|f| self.framework_json(f, false))
            .collect();
        json!({
            "version": VERSION,
            "id": self.id,
            "pid": pid,
            "hostname": self.info.hostname,
            "start_time": self.start_time,
            "elected_time": self.start_time,
            "activated_slaves": self.agents.len(),
            "deactivated_slaves": 0,
            "unreachable_slaves": 0,
            "leader": pid,
            "leader_info": {
                "id": self.info.id,
                "pid": pid,
                "port": self.info.port,
                "ip": self.info.ip,
                "hostname": self.info.hostname,
                "version": VERSION,
                "address": {
                    "hostname": address.hostname,
                    "ip": address.ip,
                    "port": address.port,
                },
            },
            "flags": self.flags_json(),
            "slaves": slaves,
            "frameworks": frameworks,
            "completed_frameworks": completed,
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        })
    }
}
