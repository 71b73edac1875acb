//! [`Events`]: a frontend's event stream, which also carries it across a
//! failover.
//!
//! Why here and not in a background task: the event stream is what notices
//! first that a session broke (the connection dies under it, or the broker
//! closes a session that fell behind), and the application reads it all the
//! time anyway, or the broker closes the session. Resubscribing inside
//! [`Events::next`] means no hidden task, no lock around the stream, and
//! the resume point is exactly the last event the application was given:
//! nothing it has not seen is skipped, nothing it has seen comes twice.

use std::time::Duration;

use tokio::{sync::watch, time::timeout};
use tonic::Streaming;

use crate::{
    Error,
    api::{self, event::Kind},
    connect::ConnectOptions,
    frontend::{Session, open},
    leader::{Endpoints, on_leader},
};

/// How many heartbeat intervals of silence mean the broker is gone (frozen
/// or cut off, with its connection still open).
const SILENT_HEARTBEATS: u32 = 3;

/// The event stream of one frontend.
///
/// Events with a sequence number come at least once from the broker; the
/// SDK hands each to the application once, in order, dropping any at or
/// below the last it handed out. Acknowledge them
/// ([`crate::Frontend::acknowledge`]) once they are processed, so that the
/// broker can forget them.
///
/// Made by [`crate::Frontend::subscribe_to`], it follows the leader: when
/// the stream fails, ends, or stays silent for three heartbeat intervals,
/// [`Events::next`] finds the leader of the moment, subscribes again under
/// the same name with `resume_after` set to [`Events::last_sequence`], and
/// goes on with a `Subscribed` event (the new session; leases the frontend
/// held before are reported lost next, as `LeaseLost` events) and then the
/// events the old session did not deliver. If no leader answers within the
/// [`crate::Failover`] deadline it returns [`Error::NoLeader`], and the
/// next call searches again.
#[derive(Debug)]
pub struct Events {
    stream: Streaming<api::Event>,
    /// The highest sequence handed to the application.
    last: u64,
    /// How to find the leader again; `None` for a single connection.
    follow: Option<Follow>,
}

/// What [`Events`] needs to open the session again on the leader.
#[derive(Debug)]
pub(crate) struct Follow {
    endpoints: Endpoints,
    options: ConnectOptions,
    request: api::SubscribeRequest,
    /// The address of the replica that serves the session.
    leader: String,
    /// Where the frontend's calls learn of each new session.
    sessions: watch::Sender<Session>,
    /// Silence after which the session is taken for gone.
    silence: Duration,
    /// Whether `stream` is the current session's, as far as is known.
    live: bool,
}

impl Follow {
    pub(crate) fn new(
        endpoints: Endpoints,
        options: ConnectOptions,
        request: api::SubscribeRequest,
        leader: String,
        sessions: watch::Sender<Session>,
    ) -> Follow {
        Follow {
            endpoints,
            options,
            request,
            leader,
            sessions,
            silence: Duration::MAX,
            live: true,
        }
    }

    /// Takes `heartbeat` as the broker's promise to speak that often.
    fn expect_heartbeat(&mut self, heartbeat: Option<Duration>) {
        self.silence = heartbeat.map_or(Duration::MAX, |every| every * SILENT_HEARTBEATS);
    }

    /// Opens a session on the leader, resuming after `last`, and points
    /// the frontend's calls at it.
    async fn resubscribe(
        &mut self,
        last: u64,
    ) -> Result<(Streaming<api::Event>, api::Event), Error> {
        self.request.resume_after = last;
        let request = &self.request;
        let lost = Some(self.leader.as_str());
        let (leader, opened) = on_leader(&self.endpoints, &self.options, lost, |client| {
            open(client, request.clone())
        })
        .await?;
        self.leader = leader;
        self.expect_heartbeat(opened.heartbeat);
        self.sessions.send_replace(opened.session);
        self.live = true;
        Ok((opened.stream, opened.subscribed))
    }
}

impl Events {
    /// The stream of one connection, which ends with it.
    pub(crate) fn single(stream: Streaming<api::Event>, resume_after: u64) -> Events {
        Events {
            stream,
            last: resume_after,
            follow: None,
        }
    }

    /// A stream that follows the leader with `follow`.
    pub(crate) fn following(
        stream: Streaming<api::Event>,
        heartbeat: Option<Duration>,
        mut follow: Follow,
    ) -> Events {
        follow.expect_heartbeat(heartbeat);
        Events {
            stream,
            last: follow.request.resume_after,
            follow: Some(follow),
        }
    }

    /// The highest sequence number handed out so far: where a new session
    /// resumes, and what to acknowledge once everything up to it is
    /// processed.
    pub fn last_sequence(&self) -> u64 {
        self.last
    }

    /// The next event; `None` when the broker ended the stream (never when
    /// following the leader: a new session is opened instead).
    pub async fn next(&mut self) -> Result<Option<api::Event>, Error> {
        loop {
            let Some(event) = self.receive().await? else {
                return Ok(None);
            };
            if is_new(&mut self.last, event.sequence) {
                return Ok(Some(event));
            }
        }
    }

    /// The next event off the wire, duplicates included; when following,
    /// the Subscribed event of a new session if the current one is gone.
    async fn receive(&mut self) -> Result<Option<api::Event>, Error> {
        let Some(follow) = &mut self.follow else {
            return Ok(self.stream.message().await?);
        };
        if follow.live {
            if let Ok(Ok(Some(event))) = timeout(follow.silence, self.stream.message()).await {
                return Ok(Some(event));
            }
            follow.live = false;
        }
        let (stream, subscribed) = follow.resubscribe(self.last).await?;
        self.stream = stream;
        Ok(Some(subscribed))
    }

    /// The next task status, skipping other events; with its sequence.
    pub async fn next_task_status(&mut self) -> Result<Option<(u64, api::TaskStatus)>, Error> {
        self.next_of(|kind| match kind {
            Kind::TaskStatus(status) => Some(status),
            _ => None,
        })
        .await
    }

    /// The next lost lease, skipping other events; with its sequence.
    pub async fn next_lease_lost(&mut self) -> Result<Option<(u64, api::LeaseLost)>, Error> {
        self.next_of(|kind| match kind {
            Kind::LeaseLost(lost) => Some(lost),
            _ => None,
        })
        .await
    }

    /// The next event that `pick` takes, skipping the others.
    async fn next_of<T>(
        &mut self,
        pick: impl Fn(Kind) -> Option<T>,
    ) -> Result<Option<(u64, T)>, Error> {
        while let Some(event) = self.next().await? {
            if let Some(found) = event.kind.and_then(&pick) {
                return Ok(Some((event.sequence, found)));
            }
        }
        Ok(None)
    }
}

/// Whether an event numbered `sequence` has not been handed out, given the
/// `last` that was; moves `last` on. Events numbered 0 (Subscribed,
/// heartbeats, the Mesos connection) are never replayed and always pass.
fn is_new(last: &mut u64, sequence: u64) -> bool {
    if sequence == 0 {
        return true;
    }
    if sequence <= *last {
        return false;
    }
    *last = sequence;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_events_are_dropped_and_unnumbered_ones_pass() {
        let mut last = 0;
        let seen: Vec<u64> = [1, 2, 0, 2, 1, 3, 0, 3, 5]
            .into_iter()
            .filter(|sequence| is_new(&mut last, *sequence))
            .collect();
        assert_eq!(seen, [1, 2, 0, 3, 0, 5]);
        assert_eq!(last, 5);
    }
}
