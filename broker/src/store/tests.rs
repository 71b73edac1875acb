//! One suite for both backends, so that the runtime can rely on the same
//! behaviour from either: each test takes a [`Fixture`] and runs once on
//! redb (a file in a temporary directory) and once on a real etcd.

use std::time::{Duration, Instant};

use agora_proto::agora::v1 as api;
use agora_tests::etcd::Etcd;

use super::*;
use crate::config::EtcdSettings;

/// Where a test's store lives, so that it can be opened again.
enum Fixture {
    Redb(tempfile::TempDir),
    Etcd(Etcd),
}

impl Fixture {
    fn redb() -> Fixture {
        Fixture::Redb(tempfile::tempdir().unwrap())
    }

    fn etcd() -> Fixture {
        Fixture::Etcd(Etcd::start())
    }

    fn name(&self) -> &'static str {
        match self {
            Fixture::Redb(_) => "redb",
            Fixture::Etcd(_) => "etcd",
        }
    }

    fn settings(&self) -> StoreSettings {
        match self {
            Fixture::Redb(dir) => StoreSettings {
                path: Some(dir.path().join("agora.redb")),
                etcd: None,
            },
            Fixture::Etcd(etcd) => etcd_settings(etcd, "/test/"),
        }
    }

    async fn open(&self) -> Store {
        Store::open(&self.settings()).await.unwrap()
    }
}

/// A store under `prefix` of `etcd`, with the shortest lease etcd grants.
pub(super) fn etcd_settings(etcd: &Etcd, prefix: &str) -> StoreSettings {
    StoreSettings {
        path: None,
        etcd: Some(EtcdSettings {
            endpoints: vec![etcd.endpoint().to_owned()],
            prefix: prefix.to_owned(),
            lease_ttl: Duration::from_secs(2),
        }),
    }
}

/// Runs each named test once per backend.
macro_rules! on_each_backend {
    ($($test:ident),* $(,)?) => {
        mod on_redb {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&super::Fixture::redb()).await;
                }
            )*
        }
        mod on_etcd {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(&super::Fixture::etcd()).await;
                }
            )*
        }
    };
}

on_each_backend!(
    writes_apply_in_order,
    loads_by_prefix_in_key_order,
    an_empty_range_deletes_nothing,
    a_reopened_store_keeps_its_records,
    many_writes_in_one_commit_are_all_applied,
    big_values_in_one_commit_are_all_applied,
    a_record_over_the_limit_fails_the_whole_commit,
    namespaces_survive_a_reopen,
    a_namespace_put_undoes_its_delete,
    commit_latency,
);

