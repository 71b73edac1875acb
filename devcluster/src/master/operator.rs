//! The operator API (`POST /api/v1`), the subset the devcluster serves:
//! GET_HEALTH, GET_ROLES, GET_WEIGHTS, UPDATE_WEIGHTS, GET_QUOTA,
//! UPDATE_QUOTA, TEARDOWN and MARK_AGENT_GONE, with the validation, error
//! messages and side effects of Mesos's handlers (`weights_handler.cpp`,
//! `quota_handler.cpp`, `http.cpp`).

use std::collections::{BTreeMap, BTreeSet};

use agora_proto::mesos::v1::master::{Call, Response, call, response};
use agora_proto::mesos::v1::quota::{QuotaConfig, QuotaInfo, QuotaStatus};
use agora_proto::mesos::v1::{FrameworkId, Resource, Role, WeightInfo, value};

use super::agents::Removal;
use super::model::Master;
use crate::allocator::quota::{
    Quota, in_subtree, is_quota_resource, quota_role, subtract, within_limits,
};
use crate::allocator::{Quantities, add_quantities, quantities};
use crate::clock::Now;
use crate::resources::{Resources, is_valid_role, reservation_role};

/// Mesos refuses quota above these (its fixed-point scalars overflow).
const MAX_MEM_QUOTA: f64 = 1024.0 * 1024.0 * 1024.0 * 1024.0;
const MAX_OTHER_QUOTA: f64 = 1e12;

/// Why an operator call failed, with the HTTP status Mesos uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OperatorError {
    /// `400 Bad Request`.
    #[error("{0}")]
    BadRequest(String),
    /// `404 Not Found`.
    #[error("{0}")]
    NotFound(String),
    /// `501 Not Implemented`: a call the devcluster does not serve.
    #[error("{0}")]
    NotImplemented(String),
}

/// The checks Mesos runs on an operator call before handling it: the type
/// and the payload it needs are present.
pub fn validate_operator_call(call: &Call) -> Result<(), String> {
    let kind = call.r#type.ok_or("Expecting 'type' to be present")?;
    let missing = |name: &str| Err(format!("Expecting '{name}' to be present"));
    match call::Type::try_from(kind).unwrap_or(call::Type::Unknown) {
        call::Type::UpdateWeights if call.update_weights.is_none() => missing("update_weights"),
        call::Type::UpdateQuota if call.update_quota.is_none() => missing("update_quota"),
        call::Type::Teardown if call.teardown.is_none() => missing("teardown"),
        call::Type::MarkAgentGone if call.mark_agent_gone.is_none() => missing("mark_agent_gone"),
        _ => Ok(()),
    }
}

fn text(quantities: &Quantities) -> String {
    let parts: Vec<String> = quantities
        .iter()
        .map(|(name, value)| format!("{name}:{value}"))
        .collect();
    if parts.is_empty() {
        "{}".into()
    } else {
        parts.join("; ")
    }
}

fn scalar_resource(name: &str, value: f64) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value }),
        ..Default::default()
    }
}

fn map_of(quantities: &Quantities) -> std::collections::HashMap<String, value::Scalar> {
    quantities
        .iter()
        .map(|(name, value)| (name.clone(), value::Scalar { value: *value }))
        .collect()
}

/// Checks one QuotaConfig as `quota::validate` does; returns its quota.
fn validate_quota(config: &QuotaConfig) -> Result<Quota, String> {
    if config.role.contains('/') {
        return Err(format!(
            "Updating quota on nested role '{}' is not supported yet",
            config.role
        ));
    }
    if !is_valid_role(&config.role) {
        return Err(format!(
            "Invalid QuotaConfig: Invalid 'QuotaConfig.role': '{}' is not a valid role",
            config.role
        ));
    }
    let read = |map: &std::collections::HashMap<String, value::Scalar>, what: &str| {
        let mut out = Quantities::new();
        for (name, scalar) in map {
            let limit = if name == "mem" || name == "disk" {
                MAX_MEM_QUOTA
            } else {
                MAX_OTHER_QUOTA
            };
            if !scalar.value.is_finite() || scalar.value < 0.0 {
                return Err(format!(
                    "Invalid QuotaConfig: Invalid {what} configuration {{'{name}': {}}}: values must be finite and non-negative",
                    scalar.value
                ));
            }
            if scalar.value > limit {
                return Err(format!(
                    "Invalid QuotaConfig: Invalid 'QuotaConfig.{what}s': {{'{name}': {}}} is invalid: the value is too large",
                    scalar.value
                ));
            }
            if scalar.value > 0.0 {
                out.insert(name.clone(), crate::resources::round_scalar(scalar.value));
            }
        }
        Ok(out)
    };
    let guarantees = read(&config.guarantees, "guarantee")?;
    let limits = read(&config.limits, "limit")?;
    if !within_limits(&limits, &guarantees) {
        return Err(format!(
            "Invalid QuotaConfig: 'QuotaConfig.guarantees' {} is not contained within the 'QuotaConfig.limits' {}",
            text(&guarantees),
            text(&limits)
        ));
    }
    Ok(Quota { guarantees, limits })
}

