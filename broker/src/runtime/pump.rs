//! Sends the core's Mesos calls. Calls that commute
//! ([`MesosCall::commutes`]: ACCEPT, DECLINE, ACKNOWLEDGE) go out side by
//! side, up to [`MAX_IN_FLIGHT`] at once; any other call waits until every
//! call before it is answered, and the calls after it wait for its answer.
//! So the master sees the core's order wherever order matters, and a short
//! task's ACCEPT and two ACKNOWLEDGEs no longer queue behind each other's
//! round trips.

use tokio::{sync::mpsc, task::JoinSet};
use tracing::warn;

use crate::mesos::MesosHandle;
use agora_core::{MesosCall, MesosInput, TaskId};

/// Commuting calls in flight at once, each on a connection of its own
/// (HTTP/1.1 answers one request at a time per connection).
pub(crate) const MAX_IN_FLIGHT: usize = 16;

/// Runs until the call sender is dropped, then waits for the calls still
/// in flight.
pub(super) async fn run(
    mesos: MesosHandle,
    mut calls: mpsc::Receiver<MesosCall>,
    failures: mpsc::Sender<MesosInput>,
) {
    let mut in_flight = JoinSet::new();
    while let Some(call) = calls.recv().await {
        while in_flight.try_join_next().is_some() {}
        if call.commutes() {
            if in_flight.len() >= MAX_IN_FLIGHT {
                in_flight.join_next().await;
            }
            in_flight.spawn(send(mesos.clone(), call, failures.clone()));
        } else {
            while in_flight.join_next().await.is_some() {}
            send(mesos.clone(), call, failures.clone()).await;
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Sends one call; an ACCEPT that fails is reported, so that its tasks end
/// as dropped instead of waiting for statuses that will never come.
async fn send(mesos: MesosHandle, call: MesosCall, failures: mpsc::Sender<MesosInput>) {
    let launched: Vec<TaskId> = match &call {
        MesosCall::Accept { tasks, groups, .. } => tasks
            .iter()
            .chain(groups.iter().flat_map(|g| &g.tasks))
            .map(|t| t.task_id.clone())
            .collect(),
        _ => Vec::new(),
    };
    if let Err(error) = mesos.send(call).await {
        warn!(%error, "Mesos call failed");
        if !launched.is_empty() {
            let failed = MesosInput::AcceptFailed {
                tasks: launched,
                reason: error.to_string(),
            };
            let _ = failures.send(failed).await;
        }
    }
}
