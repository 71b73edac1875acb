//! Leader election among replicas sharing one etcd, and the fence that
//! keeps a deposed leader from writing.
//!
//! # How
//!
//! A replica campaigns by creating the election key `{prefix}leader`,
//! holding its advertised address and attached to a lease of `lease_ttl`,
//! in a transaction that succeeds only while the key does not exist. The
//! replica that created it leads for as long as the key lives; the others
//! watch the key and try again once it is deleted — by the leader's
//! resignation, which revokes the lease, or by etcd when the lease
//! expires. The leader renews the lease every third of its TTL.
//!
//! The leader's fence is the key's create revision. Every transaction of
//! its store requires the key to still have that revision, so once the key
//! has expired, or been created again by another replica, each write fails
//! with [`StoreError::Fenced`] and none of it is applied.
//!
//! # Why a deposed leader stops before another one starts
//!
//! Let `t` be when the leader *sent* the last keepalive that etcd
//! acknowledged. etcd renewed the lease when it received that keepalive,
//! after `t`, so the lease lives in etcd until `t + TTL` at the earliest.
//! The leader's [`Leadership::lost`] resolves at `t + 0.9 TTL` on its own
//! clock at the latest if no later keepalive is acknowledged — whether
//! etcd says the lease is gone, the stream breaks, or nothing answers at
//! all (etcd cut off or frozen). Another replica can create the key only
//! once etcd has deleted it, after `t + TTL`. So the old leader knows it
//! is deposed a tenth of the TTL before a new one can be elected: a margin
//! for the clocks' rates to differ and for the old leader to stop acting.
//! etcd only ever lengthens leases (across its own leader changes), which
//! widens the gap. What slips through anyway — a write already in flight,
//! a process paused past its deadline — meets the fence.

use std::{collections::VecDeque, convert::Infallible, future::Future, time::Duration};

use etcd_client::{
    Compare, CompareOp, EventType, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp,
    WatchOptions, WatchStream,
};
use tokio::{
    sync::watch,
    task::JoinHandle,
    time::{Instant, sleep, sleep_until, timeout_at},
};
use tracing::{info, warn};

use super::{
    Backend, Store, StoreError,
    etcd::{EtcdStore, bounded, revision_of},
};

/// How long a campaign or a leader watch waits after etcd failed before
/// trying again.
const RETRY: Duration = Duration::from_secs(1);

/// The election of one leader among the replicas sharing an etcd store.
#[derive(Clone)]
pub struct Election {
    store: EtcdStore,
}

/// What a leader's store checks in each transaction: that its election
/// key is still the one it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    key: String,
    revision: i64,
}

impl Fence {
    /// The etcd revision at which this leadership began; a later
    /// leadership has a higher one, so logs can tell terms apart.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// The condition a fenced transaction is applied under.
    pub(super) fn compare(&self) -> Compare {
        Compare::create_revision(self.key.clone(), CompareOp::Equal, self.revision)
    }
}

/// Why a leadership ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    /// No keepalive was acknowledged in time (nine tenths of the lease's
    /// TTL, given here): etcd is unreachable or too slow, and may be about
    /// to let the lease expire.
    #[error("no keepalive of the election lease was acknowledged within {0:?}")]
    Unrenewed(Duration),
    /// etcd answered that the lease no longer exists: it expired or was
    /// revoked.
    #[error("etcd says the election lease is gone (expired or revoked)")]
    Expired,
    /// The keepalive stream failed.
    #[error("the election lease's keepalive failed: {0}")]
    Failed(String),
    /// This replica resigned or dropped its leadership.
    #[error("the leadership was given up")]
    Released,
}

impl Election {
    /// The election over `store`'s etcd and prefix.
    pub(super) fn new(store: EtcdStore) -> Election {
        Election { store }
    }

    /// Waits until this replica leads, then keeps it leading until the
    /// returned [`Leadership`] is lost, resigned or dropped. `address` is
    /// what standbys tell callers to use instead (the replica's advertised
    /// gRPC address). Failures of etcd are logged and retried, so this
    /// returns only as leader; drop the future to stop campaigning.
    pub async fn campaign(&self, address: &str) -> Leadership {
        loop {
            match self.try_to_lead(address).await {
                Ok(Some(leadership)) => return leadership,
                Ok(None) => {}
                Err(error) => {
                    warn!(%error, "campaign for leadership failed; trying again");
                    sleep(RETRY).await;
                }
            }
        }
    }

