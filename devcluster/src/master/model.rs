//! The master's state: the [`Master`] itself, the frameworks, offers,
//! tasks and executors it holds, and what a step hands to the runtime
//! ([`Effect`]s, events on a [`Connection`]). The steps are in the
//! sibling modules, one per concern; they share these types from here,
//! below all of them, rather than from the module that re-exports them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agora_proto::mesos::v1::framework_info::capability::Type as Capability;
use agora_proto::mesos::v1::scheduler::{Event, event};
use agora_proto::mesos::v1::{Address, FrameworkInfo, MasterInfo, TaskInfo, TaskState, TaskStatus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc::UnboundedSender;

use super::call_log::{CallLog, FRAMEWORKS as CALL_LOG_FRAMEWORKS};
use crate::agent::Agent;
use crate::agent::process::LaunchSpec;
use crate::allocator::Allocator;
use crate::clock::Now;
use crate::config::Validated;
use crate::resources::Resources;

/// The Mesos version the devcluster speaks.
pub const VERSION: &str = "1.11.0";

/// How many completed frameworks and tasks are remembered (Mesos defaults).
pub(super) const MAX_COMPLETED_FRAMEWORKS: usize = 50;
pub(super) const MAX_COMPLETED_TASKS: usize = 1000;

/// Work for the runtime, produced by a step of the master.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    /// Start a task's process.
    Launch(LaunchSpec),
    /// Stop a task's process: SIGTERM, then SIGKILL after `grace`.
    Kill {
        /// Framework id.
        framework: String,
        /// Task id.
        task: String,
        /// Time between SIGTERM and SIGKILL.
        grace: Duration,
    },
}

/// One live SUBSCRIBE stream.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The `Mesos-Stream-Id` of the stream.
    pub stream_id: String,
    /// Where the stream's events go.
    pub events: UnboundedSender<Event>,
}

/// A framework the master knows: subscribed, or disconnected and within
/// its failover timeout.
#[derive(Debug)]
pub(super) struct Framework {
    pub(super) id: String,
    pub(super) info: FrameworkInfo,
    pub(super) roles: Vec<String>,
    pub(super) suppressed: BTreeSet<String>,
    pub(super) connection: Option<Connection>,
    pub(super) next_heartbeat: Option<Instant>,
    pub(super) failover_deadline: Option<Instant>,
    pub(super) registered_time: f64,
    pub(super) reregistered_time: Option<f64>,
    pub(super) unregistered_time: Option<f64>,
    pub(super) completed_tasks: VecDeque<Task>,
}

impl Framework {
    /// Whether the framework declared `capability`.
    pub(super) fn has(&self, capability: Capability) -> bool {
        has_capability(&self.info, capability)
    }
}

/// An outstanding offer: whose it is, what it holds, and since when (for
/// the offer timeout).
#[derive(Debug)]
pub(super) struct OfferEntry {
    pub(super) framework: String,
    pub(super) agent: String,
    pub(super) role: String,
    pub(super) resources: Resources,
    pub(super) created: Instant,
}

/// The master.
#[derive(Debug)]
pub(crate) struct Master {
    pub(super) id: String,
    pub(super) info: MasterInfo,
    pub(super) start_time: f64,
    pub(super) allocation_interval: Duration,
    pub(super) heartbeat_interval: Duration,
    pub(super) offer_timeout: Option<Duration>,
    pub(super) simulate: bool,
    pub(super) work_dir: PathBuf,
    pub(super) frameworks: BTreeMap<String, Framework>,
    pub(super) removed_frameworks: HashSet<String>,
    pub(super) completed_frameworks: VecDeque<Framework>,
    pub(super) agents: BTreeMap<String, Agent>,
    /// Agents an operator marked gone (MARK_AGENT_GONE); never come back.
    pub(super) gone_agents: HashSet<String>,
    pub(super) offers: BTreeMap<String, OfferEntry>,
    pub(super) tasks: BTreeMap<(String, String), Task>,
    pub(super) executors: HashMap<(String, String, String), Executor>,
    pub(super) allocator: Allocator,
    /// First retry and cap of new agents' status-update managers.
    pub(super) status_update_retry: (Duration, Duration),
    pub(super) next_agent: u64,
    pub(super) next_framework: u64,
    pub(super) next_offer: u64,
    pub(super) allocation_requested: bool,
    pub(super) effects: Vec<Effect>,
    /// The devcluster's own record of each framework's calls.
    pub(super) calls: CallLog,
    /// The master's only source of randomness (its id, status-update
    /// uuids, the agent order of allocation cycles): seeded by the
    /// runtime, so that a seed and the inputs decide every step.
    pub(super) rng: StdRng,
}

