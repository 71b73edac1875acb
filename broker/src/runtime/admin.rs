//! Operators' commands to the runtime: namespaces, usage, reclaims and
//! frontends. A namespace change is checked by the core, then written to
//! the store, then applied, so that what the core enforces is always what a
//! restart would restore. Frontends live in the core only: a drain lasts as
//! long as the process.

use tokio::sync::oneshot;
use tracing::info;

use crate::{
    api::namespace::to_api,
    core::{self, Core, CoreError, FrontendName, Timestamp},
    store::{Store, StoreError},
};

/// Why an operator's command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type AdminReply<T> = oneshot::Sender<Result<T, AdminError>>;

/// What the Admin service asks of the runtime.
pub enum AdminCommand {
    PutNamespace {
        namespace: Box<core::Namespace>,
        reply: AdminReply<core::Namespace>,
    },
    GetNamespace {
        name: String,
        reply: AdminReply<core::Namespace>,
    },
    ListNamespaces {
        reply: AdminReply<Vec<core::Namespace>>,
    },
    DeleteNamespace {
        name: String,
        reply: AdminReply<()>,
    },
    GetUsage {
        namespace: Option<String>,
        reply: AdminReply<Vec<core::NamespaceUsage>>,
    },
    ListReclaims {
        owner: Option<String>,
        reply: AdminReply<Vec<core::Reclaim>>,
    },
    ListFrontends {
        reply: AdminReply<Vec<core::FrontendView>>,
    },
    DrainFrontend {
        name: FrontendName,
        kill_tasks: bool,
        reply: AdminReply<core::DrainReport>,
    },
    UndrainFrontend {
        name: FrontendName,
        reply: AdminReply<core::FrontendView>,
    },
}

/// Carries out one command against the core and the store at `now`.
pub fn handle(core: &mut Core, store: &Store, now: Timestamp, command: AdminCommand) {
    match command {
        AdminCommand::PutNamespace { namespace, reply } => {
            let _ = reply.send(put_namespace(core, store, *namespace));
        }
        AdminCommand::GetNamespace { name, reply } => {
            let found = core
                .namespace(&name)
                .cloned()
                .ok_or(CoreError::NamespaceNotFound(name));
            let _ = reply.send(found.map_err(AdminError::from));
        }
        AdminCommand::ListNamespaces { reply } => {
            let _ = reply.send(Ok(core.namespaces().cloned().collect()));
        }
        AdminCommand::DeleteNamespace { name, reply } => {
            let _ = reply.send(delete_namespace(core, store, &name));
        }
        AdminCommand::ListReclaims { owner, reply } => {
            let _ = reply.send(Ok(core.reclaims(owner.as_deref())));
        }
        AdminCommand::GetUsage { namespace, reply } => {
            let report = core.usage_report(namespace.as_deref());
            let _ = reply.send(report.map_err(AdminError::from));
        }
        AdminCommand::ListFrontends { reply } => {
            let _ = reply.send(Ok(core.frontends(now)));
        }
        AdminCommand::DrainFrontend {
            name,
            kill_tasks,
            reply,
        } => {
            let report = core.drain_frontend(now, &name, kill_tasks);
            if let Ok(report) = &report {
                info!(
                    frontend = %name,
                    kill_tasks,
                    leases_released = report.leases_released,
                    requests_refused = report.requests_refused,
                    tasks_killed = report.tasks_killed,
                    "frontend drained"
                );
            }
            let _ = reply.send(report.map_err(AdminError::from));
        }
        AdminCommand::UndrainFrontend { name, reply } => {
            let view = core.undrain_frontend(now, &name);
            if view.is_ok() {
                info!(frontend = %name, "frontend drain undone");
            }
            let _ = reply.send(view.map_err(AdminError::from));
        }
    }
}

fn put_namespace(
    core: &mut Core,
    store: &Store,
    namespace: core::Namespace,
) -> Result<core::Namespace, AdminError> {
    core.check_put_namespace(&namespace)?;
    store.put_namespace(&to_api(&namespace))?;
    core.put_namespace(namespace.clone())?;
    Ok(namespace)
}

fn delete_namespace(core: &mut Core, store: &Store, name: &str) -> Result<(), AdminError> {
    core.check_delete_namespace(name)?;
    store.delete_namespace(name)?;
    core.delete_namespace(name)?;
    Ok(())
}
