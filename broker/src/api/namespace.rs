//! Namespaces and usage between `agora.v1` and the core: what Admin takes
//! and answers, and what the store keeps (the API's own message).

use std::time::Duration;

use agora_proto::agora::v1 as api;
use tonic::Status;

use super::{
    convert::{api_resources, duration, resources},
    limits,
    status::invalid_field,
};
use agora_core::{self as core, Lending};

/// The core's namespace for `namespace`; an empty role becomes
/// `role_prefix` + name, an unset weight 1. The core checks the rest.
pub fn from_api(namespace: &api::Namespace, role_prefix: &str) -> Result<core::Namespace, Status> {
    limits::name("namespace.name", &namespace.name)?;
    limits::text("namespace.role", &namespace.role, limits::MAX_ROLE_BYTES)?;
    let lending = namespace.lending.clone().unwrap_or_default();
    let lend_idle = match api::lending_policy::Lend::try_from(lending.lend) {
        Ok(api::lending_policy::Lend::None) => false,
        Ok(api::lending_policy::Lend::Idle) => true,
        Err(_) => {
            return Err(invalid_field(
                "namespace.lending.lend",
                "choose LEND_NONE or LEND_IDLE",
            ));
        }
    };
    Ok(core::Namespace {
        name: namespace.name.clone(),
        role: if namespace.role.is_empty() {
            format!("{role_prefix}{}", namespace.name)
        } else {
            namespace.role.clone()
        },
        guarantee: resources("namespace.guarantee", namespace.guarantee.as_ref())?,
        limit: resources("namespace.limit", namespace.limit.as_ref())?,
        weight: if namespace.weight == 0.0 {
            1.0
        } else {
            namespace.weight
        },
        max_hold: duration("namespace.max_hold", namespace.max_hold.as_ref())?,
        lending: Lending {
            lend_idle,
            max_lent: resources("namespace.lending.max_lent", lending.max_lent.as_ref())?,
            reclaim_grace: duration(
                "namespace.lending.reclaim_grace",
                lending.reclaim_grace.as_ref(),
            )?
            .unwrap_or_default(),
        },
        max_borrowed: resources("namespace.max_borrowed", namespace.max_borrowed.as_ref())?,
    })
}

/// The API's form of a namespace, every field explicit.
pub fn to_api(namespace: &core::Namespace) -> api::Namespace {
    let lend = if namespace.lending.lend_idle {
        api::lending_policy::Lend::Idle
    } else {
        api::lending_policy::Lend::None
    };
    api::Namespace {
        name: namespace.name.clone(),
        role: namespace.role.clone(),
        guarantee: Some(api_resources(&namespace.guarantee)),
        limit: Some(api_resources(&namespace.limit)),
        weight: namespace.weight,
        lending: Some(api::LendingPolicy {
            lend: lend as i32,
            max_lent: Some(api_resources(&namespace.lending.max_lent)),
            reclaim_grace: proto_duration(namespace.lending.reclaim_grace),
        }),
        max_hold: namespace.max_hold.and_then(proto_duration),
        max_borrowed: Some(api_resources(&namespace.max_borrowed)),
    }
}

fn proto_duration(duration: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(duration).ok()
}

/// A namespace's usage as Admin answers it.
pub fn usage(usage: &core::NamespaceUsage) -> api::NamespaceUsage {
    let namespace = &usage.namespace;
    api::NamespaceUsage {
        namespace: namespace.name.clone(),
        leased: Some(api_resources(&usage.leased)),
        running: Some(api_resources(&usage.running)),
        borrowed: Some(api_resources(&usage.borrowed)),
        lent: Some(api_resources(&usage.lent)),
        guarantee: Some(api_resources(&namespace.guarantee)),
        limit: Some(api_resources(&namespace.limit)),
        weight: namespace.weight,
        dominant_share: usage.dominant_share,
        waiting_slots: usage.waiting_slots,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_round_trips_and_defaults_its_role_and_weight() {
        let asked = api::Namespace {
            name: "batch".into(),
            limit: Some(api::Resources {
                cpus: 8.0,
                ..Default::default()
            }),
            ..Default::default()
        };
        let namespace = from_api(&asked, "agora-").unwrap();
        assert_eq!(namespace.role, "agora-batch");
        assert_eq!(namespace.weight, 1.0);
        assert_eq!(namespace.limit.scalar("cpus"), 8.0);
        assert_eq!(from_api(&to_api(&namespace), "other-").unwrap(), namespace);
    }

    #[test]
    fn bad_amounts_name_their_field() {
        let asked = api::Namespace {
            name: "batch".into(),
            guarantee: Some(api::Resources {
                cpus: -1.0,
                ..Default::default()
            }),
            ..Default::default()
        };
        let status = from_api(&asked, "").unwrap_err();
        assert!(
            status.message().starts_with("namespace.guarantee.cpus"),
            "{}",
            status.message()
        );
    }
}
