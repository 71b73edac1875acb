//! The master's state machine: frameworks and their subscriptions, offers,
//! tasks, and the agents' side of task statuses.
//!
//! It is synchronous and owns no I/O: time comes in as `now` (a
//! [`Now`], read by the runtime; no method reads a clock), events go
//! out through each subscription's unbounded channel (Mesos never applies
//! back-pressure to a subscriber), and work for the outside world
//! (starting or killing a process) is queued as [`Effect`]s that the
//! runtime drains after each step. The runtime keeps it behind a std
//! mutex that is never held across an `.await`.

mod accept;
mod agents;
mod calls;
mod framework_info;
mod operator;
mod oversubscription;
mod roles;
mod state;
mod tasks;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use agora_proto::mesos::v1::framework_info::capability::Type as Capability;
use agora_proto::mesos::v1::scheduler::{Event, call, event};
use agora_proto::mesos::v1::{
    Address, FrameworkId, FrameworkInfo, MasterInfo, Offer, OfferId, TaskState,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::agent::Agent;
use crate::agent::process::LaunchSpec;
use crate::allocator::{AgentSlot, Allocator, Demand, Snapshot};
use crate::clock::Now;
use crate::config::Validated;
use crate::resources::Resources;

pub(crate) use agents::Removal;
pub use calls::validate_call;
pub(crate) use calls::{CallError, CallOutcome};
use framework_info::{effective_roles, requested_id, validate_framework_info};
pub(crate) use operator::OperatorError;
pub use operator::validate_operator_call;

/// The Mesos version the devcluster speaks.
pub const VERSION: &str = "1.11.0";

/// How many completed frameworks and tasks are remembered (Mesos defaults).
const MAX_COMPLETED_FRAMEWORKS: usize = 50;
const MAX_COMPLETED_TASKS: usize = 1000;

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

#[derive(Debug)]
struct Framework {
    id: String,
    info: FrameworkInfo,
    roles: Vec<String>,
    suppressed: BTreeSet<String>,
    connection: Option<Connection>,
    next_heartbeat: Option<Instant>,
    failover_deadline: Option<Instant>,
    registered_time: f64,
    reregistered_time: Option<f64>,
    unregistered_time: Option<f64>,
    completed_tasks: VecDeque<tasks::Task>,
}

impl Framework {
    fn has(&self, capability: Capability) -> bool {
        has_capability(&self.info, capability)
    }
}

#[derive(Debug)]
struct OfferEntry {
    framework: String,
    agent: String,
    role: String,
    resources: Resources,
    created: Instant,
}

/// The master.
#[derive(Debug)]
pub(crate) struct Master {
    id: String,
    info: MasterInfo,
    start_time: f64,
    allocation_interval: Duration,
    heartbeat_interval: Duration,
    offer_timeout: Option<Duration>,
    simulate: bool,
    work_dir: PathBuf,
    frameworks: BTreeMap<String, Framework>,
    removed_frameworks: HashSet<String>,
    completed_frameworks: VecDeque<Framework>,
    agents: BTreeMap<String, Agent>,
    /// Agents an operator marked gone (MARK_AGENT_GONE); never come back.
    gone_agents: HashSet<String>,
    offers: BTreeMap<String, OfferEntry>,
    tasks: BTreeMap<(String, String), tasks::Task>,
    executors: HashMap<(String, String, String), tasks::Executor>,
    allocator: Allocator,
    /// First retry and cap of new agents' status-update managers.
    status_update_retry: (Duration, Duration),
    next_agent: u64,
    next_framework: u64,
    next_offer: u64,
    allocation_requested: bool,
    effects: Vec<Effect>,
}

fn has_capability(info: &FrameworkInfo, capability: Capability) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(capability as i32))
}

