//! The core's durable records as store records: one key per frontend,
//! event, live task and lease, so that a change writes only what it
//! touched and every value stays far below etcd's request limit. Values
//! are the core's own types as JSON: readable with `etcdctl get`, and
//! needing no second schema.
//!
//! | key | value |
//! |---|---|
//! | `frontends/{name}` | [`FrontendRecord`] |
//! | `events/{frontend}/{sequence, 20 digits}` | [`FrontendEvent`] |
//! | `tasks/{task id}` | [`TaskRecord`] |
//! | `leases/{lease id}` | [`LeaseRecord`] |
//! | `reclaims/recent` | the recent [`ReclaimRecord`]s |
//! | `meta/framework_id` | the Mesos framework id, as text |
//!
//! Names hold no `/` (`agora_core::check_name`), so a frontend's events
//! are exactly the keys under its prefix.

use agora_core::durable::{Change, Durable, FrontendRecord, LeaseRecord, ReclaimRecord};
use agora_core::{FrontendEvent, FrontendName, TaskRecord};
use serde::{Serialize, de::DeserializeOwned};

use crate::store::{Store, StoreError, Write};

const FRONTENDS: &str = "frontends/";
const EVENTS: &str = "events/";
const TASKS: &str = "tasks/";
const LEASES: &str = "leases/";
const RECLAIMS: &str = "reclaims/recent";
const FRAMEWORK_ID: &str = "meta/framework_id";

/// Why the durable records could not be read back or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record does not decode: written by another program or a
    /// newer Agora.
    #[error("stored record {key:?} does not decode: {source}")]
    Decode {
        /// The record's key.
        key: String,
        /// What is wrong with it.
        source: serde_json::Error,
    },
}

/// The store writes that record `changes`, in their order.
pub(super) fn writes(changes: Vec<Change>) -> Vec<Write> {
    let mut writes = Vec::with_capacity(changes.len());
    for change in changes {
        match change {
            Change::Frontend(record) => writes.push(put(frontend_key(&record.name), &record)),
            Change::FrontendGone(name) => {
                writes.push(Write::Delete {
                    key: frontend_key(&name),
                });
                let start = events_prefix(&name);
                // `0` follows `/`: the end of every key under the prefix.
                let end = format!("{}0", start.trim_end_matches('/'));
                writes.push(Write::DeleteRange { start, end });
            }
            Change::Event {
                frontend,
                sequence,
                event,
            } => writes.push(put(event_key(&frontend, sequence), &event)),
            Change::Acknowledged { frontend, through } => writes.push(Write::DeleteRange {
                start: events_prefix(&frontend),
                end: event_key(&frontend, through.saturating_add(1)),
            }),
            Change::Task(record) => writes.push(put(format!("{TASKS}{}", record.id), &record)),
            Change::TaskGone(id) => writes.push(Write::Delete {
                key: format!("{TASKS}{id}"),
            }),
            Change::Lease(record) => writes.push(put(format!("{LEASES}{}", record.id), &record)),
            Change::LeaseGone(id) => writes.push(Write::Delete {
                key: format!("{LEASES}{id}"),
            }),
            Change::Reclaims(reclaims) => writes.push(put(RECLAIMS.to_owned(), &reclaims)),
        }
    }
    writes
}

/// The write that records the framework id Mesos gave.
pub(super) fn framework_id_write(id: &str) -> Write {
    Write::Put {
        key: FRAMEWORK_ID.to_owned(),
        value: id.as_bytes().to_vec(),
    }
}

/// The framework id an earlier run recorded, if any.
pub async fn framework_id(store: &Store) -> Result<Option<String>, JournalError> {
    let stored = store.load(FRAMEWORK_ID).await?;
    Ok(stored
        .into_iter()
        .find(|(key, _)| key == FRAMEWORK_ID)
        .map(|(_, id)| String::from_utf8_lossy(&id).into_owned()))
}