impl Master {
    /// Handles a validated operator call at `now`; `Some` is a response
    /// body.
    pub(crate) fn operator_call(
        &mut self,
        now: Now,
        call: Call,
    ) -> Result<Option<Response>, OperatorError> {
        let kind = call
            .r#type
            .and_then(|t| call::Type::try_from(t).ok())
            .unwrap_or(call::Type::Unknown);
        tracing::debug!(call = ?kind, "operator call");
        let respond = |kind: response::Type, response: Response| {
            Ok(Some(Response {
                r#type: Some(kind as i32),
                ..response
            }))
        };
        match kind {
            call::Type::GetHealth => respond(
                response::Type::GetHealth,
                Response {
                    get_health: Some(response::GetHealth { healthy: true }),
                    ..Default::default()
                },
            ),
            call::Type::GetRoles => respond(
                response::Type::GetRoles,
                Response {
                    get_roles: Some(response::GetRoles {
                        roles: self.roles_view(),
                    }),
                    ..Default::default()
                },
            ),
            call::Type::GetWeights => respond(
                response::Type::GetWeights,
                Response {
                    get_weights: Some(response::GetWeights {
                        weight_infos: self
                            .allocator
                            .weights()
                            .map(|(role, weight)| WeightInfo {
                                weight: *weight,
                                role: Some(role.clone()),
                            })
                            .collect(),
                    }),
                    ..Default::default()
                },
            ),
            call::Type::GetQuota => respond(
                response::Type::GetQuota,
                Response {
                    get_quota: Some(response::GetQuota {
                        status: self.quota_status(),
                    }),
                    ..Default::default()
                },
            ),
            call::Type::UpdateWeights => {
                let update = call.update_weights.unwrap_or_default();
                self.update_weights(update.weight_infos).map(|()| None)
            }
            call::Type::UpdateQuota => {
                let update = call.update_quota.unwrap_or_default();
                self.update_quota(update.force.unwrap_or(false), &update.quota_configs)
                    .map(|()| None)
            }
            call::Type::Teardown => {
                let id = call.teardown.unwrap_or_default().framework_id.value;
                if !self.frameworks.contains_key(&id) {
                    return Err(OperatorError::BadRequest(format!(
                        "No framework found with ID {id}"
                    )));
                }
                self.remove_framework(now, &id);
                Ok(None)
            }
            call::Type::MarkAgentGone => {
                let id = call.mark_agent_gone.unwrap_or_default().agent_id.value;
                if self.is_gone(&id) || self.remove_agent(now, &id, Removal::Gone) {
                    Ok(None)
                } else {
                    Err(OperatorError::NotFound(format!("Agent '{id}' not found")))
                }
            }
            other => Err(OperatorError::NotImplemented(format!(
                "The devcluster does not serve {}",
                other.as_str_name()
            ))),
        }
    }