    /// One round of a campaign: leads if the key is free, else waits
    /// until it is deleted and returns `None`.
    async fn try_to_lead(&self, address: &str) -> Result<Option<Leadership>, StoreError> {
        let key = self.store.election_key();
        let mut leases = self.store.client().lease_client();
        let ttl = i64::try_from(self.store.lease_ttl().as_secs()).unwrap_or(i64::MAX);
        let lease = bounded(leases.grant(ttl, None)).await?.id();
        let txn = Txn::new()
            .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key.clone(),
                address,
                Some(PutOptions::new().with_lease(lease)),
            )]);
        let answer = bounded(self.store.kv().txn(txn)).await;
        let answer = match answer {
            Ok(answer) if answer.succeeded() => answer,
            other => {
                // Not elected: the lease has no use. Should revoking fail
                // too, etcd lets it expire.
                let _ = bounded(leases.revoke(lease)).await;
                let revision = revision_of(other?.header())?;
                self.wait_until_vacant(revision + 1).await?;
                return Ok(None);
            }
        };
        // The transaction's revision is the key's create revision.
        let revision = revision_of(answer.header())?;
        let fence = Fence { key, revision };
        match Leadership::start(&self.store, fence, lease).await {
            Ok(leadership) => {
                info!(revision, "elected leader");
                Ok(Some(leadership))
            }
            Err(error) => {
                let _ = bounded(leases.revoke(lease)).await;
                Err(error)
            }
        }
    }

    /// Returns once the election key is deleted at or after `revision`.
    async fn wait_until_vacant(&self, revision: i64) -> Result<(), StoreError> {
        let mut changes = LeaderChanges::start(&self.store, revision).await?;
        while changes.next().await?.is_some() {}
        Ok(())
    }

    /// The address of the current leader, or `None` while there is none.
    pub async fn leader(&self) -> Result<Option<String>, StoreError> {
        Ok(self.current().await?.0)
    }

    /// The current leader's address, kept up to date in the background
    /// for as long as a receiver is alive, for standbys to name in their
    /// answers. `None` while there is no leader, or before the first read;
    /// failures of etcd are logged and retried.
    pub fn observe(&self) -> watch::Receiver<Option<String>> {
        let (sender, receiver) = watch::channel(None);
        let election = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = sender.closed() => {}
                () = election.follow(&sender) => {}
            }
        });
        receiver
    }

    /// Tells `sender` each leader, for ever.
    async fn follow(&self, sender: &watch::Sender<Option<String>>) {
        loop {
            let Err(error) = self.follow_until_failure(sender).await;
            warn!(%error, "watching the leader failed; trying again");
            sleep(RETRY).await;
        }
    }

    /// Tells `sender` the leader now, then after each change, until etcd
    /// fails.
    async fn follow_until_failure(
        &self,
        sender: &watch::Sender<Option<String>>,
    ) -> Result<Infallible, StoreError> {
        let (leader, revision) = self.current().await?;
        sender.send_replace(leader);
        let mut changes = LeaderChanges::start(&self.store, revision + 1).await?;
        loop {
            sender.send_replace(changes.next().await?);
        }
    }

    /// The leader's address, if any, and the revision it was read at.
    async fn current(&self) -> Result<(Option<String>, i64), StoreError> {
        let answer = bounded(self.store.kv().get(self.store.election_key(), None)).await?;
        let revision = revision_of(answer.header())?;
        let leader = answer.kvs().first().map(|kv| address(kv.value()));
        Ok((leader, revision))
    }
}

/// A leader's address as stored.
fn address(value: &[u8]) -> String {
    String::from_utf8_lossy(value).into_owned()
}

/// The changes of the election key from a revision on.
struct LeaderChanges {
    stream: WatchStream,
    pending: VecDeque<Option<String>>,
}

impl LeaderChanges {
    async fn start(store: &EtcdStore, revision: i64) -> Result<LeaderChanges, StoreError> {
        let options = WatchOptions::new().with_start_revision(revision);
        let mut watches = store.client().watch_client();
        let stream = bounded(watches.watch(store.election_key(), Some(options))).await?;
        Ok(LeaderChanges {
            stream,
            pending: VecDeque::new(),
        })
    }

    /// The leader after the next change: its address, or `None` when the
    /// key was deleted.
    async fn next(&mut self) -> Result<Option<String>, StoreError> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Ok(change);
            }
            let answer = self.stream.message().await?.ok_or_else(|| {
                etcd_client::Error::WatchError("etcd ended the watch of the leader".into())
            })?;
            if answer.canceled() {
                let reason = format!("etcd cancelled the watch: {}", answer.cancel_reason());
                return Err(etcd_client::Error::WatchError(reason).into());
            }
            self.pending.extend(
                answer
                    .events()
                    .iter()
                    .map(|event| match event.event_type() {
                        EventType::Put => event.kv().map(|kv| address(kv.value())),
                        EventType::Delete => None,
                    }),
            );
        }
    }
}