fn put(key: &str, value: &str) -> Write {
    Write::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn delete(key: &str) -> Write {
    Write::Delete { key: key.into() }
}

fn delete_range(start: &str, end: &str) -> Write {
    Write::DeleteRange {
        start: start.into(),
        end: end.into(),
    }
}

fn records(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
        .collect()
}

async fn writes_apply_in_order(fixture: &Fixture) {
    let store = fixture.open().await;
    store
        .commit(vec![
            put("a", "1"),
            put("b/1", "x"),
            put("b/2", "y"),
            put("b/3", "z"),
            put("c", "3"),
            delete("a"),
            put("a", "2"),
            delete_range("b/1", "b/3"),
            delete("missing"),
            put("c", "4"),
            put("b/2", "again"),
        ])
        .await
        .unwrap();
    let expected = records(&[("a", "2"), ("b/2", "again"), ("b/3", "z"), ("c", "4")]);
    assert_eq!(store.load("").await.unwrap(), expected);
}

async fn loads_by_prefix_in_key_order(fixture: &Fixture) {
    let store = fixture.open().await;
    let keys = ["x/b", "y", "x/a", "x", "x/\u{e9}", "x0", "w", "x/a/1"];
    store
        .commit(keys.iter().map(|k| put(k, k)).collect())
        .await
        .unwrap();
    let keys_of = |records: Vec<(String, Vec<u8>)>| -> Vec<String> {
        records.into_iter().map(|(k, _)| k).collect()
    };
    // Byte order: '/' < '0' < 'a' < 0xc3 (the first byte of 'é').
    assert_eq!(
        keys_of(store.load("x/").await.unwrap()),
        ["x/a", "x/a/1", "x/b", "x/\u{e9}"]
    );
    assert_eq!(
        keys_of(store.load("x").await.unwrap()),
        ["x", "x/a", "x/a/1", "x/b", "x/\u{e9}", "x0"]
    );
    assert_eq!(store.load("").await.unwrap().len(), keys.len());
    assert!(store.load("z").await.unwrap().is_empty());
    assert_eq!(store.load("y").await.unwrap(), records(&[("y", "y")]));
}

async fn an_empty_range_deletes_nothing(fixture: &Fixture) {
    let store = fixture.open().await;
    store
        .commit(vec![put("a", "1"), put("b", "2")])
        .await
        .unwrap();
    store
        .commit(vec![
            delete_range("b", "a"),
            delete_range("a", "a"),
            // etcd reads an empty range end as "this key only".
            delete_range("a", ""),
        ])
        .await
        .unwrap();
    assert_eq!(store.load("").await.unwrap().len(), 2);
}

async fn a_reopened_store_keeps_its_records(fixture: &Fixture) {
    {
        let store = fixture.open().await;
        store
            .commit(vec![put("kept", "1"), put("gone", "2")])
            .await
            .unwrap();
        store.commit(vec![delete("gone")]).await.unwrap();
    }
    let store = fixture.open().await;
    assert_eq!(store.load("").await.unwrap(), records(&[("kept", "1")]));
}

async fn many_writes_in_one_commit_are_all_applied(fixture: &Fixture) {
    let store = fixture.open().await;
    let key = |i: usize| format!("task/{i:04}");
    let puts = (0..1000).map(|i| put(&key(i), &i.to_string())).collect();
    store.commit(puts).await.unwrap();
    let deletes = (0..1000).step_by(2).map(|i| delete(&key(i))).collect();
    store.commit(deletes).await.unwrap();
    let loaded = store.load("task/").await.unwrap();
    let expected: Vec<_> = (1..1000)
        .step_by(2)
        .map(|i| (key(i), i.to_string().into_bytes()))
        .collect();
    assert_eq!(loaded, expected);
}

async fn big_values_in_one_commit_are_all_applied(fixture: &Fixture) {
    let store = fixture.open().await;
    let value = |i: usize| vec![u8::try_from(i % 251).unwrap(); 100_000];
    let puts = (0..1000)
        .map(|i| Write::Put {
            key: format!("event/{i:04}"),
            value: value(i),
        })
        .collect();
    let started = Instant::now();
    store.commit(puts).await.unwrap();
    let committed = started.elapsed();
    let loaded = store.load("event/").await.unwrap();
    eprintln!(
        "{}: 1,000 values of 100 KB committed in {committed:?}, loaded in {:?}",
        fixture.name(),
        started.elapsed() - committed
    );
    assert_eq!(loaded.len(), 1000);
    for (i, (key, stored)) in loaded.iter().enumerate() {
        assert_eq!(key, &format!("event/{i:04}"));
        assert!(*stored == value(i), "{key} holds another value");
    }
}

async fn a_record_over_the_limit_fails_the_whole_commit(fixture: &Fixture) {
    let store = fixture.open().await;
    let huge = Write::Put {
        key: "huge".into(),
        value: vec![0; MAX_RECORD_BYTES],
    };
    let error = store
        .commit(vec![put("small", "1"), huge])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::TooLarge { key, .. } if key == "huge"),
        "{error}"
    );
    assert!(error.to_string().contains("\"huge\""), "{error}");
    assert!(store.load("").await.unwrap().is_empty());
}

fn namespace(name: &str, weight: f64) -> api::Namespace {
    api::Namespace {
        name: name.into(),
        role: format!("agora-{name}"),
        weight,
        ..Default::default()
    }
}

