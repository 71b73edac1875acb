//! Where an acquire's slots land, seen through the core: constraints on
//! the hostname and on attributes, gangs granted whole or not at all, and
//! ports granted as numbers, never twice.

use std::time::Duration;

use crate::testing::*;
use crate::*;

/// Three agents on racks r1, r1, r2 with 4 cpus each.
fn racked_core() -> (Core, SessionId) {
    let mut core = core();
    let s = session(&mut core, "a");
    let racks = ["r1", "r1", "r2"];
    let offers = (0..3)
        .map(|n| {
            let on = agent_with(n, &[("rack", racks[n as usize])]);
            offer_on(&format!("o{n}"), on, res(4.0, 4096.0))
        })
        .collect();
    core.offers(T0, offers);
    (core, s)
}

fn constrained(count: u32, constraints: Vec<Constraint>, gang: bool) -> AcquireRequest {
    AcquireRequest {
        constraints,
        gang,
        ..acquire(
            vec![Slot {
                count,
                ..slot(1.0, 128.0)
            }],
            Duration::ZERO,
        )
    }
}

fn hosts(leases: &[Lease]) -> Vec<&str> {
    leases.iter().map(|l| l.agent.hostname.as_str()).collect()
}

#[test]
fn unique_over_more_slots_than_hosts_seen_cannot_fit() {
    let (mut core, s) = racked_core();
    let hosts = core.agents().len();
    let request = constrained(hosts as u32 + 1, vec![on(HOSTNAME, Rule::MaxPer(1))], true);
    assert_eq!(
        core.acquire(T0, Ticket(1), &s, request),
        Err(CoreError::CannotFit {
            field: "constraints[0]".into(),
            resource: "distinct values of \"hostname\"".into(),
            asked: (hosts + 1) as f64,
            available: hosts as f64,
        })
    );
    let spread = constrained(hosts as u32 + 1, vec![on(HOSTNAME, Rule::MaxPer(1))], false);
    assert_eq!(
        granted(core.acquire(T0, Ticket(2), &s, spread)).len(),
        hosts,
        "without gang, what fits is granted"
    );
}

#[test]
fn a_gang_is_granted_whole_or_not_at_all_other_requests_take_what_fits() {
    let mut core = core();
    let s = session(&mut core, "a");
    core.offers(T0, vec![offer("o1", 1, res(2.0, 512.0))]);
    let mut two = slot(1.5, 128.0);
    two.count = 2;
    let gang = AcquireRequest {
        gang: true,
        ..acquire(vec![two.clone()], Duration::ZERO)
    };
    let outcome = core.acquire(T0, Ticket(1), &s, gang);
    assert!(outcome.is_err());
    assert_eq!(core.agents()[0].pooled, res(2.0, 512.0), "nothing was held");
    let some = granted(core.acquire(T0, Ticket(2), &s, acquire(vec![two], Duration::ZERO)));
    assert_eq!(some.len(), 1);
}

#[test]
fn unique_per_host_spreads_slots_and_a_gang_too_big_for_it_gets_nothing() {
    let (mut core, s) = racked_core();
    let unique = || vec![on(HOSTNAME, Rule::MaxPer(1))];
    let gang = constrained(4, unique(), true);
    assert!(core.acquire(T0, Ticket(1), &s, gang).is_err());
    let leases = granted(core.acquire(T0, Ticket(2), &s, constrained(3, unique(), true)));
    let mut spread = hosts(&leases);
    spread.sort();
    assert_eq!(spread, ["host-0", "host-1", "host-2"]);
}

#[test]
fn attribute_rules_pick_the_agents_they_name() {
    let (mut core, s) = racked_core();
    let cases = [
        (on("rack", Rule::Equals("r2".into())), vec!["host-2"]),
        (on("rack", Rule::In(["r2".into()].into())), vec!["host-2"]),
        (on(HOSTNAME, Rule::Equals("host-1".into())), vec!["host-1"]),
        (
            on("rack", Rule::NotIn(["r1".into()].into())),
            vec!["host-2"],
        ),
        (on("zone", Rule::NotIn(["a".into()].into())), vec!["host-0"]),
    ];
    for (constraint, expected) in cases {
        let request = constrained(1, vec![constraint.clone()], false);
        let leases = granted(core.acquire(T0, Ticket(1), &s, request));
        assert_eq!(hosts(&leases), expected, "{constraint:?}");
        core.release(T0, &s, &[leases[0].id.clone()], Duration::ZERO)
            .unwrap();
    }
    let nowhere = constrained(1, vec![on("zone", Rule::Exists)], false);
    assert!(core.acquire(T0, Ticket(1), &s, nowhere).is_err());
}

#[test]
fn max_per_caps_slots_per_value() {
    let (mut core, s) = racked_core();
    let request = constrained(3, vec![on("rack", Rule::MaxPer(2))], false);
    let leases = granted(core.acquire(T0, Ticket(1), &s, request));
    let racks: Vec<&str> = leases
        .iter()
        .map(|l| l.agent.attributes[0].1.as_str())
        .collect();
    assert_eq!(racks.iter().filter(|r| **r == "r1").count(), 2);
    assert_eq!(racks.iter().filter(|r| **r == "r2").count(), 1);
}

#[test]
fn constraints_that_cannot_hold_are_refused_with_the_field() {
    let (mut core, s) = racked_core();
    for (constraint, field) in [
        (on("", Rule::Exists), "constraints[0].field"),
        (on("rack", Rule::In([].into())), "constraints[0].values"),
        (on("rack", Rule::MaxPer(0)), "constraints[0].max_per"),
    ] {
        let error = core
            .acquire(T0, Ticket(1), &s, constrained(1, vec![constraint], false))
            .unwrap_err();
        assert!(
            matches!(&error, CoreError::InvalidRequest { field: f, .. } if f == field),
            "{error:?}"
        );
    }
}

#[test]
fn ports_are_granted_as_numbers_and_never_twice() {
    let mut core = core();
    let a = session(&mut core, "a");
    let b = session(&mut core, "b");
    let ports = Resources::from_scalars([("cpus", 4.0)], [(31000, 31002)]).unwrap();
    core.offers(T0, vec![offer("o1", 1, ports)]);
    let two_ports = Slot {
        port_count: 2,
        ..slot(1.0, 0.0)
    };
    let first = granted(core.acquire(
        T0,
        Ticket(1),
        &a,
        acquire(vec![two_ports.clone()], Duration::ZERO),
    ));
    assert_eq!(first[0].resources.port_ranges(), &[(31000, 31001)]);
    assert!(
        core.acquire(T0, Ticket(2), &b, acquire(vec![two_ports], Duration::ZERO))
            .is_err()
    );
    let exact = Slot {
        resources: Resources::from_scalars([], [(31001, 31001)]).unwrap(),
        port_count: 0,
        count: 1,
    };
    assert!(
        core.acquire(T0, Ticket(3), &b, acquire(vec![exact], Duration::ZERO))
            .is_err()
    );
    let last = Slot {
        resources: Resources::from_scalars([], [(31002, 31002)]).unwrap(),
        port_count: 0,
        count: 1,
    };
    let second = granted(core.acquire(T0, Ticket(4), &b, acquire(vec![last], Duration::ZERO)));
    assert_eq!(second[0].resources.port_ranges(), &[(31002, 31002)]);
}
