//! The response stream of one `Subscribe` call: its Subscribed event, then
//! the session's events as the runtime sends them, turned into protobuf
//! here as the stream is read (not in the runtime loop), a heartbeat whenever the session has been quiet for
//! an interval, and — when the client goes away and tonic drops the stream —
//! a notice to the runtime that the session ended.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use agora_proto::agora::v1::{Event, Heartbeat, event::Kind};
use tokio::{
    sync::mpsc,
    time::{Instant, Interval, MissedTickBehavior, interval_at},
};
use tokio_stream::Stream;
use tonic::Status;

use super::convert;
use crate::runtime::SessionEvent;

/// Called once when the stream is dropped.
pub type OnEnd = Box<dyn FnOnce() + Send + Sync>;

/// Events of one session, with heartbeats, ending the session on drop.
pub struct SessionStream {
    /// The Subscribed event, until it is sent.
    subscribed: Option<Event>,
    events: mpsc::Receiver<SessionEvent>,
    heartbeat: Interval,
    on_end: Option<OnEnd>,
}

impl SessionStream {
    /// Streams `subscribed`, then `events`, adding a heartbeat after each
    /// quiet `heartbeat` interval; `on_end` runs when the stream is dropped.
    pub fn new(
        subscribed: Event,
        events: mpsc::Receiver<SessionEvent>,
        heartbeat: Duration,
        on_end: OnEnd,
    ) -> Self {
        let mut heartbeat = interval_at(Instant::now() + heartbeat, heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        SessionStream {
            subscribed: Some(subscribed),
            events,
            heartbeat,
            on_end: Some(on_end),
        }
    }
}

impl Stream for SessionStream {
    type Item = Result<Event, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(subscribed) = self.subscribed.take() {
            return Poll::Ready(Some(Ok(subscribed)));
        }
        if let Poll::Ready(item) = self.events.poll_recv(cx) {
            self.heartbeat.reset();
            return Poll::Ready(item.map(|event| Ok(convert::session_event(&event))));
        }
        match self.heartbeat.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Event {
                sequence: 0,
                kind: Some(Kind::Heartbeat(Heartbeat {})),
            }))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for SessionStream {
    fn drop(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    use tokio_stream::StreamExt;

    use agora_core::{FrontendEvent, LeaseId, Timestamp};

    fn event(sequence: u64) -> SessionEvent {
        SessionEvent::Event {
            sequence,
            event: FrontendEvent::LeaseExpiring {
                lease: LeaseId("l".into()),
                expires_at: Timestamp(1),
            },
        }
    }

    fn subscribed() -> Event {
        Event {
            sequence: 0,
            kind: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn passes_events_and_fills_quiet_time_with_heartbeats() {
        let (tx, rx) = mpsc::channel(4);
        let mut stream =
            SessionStream::new(subscribed(), rx, Duration::from_secs(10), Box::new(|| {}));
        tx.send(event(1)).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap(), subscribed());
        assert_eq!(stream.next().await.unwrap().unwrap().sequence, 1);
        let heartbeat = stream.next().await.unwrap().unwrap();
        assert!(matches!(heartbeat.kind, Some(Kind::Heartbeat(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn ends_when_the_runtime_closes_the_session() {
        let (tx, rx) = mpsc::channel(4);
        let mut stream =
            SessionStream::new(subscribed(), rx, Duration::from_secs(10), Box::new(|| {}));
        drop(tx);
        assert_eq!(stream.next().await.unwrap().unwrap(), subscribed());
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn tells_the_runtime_once_when_dropped() {
        let ended = Arc::new(AtomicBool::new(false));
        let flag = ended.clone();
        let (_tx, rx) = mpsc::channel(1);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let stream = SessionStream::new(
            subscribed(),
            rx,
            Duration::from_secs(1),
            Box::new(move || flag.store(true, Ordering::SeqCst)),
        );
        drop(stream);
        assert!(ended.load(Ordering::SeqCst));
    }
}