fn event_of(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn error_event(message: &str) -> Event {
    Event {
        error: Some(event::Error {
            message: message.to_string(),
        }),
        ..event_of(event::Type::Error)
    }
}

impl Master {
    /// A master started at `now`, with the configured agents, all idle.
    pub(crate) fn new(
        now: Now,
        config: &Validated,
        address: std::net::SocketAddr,
        work_dir: PathBuf,
    ) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
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

    fn send(&mut self, framework: &str, event: Event) {
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

    /// Handles a SUBSCRIBE whose HTTP-level checks passed. The SUBSCRIBED
    /// event (or an ERROR, after which the stream is closed) goes to
    /// `connection`. Returns the framework id on success.
    pub(crate) fn subscribe(
        &mut self,
        now: Now,
        subscribe: call::Subscribe,
        connection: Connection,
    ) -> Option<String> {
        let info = subscribe.framework_info;
        let refuse = |connection: Connection, message: String| {
            tracing::info!(%message, "refusing subscription");
            let _ = connection.events.send(error_event(&message));
            None
        };
        if let Err(message) = validate_framework_info(&info, &subscribe.suppressed_roles) {
            return refuse(connection, message);
        }
        let requested = requested_id(&info).map(str::to_string);
        if let Some(id) = &requested
            && self.removed_frameworks.contains(id)
        {
            return refuse(connection, "Framework has been removed".into());
        }
        let roles = effective_roles(&info);
        let suppressed: BTreeSet<String> = subscribe.suppressed_roles.into_iter().collect();
        let id = match requested {
            Some(id) if self.frameworks.contains_key(&id) => {
                self.failover(now, &id, info, roles, suppressed, connection);
                id
            }
            requested => {
                let id = requested.unwrap_or_else(|| {
                    self.next_framework += 1;
                    format!("{}-{:04}", self.id, self.next_framework - 1)
                });
                let mut info = info;
                info.id = Some(FrameworkId { value: id.clone() });
                tracing::info!(framework = %id, name = %info.name, ?roles, "framework subscribed");
                self.frameworks.insert(
                    id.clone(),
                    Framework {
                        id: id.clone(),
                        info,
                        roles,
                        suppressed,
                        connection: Some(connection),
                        next_heartbeat: None,
                        failover_deadline: None,
                        registered_time: now.unix,
                        reregistered_time: None,
                        unregistered_time: None,
                        completed_tasks: VecDeque::new(),
                    },
                );
                id
            }
        };
        let subscribed = Event {
            subscribed: Some(event::Subscribed {
                framework_id: FrameworkId { value: id.clone() },
                heartbeat_interval_seconds: Some(self.heartbeat_interval.as_secs_f64()),
                master_info: Some(self.info.clone()),
            }),
            ..event_of(event::Type::Subscribed)
        };
        self.send(&id, subscribed);
        if let Some(framework) = self.frameworks.get_mut(&id) {
            framework.next_heartbeat = Some(now.instant + self.heartbeat_interval);
        }
        self.allocation_requested = true;
        Some(id)
    }

    fn failover(
        &mut self,
        now: Now,
        id: &str,
        mut info: FrameworkInfo,
        roles: Vec<String>,
        suppressed: BTreeSet<String>,
        connection: Connection,
    ) {
        self.drop_offers_of(id, false);
        let framework = self.frameworks.get_mut(id).expect("caller checked");
        if let Some(old) = framework.connection.take() {
            tracing::info!(framework = %id, "framework failed over: closing the old stream");
            let _ = old.events.send(error_event("Framework failed over"));
        }
        // Mesos ignores changes to `user` and `checkpoint` on re-subscribe.
        info.user = framework.info.user.clone();
        info.checkpoint = framework.info.checkpoint;
        framework.info = info;
        framework.roles = roles;
        framework.suppressed = suppressed;
        framework.connection = Some(connection);
        framework.failover_deadline = None;
        framework.reregistered_time = Some(now.unix);
        framework.unregistered_time = None;
    }

    /// The subscription with `stream_id` ended (the client went away or the
    /// master closed it). Starts the failover timeout if it was current.
    pub(crate) fn disconnected(&mut self, now: Now, framework: &str, stream_id: &str) {
        let Some(f) = self.frameworks.get_mut(framework) else {
            return;
        };
        if f.connection
            .as_ref()
            .is_none_or(|c| c.stream_id != stream_id)
        {
            return;
        }
        f.connection = None;
        f.next_heartbeat = None;
        f.unregistered_time = Some(now.unix);
        let timeout = f.info.failover_timeout.unwrap_or(0.0).max(0.0);
        let timeout = Duration::try_from_secs_f64(timeout).unwrap_or(Duration::MAX);
        f.failover_deadline = Some(
            now.instant
                .checked_add(timeout)
                .unwrap_or(now.instant + Duration::from_secs(1 << 40)),
        );
        tracing::info!(%framework, failover_timeout = ?timeout, "framework disconnected");
        self.drop_offers_of(framework, false);
    }

    /// Removes the framework's outstanding offers, returning their
    /// resources to the agents (no filter); sends RESCIND when asked.
    fn drop_offers_of(&mut self, framework: &str, rescind: bool) {
        let ids: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, o)| o.framework == framework)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.remove_offer(&id, rescind);
        }
    }

    fn remove_offer(&mut self, offer_id: &str, rescind: bool) -> Option<OfferEntry> {
        let entry = self.offers.remove(offer_id)?;
        if let Some(agent) = self.agents.get_mut(&entry.agent) {
            agent.available.add_all(&entry.resources);
        }
        if rescind {
            let event = Event {
                rescind: Some(event::Rescind {
                    offer_id: OfferId {
                        value: offer_id.to_string(),
                    },
                }),
                ..event_of(event::Type::Rescind)
            };
            self.send(&entry.framework, event);
        }
        Some(entry)
    }

    /// Removes a framework at `now`: kills its tasks, drops its offers and
    /// filters, closes its stream and retires its id.
    fn remove_framework(&mut self, now: Now, framework: &str) {
        let Some(mut f) = self.frameworks.remove(framework) else {
            return;
        };
        tracing::info!(%framework, "removing framework");
        self.drop_offers_of(framework, false);
        let keys: Vec<(String, String)> = self
            .tasks
            .keys()
            .filter(|(fw, _)| fw == framework)
            .cloned()
            .collect();
        for key in keys {
            if let Some(mut task) = self.tasks.remove(&key) {
                if !task.is_terminal() {
                    self.effects.push(Effect::Kill {
                        framework: key.0.clone(),
                        task: key.1.clone(),
                        grace: Duration::ZERO,
                    });
                    self.release_task_resources(&mut task);
                    task.state = TaskState::TaskKilled;
                }
                f.completed_tasks.push_back(task);
            }
        }
        let executors: Vec<_> = self
            .executors
            .keys()
            .filter(|(_, fw, _)| fw == framework)
            .cloned()
            .collect();
        for key in executors {
            if let Some(executor) = self.executors.remove(&key)
                && let Some(agent) = self.agents.get_mut(&key.0)
            {
                agent.available.add_all(&executor.resources);
            }
        }
        for agent in self.agents.values_mut() {
            agent.updates.remove_framework(framework);
        }
        self.allocator.filters.remove_framework(framework);
        f.connection = None;
        f.unregistered_time.get_or_insert(now.unix);
        while f.completed_tasks.len() > MAX_COMPLETED_TASKS {
            f.completed_tasks.pop_front();
        }
        self.removed_frameworks.insert(framework.to_string());
        self.completed_frameworks.push_back(f);
        while self.completed_frameworks.len() > MAX_COMPLETED_FRAMEWORKS {
            self.completed_frameworks.pop_front();
        }
    }

    /// Closes every subscription stream (shutdown); frameworks stay known.
    pub(crate) fn close_all_streams(&mut self) {
        for f in self.frameworks.values_mut() {
            f.connection = None;
            f.next_heartbeat = None;
        }
    }

    /// Runs everything due at `now`: heartbeats, failover timeouts, offer
    /// timeouts, status-update retries, simulated task progress.
    pub(crate) fn tick(&mut self, now: Now) {
        let mut heartbeats = Vec::new();
        let mut expired = Vec::new();
        for f in self.frameworks.values_mut() {
            if let Some(at) = f.next_heartbeat
                && at <= now.instant
            {
                heartbeats.push(f.id.clone());
                f.next_heartbeat = Some(now.instant + self.heartbeat_interval);
            }
            if f.failover_deadline.is_some_and(|at| at <= now.instant) {
                expired.push(f.id.clone());
            }
        }
        for id in heartbeats {
            self.send(&id, event_of(event::Type::Heartbeat));
        }
        for id in expired {
            tracing::info!(framework = %id, "failover timeout elapsed");
            self.remove_framework(now, &id);
        }
        if let Some(timeout) = self.offer_timeout {
            let stale: Vec<String> = self
                .offers
                .iter()
                .filter(|(_, o)| o.created + timeout <= now.instant)
                .map(|(id, _)| id.clone())
                .collect();
            for id in stale {
                self.remove_offer(&id, true);
            }
        }
        self.retry_status_updates(now);
        self.advance_simulated(now);
    }

    /// The earliest instant at which [`Master::tick`] has work.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let frameworks = self
            .frameworks
            .values()
            .flat_map(|f| [f.next_heartbeat, f.failover_deadline]);
        let offers = self
            .offer_timeout
            .into_iter()
            .flat_map(|t| self.offers.values().map(move |o| Some(o.created + t)));
        let updates = self.agents.values().map(|a| a.updates.next_deadline());
        let simulated = self.tasks.values().map(|t| t.simulated_end);
        frameworks
            .chain(offers)
            .chain(updates)
            .chain(simulated)
            .flatten()
            .min()
    }

    /// One allocation cycle: offers every free resource it can.
    pub(crate) fn allocate(&mut self, now: Now) {
        self.allocation_requested = false;
        let demands: Vec<Demand> = self
            .frameworks
            .values()
            .filter(|f| f.connection.is_some())
            .flat_map(|f| {
                f.roles
                    .iter()
                    .filter(|role| !f.suppressed.contains(*role))
                    .map(|role| Demand {
                        framework: f.id.clone(),
                        role: role.clone(),
                        revocable: f.has(Capability::RevocableResources),
                    })
            })
            .collect();
        if demands.is_empty() {
            return;
        }
        let snapshot = Snapshot {
            agents: self
                .agents
                .values()
                .filter(|a| !a.available.is_empty())
                .map(|a| AgentSlot {
                    id: a.id.clone(),
                    available: a.available.clone(),
                })
                .collect(),
            demands,
            usage: self.usage(),
            consumed: self.quota_consumption(true),
            totals: self.totals(),
        };
        let allocations = self.allocator.allocate(now.instant, snapshot, true);
        let mut by_framework: BTreeMap<String, Vec<Offer>> = BTreeMap::new();
        for allocation in allocations {
            let offer = self.make_offer(
                now,
                &allocation.framework,
                &allocation.role,
                &allocation.agent,
                allocation.resources,
            );
            by_framework
                .entry(allocation.framework)
                .or_default()
                .push(offer);
        }
        for (framework, offers) in by_framework {
            tracing::debug!(%framework, offers = offers.len(), "sending offers");
            let event = Event {
                offers: Some(event::Offers { offers }),
                ..event_of(event::Type::Offers)
            };
            self.send(&framework, event);
        }
    }

    fn make_offer(
        &mut self,
        now: Now,
        framework: &str,
        role: &str,
        agent_id: &str,
        resources: Resources,
    ) -> Offer {
        self.next_offer += 1;
        let id = format!("{}-O{}", self.id, self.next_offer - 1);
        let agent = self
            .agents
            .get_mut(agent_id)
            .expect("allocations name known agents");
        agent.available.subtract_all(&resources);
        let f = &self.frameworks[framework];
        let multi_role = f.has(Capability::MultiRole);
        let refinement = f.has(Capability::ReservationRefinement);
        let mut protos = if multi_role {
            resources.allocated_to(role)
        } else {
            resources.to_protos()
        };
        if refinement {
            for r in &mut protos {
                to_post_refinement(r);
            }
        }
        let executor_ids = self
            .executors
            .keys()
            .filter(|(a, fw, _)| a == agent_id && fw == framework)
            .map(|(_, _, e)| agora_proto::mesos::v1::ExecutorId { value: e.clone() })
            .collect();
        let offer = Offer {
            id: OfferId { value: id.clone() },
            framework_id: FrameworkId {
                value: framework.to_string(),
            },
            agent_id: agora_proto::mesos::v1::AgentId {
                value: agent_id.to_string(),
            },
            hostname: agent.hostname.clone(),
            resources: protos,
            attributes: agent.attributes.clone(),
            executor_ids,
            allocation_info: multi_role.then(|| agora_proto::mesos::v1::resource::AllocationInfo {
                role: Some(role.to_string()),
            }),
            ..Default::default()
        };
        self.offers.insert(
            id,
            OfferEntry {
                framework: framework.to_string(),
                agent: agent_id.to_string(),
                role: role.to_string(),
                resources,
                created: now.instant,
            },
        );
        offer
    }
}

/// Converts a pre-refinement resource to the post-refinement format sent
/// to RESERVATION_REFINEMENT frameworks.
#[allow(deprecated)]
fn to_post_refinement(resource: &mut agora_proto::mesos::v1::Resource) {
    use agora_proto::mesos::v1::resource::{ReservationInfo, reservation_info};
    let role = resource.role.take().unwrap_or_else(|| "*".into());
    if role != "*" {
        let dynamic = resource.reservation.take();
        resource.reservations = vec![ReservationInfo {
            r#type: Some(if dynamic.is_some() {
                reservation_info::Type::Dynamic as i32
            } else {
                reservation_info::Type::Static as i32
            }),
            role: Some(role),
            principal: dynamic.as_ref().and_then(|d| d.principal.clone()),
            labels: dynamic.and_then(|d| d.labels),
        }];
    }
}
