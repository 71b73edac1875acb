//! The subscription to Mesos as a state machine without I/O. The driver in
//! [`client`](super::client) does what [`Subscription::next`] says (send
//! SUBSCRIBE, read a refusal's body, read the event stream, wait) and feeds
//! back what happened as an [`Input`]; [`Subscription::step`] moves to the
//! next state and returns the [`Output`]s to carry out (the connection calls
//! go on, events for the runtime). Every transition is a plain function of
//! the state, the input and the time, so all of them are tested here
//! without a server.
//!
//! ```text
//! Connecting ──307──▶ Connecting (the leader; at most MAX_REDIRECTS)
//!     │ 200 + stream id          └─other status──▶ Refused ──body──┐
//!     ▼                                                           │
//! Subscribing ──SUBSCRIBED──▶ Subscribed{framework, heartbeat}     │
//!     │ silence, ERROR, end, corrupt, a call found it gone         │
//!     ▼                                                           ▼
//!  Backoff ◀───────────────────────────────────────────── any failure
//!     │ delay elapsed
//!     ▼
//! Connecting (the next master after a failure to subscribe)
//! ```
//!
//! The machine always resubscribes with the framework id it was given or
//! got, so Mesos keeps the framework's tasks across disconnects.

use std::{error::Error, time::Duration};

