//! The direct-framework baseline: a Mesos scheduler that subscribes to the
//! devcluster itself and launches the same short tasks without Agora, so
//! submit → TASK_RUNNING through Agora has something honest to be compared
//! with.
//!
//! It packs queued tasks into one ACCEPT per offer, REVIVEs when tasks wait
//! and no offer fits, sends calls concurrently and acknowledges every
//! update. What it does with offers it cannot use at once is its
//! [`IdleOffers`] policy: keep them all (a pool of its own, as Agora's) or
//! decline them, as frameworks that share a cluster are asked to. It reuses
//! the broker's Mesos client (`agora_broker::mesos`), which speaks in the
//! broker's domain types both ways, so transport, encoding and conversions
//! are the same.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use agora_broker::mesos::{
    self, Encoding, MesosConfig, MesosEvent, MesosHandle, backoff::Backoff, client::teardown_call,
};
use agora_core::{
    self as core, AgentId, Command, LaunchTask, MesosCall, OfferId, Resources, TaskId, TaskState,
};
use agora_proto::mesos::v1::{
    FrameworkInfo,
    framework_info::{Capability, capability},
};
use anyhow::{Context, bail};
use tokio::{
    sync::{mpsc, oneshot},
    time::timeout,
};

/// The role the direct framework's offers are allocated to.
const ROLE: &str = "default";
/// How long a task may take to finish before the run counts it as failed.
const TASK_TIMEOUT: Duration = Duration::from_secs(30);
/// The filter of a DECLINE: Mesos's own default when a framework sets none.
const DECLINE_REFUSE_SECONDS: f64 = 5.0;

/// What the framework does with offers that no queued task uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleOffers {
    /// Holds every offer until a task fits it: every submission finds an
    /// offer in hand, and no other framework gets the agents meanwhile.
    Keep,
    /// Declines them at once, like a framework that shares its cluster;
    /// a submission then REVIVEs and waits for the allocation it triggers.
    Decline,
}

/// When a task reached its states, as the framework saw the updates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaskTimes {
    pub running: Instant,
    pub finished: Instant,
}

/// A task waiting for an offer, and where to report its progress.
struct Submission {
    resources: Resources,
    command: String,
    running: oneshot::Sender<Instant>,
    finished: oneshot::Sender<Result<Instant, String>>,
}

/// A launched task's listeners.
struct Watch {
    running: Option<oneshot::Sender<Instant>>,
    finished: oneshot::Sender<Result<Instant, String>>,
}

/// A subscribed direct framework. Cheap to clone; submissions from many
/// workers go to one dispatcher that owns the offers.
#[derive(Clone)]
pub(crate) struct Direct {
    submissions: mpsc::Sender<Submission>,
    mesos: MesosHandle,
}

impl Direct {
    /// Subscribes to the master at `master_url` and starts the dispatcher,
    /// which stops when the last clone is dropped.
    pub(crate) async fn subscribe(
        master_url: &str,
        idle_offers: IdleOffers,
    ) -> anyhow::Result<Direct> {
        let (mesos, mut events, _subscription) = mesos::start(config(master_url));
        let subscribed = async {
            while let Some(event) = events.recv().await {
                if matches!(event, MesosEvent::Subscribed { .. }) {
                    return true;
                }
            }
            false
        };
        if !timeout(Duration::from_secs(30), subscribed)
            .await
            .unwrap_or(false)
        {
            bail!("the direct framework could not subscribe to {master_url}");
        }
        let (submissions, submissions_rx) = mpsc::channel(1024);
        let dispatcher = Dispatcher {
            mesos: mesos.clone(),
            in_order: ordered_sender(mesos.clone()),
            offers: Vec::new(),
            idle_offers,
            queue: VecDeque::new(),
            watches: HashMap::new(),
            revived: false,
            next_task: 0,
        };
        tokio::spawn(dispatcher.run(submissions_rx, events));
        Ok(Direct { submissions, mesos })
    }

    /// Runs one task of `cpus` and `mem_mb` running `command`, and reports
    /// when it reached TASK_RUNNING and TASK_FINISHED.
    pub(crate) async fn run_task(
        &self,
        cpus: f64,
        mem_mb: f64,
        command: &str,
    ) -> anyhow::Result<TaskTimes> {
        let resources = Resources::from_scalars([("cpus", cpus), ("mem", mem_mb)], [])?;
        let (running_tx, running) = oneshot::channel();
        let (finished_tx, finished) = oneshot::channel();
        self.submissions
            .send(Submission {
                resources,
                command: command.to_owned(),
                running: running_tx,
                finished: finished_tx,
            })
            .await
            .context("the direct framework's dispatcher stopped")?;
        let times = async {
            let running = running.await.context("the task never ran")?;
            let finished = finished
                .await
                .context("the task never finished")?
                .map_err(anyhow::Error::msg)?;
            Ok(TaskTimes { running, finished })
        };
        timeout(TASK_TIMEOUT, times)
            .await
            .with_context(|| format!("the task did not finish within {TASK_TIMEOUT:?}"))?
    }

    /// Ends the framework, so its offers go back to the cluster.
    pub(crate) async fn teardown(self) -> anyhow::Result<()> {
        self.mesos
            .call(teardown_call())
            .await
            .context("TEARDOWN of the direct framework")
    }
}

fn config(master_url: &str) -> MesosConfig {
    MesosConfig {
        masters: vec![master_url.trim_end_matches('/').to_owned()],
        encoding: Encoding::Protobuf,
        framework_info: FrameworkInfo {
            user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
            name: "agora-bench-direct".into(),
            roles: vec![ROLE.into()],
            capabilities: vec![Capability {
                r#type: Some(capability::Type::MultiRole as i32),
            }],
            ..Default::default()
        },
        missed_heartbeats: 5,
        request_timeout: Duration::from_secs(30),
        backoff: Backoff::default(),
        credentials: None,
    }
}