    /// Every known role (with a framework, a reservation, a weight or a
    /// quota, and their ancestors) as GET_ROLES reports it: weight,
    /// subscribed frameworks, and the cpus/mem/disk/gpus its subtree is
    /// allocated or offered.
    fn roles_view(&self) -> Vec<Role> {
        let mut known: BTreeSet<String> = BTreeSet::new();
        known.extend(
            self.frameworks
                .values()
                .flat_map(|f| f.roles.iter().cloned()),
        );
        known.extend(self.tasks.values().map(|t| t.role.clone()));
        for agent in self.agents.values() {
            known.extend(
                agent
                    .total
                    .iter()
                    .map(reservation_role)
                    .filter(|r| *r != "*")
                    .map(String::from),
            );
        }
        known.extend(self.allocator.weights().map(|(r, _)| r.clone()));
        known.extend(self.allocator.quotas.iter().map(|(r, _)| r.clone()));
        let ancestors: Vec<String> = known
            .iter()
            .flat_map(|role| {
                let parts: Vec<&str> = role.split('/').collect();
                (1..parts.len())
                    .map(|n| parts[..n].join("/"))
                    .collect::<Vec<_>>()
            })
            .collect();
        known.extend(ancestors);
        known
            .into_iter()
            .map(|name| {
                let mut held = Quantities::new();
                let offered = self.offers.values().map(|o| (&o.role, &o.resources));
                let used = self
                    .tasks
                    .values()
                    .filter(|t| !t.is_terminal())
                    .map(|t| (&t.role, &t.resources));
                for (role, resources) in offered.chain(used) {
                    if in_subtree(role, &name) {
                        add_quantities(&mut held, &quantities(resources));
                    }
                }
                Role {
                    weight: self.allocator.weight(&name),
                    frameworks: self
                        .frameworks
                        .values()
                        .filter(|f| f.roles.contains(&name))
                        .map(|f| FrameworkId {
                            value: f.id.clone(),
                        })
                        .collect(),
                    resources: held
                        .iter()
                        .filter(|(n, _)| matches!(n.as_str(), "cpus" | "mem" | "disk" | "gpus"))
                        .map(|(n, v)| scalar_resource(n, *v))
                        .collect(),
                    name,
                }
            })
            .collect()
    }

    fn quota_status(&self) -> QuotaStatus {
        #[allow(deprecated)]
        let infos = self
            .allocator
            .quotas
            .iter()
            .map(|(role, quota)| QuotaInfo {
                role: Some(role.clone()),
                principal: None,
                guarantee: quota
                    .guarantees
                    .iter()
                    .map(|(n, v)| scalar_resource(n, *v))
                    .collect(),
            })
            .collect();
        #[allow(deprecated)]
        QuotaStatus {
            infos,
            configs: self
                .allocator
                .quotas
                .iter()
                .map(|(role, quota)| QuotaConfig {
                    role: role.clone(),
                    guarantees: map_of(&quota.guarantees),
                    limits: map_of(&quota.limits),
                })
                .collect(),
        }
    }

    /// UPDATE_WEIGHTS: all or nothing; when an updated role has frameworks,
    /// every outstanding offer is rescinded so the new shares apply.
    fn update_weights(&mut self, infos: Vec<WeightInfo>) -> Result<(), OperatorError> {
        let mut validated = Vec::new();
        for info in infos {
            let role = info.role.unwrap_or_default().trim().to_string();
            if !is_valid_role(&role) {
                return Err(OperatorError::BadRequest(format!(
                    "Failed to validate update weights request JSON: Invalid role '{role}'"
                )));
            }
            if !(info.weight.is_finite() && info.weight > 0.0) {
                return Err(OperatorError::BadRequest(format!(
                    "Failed to validate update weights request JSON for role '{role}': Invalid weight '{}': Weights must be positive",
                    info.weight
                )));
            }
            validated.push((role, info.weight));
        }
        for (role, weight) in &validated {
            self.allocator.set_weight(role, *weight);
        }
        let active = validated
            .iter()
            .any(|(role, _)| self.frameworks.values().any(|f| f.roles.contains(role)));
        if active {
            let offers: Vec<String> = self.offers.keys().cloned().collect();
            for id in offers {
                self.remove_offer(&id, true);
            }
        }
        self.allocation_requested = true;
        Ok(())
    }

