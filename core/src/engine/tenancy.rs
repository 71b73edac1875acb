//! Namespaces at run time: put and delete, the framework roles they
//! imply (UPDATE_FRAMEWORK), and the quota and weights pushed to Mesos.

use std::collections::BTreeMap;

use super::*;
use crate::namespaces::role_quotas;
use crate::resources::Resources;

impl Core {
    /// Every namespace, by name.
    pub fn namespaces(&self) -> impl Iterator<Item = &Namespace> {
        self.tenancy.namespaces.values()
    }

    /// One namespace.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.tenancy.namespaces.get(name)
    }

    /// Checks that `namespace` may be put, changing nothing, so that the
    /// runtime can persist it before it takes effect.
    pub fn check_put_namespace(&self, namespace: &Namespace) -> Result<(), CoreError> {
        namespace.validate()?;
        match self.tenancy.namespaces.get(&namespace.name) {
            Some(old) if old.role != namespace.role => {
                self.check_unused(&namespace.name, "so its role cannot change")
            }
            _ => Ok(()),
        }
    }

    /// Creates or replaces a namespace. When the set of roles changes, the
    /// framework's roles are updated in Mesos (UPDATE_FRAMEWORK: no
    /// resubscription, no task touched).
    pub(crate) fn put_namespace(&mut self, namespace: Namespace) -> Result<(), CoreError> {
        self.check_put_namespace(&namespace)?;
        let roles = self.roles();
        self.tenancy
            .namespaces
            .insert(namespace.name.clone(), namespace);
        self.roles_changed(roles);
        self.push_quota();
        Ok(())
    }

    /// Checks that a namespace exists and holds nothing, changing nothing.
    pub fn check_delete_namespace(&self, name: &str) -> Result<(), CoreError> {
        if !self.tenancy.namespaces.contains_key(name) {
            return Err(CoreError::NamespaceNotFound(name.to_owned()));
        }
        self.check_unused(name, "so it cannot be deleted")
    }

    /// Removes a namespace that holds nothing; its role leaves the
    /// framework when no other namespace uses it.
    pub(crate) fn delete_namespace(&mut self, name: &str) -> Result<Namespace, CoreError> {
        self.check_delete_namespace(name)?;
        let roles = self.roles();
        let removed = self
            .tenancy
            .namespaces
            .remove(name)
            .ok_or_else(|| CoreError::NamespaceNotFound(name.to_owned()))?;
        self.roles_changed(roles);
        self.push_quota();
        Ok(removed)
    }

    /// Refuses while the namespace has leases, live tasks or waiting demand.
    pub(super) fn check_unused(&self, name: &str, consequence: &str) -> Result<(), CoreError> {
        let leases = self
            .leases
            .values()
            .filter(|s| s.lease.namespace == name)
            .count();
        let tasks = self
            .tasks
            .values()
            .filter(|t| t.namespace == name && !t.state.is_terminal())
            .count();
        let waiting = self
            .queue
            .waiting
            .iter()
            .filter(|w| w.request.namespace == name)
            .count();
        if leases + tasks + waiting == 0 {
            return Ok(());
        }
        Err(CoreError::NamespaceInUse {
            namespace: name.to_owned(),
            what: format!(
                "{leases} leases, {tasks} live tasks and {waiting} waiting requests, {consequence}"
            ),
        })
    }

    /// With `push_quota`, sets in Mesos the quota of each top-level role and
    /// the weight of each role, where they changed since the last push;
    /// roles no longer used get theirs reset.
    pub(super) fn push_quota(&mut self) {
        if !self.config.push_quota {
            return;
        }
        let quotas = role_quotas(self.tenancy.namespaces.values());
        let mut weights: BTreeMap<String, f64> = BTreeMap::new();
        for namespace in self.tenancy.namespaces.values() {
            *weights.entry(namespace.role.clone()).or_default() += namespace.weight;
        }
        let weights: Vec<(String, f64)> = weights.into_iter().collect();
        let (old_quotas, old_weights) =
            std::mem::replace(&mut self.tenancy.pushed, (quotas.clone(), weights.clone()));
        let resets = old_quotas
            .iter()
            .filter(|old| quotas.iter().all(|q| q.role != old.role))
            .map(|old| RoleQuota {
                role: old.role.clone(),
                guarantee: Resources::default(),
                limit: Resources::default(),
            });
        let changed: Vec<RoleQuota> = quotas
            .iter()
            .filter(|q| !old_quotas.contains(q))
            .cloned()
            .chain(resets)
            .collect();
        if !changed.is_empty() {
            self.effects
                .push(Effect::Mesos(MesosCall::UpdateQuota { quotas: changed }));
        }
        let resets = old_weights
            .iter()
            .filter(|(old, _)| weights.iter().all(|(role, _)| role != old))
            .map(|(old, _)| (old.clone(), 1.0));
        let changed: Vec<(String, f64)> = weights
            .iter()
            .filter(|w| !old_weights.contains(w))
            .cloned()
            .chain(resets)
            .collect();
        if !changed.is_empty() {
            self.effects
                .push(Effect::Mesos(MesosCall::UpdateWeights { weights: changed }));
        }
    }

    /// Tells Mesos the framework's roles when they differ from `before`.
    pub(super) fn roles_changed(&mut self, before: Vec<String>) {
        let roles = self.roles();
        if roles == before {
            return;
        }
        self.tenancy.suppressed.retain(|role| roles.contains(role));
        self.effects.push(Effect::Mesos(MesosCall::UpdateFramework {
            roles,
            suppressed_roles: self.tenancy.suppressed.iter().cloned().collect(),
        }));
    }
}

#[cfg(test)]
mod tests;
