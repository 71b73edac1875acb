//! The broker's handling of one decoded scheduler event: what the Mesos
//! subscription (`mesos::subscription`) does with SUBSCRIBED, then the
//! domain event the client reports for the others (`mesos::convert`).
//! Each domain value is checked against the invariants the core relies
//! on, since the core trusts them without looking again.

use agora_broker::mesos::{MesosEvent, convert, subscription::heartbeat_silence_limit};
use agora_core::{self as core, Resources};
use agora_proto::{
    mesos::v1::{
        self as mesos,
        scheduler::{Event, event},
    },
    mesos_json,
};

/// `missed_heartbeats` as the broker is configured by default.
const MISSED_HEARTBEATS: u32 = 5;

/// Runs `event` through the broker's handling of its type.
pub fn handle(event: &Event) {
    match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
        Some(event::Type::Subscribed) => {
            if let Some(subscribed) = &event.subscribed {
                heartbeat_silence_limit(subscribed.heartbeat_interval_seconds, MISSED_HEARTBEATS);
            }
        }
        _ => match convert::event(event.clone()) {
            Some(MesosEvent::Offers(offers)) => {
                let wire = event.offers.iter().flat_map(|o| &o.offers);
                assert_eq!(offers.len(), wire.clone().count());
                for (wire, offer) in wire.zip(&offers) {
                    check_offer(wire, offer);
                }
            }
            Some(MesosEvent::Update(status)) => {
                let update = event.update.as_ref().expect("UPDATE with its payload");
                assert_eq!(status.task_id.0, update.status.task_id.value);
                assert_eq!(status.uuid, update.status.uuid);
            }
            _ => {}
        },
    }
}

/// What the core assumes of an offer: well-formed resources, and the
/// reserved parts, by a real role each, within what is offered.
fn check_offer(wire: &mesos::Offer, offer: &core::Offer) {
    assert_eq!(offer.id.0, wire.id.value);
    assert_eq!(offer.agent.id.0, wire.agent_id.value);
    assert_eq!(offer.agent.attributes.len(), wire.attributes.len());
    check_resources(&offer.resources);
    check_resources(&offer.revocable);
    for (role, reserved) in &offer.reserved {
        assert!(!role.is_empty() && role != "*", "reserved to {role:?}");
        check_resources(reserved);
        assert!(
            offer.resources.contains(reserved),
            "reserved to {role}: {reserved} is not within the offer's {}",
            offer.resources
        );
    }
}

/// Scalars finite and positive, ports sorted, disjoint and valid.
fn check_resources(resources: &Resources) {
    for (name, amount) in resources.scalars() {
        assert!(!name.is_empty());
        assert!(amount.is_finite() && amount > 0.0, "{name}: {amount}");
    }
    let ranges = resources.port_ranges();
    for &(begin, end) in ranges {
        assert!(begin <= end && end <= 65_535, "ports {begin}-{end}");
    }
    for pair in ranges.windows(2) {
        assert!(pair[0].1 + 1 < pair[1].0, "ports not merged: {pair:?}");
    }
}

/// Writes `event` in Mesos's JSON dialect, reads that back and writes it
/// again: both writes must say the same. The first write may add the
/// explicit defaults Mesos writes out; after that nothing may change, or
/// the JSON the devcluster writes would not be what the broker reads.
///
/// Doubles may come back a little off: serde_json parses floats exactly
/// only with its `float_roundtrip` feature, which the workspace does not
/// enable (see [`close`]).
pub fn check_json_round_trip(event: &Event) {
    let written = mesos_json::to_json(event);
    let read: Event = mesos_json::from_json(&written).unwrap_or_else(|error| {
        panic!(
            "cannot read back {}: {error}",
            String::from_utf8_lossy(&written)
        )
    });
    let rewritten = mesos_json::to_json(&read);
    let value = |json: &[u8]| -> serde_json::Value {
        serde_json::from_slice(json).expect("to_json writes JSON")
    };
    let (first, second) = (value(&written), value(&rewritten));
    assert!(
        same_json(&first, &second),
        "written {first}\nrewritten {second}"
    );
}

/// Whether `a` and `b` are the same JSON, doubles [`close`] to each other.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            close(x, y)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

/// Whether `x` and `y` may be one double after serde_json's default
/// parsing: it rounds the significand and a power of ten and divides once
/// more below 1e-308, which is a few units in the last place among normal
/// numbers and no relative precision at all near the subnormals.
fn close(x: f64, y: f64) -> bool {
    const TINY: f64 = 1e-290;
    x == y
        || (x - y).abs() <= 8.0 * f64::EPSILON * x.abs().max(y.abs())
        || (x.abs() < TINY && y.abs() < TINY)
}

/// Heap bytes one event may hold per input byte: prost's messages, the
/// dynamic messages of the JSON codec and the text of the round trip.
const PER_BYTE: usize = 1024;
/// And beyond that, whatever the input's size.
const SLACK: usize = 1 << 20;

/// One fuzz input as the broker reads a record in `encoding`: decoded,
/// handled, then through Mesos's JSON dialect and back, within the heap
/// budget. The event targets of both encodings are this, with the
/// encoding their only difference.
pub fn fuzz_event(encoding: agora_broker::mesos::Encoding, data: &[u8]) {
    crate::alloc::within_budget(data.len(), PER_BYTE, SLACK, || {
        if let Ok(event) = encoding.decode(data) {
            handle(&event);
            check_json_round_trip(&event);
        }
    });
}
