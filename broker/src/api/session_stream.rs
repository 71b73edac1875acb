//! The response stream of one `Subscribe` call: the session's events as the
//! runtime sends them, a heartbeat whenever the session has been quiet for
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

/// Called once when the stream is dropped.
pub type OnEnd = Box<dyn FnOnce() + Send + Sync>;

/// Events of one session, with heartbeats, ending the session on drop.
pub struct SessionStream {
    events: mpsc::Receiver<Result<Event, Status>>,
    heartbeat: Interval,
    on_end: Option<OnEnd>,
}

impl SessionStream {
    /// Streams `events`, adding a heartbeat after each quiet `heartbeat`
    /// interval; `on_end` runs when the stream is dropped.
    pub fn new(
        events: mpsc::Receiver<Result<Event, Status>>,
        heartbeat: Duration,
        on_end: OnEnd,
    ) -> Self {
        let mut heartbeat = interval_at(Instant::now() + heartbeat, heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        SessionStream {
            events,
            heartbeat,
            on_end: Some(on_end),
        }
    }
}

impl Stream for SessionStream {
    type Item = Result<Event, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = self.events.poll_recv(cx) {
            self.heartbeat.reset();
            return Poll::Ready(item);
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

    fn event(sequence: u64) -> Result<Event, Status> {
        Ok(Event {
            sequence,
            kind: None,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn passes_events_and_fills_quiet_time_with_heartbeats() {
        let (tx, rx) = mpsc::channel(4);
        let mut stream = SessionStream::new(rx, Duration::from_secs(10), Box::new(|| {}));
        tx.send(event(1)).await.unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap().sequence, 1);
        let heartbeat = stream.next().await.unwrap().unwrap();
        assert!(matches!(heartbeat.kind, Some(Kind::Heartbeat(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn ends_when_the_runtime_closes_the_session() {
        let (tx, rx) = mpsc::channel(4);
        let mut stream = SessionStream::new(rx, Duration::from_secs(10), Box::new(|| {}));
        drop(tx);
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
            rx,
            Duration::from_secs(1),
            Box::new(move || flag.store(true, Ordering::SeqCst)),
        );
        drop(stream);
        assert!(ended.load(Ordering::SeqCst));
    }
}
