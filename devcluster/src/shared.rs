//! The state a running devcluster shares between its HTTP handlers, its
//! driver loop and its process runner: the master behind its lock, and
//! the runner that carries out the master's effects.
//!
//! It sits below both the HTTP layer and the runtime in `cluster`, so
//! that the handlers reach the master without depending on the code that
//! builds the router and serves it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use agora_proto::mesos::v1::Attribute;

use crate::agent::process::ProcessRunner;
use crate::agent::{AgentError, AgentSpec};
use crate::clock::Now;
use crate::master::{Effect, Master, Removal};
use crate::resources::Resources;

/// State shared by the HTTP handlers, the driver and the process runner.
pub(crate) struct Shared {
    master: Mutex<Master>,
    runner: Arc<ProcessRunner>,
    /// Wakes the driver after a step: deadlines may have moved, or an
    /// allocation been asked for.
    wake: Notify,
    /// Resources, attributes and revocable estimate of agents added
    /// without their own.
    agent_defaults: (Resources, Vec<Attribute>, Resources),
    /// The address the master listens on.
    pub(crate) address: SocketAddr,
}

impl Shared {
    /// Shares `master`, whose effects `runner` carries out; agents added
    /// without their own shape take `agent_defaults` (resources,
    /// attributes, revocable estimate).
    pub(crate) fn new(
        master: Master,
        runner: ProcessRunner,
        agent_defaults: (Resources, Vec<Attribute>, Resources),
        address: SocketAddr,
    ) -> Self {
        Self {
            master: Mutex::new(master),
            runner: Arc::new(runner),
            wake: Notify::new(),
            agent_defaults,
            address,
        }
    }

    /// Runs one step of the master under its lock, at the time read as it
    /// was taken, then carries out the effects it queued and wakes the
    /// driver (deadlines may have moved).
    pub(crate) fn step<R>(self: &Arc<Self>, f: impl FnOnce(&mut Master, Now) -> R) -> R {
        let result = self.step_quietly(f);
        self.wake.notify_one();
        result
    }

    /// [`Shared::step`] without waking the driver: the driver's own steps.
    pub(crate) fn step_quietly<R>(self: &Arc<Self>, f: impl FnOnce(&mut Master, Now) -> R) -> R {
        let (result, effects) = {
            let mut master = self.master.lock().unwrap_or_else(|e| e.into_inner());
            let result = f(&mut master, Now::read());
            (result, master.take_effects())
        };
        self.execute(effects);
        result
    }

    /// Completes when a step (other than the driver's own) has happened
    /// since the driver last waited.
    pub(crate) async fn stepped(&self) {
        self.wake.notified().await;
    }

    /// Kills every task's process group (shutdown).
    pub(crate) fn kill_all(&self) {
        self.runner.kill_all();
    }

    /// Adds an agent to the running cluster; returns its id.
    pub(crate) fn add_agent(self: &Arc<Self>, spec: &AgentSpec) -> Result<String, AgentError> {
        let parsed = spec.parse()?;
        let mut resources = parsed
            .resources
            .unwrap_or_else(|| self.agent_defaults.0.clone());
        resources.add_all(
            &parsed
                .revocable
                .unwrap_or_else(|| self.agent_defaults.2.clone()),
        );
        let attributes = parsed
            .attributes
            .unwrap_or_else(|| self.agent_defaults.1.clone());
        Ok(self.step(|master, now| master.add_agent(now, resources, attributes, parsed.hostname)))
    }

    /// Removes an agent as if it died.
    pub(crate) fn remove_agent(self: &Arc<Self>, id: &str) -> Result<(), AgentError> {
        if self.step(|master, now| master.remove_agent(now, id, Removal::Died)) {
            Ok(())
        } else {
            Err(AgentError::NotFound(id.to_string()))
        }
    }

    /// Changes an agent's revocable estimate (`cpus:2;mem:512`).
    pub(crate) fn set_revocable(
        self: &Arc<Self>,
        id: &str,
        estimate: &str,
    ) -> Result<(), AgentError> {
        let estimate = crate::config::parse_revocable(estimate).map_err(AgentError::Revocable)?;
        if self.step(|master, now| master.set_revocable(now, id, estimate)) {
            Ok(())
        } else {
            Err(AgentError::NotFound(id.to_string()))
        }
    }

    fn execute(self: &Arc<Self>, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Launch(spec) => {
                    let shared = Arc::clone(self);
                    let framework = spec.framework.clone();
                    let task = spec.task.clone();
                    self.runner.launch(spec, move |event| {
                        shared.step(|master, now| {
                            master.process_event(now, &framework, &task, event)
                        });
                    });
                }
                Effect::Kill {
                    framework,
                    task,
                    grace,
                } => self.runner.kill(&framework, &task, grace),
            }
        }
    }
}