    /// UPDATE_QUOTA with Mesos's checks (nested roles, values, guarantees
    /// within limits, limits above current consumption and guarantees
    /// within the cluster unless `force`); then rescinds, best effort,
    /// offers that keep a role above its new limit.
    fn update_quota(&mut self, force: bool, configs: &[QuotaConfig]) -> Result<(), OperatorError> {
        let bad = OperatorError::BadRequest;
        let mut updates: BTreeMap<String, Quota> = BTreeMap::new();
        for config in configs {
            updates.insert(config.role.clone(), validate_quota(config).map_err(bad)?);
        }
        let consumed = self.quota_consumption(false);
        for (role, quota) in &updates {
            let used = consumed.get(role).cloned().unwrap_or_default();
            if !within_limits(&quota.limits, &used) && !force {
                return Err(bad(format!(
                    "Invalid QuotaConfig: Role '{role}' is already consuming '{}'; this is more than the requested limits '{}' (use 'force' flag to bypass this check)",
                    text(&used),
                    text(&quota.limits)
                )));
            }
        }
        let mut guarantees = Quantities::new();
        for (role, quota) in self.allocator.quotas.iter() {
            if !updates.contains_key(role) {
                add_quantities(&mut guarantees, &quota.guarantees);
            }
        }
        for quota in updates.values() {
            add_quantities(&mut guarantees, &quota.guarantees);
        }
        let mut capacity = Quantities::new();
        for agent in self.agents.values() {
            add_quantities(
                &mut capacity,
                &quantities(&agent.total.filter(|r| r.revocable.is_none())),
            );
        }
        if !subtract(&guarantees, &capacity).is_empty() && !force {
            return Err(bad(format!(
                "Invalid QuotaConfig: total quota guarantees '{}' exceed cluster capacity '{}' (use 'force' flag to bypass this check)",
                text(&guarantees),
                text(&capacity)
            )));
        }
        for (role, quota) in updates {
            tracing::info!(%role, guarantees = %text(&quota.guarantees), limits = %text(&quota.limits), "quota updated");
            self.allocator.quotas.set(&role, quota.clone());
            self.rescind_above_limit(&role, &quota);
        }
        self.allocation_requested = true;
        Ok(())
    }

    /// Rescinds offers of `role`'s subtree until what it consumes and is
    /// offered fits its limits.
    fn rescind_above_limit(&mut self, role: &str, quota: &Quota) {
        let mut held = self
            .quota_consumption(true)
            .remove(role)
            .unwrap_or_default();
        let offers: Vec<(String, Resources)> = self
            .offers
            .iter()
            .filter(|(_, o)| quota_role(&o.role) == role)
            .map(|(id, o)| (id.clone(), o.resources.filter(is_quota_resource)))
            .collect();
        for (id, resources) in offers {
            if within_limits(&quota.limits, &held) {
                break;
            }
            self.remove_offer(&id, true);
            held = subtract(&held, &quantities(&resources));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(role: &str, guarantees: &[(&str, f64)], limits: &[(&str, f64)]) -> QuotaConfig {
        let map = |pairs: &[(&str, f64)]| {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), value::Scalar { value: *v }))
                .collect()
        };
        QuotaConfig {
            role: role.into(),
            guarantees: map(guarantees),
            limits: map(limits),
        }
    }

    #[test]
    fn quota_configs_are_validated_like_mesos() {
        assert!(validate_quota(&config("eng", &[("cpus", 2.0)], &[("cpus", 4.0)])).is_ok());
        assert!(
            validate_quota(&config("eng", &[], &[]))
                .unwrap()
                .is_default()
        );
        let nested = validate_quota(&config("eng/web", &[], &[("cpus", 1.0)])).unwrap_err();
        assert_eq!(
            nested,
            "Updating quota on nested role 'eng/web' is not supported yet"
        );
        assert!(validate_quota(&config("eng", &[("cpus", 5.0)], &[("cpus", 4.0)])).is_err());
        assert!(validate_quota(&config("eng", &[], &[("cpus", -1.0)])).is_err());
        assert!(validate_quota(&config("eng", &[], &[("cpus", f64::NAN)])).is_err());
        assert!(validate_quota(&config("eng", &[], &[("cpus", 2e12)])).is_err());
        assert!(validate_quota(&config("a b", &[], &[])).is_err());
    }

    #[test]
    fn operator_calls_need_their_payload() {
        let call = Call {
            r#type: Some(call::Type::UpdateQuota as i32),
            ..Default::default()
        };
        assert_eq!(
            validate_operator_call(&call),
            Err("Expecting 'update_quota' to be present".into())
        );
        assert!(validate_operator_call(&Call::default()).is_err());
    }
}