/// Every durable record the store holds.
pub async fn load(store: &Store) -> Result<Durable, JournalError> {
    let mut durable = Durable::default();
    for (key, value) in store.load(FRONTENDS).await? {
        let record: FrontendRecord = decode(&key, &value)?;
        durable.frontends.insert(record.name.clone(), record);
    }
    for (key, value) in store.load(EVENTS).await? {
        let event: FrontendEvent = decode(&key, &value)?;
        let Some((frontend, sequence)) = parse_event_key(&key) else {
            return Err(JournalError::Decode {
                source: serde::de::Error::custom("not events/{frontend}/{sequence}"),
                key,
            });
        };
        durable
            .events
            .entry(frontend)
            .or_default()
            .insert(sequence, event);
    }
    for (key, value) in store.load(TASKS).await? {
        let task: TaskRecord = decode(&key, &value)?;
        durable.tasks.insert(task.id.clone(), task);
    }
    for (key, value) in store.load(LEASES).await? {
        let lease: LeaseRecord = decode(&key, &value)?;
        durable.leases.insert(lease.id.clone(), lease);
    }
    if let Some((key, value)) = store.load(RECLAIMS).await?.into_iter().next() {
        let reclaims: Vec<ReclaimRecord> = decode(&key, &value)?;
        durable.reclaims = reclaims;
    }
    Ok(durable)
}

fn put(key: String, value: &impl Serialize) -> Write {
    // The core's records are plain data: maps with string keys, numbers,
    // strings. Serialising them to JSON cannot fail.
    let value = serde_json::to_vec(value).unwrap_or_default();
    Write::Put { key, value }
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T, JournalError> {
    serde_json::from_slice(value).map_err(|source| JournalError::Decode {
        key: key.to_owned(),
        source,
    })
}

fn frontend_key(name: &FrontendName) -> String {
    format!("{FRONTENDS}{name}")
}

fn events_prefix(frontend: &FrontendName) -> String {
    format!("{EVENTS}{frontend}/")
}

/// Zero-padded, so that key order is sequence order.
fn event_key(frontend: &FrontendName, sequence: u64) -> String {
    format!("{EVENTS}{frontend}/{sequence:020}")
}

fn parse_event_key(key: &str) -> Option<(FrontendName, u64)> {
    let (frontend, sequence) = key.strip_prefix(EVENTS)?.rsplit_once('/')?;
    Some((FrontendName(frontend.to_owned()), sequence.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use agora_core::{LeaseId, LeaseLostReason};

    use super::*;
    use crate::config::StoreSettings;

    fn lost(lease: &str) -> FrontendEvent {
        FrontendEvent::LeaseLost {
            lease: LeaseId(lease.into()),
            reason: LeaseLostReason::Expired,
            message: String::new(),
        }
    }

    #[tokio::test]
    async fn changes_written_load_back_as_the_records_they_make() {
        let store = Store::open(&StoreSettings::default()).await.unwrap();
        let web = FrontendName("web".into());
        let batch = FrontendName("batch".into());
        let record = |name: &FrontendName, next_sequence| FrontendRecord {
            name: name.clone(),
            owner: Some("alice".into()),
            namespaces: vec!["default".into()],
            next_sequence,
            draining: None,
        };
        let event = |frontend: &FrontendName, sequence, lease: &str| Change::Event {
            frontend: frontend.clone(),
            sequence,
            event: lost(lease),
        };
        let changes = vec![
            Change::Frontend(record(&web, 12)),
            Change::Frontend(record(&batch, 1)),
            event(&web, 9, "a"),
            event(&web, 10, "b"),
            event(&web, 12, "c"),
            event(&batch, 1, "d"),
            Change::Acknowledged {
                frontend: web.clone(),
                through: 10,
            },
            Change::Lease(LeaseRecord {
                id: LeaseId("l-1".into()),
                frontend: web.clone(),
            }),
            Change::Lease(LeaseRecord {
                id: LeaseId("l-2".into()),
                frontend: web.clone(),
            }),
            Change::LeaseGone(LeaseId("l-1".into())),
            Change::FrontendGone(batch.clone()),
        ];
        let mut expected = Durable::default();
        for change in changes.clone() {
            expected.apply(change);
        }
        store.commit(writes(changes)).await.unwrap();
        let loaded = load(&store).await.unwrap();
        assert_eq!(loaded, expected);
        assert_eq!(
            loaded.events[&web].keys().copied().collect::<Vec<_>>(),
            [12]
        );
    }

    #[tokio::test]
    async fn the_framework_id_is_kept() {
        let store = Store::open(&StoreSettings::default()).await.unwrap();
        assert_eq!(framework_id(&store).await.unwrap(), None);
        store
            .commit(vec![framework_id_write("fw-1")])
            .await
            .unwrap();
        assert_eq!(framework_id(&store).await.unwrap().as_deref(), Some("fw-1"));
    }
}
