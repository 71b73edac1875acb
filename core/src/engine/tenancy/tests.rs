//! Namespaces at run time: the framework's roles follow puts and deletes,
//! a namespace in use stays, and the quota and weights pushed to Mesos
//! follow namespace changes only.

use std::time::Duration;

use crate::testing::*;
use crate::*;

#[test]
fn a_new_role_updates_the_framework_and_a_namespace_in_use_stays() {
    let mut core = TestCore::builder()
        .warm_pool(0)
        .namespaces([Namespace::new("default", "default")])
        .build();
    core.put_namespace(Namespace::new("batch", "eng/batch"))
        .unwrap();
    assert_eq!(
        mesos_calls(&core.drain_effects())[0],
        &MesosCall::UpdateFramework {
            roles: vec!["default".into(), "eng/batch".into()],
            suppressed_roles: vec![],
        }
    );
    // Same role, new weight: nothing to tell Mesos.
    let heavier = Namespace::new("batch", "eng/batch").weight(4.0);
    core.put_namespace(heavier).unwrap();
    assert!(
        mesos_calls(&core.drain_effects())
            .iter()
            .all(|c| !matches!(c, MesosCall::UpdateFramework { .. }))
    );
    let s = in_namespace(&mut core, "a", "batch");
    core.offers(
        T0,
        vec![Offer {
            role: "eng/batch".into(),
            ..offer("o1", 1, res(4.0, 1024.0))
        }],
    );
    let request = acquire_in("batch", vec![slot(1.0, 128.0)], Duration::ZERO);
    granted(core.acquire(T0, Ticket(1), &s, request));
    assert!(matches!(
        core.delete_namespace("batch"),
        Err(CoreError::NamespaceInUse { .. })
    ));
    assert!(matches!(
        core.put_namespace(Namespace::new("batch", "other")),
        Err(CoreError::NamespaceInUse { .. })
    ));
    assert!(matches!(
        core.put_namespace(Namespace::new("bad", "/x")),
        Err(CoreError::InvalidNamespace { .. })
    ));
}

#[test]
fn deleting_a_namespace_removes_its_role_and_refuses_its_acquires() {
    let mut core = TestCore::builder()
        .warm_pool(0)
        .namespaces([
            Namespace::new("default", "default"),
            Namespace::new("old", "old"),
        ])
        .build();
    let s = core
        .subscribe(
            FrontendName("a".into()),
            "p",
            vec!["default".into(), "old".into()],
            0,
        )
        .unwrap();
    core.delete_namespace("old").unwrap();
    assert!(
        mesos_calls(&core.drain_effects()).contains(&&MesosCall::UpdateFramework {
            roles: vec!["default".into()],
            suppressed_roles: vec![],
        })
    );
    let request = acquire_in("old", vec![slot(1.0, 128.0)], Duration::ZERO);
    assert_eq!(
        core.acquire(T0, Ticket(1), &s, request),
        Err(CoreError::NamespaceNotFound("old".into()))
    );
}

/// A role's quota with a cpu limit (none when zero) and no guarantee.
fn quota(role: &str, cpus: f64) -> RoleQuota {
    RoleQuota {
        role: role.into(),
        guarantee: Resources::default(),
        limit: Resources::from_scalars([("cpus", cpus)], []).unwrap(),
    }
}

#[test]
fn pushed_quota_follows_namespace_changes_only() {
    let mut core = TestCore::builder().push_quota().build();
    core.mesos_subscribed(Timestamp::default(), false, &["default".to_owned()]);
    let quota_calls = |core: &mut Core| -> Vec<MesosCall> {
        mesos_calls(&core.drain_effects())
            .into_iter()
            .filter(|c| {
                matches!(
                    c,
                    MesosCall::UpdateQuota { .. } | MesosCall::UpdateWeights { .. }
                )
            })
            .cloned()
            .collect()
    };
    // A new subscription sets everything: Mesos may hold another quota.
    assert_eq!(
        quota_calls(&mut core),
        vec![
            MesosCall::UpdateQuota {
                quotas: vec![quota("default", 0.0)]
            },
            MesosCall::UpdateWeights {
                weights: vec![("default".into(), 1.0)]
            }
        ]
    );
    core.put_namespace(Namespace::new("batch", "batch").limit_cpus(8.0))
        .unwrap();
    assert_eq!(
        quota_calls(&mut core),
        vec![
            MesosCall::UpdateQuota {
                quotas: vec![quota("batch", 8.0)]
            },
            MesosCall::UpdateWeights {
                weights: vec![("batch".into(), 1.0)]
            }
        ],
        "only what changed"
    );
    core.delete_namespace("batch").unwrap();
    assert_eq!(
        quota_calls(&mut core),
        vec![
            MesosCall::UpdateQuota {
                quotas: vec![quota("batch", 0.0)]
            },
            MesosCall::UpdateWeights {
                weights: vec![("batch".into(), 1.0)]
            }
        ],
        "a role no longer used is reset"
    );
}
