//! The embedded backend: one redb table of records. redb blocks on disk,
//! so every call runs on tokio's blocking pool, never on the runtime's
//! threads.

use std::{path::PathBuf, sync::Arc};

use ::redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    WriteTransaction, backends::InMemoryBackend,
};

use super::{StoreError, Write, namespaces};

/// Every record, by key; `&str` keys order as their UTF-8 bytes.
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");

/// A redb database, shared by the clones of a [`super::Store`].
#[derive(Clone)]
pub(super) struct RedbStore {
    db: Arc<Database>,
}

impl RedbStore {
    /// Opens (or creates) the database at `path`, or one in memory when
    /// `path` is `None`, and brings a file of an earlier layout up to date.
    pub(super) async fn open(path: Option<PathBuf>) -> Result<RedbStore, StoreError> {
        let db = tokio::task::spawn_blocking(move || -> Result<Database, ::redb::Error> {
            let db = match path {
                Some(path) => Database::create(path)?,
                None => Database::builder().create_with_backend(InMemoryBackend::new())?,
            };
            let txn = begin(&db)?;
            txn.open_table(RECORDS)?;
            migrate_namespace_tables(&txn)?;
            txn.commit()?;
            Ok(db)
        })
        .await??;
        Ok(RedbStore { db: Arc::new(db) })
    }

    /// Every record whose key starts with `prefix`, in key order: a range
    /// scan from `prefix` that stops at the first key without it.
    pub(super) async fn load(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let (db, prefix) = (self.db.clone(), prefix.to_owned());
        let records = tokio::task::spawn_blocking(move || -> Result<_, ::redb::Error> {
            let txn = db.begin_read()?;
            let table = txn.open_table(RECORDS)?;
            let mut records = Vec::new();
            for entry in table.range(prefix.as_str()..)? {
                let (key, value) = entry?;
                if !key.value().starts_with(prefix.as_str()) {
                    break;
                }
                records.push((key.value().to_owned(), value.value().to_vec()));
            }
            Ok(records)
        })
        .await??;
        Ok(records)
    }

    /// Applies `writes` in one write transaction, synced to disk before it
    /// returns.
    pub(super) async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || -> Result<(), ::redb::Error> {
            let txn = begin(&db)?;
            {
                let mut table = txn.open_table(RECORDS)?;
                for write in &writes {
                    match write {
                        Write::Put { key, value } => {
                            table.insert(key.as_str(), value.as_slice())?;
                        }
                        Write::Delete { key } => {
                            table.remove(key.as_str())?;
                        }
                        Write::DeleteRange { start, end } if start < end => {
                            table.retain_in(start.as_str()..end.as_str(), |_, _| false)?;
                        }
                        Write::DeleteRange { .. } => {}
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })
        .await??;
        Ok(())
    }
}

/// A write transaction that is on disk once committed.
fn begin(db: &Database) -> Result<WriteTransaction, ::redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    Ok(txn)
}

/// Namespaces put at run time, by name, in files written before records.
const OLD_NAMESPACES: TableDefinition<&str, &[u8]> = TableDefinition::new("namespaces");
/// Namespaces deleted at run time, by name, in files written before records.
const OLD_DELETED: TableDefinition<&str, ()> = TableDefinition::new("deleted_namespaces");

/// Moves the namespaces of a file written before the store kept records
/// (one table for namespaces put, one for those deleted) into records, so
/// that an upgrade keeps what operators changed at run time.
fn migrate_namespace_tables(txn: &WriteTransaction) -> Result<(), ::redb::Error> {
    let tables: Vec<String> = txn
        .list_tables()?
        .map(|table| table.name().to_owned())
        .collect();
    let mut records = txn.open_table(RECORDS)?;
    if tables.iter().any(|name| name == OLD_NAMESPACES.name()) {
        for entry in txn.open_table(OLD_NAMESPACES)?.iter()? {
            let (name, value) = entry?;
            records.insert(namespaces::put_key(name.value()).as_str(), value.value())?;
        }
        txn.delete_table(OLD_NAMESPACES)?;
    }
    if tables.iter().any(|name| name == OLD_DELETED.name()) {
        for entry in txn.open_table(OLD_DELETED)?.iter()? {
            let (name, ()) = entry.map(|(k, v)| (k, v.value()))?;
            records.insert(
                namespaces::deleted_key(name.value()).as_str(),
                [].as_slice(),
            )?;
        }
        txn.delete_table(OLD_DELETED)?;
    }
    Ok(())
}
