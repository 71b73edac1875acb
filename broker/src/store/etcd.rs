//! The etcd backend: records under `{prefix}data/`, next to the election
//! key `{prefix}leader`, so that several Agora clusters can share one etcd
//! and a load of every record never returns the election's key.
//!
//! etcd bounds a transaction to 128 operations and a request to about
//! 1.5 MB, and the client an answer to what it is willing to decode: a
//! commit is split into transactions within both bounds ([`txn`]), and a
//! load is read in pages, all at the revision of the first, so that it is
//! one consistent snapshot however many pages it takes.

use std::{future::Future, sync::Arc, time::Duration};

use etcd_client::{Client, ConnectOptions, GetOptions, KvClient, ResponseHeader, Txn};

use super::{StoreError, Write, election::Fence};
use crate::config::EtcdSettings;

mod txn;

/// The longest one request to etcd may take. The client waits forever for
/// an endpoint that does not answer; a store that hangs would hang the
/// broker's loop.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys asked for in one page of a load; halved while a page is too big
/// for the client to decode.
const PAGE_KEYS: i64 = 1024;

/// The largest answer the client decodes (tonic's default is 4 MiB), well
/// over one record of the largest size.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A connection to etcd and where this cluster's keys are; fenced when it
/// belongs to a leader.
#[derive(Clone)]
pub(super) struct EtcdStore {
    connection: Arc<Connection>,
    prefix: String,
    lease_ttl: Duration,
    fence: Option<Fence>,
}

/// The client, shared: it is large (kilobytes), and one connection serves
/// the store, its fenced copies and the election.
struct Connection {
    client: Client,
    kv: KvClient,
}

impl EtcdStore {
    /// Connects to the endpoints of `settings`. Its writes are
    /// unconditional; a leader writes through an [`EtcdStore::fenced`]
    /// copy.
    pub(super) async fn connect(settings: &EtcdSettings) -> Result<EtcdStore, StoreError> {
        let options = ConnectOptions::new()
            .with_connect_timeout(REQUEST_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT);
        let client = bounded(Client::connect(&settings.endpoints, Some(options))).await?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        Ok(EtcdStore {
            connection: Arc::new(Connection { client, kv }),
            prefix: settings.prefix.clone(),
            lease_ttl: settings.lease_ttl,
            fence: None,
        })
    }

    /// The same store, each of whose transactions holds only while
    /// `fence` does.
    pub(super) fn fenced(&self, fence: Fence) -> EtcdStore {
        EtcdStore {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// The connection, for the election's leases and watches.
    pub(super) fn client(&self) -> &Client {
        &self.connection.client
    }

    /// The key-value API, bounded in what it decodes.
    pub(super) fn kv(&self) -> KvClient {
        self.connection.kv.clone()
    }

    /// The key whose holder is the leader.
    pub(super) fn election_key(&self) -> String {
        format!("{}leader", self.prefix)
    }

    /// The TTL of the leader's lease.
    pub(super) fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// Where the records are.
    fn data_root(&self) -> String {
        format!("{}data/", self.prefix)
    }

    /// Every record whose key starts with `prefix`, in key order, as of
    /// one revision.
    pub(super) async fn load(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let root = self.data_root();
        let start = format!("{root}{prefix}").into_bytes();
        let end = range_end(&start);
        let mut records = Vec::new();
        let (mut from, mut revision, mut limit) = (start, 0, PAGE_KEYS);
        loop {
            let options = GetOptions::new()
                .with_range(end.clone())
                .with_limit(limit)
                .with_revision(revision);
            let page = match bounded(self.kv().get(from.clone(), Some(options))).await {
                Err(error) if too_big(&error) && limit > 1 => {
                    limit /= 2;
                    continue;
                }
                page => page?,
            };
            if revision == 0 {
                revision = revision_of(page.header())?;
            }
            for kv in page.kvs() {
                let key = String::from_utf8(kv.key()[root.len()..].to_vec())
                    .map_err(|e| StoreError::Key(String::from_utf8_lossy(e.as_bytes()).into()))?;
                records.push((key, kv.value().to_vec()));
            }
            match page.kvs().last() {
                Some(last) if page.more() => {
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => return Ok(records),
            }
        }
    }

    /// Applies `writes` in order, in as few transactions as etcd's bounds
    /// allow, each conditional on the fence when there is one.
    pub(super) async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        for operations in txn::transactions(&self.data_root(), writes) {
            let txn = match &self.fence {
                Some(fence) => Txn::new().when([fence.compare()]),
                None => Txn::new(),
            };
            let answer = bounded(self.kv().txn(txn.and_then(operations))).await?;
            if !answer.succeeded() {
                return Err(StoreError::Fenced);
            }
        }
        Ok(())
    }
}

/// `request`, failed with [`StoreError::Timeout`] after
/// [`REQUEST_TIMEOUT`].
pub(super) async fn bounded<T>(
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(REQUEST_TIMEOUT, request)
        .await
        .map_err(|_| StoreError::Timeout(REQUEST_TIMEOUT))?
        .map_err(StoreError::from)
}

/// The revision an answer was made at, which etcd always sends.
pub(super) fn revision_of(header: Option<&ResponseHeader>) -> Result<i64, StoreError> {
    header
        .map(ResponseHeader::revision)
        .ok_or_else(|| etcd_client::Error::Internal("etcd answered without a header".into()).into())
}

/// Whether a load's page was too big for the client to decode.
fn too_big(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Etcd(etcd_client::Error::GRpcStatus(status))
            if status.code() == tonic::Code::OutOfRange
                && status.message().contains("message length too large")
    )
}

/// The first key after every key that starts with `prefix`, as etcd
/// spells a prefix range: the prefix with its last byte below 0xff
/// incremented and the rest cut off, or `\0` (no end) when there is none.
fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_after_its_last_key() {
        assert_eq!(range_end(b"a/"), b"a0");
        assert_eq!(range_end(b"a\xff"), b"b");
        assert_eq!(range_end(b"\xff\xff"), b"\0");
    }
}
