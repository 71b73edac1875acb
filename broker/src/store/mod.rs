//! What must survive a restart or a failover, as key/value records: the
//! broker loads them by key prefix at start and commits a batch of writes
//! after each turn of its loop.
//!
//! Two backends keep them, chosen by `[store]`:
//!
//! - **redb** ([`redb`]), a file for a single replica (`store.path`), or in
//!   memory and lost on restart when no path is set. A commit is one write
//!   transaction, synced to disk before it returns: all or nothing.
//! - **etcd** ([`etcd`]), shared by several replicas (`[store.etcd]`), of
//!   which one, elected through the same etcd ([`election`]), writes. A
//!   commit is one etcd transaction when it fits etcd's limits (128
//!   operations, about 1.5 MB), otherwise several, one after the other,
//!   each all or nothing: a crash between them leaves part of the commit
//!   written, and the records it wrote whole. A leader's store is
//!   *fenced*: each of its transactions holds only while its election key
//!   is the one it created, so a deposed leader writes nothing.
//!
//! Keys are strings compared as bytes; values are opaque. Both backends
//! refuse a record over [`MAX_RECORD_BYTES`], so that what works on one
//! works on the other.

mod election;
mod etcd;
mod namespaces;
mod redb;
#[cfg(test)]
mod tests;

pub use election::{Election, Fence, Leadership, Lost};
pub use namespaces::StoredNamespaces;

use crate::config::StoreSettings;

/// The largest record, key and value together: etcd refuses a request
/// over about 1.5 MB by default, and one record must fit in one.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// One write in a commit; a commit applies its writes in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Sets `key` to `value`, replacing what it held.
    Put {
        /// The record's key.
        key: String,
        /// The record's value.
        value: Vec<u8>,
    },
    /// Removes `key`, if it is there.
    Delete {
        /// The record's key.
        key: String,
    },
    /// Removes every key in `[start, end)` in byte order; nothing when
    /// `end` is not after `start`. For dropping a whole prefix of records
    /// (a frontend's events) in one write.
    DeleteRange {
        /// The first key removed.
        start: String,
        /// The first key after the range, which stays.
        end: String,
    },
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file cannot be created or opened (a bad `store.path`,
    /// another broker holding it, a corrupt file), or a read or write
    /// failed (a full disk).
    #[error("the embedded store failed: {0}")]
    Database(#[from] ::redb::Error),
    /// etcd could not be reached or refused a request.
    #[error("etcd failed: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// etcd did not answer within the time a request is given.
    #[error("etcd did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// This replica is no longer the leader: its election key expired or
    /// was replaced. The transaction that found out wrote nothing, and no
    /// later one will.
    #[error("this replica is no longer the leader, so the store refused the write")]
    Fenced,
    /// A record is over [`MAX_RECORD_BYTES`]; nothing of the commit was
    /// written.
    #[error("record {key:?} is {size} bytes, over the store's limit of {limit}")]
    TooLarge {
        /// The record's key.
        key: String,
        /// Its key and value, in bytes.
        size: usize,
        /// The most allowed.
        limit: usize,
    },
    /// A stored key is not UTF-8: something other than Agora wrote under
    /// its prefix.
    #[error("stored key {0:?} is not UTF-8; is something else writing under the store's prefix?")]
    Key(String),
    /// A stored namespace is not a valid `agora.v1.Namespace`: the store is
    /// damaged or not an Agora store.
    #[error("a stored namespace does not decode: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The thread doing the embedded store's blocking work panicked.
    #[error("the embedded store's worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

/// The store, on whichever backend the configuration chose. Cloning it is
/// cheap and shares the database or the etcd connection.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

/// The backends; an enum rather than a trait object, as there are two and
/// their futures then need no boxing.
#[derive(Clone)]
enum Backend {
    Redb(redb::RedbStore),
    Etcd(etcd::EtcdStore),
}

impl Store {
    /// Opens the store `settings` name: etcd when `[store.etcd]` is set,
    /// else the redb file at `store.path` (created if missing), else redb
    /// in memory, which a restart loses.
    pub async fn open(settings: &StoreSettings) -> Result<Store, StoreError> {
        let backend = match &settings.etcd {
            Some(etcd) => Backend::Etcd(etcd::EtcdStore::connect(etcd).await?),
            None => Backend::Redb(redb::RedbStore::open(settings.path.clone()).await?),
        };
        Ok(Store { backend })
    }

    /// Every record whose key starts with `prefix`, in key (byte) order.
    pub async fn load(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        match &self.backend {
            Backend::Redb(redb) => redb.load(prefix).await,
            Backend::Etcd(etcd) => etcd.load(prefix).await,
        }
    }

    /// Applies `writes` in order and durably (on disk, or agreed by a
    /// majority of etcd) before returning. A record over
    /// [`MAX_RECORD_BYTES`] fails the commit before anything is written.
    pub async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        if let Some((key, size)) = writes.iter().find_map(oversized) {
            return Err(StoreError::TooLarge {
                key: key.to_owned(),
                size,
                limit: MAX_RECORD_BYTES,
            });
        }
        match &self.backend {
            Backend::Redb(redb) => redb.commit(writes).await,
            Backend::Etcd(etcd) => etcd.commit(writes).await,
        }
    }

    /// The leader election among the replicas sharing this store's etcd;
    /// `None` for the embedded store, whose single replica always leads.
    pub fn election(&self) -> Option<Election> {
        match &self.backend {
            Backend::Redb(_) => None,
            Backend::Etcd(etcd) => Some(Election::new(etcd.clone())),
        }
    }
}

/// The key and size of a put over [`MAX_RECORD_BYTES`].
fn oversized(write: &Write) -> Option<(&str, usize)> {
    match write {
        Write::Put { key, value } => {
            let size = key.len() + value.len();
            (size > MAX_RECORD_BYTES).then_some((key.as_str(), size))
        }
        Write::Delete { .. } | Write::DeleteRange { .. } => None,
    }
}
