//! The I/O half of the Mesos client: the driver of the
//! [`Subscription`] state machine (one long-lived SUBSCRIBE stream, read
//! incrementally and watched for silence) and calls POSTed on separate
//! connections with the stream's `Mesos-Stream-Id`. What to send, when to
//! follow a redirect, back off or give up is the machine's decision; this
//! module only sends, reads, waits and hands over.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use agora_proto::{
    mesos::v1::{
        FrameworkId, FrameworkInfo, master,
        scheduler::{Call, call},
    },
    wire::recordio::Decoder,
};
use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::{
    sync::{Notify, mpsc, watch},
    task::JoinHandle,
    time::{Instant, timeout},
};
use tracing::{Instrument, info_span, instrument};

use super::{
    config::MesosConfig,
    convert::{self, Outgoing},
    event::MesosEvent,
    request::{MesosRequest, RequestError, Requests},
    subscription::{Connection, Input, Next, Output, Subscription, SubscriptionError},
};
use agora_core::MesosCall;

/// Why a call was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No live subscription to send the call on.
    #[error("not subscribed to Mesos")]
    NotSubscribed,
    /// The master no longer knows the subscription; the client resubscribes.
    #[error("the subscription is gone (master answered {0}); resubscribing")]
    SubscriptionLost(StatusCode),
    /// The master refused the call itself; the body says why.
    #[error("master refused the call with {status}: {body}")]
    Rejected {
        /// The status the master answered.
        status: StatusCode,
        /// Its explanation, as the master wrote it.
        body: String,
    },
    /// No answer within the request timeout.
    #[error("no answer from the master within {0:?}")]
    Timeout(Duration),
    /// No connection to the master.
    #[error("cannot reach the master: {0}")]
    Transport(#[source] hyper_util::client::legacy::Error),
    /// The master's URL makes no request.
    #[error("cannot build the call")]
    Request(#[source] RequestError),
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
    requests: Requests,
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
    let requests = Requests::new(config.encoding, config.credentials.as_ref());
    let framework = Arc::new(Mutex::new(config.framework_info.clone()));
    let handle = MesosHandle {
        connection: connection_rx,
        framework: framework.clone(),
        http: http_client(),
        requests: requests.clone(),
        request_timeout: config.request_timeout,
        resubscribe: resubscribe.clone(),
    };
    let driver = Driver {
        machine: Subscription::new(&config, rand::random::<f64>),
        requests,
        request_timeout: config.request_timeout,
        framework,
        http: http_client(),
        connection: connection_tx,
        events: events_tx,
        resubscribe,
    };
    let task = tokio::spawn(driver.run().instrument(info_span!("mesos.subscription")));
    (handle, events_rx, task)
}

/// Calls are small requests answered at once: Nagle's algorithm would hold
/// each one back for the previous one's delayed ACK.
fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
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
            master,
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
        let request = self.requests.scheduler(&master, &stream_id, &call);
        self.post(request.map_err(CallError::Request)?).await
    }

    /// Sends one call to the operator API of the master the subscription is
    /// on (the leader), and waits for it to be applied.
    #[instrument(skip_all, fields(call = operator_call_name(&call)))]
    pub async fn operator(&self, call: master::Call) -> Result<(), CallError> {
        let Connection::Subscribed { master, .. } = self.connection.borrow().clone() else {
            return Err(CallError::NotSubscribed);
        };
        let request = self.requests.operator(&master, &call);
        self.post(request.map_err(CallError::Request)?).await
    }

    /// Sends the call for a core effect. UPDATE_FRAMEWORK also changes the
    /// roles kept for later resubscriptions.
    pub async fn send(&self, effect: MesosCall) -> Result<(), CallError> {
        let outgoing = convert::call(effect, &mut lock(&self.framework));
        match outgoing {
            Outgoing::Scheduler(call) => self.call(*call).await,
            Outgoing::Operator(call) => self.operator(call).await,
        }
    }

    /// POSTs one call. An answer meaning the subscription is gone wakes the
    /// subscription, which resubscribes.
    async fn post(&self, request: MesosRequest) -> Result<(), CallError> {
        let response = timeout(self.request_timeout, self.http.request(request))
            .await
            .map_err(|_| CallError::Timeout(self.request_timeout))?
            .map_err(CallError::Transport)?;
        match response.status() {
            StatusCode::ACCEPTED | StatusCode::OK => Ok(()),
            status @ (StatusCode::TEMPORARY_REDIRECT | StatusCode::FORBIDDEN) => {
                self.resubscribe.notify_one();
                Err(CallError::SubscriptionLost(status))
            }
            status => {
                let body = read_text(response.into_body()).await;
                Err(CallError::Rejected { status, body })
            }
        }
    }
}

