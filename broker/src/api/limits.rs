//! Bounds on every count, list and string a request may carry, checked
//! before anything reaches the core. The core is one loop shared by every
//! tenant, so the work one call may ask of it must be small whatever the
//! caller sends: these limits are far above what a real frontend needs and
//! far below what would hold the loop for long. `proto/agora/v1/*.proto`
//! documents each of them beside its field.
//!
//! What the bounds buy, measured on this project's 2-core machine while
//! other work ran (`cargo bench -p agora-core --bench acquire --
//! largest_requests`, 10,000 agents): the heaviest Acquire they allow, a
//! gang of 256 slots one per host, takes 4.7 ms with the release of its
//! leases; 16 constraints of 256 values checked against every agent and
//! refused, 29 ms. Over the property-test workloads of the core
//! (`invariants_hold_under_random_inputs`, about 20,000 steps in a release
//! build) no step took more than 0.1 ms, the test's own checks included
//! (p99 14 µs). Before the bounds, one Acquire with `count = 4294967295`
//! held the core for minutes.

use tonic::Status;

use super::status::invalid_field;

pub use agora_core::MAX_NAME_BYTES;
/// A frontend's own task id (`TaskSpec.id`): with two names and a
/// generated suffix it must fit Mesos's 255-byte task ids.
pub const MAX_CLIENT_TASK_ID_BYTES: usize = 64;
/// Mesos's own bound on a task id (`NAME_MAX`), for ids Agora made.
pub const MAX_MESOS_ID_BYTES: usize = 255;
/// A namespace's Mesos role (Mesos sets no bound; this one is generous).
pub const MAX_ROLE_BYTES: usize = 256;
/// Session, lease and request ids.
pub const MAX_ID_BYTES: usize = 128;
/// Namespaces one session works in.
pub const MAX_SESSION_NAMESPACES: usize = 64;
/// Capabilities a frontend may declare (repeats included).
pub const MAX_CAPABILITIES: usize = 16;
/// `SlotRequest`s in one Acquire.
pub const MAX_SLOT_REQUESTS: usize = 64;
/// Slots (the sum of every `count`) in one Acquire: the most leases one
/// call can return.
pub const MAX_SLOTS: u32 = 256;
/// Ports one slot may ask for: `port_count` plus the specific ports.
pub const MAX_PORTS_PER_SLOT: u64 = 1024;
/// Port ranges in one `Resources`.
pub const MAX_PORT_RANGES: usize = 64;
/// Entries of `Resources.scalars`.
pub const MAX_SCALARS: usize = 32;
/// A resource's name, such as `cpus`.
pub const MAX_RESOURCE_NAME_BYTES: usize = 64;
/// Constraints in one Acquire.
pub const MAX_CONSTRAINTS: usize = 16;
/// Values in one constraint (`IN`, `NOT_IN`).
pub const MAX_CONSTRAINT_VALUES: usize = 256;
/// A constraint's attribute name, and each of its values.
pub const MAX_ATTRIBUTE_BYTES: usize = 256;
/// The longest an Acquire may wait for capacity.
pub const MAX_WAIT_SECS: u64 = 3600;
/// Lease or task ids in one Hold, Release, Kill or Reconcile.
pub const MAX_IDS: usize = 1000;
/// Tasks in one Launch, counting every task of every group.
pub const MAX_LAUNCH_TASKS: usize = 1000;
/// Tasks in one task group (Mesos starts them in one executor).
pub const MAX_GROUP_TASKS: usize = 64;
/// A task's name (what Mesos shows, not its id).
pub const MAX_TASK_NAME_BYTES: usize = 256;
/// The Unix user a command runs as.
pub const MAX_USER_BYTES: usize = 256;
/// Labels of one task.
pub const MAX_LABELS: usize = 64;
/// A label's key.
pub const MAX_LABEL_KEY_BYTES: usize = 256;
/// A label's value.
pub const MAX_LABEL_VALUE_BYTES: usize = 4096;
/// Environment variables of one command.
pub const MAX_ENVIRONMENT: usize = 256;
/// An environment variable's name.
pub const MAX_ENV_NAME_BYTES: usize = 256;
/// An environment variable's value.
pub const MAX_ENV_VALUE_BYTES: usize = 32 * 1024;
/// Arguments of one command (`argv`).
pub const MAX_ARGV: usize = 1024;
/// A shell command, or one argument of `argv`.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Refuses a list at `field` longer than `max`.
pub fn list<T>(field: &str, items: &[T], max: usize) -> Result<(), Status> {
    count(field, items.len(), max)
}