/// This replica's leadership, kept alive in the background until it is
/// lost, resigned or dropped. Dropping it stops renewing the lease, so
/// another replica takes over within the TTL; [`Leadership::resign`] hands
/// over at once.
pub struct Leadership {
    fence: Fence,
    lease: i64,
    store: EtcdStore,
    lost: watch::Receiver<Option<Lost>>,
    keeper: JoinHandle<()>,
}

impl Leadership {
    /// Starts renewing `lease`, which holds the election key `fence`
    /// names.
    async fn start(store: &EtcdStore, fence: Fence, lease: i64) -> Result<Leadership, StoreError> {
        let ttl = store.lease_ttl();
        let sent = Instant::now();
        // Returns once etcd acknowledged a first keepalive, sent at `sent`.
        let (keeper, answers) = bounded(store.client().lease_client().keep_alive(lease)).await?;
        let (lost_sender, lost) = watch::channel(None);
        let keeper = tokio::spawn(async move {
            let reason = renew(keeper, answers, ttl, sent).await;
            warn!(%reason, "leadership lost");
            lost_sender.send_replace(Some(reason));
        });
        Ok(Leadership {
            store: store.fenced(fence.clone()),
            fence,
            lease,
            lost,
            keeper,
        })
    }

    /// What this leader's store checks before each write.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// The store as this leader writes it: each commit fails with
    /// [`StoreError::Fenced`], writing nothing, once the leadership is
    /// gone.
    pub fn store(&self) -> Store {
        Store {
            backend: Backend::Etcd(self.store.clone()),
        }
    }

    /// Resolves, with why, as soon as this replica may no longer be the
    /// leader: at the latest nine tenths of a TTL after the last keepalive
    /// etcd acknowledged was sent, before another replica can be elected. The leader
    /// must then stop acting as one (close its Mesos subscription, refuse
    /// requests) and campaign again if it wants to lead.
    pub fn lost(&self) -> impl Future<Output = Lost> + Send + 'static {
        let mut lost = self.lost.clone();
        async move {
            match lost.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or(Lost::Released),
                // The keeper was stopped: resigned or dropped.
                Err(_) => Lost::Released,
            }
        }
    }

    /// Gives the leadership up at once: stops renewing and revokes the
    /// lease, which deletes the election key, so a standby is elected
    /// without waiting for the TTL.
    pub async fn resign(self) -> Result<(), StoreError> {
        self.keeper.abort();
        let mut leases = self.store.client().lease_client();
        bounded(leases.revoke(self.lease)).await?;
        info!(revision = self.fence.revision, "resigned the leadership");
        Ok(())
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Renews the lease every third of `ttl` until it cannot be, and says why.
/// `acknowledged` is when the last keepalive etcd acknowledged was sent;
/// the leadership counts as lost nine tenths of `ttl` after it, by this
/// clock, whatever etcd answers or fails to.
async fn renew(
    mut keeper: LeaseKeeper,
    mut answers: LeaseKeepAliveStream,
    ttl: Duration,
    mut acknowledged: Instant,
) -> Lost {
    let interval = ttl / 3;
    let lifetime = ttl - ttl / 10;
    // When each keepalive not answered yet was sent; etcd answers in order.
    let mut sent = VecDeque::new();
    let mut next = acknowledged + interval;
    loop {
        let deadline = acknowledged + lifetime;
        tokio::select! {
            () = sleep_until(deadline) => return Lost::Unrenewed(lifetime),
            () = sleep_until(next) => {
                let now = Instant::now();
                match timeout_at(deadline, keeper.keep_alive()).await {
                    Ok(Ok(())) => sent.push_back(now),
                    Ok(Err(error)) => return Lost::Failed(error.to_string()),
                    Err(_) => return Lost::Unrenewed(lifetime),
                }
                next = now + interval;
            }
            answer = answers.message() => match answer {
                Ok(Some(answer)) if answer.ttl() > 0 => {
                    if let Some(at) = sent.pop_front() {
                        acknowledged = at;
                    }
                }
                Ok(Some(_)) => return Lost::Expired,
                Ok(None) => return Lost::Failed("etcd closed the keepalive stream".into()),
                Err(error) => return Lost::Failed(error.to_string()),
            },
        }
    }
}

#[cfg(test)]
mod tests;