/// The shared framework, usable even if a holder panicked: it is plain data.
fn lock(framework: &SharedFramework) -> std::sync::MutexGuard<'_, FrameworkInfo> {
    framework.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A body as text, for error messages; empty if it cannot be read.
async fn read_text(body: hyper::body::Incoming) -> String {
    let bytes = body.collect().await.map(|b| b.to_bytes());
    bytes
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
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

/// Runs the [`Subscription`]: does what it says next, feeds back what
/// happened, carries out its outputs.
struct Driver {
    machine: Subscription,
    requests: Requests,
    request_timeout: Duration,
    framework: SharedFramework,
    http: HttpClient,
    connection: watch::Sender<Connection>,
    events: mpsc::Sender<MesosEvent>,
    resubscribe: Arc<Notify>,
}

impl Driver {
    /// Runs until the events receiver is dropped.
    async fn run(mut self) {
        loop {
            let running = match self.machine.next() {
                Next::Subscribe { master } => self.attempt(master).await,
                Next::Wait { delay } => tokio::select! {
                    () = tokio::time::sleep(delay) => self.step(Input::Retry).await,
                    () = self.events.closed() => false,
                },
                Next::ReadRefusal | Next::ReadStream { .. } => {
                    unreachable!("only an answer has a body to read, and `attempt` reads it")
                }
            };
            if !running {
                return;
            }
        }
    }

    /// One SUBSCRIBE to `master` and the reading of its answer, until the
    /// machine moves on to another master or to backing off.
    async fn attempt(&mut self, master: String) -> bool {
        let call = subscribe_call(lock(&self.framework).clone());
        let roles = call
            .subscribe
            .as_ref()
            .map(|s| s.framework_info.roles.clone())
            .unwrap_or_default();
        let request = match self.requests.subscribe(&master, &call) {
            Ok(request) => request,
            Err(error) => {
                return self
                    .step(Input::Failed(SubscriptionError::Request(error)))
                    .await;
            }
        };
        let response = match timeout(self.request_timeout, self.http.request(request)).await {
            Err(_) => {
                let timeout = self.request_timeout;
                let error = SubscriptionError::Unanswered { master, timeout };
                return self.step(Input::Failed(error)).await;
            }
            Ok(Err(source)) => {
                let error = SubscriptionError::Unreachable { master, source };
                return self.step(Input::Failed(error)).await;
            }
            Ok(Ok(response)) => response,
        };
        let (parts, mut body) = response.into_parts();
        let answered = Input::Answered {
            status: parts.status,
            headers: &parts.headers,
            roles,
        };
        if !self.step(answered).await {
            return false;
        }
        let mut decoder = Decoder::default();
        loop {
            let input = match self.machine.next() {
                Next::ReadRefusal => return self.step(Input::Refusal(read_text(body).await)).await,
                Next::ReadStream { silence } => match decoder.next_record() {
                    Err(error) => Input::Failed(SubscriptionError::Corrupt(error)),
                    Ok(Some(record)) => Input::Record(record),
                    Ok(None) => {
                        let read = tokio::select! {
                            frame = timeout(silence, body.frame()) => Some(frame),
                            () = self.resubscribe.notified() => None,
                        };
                        match read {
                            None => Input::Gone,
                            Some(Err(_)) => Input::Silence,
                            Some(Ok(None)) => Input::Closed(decoder.finish()),
                            Some(Ok(Some(Err(error)))) => {
                                Input::Failed(SubscriptionError::Read(error))
                            }
                            Some(Ok(Some(Ok(frame)))) => {
                                if let Some(data) = frame.data_ref() {
                                    decoder.feed(data);
                                }
                                continue;
                            }
                        }
                    }
                },
                Next::Subscribe { .. } | Next::Wait { .. } => return true,
            };
            if !self.step(input).await {
                return false;
            }
        }
    }

    /// Feeds the machine one input and carries out its outputs; false once
    /// the runtime is gone.
    async fn step(&mut self, input: Input<'_>) -> bool {
        for output in self.machine.step(Instant::now(), input) {
            match output {
                Output::Connection(connection) => {
                    if let Connection::Subscribed { framework_id, .. } = &connection {
                        lock(&self.framework).id = Some(FrameworkId {
                            value: framework_id.clone(),
                        });
                    }
                    self.connection.send_replace(connection);
                }
                Output::Event(event) => {
                    if self.events.send(event).await.is_err() {
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// SUBSCRIBE as `framework_info`, with its id when it has one.
fn subscribe_call(framework_info: FrameworkInfo) -> Call {
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