/// Refuses a count at `field` above `max`.
pub fn count(field: &str, count: usize, max: usize) -> Result<(), Status> {
    if count > max {
        return Err(invalid_field(
            field,
            format!("at most {max} allowed, {count} given"),
        ));
    }
    Ok(())
}

/// Refuses a string at `field` longer than `max` bytes.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.len() > max {
        return Err(invalid_field(
            field,
            format!("at most {max} bytes allowed, {} given", value.len()),
        ));
    }
    Ok(())
}

/// Refuses a frontend or namespace name that breaks the core's rule for
/// names ([`agora_core::check_name`]).
pub fn name(field: &str, value: &str) -> Result<(), Status> {
    agora_core::check_name(value).map_err(|reason| invalid_field(field, reason))
}

/// Refuses an id that Mesos's own validation of ids refuses: empty, longer
/// than `max` bytes, `.` or `..`, or holding a path separator or a control
/// character.
pub fn mesos_id(field: &str, value: &str, max: usize) -> Result<(), Status> {
    if value.is_empty() {
        return Err(invalid_field(field, "must not be empty"));
    }
    text(field, value, max)?;
    if value == "." || value == ".." {
        return Err(invalid_field(field, format!("{value:?} is not allowed")));
    }
    if value
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(invalid_field(
            field,
            format!(
                "{:?} holds '/', '\\' or a control character, which Mesos refuses in ids",
                value.escape_debug().to_string()
            ),
        ));
    }
    Ok(())
}

/// Refuses string keys and values of a map at `field` beyond the bounds.
pub fn map<'a>(
    field: &str,
    entries: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
    max_entries: usize,
    max_key: usize,
    max_value: usize,
) -> Result<(), Status> {
    count(field, entries.len(), max_entries)?;
    for (key, value) in entries {
        let entry = format!("{field}[{:?}]", truncated(key));
        text(&format!("{entry} (key)"), key, max_key)?;
        text(&entry, value, max_value)?;
    }
    Ok(())
}

/// At most the first 32 characters of `value`, to name an oversized key in
/// an error without echoing all of it back.
pub fn truncated(value: &str) -> &str {
    value
        .char_indices()
        .nth(32)
        .map_or(value, |(end, _)| &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn a_bad_name_is_refused_naming_the_field() {
        let status = name("frontend", "*").unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().starts_with("frontend: "), "{status:?}");
    }

    #[test]
    fn ids_follow_mesos_rules() {
        assert!(mesos_id("task.id", "web-1:8080 (retry)", 64).is_ok());
        for bad in ["", ".", "..", "a/b", "a\\b", "new\nline", &"i".repeat(65)] {
            assert!(mesos_id("task.id", bad, 64).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bounds_name_the_field_and_the_limit() {
        let status = list("slots", &[(); 65], MAX_SLOT_REQUESTS).unwrap_err();
        assert_eq!(status.message(), "slots: at most 64 allowed, 65 given");
        let status = text("request_id", &"r".repeat(129), MAX_ID_BYTES).unwrap_err();
        assert_eq!(
            status.message(),
            "request_id: at most 128 bytes allowed, 129 given"
        );
    }

    #[test]
    fn an_oversized_key_is_named_shortly() {
        let key = "k".repeat(1000);
        let labels = std::collections::HashMap::from([(key, String::new())]);
        let status = map("labels", labels.iter(), 4, 256, 256).unwrap_err();
        assert!(status.message().len() < 200, "{}", status.message());
    }
}