/// Owns the offers and the queue; the only place they change.
struct Dispatcher {
    mesos: MesosHandle,
    /// DECLINE, REVIVE and the rest that must reach the master in order.
    in_order: mpsc::UnboundedSender<MesosCall>,
    offers: Vec<core::Offer>,
    idle_offers: IdleOffers,
    queue: VecDeque<Submission>,
    watches: HashMap<String, Watch>,
    /// A REVIVE is out and no offer has come since.
    revived: bool,
    next_task: u64,
}

impl Dispatcher {
    async fn run(
        mut self,
        mut submissions: mpsc::Receiver<Submission>,
        mut events: mpsc::Receiver<MesosEvent>,
    ) {
        loop {
            tokio::select! {
                submission = submissions.recv() => match submission {
                    Some(submission) => {
                        self.queue.push_back(submission);
                        self.dispatch();
                    }
                    None => return,
                },
                event = events.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => return,
                },
            }
        }
    }

    fn on_event(&mut self, event: MesosEvent) {
        match event {
            MesosEvent::Offers(offers) => {
                self.offers.extend(offers);
                self.revived = false;
                self.dispatch();
                if self.idle_offers == IdleOffers::Decline && !self.offers.is_empty() {
                    let offer_ids = self.offers.drain(..).map(|o| o.id).collect();
                    self.send(MesosCall::Decline {
                        offer_ids,
                        refuse_seconds: DECLINE_REFUSE_SECONDS,
                    });
                }
            }
            MesosEvent::Rescind(offer) => self.offers.retain(|o| o.id != offer),
            MesosEvent::Update(status) => self.on_status(status),
            MesosEvent::Subscribed { .. }
            | MesosEvent::Disconnected { .. }
            | MesosEvent::AgentLost(_) => {}
        }
    }

    /// Acknowledges the update and tells the task's listeners.
    fn on_status(&mut self, status: core::StatusUpdate) {
        let now = Instant::now();
        if let (Some(uuid), Some(agent_id)) = (status.uuid, status.agent_id) {
            self.send(MesosCall::Acknowledge {
                agent_id,
                task_id: status.task_id.clone(),
                uuid,
            });
        }
        let id = status.task_id.0;
        if status.state == TaskState::Running
            && let Some(running) = self.watches.get_mut(&id).and_then(|w| w.running.take())
        {
            let _ = running.send(now);
        }
        if status.state.is_terminal()
            && let Some(watch) = self.watches.remove(&id)
        {
            let outcome = match status.state {
                TaskState::Finished => Ok(now),
                state => Err(format!(
                    "task {id} ended in {state:?}: {}",
                    status.message.unwrap_or_default()
                )),
            };
            let _ = watch.finished.send(outcome);
        }
    }

    /// Launches queued tasks on held offers, packing each offer; revives
    /// when tasks wait and nothing fits.
    fn dispatch(&mut self) {
        while let Some(first) = self.queue.front() {
            let Some(index) = self
                .offers
                .iter()
                .position(|o| o.resources.contains(&first.resources))
            else {
                if !self.revived {
                    self.revived = true;
                    self.send(MesosCall::Revive {
                        roles: vec![ROLE.into()],
                    });
                }
                return;
            };
            let offer = self.offers.swap_remove(index);
            let mut free = offer.resources.clone();
            let mut tasks = Vec::new();
            while let Some(next) = self.queue.front()
                && free.contains(&next.resources)
                && let Some(submission) = self.queue.pop_front()
            {
                free.subtract(&submission.resources);
                tasks.push(self.launch_task(&offer.agent.id, submission));
            }
            self.send(MesosCall::Accept {
                reserved: Vec::new(),
                offer_ids: vec![OfferId(offer.id.0.clone())],
                tasks,
                groups: Vec::new(),
                refuse_seconds: 0.0,
            });
        }
    }

    fn launch_task(&mut self, agent: &AgentId, submission: Submission) -> LaunchTask {
        self.next_task += 1;
        let id = format!("direct-{}", self.next_task);
        self.watches.insert(
            id.clone(),
            Watch {
                running: Some(submission.running),
                finished: submission.finished,
            },
        );
        LaunchTask {
            revocable: false,
            task_id: TaskId(id.clone()),
            agent_id: agent.clone(),
            role: ROLE.into(),
            spec: core::TaskSpec {
                client_id: id.clone(),
                name: id,
                resources: submission.resources,
                command: Command::Shell(submission.command),
                environment: Vec::new(),
                user: None,
                labels: Vec::new(),
            },
        }
    }

    /// Sends a call without waiting for the master's answer, as the
    /// dispatcher must keep serving events meanwhile. DECLINE and REVIVE go
    /// out one after the other, in order: a REVIVE that overtook a DECLINE
    /// would leave the decline's filter in force.
    fn send(&self, call: MesosCall) {
        if matches!(
            call,
            MesosCall::Accept { .. } | MesosCall::Acknowledge { .. }
        ) {
            tokio::spawn(send(self.mesos.clone(), call));
        } else {
            let _ = self.in_order.send(call);
        }
    }
}

async fn send(mesos: MesosHandle, call: MesosCall) {
    if let Err(error) = mesos.send(call).await {
        eprintln!("agora-bench: direct framework call failed: {error}");
    }
}

/// Sends the calls that must keep their order, one at a time.
fn ordered_sender(mesos: MesosHandle) -> mpsc::UnboundedSender<MesosCall> {
    let (calls, mut in_order) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(call) = in_order.recv().await {
            send(mesos.clone(), call).await;
        }
    });
    calls
}
