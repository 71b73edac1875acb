//! The I/O half of the Mesos client: one long-lived SUBSCRIBE stream, read
//! incrementally and watched for silence, and calls POSTed one at a time
//! on a separate connection with the stream's `Mesos-Stream-Id`.
//!
//! The subscription loop follows redirects to the leading master, tries the
//! configured masters in turn, reconnects with jittered backoff and always
//! resubscribes with the framework id it was given, so Mesos keeps the
//! framework's tasks across disconnects.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use agora_proto::{
    mesos::v1::{
        FrameworkId, FrameworkInfo, master,
        scheduler::{Call, Event, call, event},
    },
    wire::{
        Encoding,
        recordio::{self, Decoder},
    },
};
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::{
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
    time::timeout,
};
use tracing::{Instrument, info, info_span, instrument, warn};

use super::{
    backoff::Backoff,
    convert::{self, Outgoing},
};
use crate::core::MesosCall;

/// The path of the scheduler API on a master.
const SCHEDULER_PATH: &str = "/api/v1/scheduler";
/// The path of the operator API on a master.
const OPERATOR_PATH: &str = "/api/v1";
/// How many redirects one attempt follows before backing off.
const MAX_REDIRECTS: usize = 5;
/// A subscription that lived this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// How to reach Mesos and who to be there.
#[derive(Debug, Clone)]
pub struct MesosConfig {
    /// Base URLs of masters (`http://host:5050`), tried in turn.
    pub masters: Vec<String>,
    pub encoding: Encoding,
    /// The framework to subscribe as; `id` set to resume an existing one.
    pub framework_info: FrameworkInfo,
    /// Silence for this many heartbeat intervals means the stream is dead.
    pub missed_heartbeats: u32,
    /// Limit on a call's round trip and on waiting for SUBSCRIBED.
    pub request_timeout: Duration,
    pub backoff: Backoff,
    /// HTTP basic credentials (principal, secret); never logged.
    pub credentials: Option<(String, String)>,
}

/// What the subscription reports to the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum MesosEvent {
    /// SUBSCRIBED arrived. `resubscribed` is true after any earlier
    /// subscription: updates may have been missed, so reconcile.
    Subscribed {
        framework_id: String,
        resubscribed: bool,
        /// The roles the SUBSCRIBE carried: roles changed while it was in
        /// flight must still reach Mesos.
        roles: Vec<String>,
    },
    /// Any event but SUBSCRIBED and HEARTBEAT, as Mesos sent it.
    Event(Box<Event>),
    /// The subscription ended; its offers are void.
    Disconnected { reason: String },
}