/// Whether `info` declares `capability`: what a framework understands
/// decides the formats and task states it is sent.
pub(super) fn has_capability(info: &FrameworkInfo, capability: Capability) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(capability as i32))
}

/// An event of `kind` with no payload: a HEARTBEAT as it is, the base of
/// the others.
pub(super) fn event_of(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

/// A version 4 (random) uuid drawn from `rng`. A free function so that
/// a step can draw one while it holds another field of the master.
pub(super) fn random_uuid(rng: &mut StdRng) -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// The ERROR event a master sends on a subscription before it closes it.
pub(super) fn error_event(message: &str) -> Event {
    Event {
        error: Some(event::Error {
            message: message.to_string(),
        }),
        ..event_of(event::Type::Error)
    }
}

/// A task the master knows (live, or terminal but not yet acknowledged).
#[derive(Debug, Clone)]
pub(super) struct Task {
    pub(super) info: TaskInfo,
    pub(super) framework: String,
    pub(super) agent: String,
    pub(super) executor: String,
    /// The executor id when the task belongs to a task group.
    pub(super) group: Option<String>,
    pub(super) role: String,
    pub(super) resources: Resources,
    /// Latest state the agent reported.
    pub(super) state: TaskState,
    /// State of the latest update forwarded to the framework.
    pub(super) status_update_state: Option<TaskState>,
    pub(super) statuses: Vec<TaskStatus>,
    pub(super) killing: bool,
    pub(super) resources_released: bool,
    pub(super) simulated_end: Option<Instant>,
    pub(super) simulated_exit: i32,
}

impl Task {
    pub(super) fn is_terminal(&self) -> bool {
        is_terminal(self.state)
    }
}

/// The executor of a task group, whose resources are held while any of
/// its tasks lives.
#[derive(Debug, Clone)]
pub(super) struct Executor {
    pub(super) resources: Resources,
    pub(super) tasks: Vec<String>,
}

/// Whether a task state is terminal.
pub(super) fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::TaskFinished
            | TaskState::TaskFailed
            | TaskState::TaskKilled
            | TaskState::TaskError
            | TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
    )
}

impl Master {
    /// A master started at `now`, with the configured agents, all idle,
    /// drawing its randomness from `seed`.
    pub(crate) fn new(
        now: Now,
        seed: u64,
        config: &Validated,
        address: std::net::SocketAddr,
        work_dir: PathBuf,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let id = random_uuid(&mut rng).to_string();
        let c = &config.config;
        let ip = match address.ip() {
            std::net::IpAddr::V4(v4) => u32::from_le_bytes(v4.octets()),
            std::net::IpAddr::V6(_) => 0,
        };
        let info = MasterInfo {
            id: id.clone(),
            ip,
            port: u32::from(address.port()),
            pid: Some(format!("master@{address}")),
            hostname: Some(c.hostname.clone()),
            version: Some(VERSION.into()),
            address: Some(Address {
                hostname: Some(c.hostname.clone()),
                ip: Some(address.ip().to_string()),
                port: i32::from(address.port()),
            }),
            capabilities: Vec::new(),
        };
        let mut master = Self {
            id,
            info,
            start_time: now.unix,
            allocation_interval: c.allocation_interval,
            heartbeat_interval: c.heartbeat_interval,
            offer_timeout: c.offer_timeout,
            simulate: c.simulate,
            work_dir,
            frameworks: BTreeMap::new(),
            removed_frameworks: HashSet::new(),
            completed_frameworks: VecDeque::new(),
            agents: BTreeMap::new(),
            gone_agents: HashSet::new(),
            offers: BTreeMap::new(),
            tasks: BTreeMap::new(),
            executors: HashMap::new(),
            allocator: Allocator::default(),
            status_update_retry: (c.status_update_retry_interval, c.status_update_retry_max),
            next_agent: 0,
            next_framework: 0,
            next_offer: 0,
            allocation_requested: true,
            effects: Vec::new(),
            calls: CallLog::new(c.calls_kept, CALL_LOG_FRAMEWORKS),
            rng,
        };
        let mut resources = config.resources.clone();
        resources.add_all(&config.revocable);
        for _ in 0..c.agents {
            master.add_agent(now, resources.clone(), config.attributes.clone(), None);
        }
        master
    }

    /// Takes the effects queued by the steps so far.
    pub(crate) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Whether something asked for an allocation before the next tick.
    pub(crate) fn allocation_requested(&self) -> bool {
        self.allocation_requested
    }

    pub(super) fn send(&mut self, framework: &str, event: Event) {
        if let Some(connection) = self
            .frameworks
            .get(framework)
            .and_then(|f| f.connection.as_ref())
        {
            // A closed receiver means the stream is going away; its guard
            // reports the disconnection.
            let _ = connection.events.send(event);
        }
    }
}