use agora_proto::{
    mesos::v1::scheduler::{Event, event},
    wire::{DecodeError, Encoding, recordio::RecordIoError},
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{
    backoff::Backoff,
    config::MesosConfig,
    convert,
    event::MesosEvent,
    request::{RequestError, SCHEDULER_PATH, STREAM_ID},
};

/// How many redirects one attempt follows before backing off.
const MAX_REDIRECTS: usize = 5;
/// A subscription that lived this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Why an attempt to subscribe failed, or a subscription ended.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// The master's URL makes no request.
    #[error("cannot build SUBSCRIBE")]
    Request(#[source] RequestError),
    /// A master that accepts connections and says nothing: try the next.
    #[error("{master} did not answer SUBSCRIBE within {timeout:?}")]
    Unanswered {
        /// The master's base URL.
        master: String,
        /// How long it was given.
        timeout: Duration,
    },
    /// No connection to the master.
    #[error("cannot reach {master}")]
    Unreachable {
        /// The master's base URL.
        master: String,
        /// Why the connection failed.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// A `307` that does not say where the leader is.
    #[error("{master} redirected without a Location")]
    RedirectWithoutLocation {
        /// The master's base URL.
        master: String,
    },
    /// Masters redirecting in a loop, as during a leader election.
    #[error("too many redirects, last to {leader}")]
    TooManyRedirects {
        /// Where the last redirect pointed.
        leader: String,
    },
    /// Any other status than `200` or `307`; the body says why.
    #[error("{master} refused SUBSCRIBE with {status}: {body}")]
    Refused {
        /// The master's base URL.
        master: String,
        /// The status it answered.
        status: StatusCode,
        /// Its explanation, as the master wrote it.
        body: String,
    },
    /// Without a stream id, no call could be made on the subscription.
    #[error("{master} answered SUBSCRIBE without Mesos-Stream-Id")]
    NoStreamId {
        /// The master's base URL.
        master: String,
    },
    /// The heartbeat watchdog fired: the stream is dead or stuck.
    #[error("no event or heartbeat for {0:?}")]
    Silent(Duration),
    /// The master ended the stream between records.
    #[error("the master closed the stream cleanly")]
    Closed,
    /// The master ended the stream inside a record.
    #[error("the master closed the stream")]
    Truncated(#[source] RecordIoError),
    /// The stream is not RecordIO; nothing after this can be trusted.
    #[error("corrupt event stream")]
    Corrupt(#[source] RecordIoError),
    /// The connection failed while reading the stream.
    #[error("stream read failed")]
    Read(#[source] hyper::Error),
    /// A record is not an event in the negotiated encoding.
    #[error("undecodable event")]
    Undecodable(#[source] DecodeError),
    /// SUBSCRIBED without the framework id it exists to tell.
    #[error("SUBSCRIBED without its payload")]
    NoSubscribedPayload,
    /// The master ended the subscription, e.g. "Framework failed over".
    #[error("master sent ERROR: {0}")]
    MasterError(String),
    /// A call was answered `307` or `403`: the master no longer knows
    /// this subscription.
    #[error("a call found the subscription gone")]
    Gone,
}

impl SubscriptionError {
    /// The error and its sources on one line: what the runtime tells
    /// frontends in [`MesosEvent::Disconnected`].
    pub fn reason(&self) -> String {
        let mut reason = self.to_string();
        let mut source = self.source();
        while let Some(cause) = source {
            reason.push_str(": ");
            reason.push_str(&cause.to_string());
            source = cause.source();
        }
        reason
    }
}

/// What happened, as the driver saw it.
#[derive(Debug)]
pub enum Input<'a> {
    /// The master answered SUBSCRIBE (its body not read yet). `roles` are
    /// those the SUBSCRIBE carried.
    Answered {
        /// The answer's status: 200, a 307 to the leader, or a refusal.
        status: StatusCode,
        /// Its headers: `Location` of a redirect, `Mesos-Stream-Id`.
        headers: &'a HeaderMap,
        /// The roles the SUBSCRIBE carried.
        roles: Vec<String>,
    },
    /// The body of an answer refusing SUBSCRIBE.
    Refusal(String),
    /// One record of the event stream.
    Record(Bytes),
    /// No bytes arrived within the silence limit of [`Next::ReadStream`].
    Silence,
    /// The stream ended: `Ok` at a record boundary, else inside a record.
    Closed(Result<(), RecordIoError>),
    /// A call was answered as if the subscription were gone (307, 403).
    Gone,
    /// The backoff delay elapsed.
    Retry,
    /// I/O failed: SUBSCRIBE unsent or unanswered, the stream unreadable.
    Failed(SubscriptionError),
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// POST SUBSCRIBE to the master at `master` (a base URL).
    Subscribe {
        /// The master's base URL.
        master: String,
    },
    /// Read the refusing answer's body: [`Input::Refusal`].
    ReadRefusal,
    /// Read the event stream; `silence` without a byte means it is dead.
    ReadStream {
        /// How long the stream may stay quiet before it is given up.
        silence: Duration,
    },
    /// Wait `delay`, then [`Input::Retry`].
    Wait {
        /// The backoff delay before the next attempt.
        delay: Duration,
    },
}

/// The subscription calls go on.
#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// No subscription: calls are refused.
    Disconnected,
    /// Live on `master`; SUBSCRIBEs from now on carry `framework_id`.
    Subscribed {
        /// The leading master's base URL, where calls go.
        master: String,
        /// The `Mesos-Stream-Id` every call must carry.
        stream_id: HeaderValue,
        /// The framework id Mesos assigned or confirmed.
        framework_id: String,
    },
}

/// What a step asks the driver to carry out, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Publish the connection to the handle.
    Connection(Connection),
    /// Report to the runtime.
    Event(MesosEvent),
}

/// An established event stream.
#[derive(Debug, Clone, PartialEq)]
struct Stream {
    master: String,
    stream_id: HeaderValue,
    roles: Vec<String>,
    since: Instant,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    /// SUBSCRIBE goes to `master`, after `redirects` redirects.
    Connecting { master: String, redirects: usize },
    /// `master` refused SUBSCRIBE with `status`; its body says why.
    Refused { master: String, status: StatusCode },
    /// The stream is open; SUBSCRIBED has not arrived yet.
    Subscribing(Stream),
    /// Subscribed as `framework_id`; `silence` without a byte means the
    /// stream is dead.
    Subscribed {
        stream: Stream,
        framework_id: String,
        silence: Duration,
    },
    /// Waiting `delay` before the next attempt.
    Backoff { delay: Duration },
}

/// The subscription's state and what carries over between attempts.
#[derive(Debug)]
pub struct Subscription {
    masters: Vec<String>,
    encoding: Encoding,
    missed_heartbeats: u32,
    request_timeout: Duration,
    backoff: Backoff,
    /// Draws the backoff's jitter from `[0, 1)`: random in the driver,
    /// fixed in tests.
    jitter: fn() -> f64,
    /// Index into `masters` of the next master to try after a backoff.
    next_master: usize,
    /// Failures since the last stable subscription.
    failures: u32,
    subscribed_before: bool,
    state: State,
}

impl Subscription {
    /// A subscription about to SUBSCRIBE to the first of `config.masters`
    /// (of which there must be one at least).
    pub fn new(config: &MesosConfig, jitter: fn() -> f64) -> Subscription {
        Subscription {
            masters: config.masters.clone(),
            encoding: config.encoding,
            missed_heartbeats: config.missed_heartbeats,
            request_timeout: config.request_timeout,
            backoff: config.backoff,
            jitter,
            next_master: 0,
            failures: 0,
            subscribed_before: false,
            state: State::Connecting {
                master: config.masters[0].clone(),
                redirects: 0,
            },
        }
    }

    /// What the driver does next, which the state alone decides.
    pub fn next(&self) -> Next {
        match &self.state {
            State::Connecting { master, .. } => Next::Subscribe {
                master: master.clone(),
            },
            State::Refused { .. } => Next::ReadRefusal,
            State::Subscribing(_) | State::Subscribed { .. } => Next::ReadStream {
                silence: self.silence(),
            },
            State::Backoff { delay } => Next::Wait { delay: *delay },
        }
    }

    /// Moves on with what happened at `now`. An input that does not apply
    /// to the state (the driver only sends those that do) changes nothing.
    pub fn step(&mut self, now: Instant, input: Input<'_>) -> Vec<Output> {
        match (&self.state, input) {
            (
                State::Connecting { master, redirects },
                Input::Answered {
                    status,
                    headers,
                    roles,
                },
            ) => {
                let (master, redirects) = (master.clone(), *redirects);
                self.answered(now, master, redirects, status, headers, roles)
            }
            (State::Connecting { .. }, Input::Failed(error)) => self.failed(error),
            (State::Refused { master, status }, Input::Refusal(body)) => {
                let error = SubscriptionError::Refused {
                    master: master.clone(),
                    status: *status,
                    body: body.trim().to_owned(),
                };
                self.failed(error)
            }
            (State::Subscribing(_) | State::Subscribed { .. }, input) => self.streaming(now, input),
            (State::Backoff { .. }, Input::Retry) => {
                self.state = State::Connecting {
                    master: self.masters[self.next_master].clone(),
                    redirects: 0,
                };
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// How long the stream may stay silent: until SUBSCRIBED tells the
    /// heartbeat interval, the request timeout.
    fn silence(&self) -> Duration {
        match &self.state {
            State::Subscribed { silence, .. } => *silence,
            _ => self.request_timeout,
        }
    }

    fn answered(
        &mut self,
        now: Instant,
        master: String,
        redirects: usize,
        status: StatusCode,
        headers: &HeaderMap,
        roles: Vec<String>,
    ) -> Vec<Output> {
        match status {
            StatusCode::OK => {
                let stream_id = headers.get(STREAM_ID).filter(|id| id.to_str().is_ok());
                let Some(stream_id) = stream_id else {
                    return self.failed(SubscriptionError::NoStreamId { master });
                };
                self.state = State::Subscribing(Stream {
                    master,
                    stream_id: stream_id.clone(),
                    roles,
                    since: now,
                });
                Vec::new()
            }
            StatusCode::TEMPORARY_REDIRECT => {
                let location = headers.get(header::LOCATION).and_then(|l| l.to_str().ok());
                let Some(location) = location else {
                    return self.failed(SubscriptionError::RedirectWithoutLocation { master });
                };
                let leader = leader_base(&master, location);
                if redirects >= MAX_REDIRECTS {
                    return self.disconnected(SubscriptionError::TooManyRedirects { leader });
                }
                info!(%leader, "following the redirect to the leading master");
                self.state = State::Connecting {
                    master: leader,
                    redirects: redirects + 1,
                };
                Vec::new()
            }
            status => {
                self.state = State::Refused { master, status };
                Vec::new()
            }
        }
    }

    fn streaming(&mut self, now: Instant, input: Input<'_>) -> Vec<Output> {
        let error = match input {
            Input::Record(record) => match self.record(record) {
                Ok(outputs) => return outputs,
                Err(error) => error,
            },
            Input::Silence => SubscriptionError::Silent(self.silence()),
            Input::Closed(Ok(())) => SubscriptionError::Closed,
            Input::Closed(Err(error)) => SubscriptionError::Truncated(error),
            Input::Gone => SubscriptionError::Gone,
            Input::Failed(error) => error,
            Input::Answered { .. } | Input::Refusal(_) | Input::Retry => return Vec::new(),
        };
        self.ended(now, error)
    }

    /// One record of a live stream; an error ends the stream.
    fn record(&mut self, record: Bytes) -> Result<Vec<Output>, SubscriptionError> {
        let event: Event = self
            .encoding
            .decode(&record)
            .map_err(SubscriptionError::Undecodable)?;
        match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
            Some(event::Type::Subscribed) => {
                let subscribed = event
                    .subscribed
                    .ok_or(SubscriptionError::NoSubscribedPayload)?;
                let (State::Subscribing(stream) | State::Subscribed { stream, .. }) = &self.state
                else {
                    return Ok(Vec::new());
                };
                let stream = stream.clone();
                let framework_id = subscribed.framework_id.value;
                info!(framework = %framework_id, master = %stream.master, "subscribed to Mesos");
                let resubscribed = std::mem::replace(&mut self.subscribed_before, true);
                let outputs = vec![
                    Output::Connection(Connection::Subscribed {
                        master: stream.master.clone(),
                        stream_id: stream.stream_id.clone(),
                        framework_id: framework_id.clone(),
                    }),
                    Output::Event(MesosEvent::Subscribed {
                        framework_id: framework_id.clone(),
                        resubscribed,
                        roles: stream.roles.clone(),
                    }),
                ];
                self.state = State::Subscribed {
                    stream,
                    framework_id,
                    silence: heartbeat_silence_limit(
                        subscribed.heartbeat_interval_seconds,
                        self.missed_heartbeats,
                    ),
                };
                Ok(outputs)
            }
            Some(event::Type::Heartbeat) => Ok(Vec::new()),
            Some(event::Type::Error) => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                Err(SubscriptionError::MasterError(message))
            }
            _ => Ok(convert::event(event)
                .map(Output::Event)
                .into_iter()
                .collect()),
        }
    }

    /// Subscribing failed before a stream was open: the next attempt goes
    /// to the next master.
    fn failed(&mut self, error: SubscriptionError) -> Vec<Output> {
        self.next_master = (self.next_master + 1) % self.masters.len();
        self.disconnected(error)
    }

    /// An open stream ended: one that lived long enough resets the backoff.
    fn ended(&mut self, now: Instant, error: SubscriptionError) -> Vec<Output> {
        if let State::Subscribing(stream) | State::Subscribed { stream, .. } = &self.state
            && now.saturating_duration_since(stream.since) >= STABLE_AFTER
        {
            self.failures = 0;
        }
        self.disconnected(error)
    }

    fn disconnected(&mut self, error: SubscriptionError) -> Vec<Output> {
        let reason = error.reason();
        warn!(%reason, "not subscribed to Mesos");
        let delay = self.backoff.delay(self.failures, (self.jitter)());
        self.failures = self.failures.saturating_add(1);
        self.state = State::Backoff { delay };
        vec![
            Output::Connection(Connection::Disconnected),
            Output::Event(MesosEvent::Disconnected { reason }),
        ]
    }
}

/// How long the event stream may stay silent once SUBSCRIBED announced
/// `heartbeat_interval_seconds`: `missed_heartbeats` intervals (at least
/// one), of 15 s when the master announced none or nothing a `Duration`
/// can hold. An interval too long to multiply waits as long as a
/// `Duration` can: the master asked for it, and panicking here would end
/// the subscription loop for good.
pub fn heartbeat_silence_limit(
    heartbeat_interval_seconds: Option<f64>,
    missed_heartbeats: u32,
) -> Duration {
    let interval = heartbeat_interval_seconds
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .filter(|interval| !interval.is_zero())
        .unwrap_or(Duration::from_secs(15));
    interval.saturating_mul(missed_heartbeats.max(1))
}

/// The base URL of the master a `307` points to. Mesos sends a
/// protocol-relative `//host:port/path`; absolute URLs are accepted too.
fn leader_base(current: &str, location: &str) -> String {
    let absolute = if let Some(rest) = location.strip_prefix("//") {
        let scheme = current.split("://").next().unwrap_or("http");
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        let authority_end = current
            .find("://")
            .map(|i| i + 3)
            .and_then(|start| current[start..].find('/').map(|i| start + i))
            .unwrap_or(current.len());
        format!("{}{location}", &current[..authority_end])
    } else {
        location.to_owned()
    };
    let base = absolute
        .strip_suffix("/master/api/v1/scheduler")
        .or_else(|| absolute.strip_suffix(SCHEDULER_PATH))
        .unwrap_or(&absolute);
    base.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use agora_proto::mesos::v1::{FrameworkId, FrameworkInfo, scheduler::event};
    use prost::Message;

    use super::*;

    fn config(masters: &[&str]) -> MesosConfig {
        MesosConfig {
            masters: masters.iter().map(|m| m.to_string()).collect(),
            encoding: Encoding::Protobuf,
            framework_info: FrameworkInfo::default(),
            missed_heartbeats: 4,
            request_timeout: Duration::from_secs(2),
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(8),
            },
            credentials: None,
        }
    }

    /// A machine whose jitter is always the top of the range, so a backoff
    /// is exactly its ceiling.
    fn machine(masters: &[&str]) -> Subscription {
        Subscription::new(&config(masters), || 1.0)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn answer<'a>(status: StatusCode, headers: &'a HeaderMap) -> Input<'a> {
        Input::Answered {
            status,
            headers,
            roles: vec!["r".into()],
        }
    }

    fn record(event: Event) -> Input<'static> {
        Input::Record(Bytes::from(event.encode_to_vec()))
    }

    fn subscribed(framework: &str, heartbeat: Option<f64>) -> Event {
        Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId {
                    value: framework.into(),
                },
                heartbeat_interval_seconds: heartbeat,
                master_info: None,
            }),
            ..Default::default()
        }
    }

    fn typed(t: event::Type) -> Event {
        Event {
            r#type: Some(t as i32),
            ..Default::default()
        }
    }

    /// Opens a stream on the machine's current master.
    fn open(machine: &mut Subscription, now: Instant) {
        let headers = headers(&[("mesos-stream-id", "s-1")]);
        assert_eq!(machine.step(now, answer(StatusCode::OK, &headers)), vec![]);
    }

    fn disconnected(outputs: &[Output]) -> &str {
        match outputs {
            [
                Output::Connection(Connection::Disconnected),
                Output::Event(MesosEvent::Disconnected { reason }),
            ] => reason,
            other => panic!("expected a disconnection, got {other:?}"),
        }
    }

    #[test]
    fn subscribes_and_reports_it_with_the_roles_sent() {
        let now = Instant::now();
        let mut machine = machine(&["http://m1:5050"]);
        assert_eq!(
            machine.next(),
            Next::Subscribe {
                master: "http://m1:5050".into()
            }
        );
        open(&mut machine, now);
        assert_eq!(
            machine.next(),
            Next::ReadStream {
                silence: Duration::from_secs(2)
            }
        );
        let outputs = machine.step(now, record(subscribed("fw", Some(2.5))));
        assert_eq!(
            outputs,
            vec![
                Output::Connection(Connection::Subscribed {
                    master: "http://m1:5050".into(),
                    stream_id: HeaderValue::from_static("s-1"),
                    framework_id: "fw".into(),
                }),
                Output::Event(MesosEvent::Subscribed {
                    framework_id: "fw".into(),
                    resubscribed: false,
                    roles: vec!["r".into()],
                }),
            ]
        );
        assert_eq!(
            machine.next(),
            Next::ReadStream {
                silence: Duration::from_secs(10)
            }
        );
        assert_eq!(
            machine.step(now, record(typed(event::Type::Heartbeat))),
            vec![]
        );
    }

    #[test]
    fn forwards_the_events_the_core_uses_and_drops_the_rest() {
        let now = Instant::now();
        let mut machine = machine(&["http://m1:5050"]);
        open(&mut machine, now);
        machine.step(now, record(subscribed("fw", None)));
        let rescind = Event {
            rescind: Some(event::Rescind {
                offer_id: agora_proto::mesos::v1::OfferId { value: "o1".into() },
            }),
            ..typed(event::Type::Rescind)
        };
        assert_eq!(
            machine.step(now, record(rescind)),
            vec![Output::Event(MesosEvent::Rescind(agora_core::OfferId(
                "o1".into()
            )))]
        );
        assert_eq!(
            machine.step(now, record(typed(event::Type::Message))),
            vec![]
        );
    }

    #[test]
    fn follows_redirects_up_to_the_limit_then_backs_off() {
        let now = Instant::now();
        let mut machine = machine(&["http://m1:5050"]);
        let headers = headers(&[("location", "//m2:5050/api/v1/scheduler")]);
        for _ in 0..MAX_REDIRECTS {
            let outputs = machine.step(now, answer(StatusCode::TEMPORARY_REDIRECT, &headers));
            assert_eq!(outputs, vec![]);
            assert_eq!(
                machine.next(),
                Next::Subscribe {
                    master: "http://m2:5050".into()
                }
            );
        }
        let outputs = machine.step(now, answer(StatusCode::TEMPORARY_REDIRECT, &headers));
        assert_eq!(
            disconnected(&outputs),
            "too many redirects, last to http://m2:5050"
        );
        assert_eq!(
            machine.next(),
            Next::Wait {
                delay: Duration::from_secs(1)
            }
        );
        machine.step(now, Input::Retry);
        assert_eq!(
            machine.next(),
            Next::Subscribe {
                master: "http://m1:5050".into()
            },
            "too many redirects is no reason to leave the configured master"
        );
    }

    #[test]
    fn a_failure_to_subscribe_moves_to_the_next_master_with_growing_backoff() {
        let now = Instant::now();
        let mut machine = machine(&["http://m1:5050", "http://m2:5050"]);
        let refusal = HeaderMap::new();
        let cases: Vec<(Input<'_>, &str)> = vec![
            (
                Input::Failed(SubscriptionError::Unanswered {
                    master: "http://m1:5050".into(),
                    timeout: Duration::from_secs(2),
                }),
                "http://m1:5050 did not answer SUBSCRIBE within 2s",
            ),
            (
                answer(StatusCode::OK, &refusal),
                "http://m2:5050 answered SUBSCRIBE without Mesos-Stream-Id",
            ),
            (
                answer(StatusCode::TEMPORARY_REDIRECT, &refusal),
                "http://m1:5050 redirected without a Location",
            ),
        ];
        let mut expected_delay = Duration::from_secs(1);
        let mut master = 0;
        for (input, reason) in cases {
            let outputs = machine.step(now, input);
            assert_eq!(disconnected(&outputs), reason);
            assert_eq!(
                machine.next(),
                Next::Wait {
                    delay: expected_delay
                }
            );
            expected_delay *= 2;
            master = (master + 1) % 2;
            machine.step(now, Input::Retry);
            assert_eq!(
                machine.next(),
                Next::Subscribe {
                    master: ["http://m1:5050", "http://m2:5050"][master].into()
                }
            );
        }
    }

    #[test]
    fn a_refusal_is_reported_with_its_body() {
        let now = Instant::now();
        let mut machine = machine(&["http://m1:5050"]);
        let headers = HeaderMap::new();
        machine.step(now, answer(StatusCode::SERVICE_UNAVAILABLE, &headers));
        assert_eq!(machine.next(), Next::ReadRefusal);
        let outputs = machine.step(now, Input::Refusal("No leader elected\n".into()));
        assert_eq!(
            disconnected(&outputs),
            "http://m1:5050 refused SUBSCRIBE with 503 Service Unavailable: No leader elected"
        );
    }

    #[test]
    fn every_end_of_a_stream_disconnects_with_its_reason() {
        let corrupt = || RecordIoError::NotADigit(b'x');
        let error = Event {
            error: Some(event::Error {
                message: "Framework failed over".into(),
            }),
            ..typed(event::Type::Error)
        };
        let cases: Vec<(Input<'static>, &str)> = vec![
            (Input::Silence, "no event or heartbeat for 8s"),
            (
                Input::Closed(Ok(())),
                "the master closed the stream cleanly",
            ),
            (
                Input::Closed(Err(RecordIoError::Truncated)),
                "the master closed the stream: the stream ended inside a record",
            ),
            (
                Input::Failed(SubscriptionError::Corrupt(corrupt())),
                "corrupt event stream: invalid byte 0x78 in a record length",
            ),
            (Input::Gone, "a call found the subscription gone"),
            (record(error), "master sent ERROR: Framework failed over"),
            (
                record(typed(event::Type::Subscribed)),
                "SUBSCRIBED without its payload",
            ),
            (
                Input::Record(Bytes::from_static(&[0xff, 0xff])),
                "undecodable event: invalid protobuf",
            ),
        ];
        for (input, reason) in cases {
            let now = Instant::now();
            let mut machine = machine(&["http://m1:5050"]);
            open(&mut machine, now);
            machine.step(now, record(subscribed("fw", Some(2.0))));
            let outputs = machine.step(now, input);
            assert!(disconnected(&outputs).starts_with(reason), "{outputs:?}");
            assert!(matches!(machine.next(), Next::Wait { .. }));
        }
    }

    #[test]
    fn a_stable_subscription_resets_the_backoff_and_a_resubscription_says_so() {
        let start = Instant::now();
        let mut machine = machine(&["http://m1:5050"]);
        for _ in 0..3 {
            machine.step(
                start,
                Input::Failed(SubscriptionError::Unanswered {
                    master: "http://m1:5050".into(),
                    timeout: Duration::from_secs(2),
                }),
            );
            machine.step(start, Input::Retry);
        }
        open(&mut machine, start);
        machine.step(start, record(subscribed("fw", None)));
        let later = start + STABLE_AFTER;
        machine.step(later, Input::Silence);
        assert_eq!(
            machine.next(),
            Next::Wait {
                delay: Duration::from_secs(1)
            }
        );
        machine.step(later, Input::Retry);
        open(&mut machine, later);
        let outputs = machine.step(later, record(subscribed("fw", None)));
        assert!(outputs.contains(&Output::Event(MesosEvent::Subscribed {
            framework_id: "fw".into(),
            resubscribed: true,
            roles: vec!["r".into()],
        })));
    }

    #[test]
    fn a_short_lived_stream_keeps_backing_off() {
        let now = Instant::now();
        let mut machine = machine(&["http://m1:5050"]);
        open(&mut machine, now);
        machine.step(now, Input::Closed(Ok(())));
        machine.step(now, Input::Retry);
        open(&mut machine, now);
        machine.step(now + Duration::from_secs(1), Input::Closed(Ok(())));
        assert_eq!(
            machine.next(),
            Next::Wait {
                delay: Duration::from_secs(2)
            }
        );
    }

    #[test]
    fn inputs_that_do_not_apply_change_nothing() {
        let now = Instant::now();
        let mut machine = machine(&["http://m1:5050"]);
        let before = machine.next();
        for input in [Input::Silence, Input::Retry, Input::Gone] {
            assert_eq!(machine.step(now, input), vec![]);
            assert_eq!(machine.next(), before);
        }
    }

    #[test]
    fn follows_protocol_relative_and_absolute_redirects() {
        let current = "http://m1:5050";
        assert_eq!(
            leader_base(current, "//m2:5050/api/v1/scheduler"),
            "http://m2:5050"
        );
        assert_eq!(
            leader_base(current, "//m2:5050/master/api/v1/scheduler"),
            "http://m2:5050"
        );
        assert_eq!(
            leader_base(current, "http://m3:5050/api/v1/scheduler"),
            "http://m3:5050"
        );
        assert_eq!(leader_base(current, "//m4:5050"), "http://m4:5050");
        assert_eq!(
            leader_base("https://m1:5050", "//m5:5050/"),
            "https://m5:5050"
        );
    }

    #[test]
    fn any_heartbeat_interval_gives_a_silence_limit() {
        let limit = heartbeat_silence_limit;
        assert_eq!(limit(Some(2.5), 4), Duration::from_secs(10));
        assert_eq!(limit(None, 0), Duration::from_secs(15));
        for absurd in [f64::NAN, -1.0, 0.0, 1e-300, f64::INFINITY] {
            assert_eq!(limit(Some(absurd), 1), Duration::from_secs(15), "{absurd}");
        }
        assert_eq!(limit(Some(1e300), 5), Duration::from_secs(15) * 5);
        assert_eq!(limit(Some(1e19), 5), Duration::MAX);
    }
}