/// Why a call was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("not subscribed to Mesos")]
    NotSubscribed,
    #[error("the subscription is gone (master answered {0}); resubscribing")]
    SubscriptionLost(StatusCode),
    #[error("master refused the call with {status}: {body}")]
    Rejected { status: StatusCode, body: String },
    #[error("no answer from the master within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the master: {0}")]
    Transport(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
enum Connection {
    #[default]
    Disconnected,
    Subscribed {
        base: String,
        stream_id: String,
        framework_id: String,
    },
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The framework as Mesos should know it, shared by the subscription (which
/// subscribes with it) and the handle (which updates it at run time), so a
/// resubscription after UPDATE_FRAMEWORK carries the new roles.
type SharedFramework = Arc<Mutex<FrameworkInfo>>;

/// Sends calls on the current subscription. Cheap to clone.
#[derive(Clone)]
pub struct MesosHandle {
    connection: watch::Receiver<Connection>,
    framework: SharedFramework,
    http: HttpClient,
    encoding: Encoding,
    authorization: Option<HeaderValue>,
    request_timeout: Duration,
    resubscribe: Arc<Notify>,
}

/// Starts the subscription loop. Events arrive on the receiver; dropping it
/// stops the loop (without TEARDOWN: Mesos keeps the tasks until the
/// failover timeout).
pub fn start(config: MesosConfig) -> (MesosHandle, mpsc::Receiver<MesosEvent>, JoinHandle<()>) {
    let (connection_tx, connection_rx) = watch::channel(Connection::Disconnected);
    let (events_tx, events_rx) = mpsc::channel(4096);
    let resubscribe = Arc::new(Notify::new());
    let authorization = config.credentials.as_ref().map(basic_auth);
    let framework = Arc::new(Mutex::new(config.framework_info.clone()));
    let handle = MesosHandle {
        connection: connection_rx,
        framework: framework.clone(),
        http: http_client(),
        encoding: config.encoding,
        authorization: authorization.clone(),
        request_timeout: config.request_timeout,
        resubscribe: resubscribe.clone(),
    };
    let subscription = Subscription {
        config,
        framework,
        http: http_client(),
        authorization,
        connection: connection_tx,
        events: events_tx,
        resubscribe,
    };
    let task = tokio::spawn(
        subscription
            .run()
            .instrument(info_span!("mesos.subscription")),
    );
    (handle, events_rx, task)
}

/// Calls are small requests answered at once: Nagle's algorithm would hold
/// each one back for the previous one's delayed ACK.
fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

fn basic_auth((principal, secret): &(String, String)) -> HeaderValue {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
    let mut value =
        HeaderValue::from_str(&format!("Basic {token}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

impl MesosHandle {
    /// Whether a subscription is live now.
    pub fn is_subscribed(&self) -> bool {
        matches!(*self.connection.borrow(), Connection::Subscribed { .. })
    }

    /// A receiver that flips with the subscription, for health.
    pub fn subscribed(&self) -> watch::Receiver<bool> {
        let mut connection = self.connection.clone();
        let (tx, rx) = watch::channel(self.is_subscribed());
        tokio::spawn(async move {
            while connection.changed().await.is_ok() {
                let live = matches!(*connection.borrow(), Connection::Subscribed { .. });
                if tx.send(live).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// Sends one call on the current subscription and waits for the master
    /// to accept it (202, or 200 for UPDATE_FRAMEWORK).
    #[instrument(skip_all, fields(call = call_name(&call), framework))]
    pub async fn call(&self, mut call: Call) -> Result<(), CallError> {
        let Connection::Subscribed {
            base,
            stream_id,
            framework_id,
        } = self.connection.borrow().clone()
        else {
            return Err(CallError::NotSubscribed);
        };
        tracing::Span::current().record("framework", framework_id.as_str());
        call.framework_id = Some(FrameworkId {
            value: framework_id,
        });
        let body = self.encoding.encode(&call);
        self.post(&format!("{base}{SCHEDULER_PATH}"), body, Some(stream_id))
            .await
    }

    /// Sends one call to the operator API of the master the subscription is
    /// on (the leader), and waits for it to be applied.
    #[instrument(skip_all, fields(call = operator_call_name(&call)))]
    pub async fn operator(&self, call: master::Call) -> Result<(), CallError> {
        let Connection::Subscribed { base, .. } = self.connection.borrow().clone() else {
            return Err(CallError::NotSubscribed);
        };
        let body = self.encoding.encode(&call);
        self.post(&format!("{base}{OPERATOR_PATH}"), body, None)
            .await
    }

    /// POSTs one encoded call; the stream id goes with scheduler calls.
    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        stream_id: Option<String>,
    ) -> Result<(), CallError> {
        let mut request = Request::post(url)
            .header(header::CONTENT_TYPE, self.encoding.content_type())
            .header(header::ACCEPT, self.encoding.content_type())
            .body(Full::new(Bytes::from(body)))
            .expect("a request built from valid parts");
        if let Some(stream_id) = stream_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            request.headers_mut().insert("Mesos-Stream-Id", stream_id);
        }
        if let Some(authorization) = &self.authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, authorization.clone());
        }
        let response = timeout(self.request_timeout, self.http.request(request))
            .await
            .map_err(|_| CallError::Timeout(self.request_timeout))?
            .map_err(|error| CallError::Transport(error.to_string()))?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::OK => Ok(()),
            status @ (StatusCode::TEMPORARY_REDIRECT | StatusCode::FORBIDDEN) => {
                self.resubscribe.notify_one();
                Err(CallError::SubscriptionLost(status))
            }
            status => {
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
                let body = body
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Err(CallError::Rejected { status, body })
            }
        }
    }
}

impl MesosHandle {
    /// Sends the call for a core effect. UPDATE_FRAMEWORK also changes the
    /// roles kept for later resubscriptions.
    pub async fn send(&self, effect: MesosCall) -> Result<(), CallError> {
        let outgoing = convert::call(effect, &mut lock(&self.framework));
        match outgoing {
            Outgoing::Scheduler(call) => self.call(*call).await,
            Outgoing::Operator(call) => self.operator(call).await,
        }
    }
}

/// The shared framework, usable even if a holder panicked: it is plain data.
fn lock(framework: &SharedFramework) -> std::sync::MutexGuard<'_, FrameworkInfo> {
    framework.lock().unwrap_or_else(PoisonError::into_inner)
}

/// TEARDOWN: ends the framework, killing all its tasks; its id is retired.
pub fn teardown_call() -> Call {
    Call {
        r#type: Some(call::Type::Teardown as i32),
        ..Default::default()
    }
}

fn call_name(call: &Call) -> &'static str {
    call.r#type
        .and_then(|t| call::Type::try_from(t).ok())
        .map_or("UNKNOWN", |t| t.as_str_name())
}

fn operator_call_name(call: &master::Call) -> &'static str {
    call.r#type
        .and_then(|t| master::call::Type::try_from(t).ok())
        .map_or("UNKNOWN", |t| t.as_str_name())
}

/// How one subscription attempt ended.
enum Attempt {
    /// Another master leads; try it.
    Redirect(String),
    /// No stream was established.
    Failed(String),
    /// A stream was established and later ended.
    Ended { lived: Duration, reason: String },
}

struct Subscription {
    config: MesosConfig,
    framework: SharedFramework,
    http: HttpClient,
    authorization: Option<HeaderValue>,
    connection: watch::Sender<Connection>,
    events: mpsc::Sender<MesosEvent>,
    resubscribe: Arc<Notify>,
}

impl Subscription {
    async fn run(mut self) {
        let mut subscribed_before = false;
        let mut failures: u32 = 0;
        let mut next_master = 0;
        loop {
            let mut base = self.config.masters[next_master % self.config.masters.len()].clone();
            let mut outcome = Attempt::Failed("no attempt".into());
            for _ in 0..=MAX_REDIRECTS {
                outcome = self.attempt(&base, &mut subscribed_before).await;
                match &outcome {
                    Attempt::Redirect(leader) => {
                        info!(%leader, "following the redirect to the leading master");
                        base = leader.clone();
                    }
                    _ => break,
                }
            }
            let reason = match outcome {
                Attempt::Ended { lived, reason } => {
                    if lived >= STABLE_AFTER {
                        failures = 0;
                    }
                    reason
                }
                Attempt::Failed(reason) => {
                    next_master += 1;
                    reason
                }
                Attempt::Redirect(leader) => format!("too many redirects, last to {leader}"),
            };
            self.connection.send_replace(Connection::Disconnected);
            warn!(%reason, "not subscribed to Mesos");
            if self
                .events
                .send(MesosEvent::Disconnected { reason })
                .await
                .is_err()
            {
                return;
            }
            let delay = self.config.backoff.delay(failures, rand::random::<f64>());
            failures = failures.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.events.closed() => return,
            }
        }
    }

    fn subscribe_call(&self) -> Call {
        let framework_info = lock(&self.framework).clone();
        Call {
            framework_id: framework_info.id.clone(),
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info,
                suppressed_roles: Vec::new(),
            }),
            ..Default::default()
        }
    }

    async fn attempt(&mut self, base: &str, subscribed_before: &mut bool) -> Attempt {
        let encoding = self.config.encoding;
        let call = self.subscribe_call();
        let roles = call
            .subscribe
            .as_ref()
            .map(|s| s.framework_info.roles.clone())
            .unwrap_or_default();
        let mut request = Request::post(format!("{base}{SCHEDULER_PATH}"))
            .header(header::CONTENT_TYPE, encoding.content_type())
            .header(header::ACCEPT, encoding.content_type())
            .body(Full::new(Bytes::from(encoding.encode(&call))))
            .expect("a request built from valid parts");
        if let Some(authorization) = &self.authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, authorization.clone());
        }
        let response = match timeout(self.config.request_timeout, self.http.request(request)).await
        {
            Err(_) => return Attempt::Failed(format!("{base} did not answer SUBSCRIBE")),
            Ok(Err(error)) => return Attempt::Failed(format!("cannot reach {base}: {error}")),
            Ok(Ok(response)) => response,
        };
        match response.status() {
            StatusCode::OK => {}
            StatusCode::TEMPORARY_REDIRECT => {
                return match response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                {
                    Some(location) => Attempt::Redirect(leader_base(base, location)),
                    None => Attempt::Failed(format!("{base} redirected without a Location")),
                };
            }
            status => {
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                return Attempt::Failed(format!(
                    "{base} refused SUBSCRIBE with {status}: {}",
                    String::from_utf8_lossy(&body).trim()
                ));
            }
        }
        let Some(stream_id) = response
            .headers()
            .get("Mesos-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            return Attempt::Failed(format!("{base} answered SUBSCRIBE without Mesos-Stream-Id"));
        };
        let started = tokio::time::Instant::now();
        let mut body = response.into_body();
        let mut decoder = Decoder::new(recordio::DEFAULT_MAX_RECORD);
        // Until SUBSCRIBED tells the heartbeat interval, wait the request timeout.
        let mut silence_limit = self.config.request_timeout;
        let ended = |reason: String| Attempt::Ended {
            lived: started.elapsed(),
            reason,
        };
        loop {
            let record = match decoder.next_record() {
                Err(error) => return ended(format!("corrupt event stream: {error}")),
                Ok(Some(record)) => record,
                Ok(None) => {
                    let frame = tokio::select! {
                        frame = timeout(silence_limit, body.frame()) => frame,
                        () = self.resubscribe.notified() => {
                            return ended("a call found the subscription gone".into());
                        }
                    };
                    match frame {
                        Err(_) => {
                            return ended(format!("no event or heartbeat for {silence_limit:?}"));
                        }
                        Ok(None) => {
                            let how = decoder
                                .finish()
                                .err()
                                .map_or("cleanly".to_owned(), |e| e.to_string());
                            return ended(format!("the master closed the stream ({how})"));
                        }
                        Ok(Some(Err(error))) => {
                            return ended(format!("stream read failed: {error}"));
                        }
                        Ok(Some(Ok(frame))) => {
                            if let Some(data) = frame.data_ref() {
                                decoder.feed(data);
                            }
                            continue;
                        }
                    }
                }
            };
            let event: Event = match encoding.decode(&record) {
                Ok(event) => event,
                Err(error) => return ended(format!("undecodable event: {error}")),
            };
            match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
                Some(event::Type::Subscribed) => {
                    let Some(subscribed) = event.subscribed else {
                        return ended("SUBSCRIBED without its payload".into());
                    };
                    silence_limit = heartbeat_silence_limit(
                        subscribed.heartbeat_interval_seconds,
                        self.config.missed_heartbeats,
                    );
                    let framework_id = subscribed.framework_id.value;
                    lock(&self.framework).id = Some(FrameworkId {
                        value: framework_id.clone(),
                    });
                    info!(framework = %framework_id, master = %base, "subscribed to Mesos");
                    self.connection.send_replace(Connection::Subscribed {
                        base: base.to_owned(),
                        stream_id: stream_id.clone(),
                        framework_id: framework_id.clone(),
                    });
                    let resubscribed = std::mem::replace(subscribed_before, true);
                    let sent = self
                        .events
                        .send(MesosEvent::Subscribed {
                            framework_id,
                            resubscribed,
                            roles: roles.clone(),
                        })
                        .await;
                    if sent.is_err() {
                        return ended("the broker is shutting down".into());
                    }
                }
                Some(event::Type::Heartbeat) => {}
                Some(event::Type::Error) => {
                    let message = event.error.map(|e| e.message).unwrap_or_default();
                    return ended(format!("master sent ERROR: {message}"));
                }
                _ => {
                    if self
                        .events
                        .send(MesosEvent::Event(Box::new(event)))
                        .await
                        .is_err()
                    {
                        return ended("the broker is shutting down".into());
                    }
                }
            }
        }
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
    use super::*;

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

    #[test]
    fn basic_auth_is_marked_sensitive() {
        let value = basic_auth(&("agora".into(), "secret".into()));
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Basic YWdvcmE6c2VjcmV0");
    }
}
