//! What must survive a restart, in an embedded redb database: namespaces
//! put or deleted at run time through Admin. A namespace is kept as its
//! `agora.v1.Namespace` protobuf encoding, so the record is the API's own
//! contract and needs no second schema. Deletions are kept too, so that a
//! namespace of the configuration file deleted at run time stays deleted.

use std::path::Path;

use agora_proto::agora::v1 as api;
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, backends::InMemoryBackend};

/// Namespaces put at run time, by name.
const NAMESPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");
/// Namespaces deleted at run time, by name.
const DELETED: TableDefinition<&str, ()> = TableDefinition::new("deleted_namespaces");

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file cannot be created or opened (a bad `store.path`,
    /// another broker holding it, a corrupt file), or a read or write
    /// failed (a full disk).
    #[error("the store failed: {0}")]
    Database(#[from] redb::Error),
    /// A stored namespace is not a valid `agora.v1.Namespace`: the file is
    /// damaged or not an Agora store.
    #[error("a stored namespace does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// Converts each of redb's error types into [`StoreError`].
macro_rules! from_redb {
    ($($kind:ty),*) => {$(
        impl From<$kind> for StoreError {
            fn from(error: $kind) -> Self {
                StoreError::Database(error.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Namespaces changed at run time, as last stored.
#[derive(Debug, Default, PartialEq)]
pub struct StoredNamespaces {
    /// Namespaces put through Admin, in name order; each overrides a
    /// configured one of the same name.
    pub put: Vec<api::Namespace>,
    /// Names deleted through Admin and not put since, in name order; they
    /// stay deleted even when the configuration declares them.
    pub deleted: Vec<String>,
}

/// The embedded store.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database at `path`, or one in memory that a
    /// restart loses when `path` is `None`.
    pub fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let db = match path {
            Some(path) => Database::create(path)?,
            None => Database::builder().create_with_backend(InMemoryBackend::new())?,
        };
        let txn = db.begin_write()?;
        txn.open_table(NAMESPACES)?;
        txn.open_table(DELETED)?;
        txn.commit()?;
        Ok(Store { db })
    }

    /// Every namespace put and deleted at run time.
    pub fn namespaces(&self) -> Result<StoredNamespaces, StoreError> {
        let txn = self.db.begin_read()?;
        let mut stored = StoredNamespaces::default();
        for entry in txn.open_table(NAMESPACES)?.iter()? {
            let (_, value) = entry?;
            stored.put.push(api::Namespace::decode(value.value())?);
        }
        for entry in txn.open_table(DELETED)?.iter()? {
            let (name, ()) = entry.map(|(k, v)| (k, v.value()))?;
            stored.deleted.push(name.value().to_owned());
        }
        Ok(stored)
    }

    /// Records a namespace put at run time, durably, before it takes effect.
    pub fn put_namespace(&self, namespace: &api::Namespace) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let name = namespace.name.as_str();
            txn.open_table(NAMESPACES)?
                .insert(name, namespace.encode_to_vec().as_slice())?;
            txn.open_table(DELETED)?.remove(name)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Records a namespace deleted at run time, durably.
    pub fn delete_namespace(&self, name: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(NAMESPACES)?.remove(name)?;
            txn.open_table(DELETED)?.insert(name, ())?;
        }
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(name: &str, weight: f64) -> api::Namespace {
        api::Namespace {
            name: name.into(),
            role: format!("agora-{name}"),
            weight,
            ..Default::default()
        }
    }

    #[test]
    fn namespaces_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agora.redb");
        {
            let store = Store::open(Some(&path)).unwrap();
            store.put_namespace(&namespace("a", 1.0)).unwrap();
            store.put_namespace(&namespace("b", 2.0)).unwrap();
            store.delete_namespace("b").unwrap();
            store.delete_namespace("from-config").unwrap();
            store.put_namespace(&namespace("a", 3.0)).unwrap();
        }
        let store = Store::open(Some(&path)).unwrap();
        assert_eq!(
            store.namespaces().unwrap(),
            StoredNamespaces {
                put: vec![namespace("a", 3.0)],
                deleted: vec!["b".into(), "from-config".into()],
            }
        );
    }

    #[test]
    fn a_put_undoes_a_delete() {
        let store = Store::open(None).unwrap();
        store.delete_namespace("a").unwrap();
        store.put_namespace(&namespace("a", 1.0)).unwrap();
        let stored = store.namespaces().unwrap();
        assert_eq!(stored.put.len(), 1);
        assert!(stored.deleted.is_empty());
    }
}
