//! [`Core::handle`]: the one entry through which everything that happens
//! reaches the core, each input dispatched to the concern that decides it.

use super::*;
use crate::protocol::{Input, MesosInput, Request};

impl Core {
    /// Decides what `input`, happening at `now`, means: the state changes
    /// and the effects come out in the order the runtime must carry them
    /// out. A request's [`Effect::Reply`] comes first among its effects
    /// when it is answered at once, so that a caller knows its session
    /// before the events replayed to it.
    pub fn handle(&mut self, now: Timestamp, input: Input) -> Vec<Effect> {
        match input {
            Input::Request { ticket, request } => {
                let before = self.effects.len();
                if let Some(answer) = self.request(now, ticket, request) {
                    self.effects
                        .insert(before, Effect::Reply { ticket, answer });
                }
            }
            Input::SessionEnded(session) => self.end_session(now, &session),
            Input::Mesos(event) => self.mesos(now, event),
            Input::Tick => self.tick(now),
            Input::Recovered(durable) => self.recover(now, *durable),
        }
        self.drain_effects()
    }

    /// The answer to `request`, or `None` when an effect answers it later.
    fn request(
        &mut self,
        now: Timestamp,
        ticket: Ticket,
        request: Request,
    ) -> Option<Result<Answer, CoreError>> {
        let done = |result: Result<(), CoreError>| Some(result.map(|()| Answer::Done));
        match request {
            Request::Subscribe {
                frontend,
                principal,
                namespaces,
                resume_after,
            } => Some(
                self.subscribe(frontend, &principal, namespaces, resume_after)
                    .map(Answer::Subscribed),
            ),
            Request::Acquire { session, request } => {
                later(self.acquire(now, ticket, &session, request), Answer::Leases)
            }
            Request::Hold {
                session,
                leases,
                hold_for,
            } => Some(
                self.hold(now, &session, &leases, hold_for)
                    .map(Answer::Leases),
            ),
            Request::Release {
                session,
                leases,
                refuse_for,
            } => done(self.release(now, &session, &leases, refuse_for)),
            Request::Launch { session, launches } => later(
                self.launch(now, ticket, &session, launches),
                Answer::Launched,
            ),
            Request::Kill {
                session,
                tasks,
                grace,
            } => done(self.kill(&session, &tasks, grace)),
            Request::Acknowledge { session, up_to } => done(self.acknowledge(&session, up_to)),
            Request::Reconcile { session, tasks } => {
                Some(self.reconcile(&session, &tasks).map(Answer::Tasks))
            }
            Request::PutNamespace(namespace) => done(self.put_namespace(*namespace)),
            Request::DeleteNamespace(name) => Some(
                self.delete_namespace(&name)
                    .map(|deleted| Answer::Namespace(Box::new(deleted))),
            ),
            Request::DrainFrontend {
                frontend,
                kill_tasks,
            } => Some(
                self.drain_frontend(now, &frontend, kill_tasks)
                    .map(|report| Answer::Drained(Box::new(report))),
            ),
            Request::UndrainFrontend(frontend) => Some(
                self.undrain_frontend(now, &frontend)
                    .map(|view| Answer::Frontend(Box::new(view))),
            ),
        }
    }

    fn mesos(&mut self, now: Timestamp, event: MesosInput) {
        match event {
            MesosInput::Subscribed {
                resubscribed,
                roles,
            } => self.mesos_subscribed(now, resubscribed, &roles),
            MesosInput::Disconnected => self.mesos_disconnected(now),
            MesosInput::Offers(offers) => self.offers(now, offers),
            MesosInput::Rescind(offer) => self.rescind(&offer),
            MesosInput::Update(update) => self.status_update(now, update),
            MesosInput::AgentLost(agent) => self.agent_lost(&agent),
            MesosInput::AcceptFailed { tasks, reason } => self.accept_failed(&tasks, &reason),
        }
    }
}

/// The answer of a request that may wait: `None` while it waits.
fn later<T>(
    outcome: Result<Outcome<T>, CoreError>,
    answer: fn(T) -> Answer,
) -> Option<Result<Answer, CoreError>> {
    match outcome {
        Ok(Outcome::Now(value)) => Some(Ok(answer(value))),
        Ok(Outcome::Later) => None,
        Err(error) => Some(Err(error)),
    }
}
