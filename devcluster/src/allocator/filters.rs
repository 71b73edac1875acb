//! Refuse filters installed by DECLINE (and by ACCEPT for the unused part
//! of its offers), with Mesos's exact timeout rules.
//!
//! A filter is scoped to (framework, role, agent) and blocks a candidate
//! offer only while it has not expired and the candidate's resources are a
//! subset of the refused ones: if the agent frees more, it is offered again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::resources::Resources;

/// Mesos's default `Filters.refuse_seconds`.
const DEFAULT_REFUSE: Duration = Duration::from_secs(5);
/// Mesos caps filters at one year.
const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How long a filter lasts for `refuse_seconds` (the proto's value with its
/// default applied): `None` when no filter is installed (exactly 0).
/// Negative or non-finite values fall back to the 5 s default, values above
/// a year are capped, and any filter lasts at least one allocation interval.
pub fn refuse_duration(refuse_seconds: f64, allocation_interval: Duration) -> Option<Duration> {
    if refuse_seconds == 0.0 {
        return None;
    }
    let duration = if refuse_seconds.is_finite() && refuse_seconds > 0.0 {
        Duration::from_secs_f64(refuse_seconds.min(MAX_REFUSE.as_secs_f64()))
    } else if refuse_seconds == f64::INFINITY {
        MAX_REFUSE
    } else {
        DEFAULT_REFUSE
    };
    Some(duration.max(allocation_interval))
}

#[derive(Debug, Clone)]
struct Filter {
    refused: Resources,
    expires: Instant,
}

/// Scope of a filter: (framework, role, agent).
type Scope = (String, String, String);

/// All refuse filters of the cluster.
#[derive(Debug, Default)]
pub struct RefuseFilters {
    filters: HashMap<Scope, Vec<Filter>>,
}

impl RefuseFilters {
    /// Installs a filter for `duration` from `now`.
    pub fn install(
        &mut self,
        framework: &str,
        role: &str,
        agent: &str,
        refused: Resources,
        duration: Duration,
        now: Instant,
    ) {
        self.filters
            .entry((framework.to_string(), role.to_string(), agent.to_string()))
            .or_default()
            .push(Filter {
                refused,
                expires: now + duration,
            });
    }

    /// Whether an offer of `candidate` to (framework, role) on `agent` is
    /// blocked at `now`. Expired filters of that scope are dropped.
    pub fn is_filtered(
        &mut self,
        framework: &str,
        role: &str,
        agent: &str,
        candidate: &Resources,
        now: Instant,
    ) -> bool {
        let scope = (framework.to_string(), role.to_string(), agent.to_string());
        let Some(filters) = self.filters.get_mut(&scope) else {
            return false;
        };
        filters.retain(|f| f.expires > now);
        if filters.is_empty() {
            self.filters.remove(&scope);
            return false;
        }
        filters.iter().any(|f| f.refused.contains(candidate))
    }

    /// Drops the filters of `framework` for `roles` (REVIVE).
    pub fn clear_roles(&mut self, framework: &str, roles: &[String]) {
        self.filters
            .retain(|(fw, role, _), _| fw != framework || !roles.contains(role));
    }

    /// Drops every filter of `framework`.
    pub fn remove_framework(&mut self, framework: &str) {
        self.filters.retain(|(fw, _, _), _| fw != framework);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::parse_resources;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn refuse_seconds_follow_the_mesos_rules() {
        let interval = SECOND;
        assert_eq!(refuse_duration(0.0, interval), None);
        assert_eq!(refuse_duration(5.0, interval), Some(5 * SECOND));
        assert_eq!(refuse_duration(-3.0, interval), Some(5 * SECOND));
        assert_eq!(refuse_duration(f64::NAN, interval), Some(5 * SECOND));
        assert_eq!(refuse_duration(0.2, interval), Some(SECOND));
        assert_eq!(refuse_duration(1e12, interval), Some(MAX_REFUSE));
        assert_eq!(refuse_duration(f64::INFINITY, interval), Some(MAX_REFUSE));
        assert_eq!(
            refuse_duration(0.2, Duration::from_millis(100)),
            Some(Duration::from_millis(200))
        );
    }

    #[test]
    fn filters_block_subsets_until_they_expire() {
        let now = Instant::now();
        let mut filters = RefuseFilters::default();
        let refused = parse_resources("cpus:4;mem:1024").unwrap();
        filters.install("fw", "web", "a1", refused, 5 * SECOND, now);

        let same = parse_resources("cpus:4;mem:1024").unwrap();
        let less = parse_resources("cpus:2;mem:1024").unwrap();
        let more = parse_resources("cpus:6;mem:1024").unwrap();
        assert!(filters.is_filtered("fw", "web", "a1", &same, now));
        assert!(filters.is_filtered("fw", "web", "a1", &less, now + 4 * SECOND));
        assert!(!filters.is_filtered("fw", "web", "a1", &more, now));
        assert!(!filters.is_filtered("fw", "ci", "a1", &same, now));
        assert!(!filters.is_filtered("fw", "web", "a2", &same, now));
        assert!(!filters.is_filtered("other", "web", "a1", &same, now));
        assert!(!filters.is_filtered("fw", "web", "a1", &same, now + 5 * SECOND));
    }

    #[test]
    fn revive_clears_only_the_given_roles() {
        let now = Instant::now();
        let mut filters = RefuseFilters::default();
        let refused = parse_resources("cpus:1").unwrap();
        for role in ["web", "ci"] {
            filters.install("fw", role, "a1", refused.clone(), 60 * SECOND, now);
        }
        filters.clear_roles("fw", &["web".to_string()]);
        assert!(!filters.is_filtered("fw", "web", "a1", &refused, now));
        assert!(filters.is_filtered("fw", "ci", "a1", &refused, now));
        filters.remove_framework("fw");
        assert!(!filters.is_filtered("fw", "ci", "a1", &refused, now));
    }
}