async fn namespaces_survive_a_reopen(fixture: &Fixture) {
    {
        let store = fixture.open().await;
        store.put_namespace(&namespace("a", 1.0)).await.unwrap();
        store.put_namespace(&namespace("b", 2.0)).await.unwrap();
        store.delete_namespace("b").await.unwrap();
        store.delete_namespace("from-config").await.unwrap();
        store.put_namespace(&namespace("a", 3.0)).await.unwrap();
    }
    let store = fixture.open().await;
    assert_eq!(
        store.namespaces().await.unwrap(),
        StoredNamespaces {
            put: vec![namespace("a", 3.0)],
            deleted: vec!["b".into(), "from-config".into()],
        }
    );
}

async fn a_namespace_put_undoes_its_delete(fixture: &Fixture) {
    let store = fixture.open().await;
    store.delete_namespace("a").await.unwrap();
    store.put_namespace(&namespace("a", 1.0)).await.unwrap();
    let stored = store.namespaces().await.unwrap();
    assert_eq!(stored.put, vec![namespace("a", 1.0)]);
    assert!(stored.deleted.is_empty());
}

/// Prints how long a commit of 1 and of 64 small writes takes (run with
/// `--nocapture` to see it); measures, asserts nothing.
async fn commit_latency(fixture: &Fixture) {
    const ROUNDS: usize = 50;
    let store = fixture.open().await;
    for writes in [1, 64] {
        let mut times = Vec::with_capacity(ROUNDS);
        for round in 0..ROUNDS {
            let commit = (0..writes)
                .map(|i| Write::Put {
                    key: format!("latency/{i:02}"),
                    value: vec![u8::try_from(round % 256).unwrap(); 256],
                })
                .collect();
            let started = Instant::now();
            store.commit(commit).await.unwrap();
            times.push(started.elapsed());
        }
        times.sort_unstable();
        eprintln!(
            "{}: commit of {writes} writes of 256 B: median {:?}, p90 {:?}, max {:?} ({ROUNDS} rounds)",
            fixture.name(),
            times[ROUNDS / 2],
            times[ROUNDS * 9 / 10],
            times[ROUNDS - 1],
        );
    }
}

#[tokio::test]
async fn without_a_path_the_store_is_in_memory() {
    let store = Store::open(&StoreSettings::default()).await.unwrap();
    store.commit(vec![put("a", "1")]).await.unwrap();
    assert_eq!(store.load("").await.unwrap(), records(&[("a", "1")]));
    assert!(store.election().is_none());
}

#[tokio::test]
async fn a_file_of_the_old_layout_keeps_its_namespaces() {
    use ::redb::{Database, TableDefinition};
    const NAMESPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");
    const DELETED: TableDefinition<&str, ()> = TableDefinition::new("deleted_namespaces");
    let fixture = Fixture::redb();
    let path = fixture.settings().path.unwrap();
    {
        use prost::Message;
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(NAMESPACES)
            .unwrap()
            .insert("a", namespace("a", 2.0).encode_to_vec().as_slice())
            .unwrap();
        txn.open_table(DELETED).unwrap().insert("b", ()).unwrap();
        txn.commit().unwrap();
    }
    let expected = StoredNamespaces {
        put: vec![namespace("a", 2.0)],
        deleted: vec!["b".into()],
    };
    assert_eq!(fixture.open().await.namespaces().await.unwrap(), expected);
    // Moved, not copied: a second open finds them once.
    assert_eq!(fixture.open().await.namespaces().await.unwrap(), expected);
}

#[tokio::test]
async fn prefixes_keep_clusters_apart_in_one_etcd() {
    let etcd = Etcd::start();
    let blue = Store::open(&etcd_settings(&etcd, "/blue/")).await.unwrap();
    let green = Store::open(&etcd_settings(&etcd, "/green/")).await.unwrap();
    blue.commit(vec![put("k", "blue")]).await.unwrap();
    green.commit(vec![put("k", "green")]).await.unwrap();
    green.commit(vec![delete_range("", "z")]).await.unwrap();
    assert_eq!(blue.load("").await.unwrap(), records(&[("k", "blue")]));
    assert!(green.load("").await.unwrap().is_empty());
}
