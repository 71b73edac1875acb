//! Namespace changes, the one kind of request the runtime writes to the
//! store: checked by the core, then written, then applied, so that what the
//! core enforces is always what a restart would restore.

use agora_proto::agora::v1 as api;

use crate::store::{Store, StoreError};
use agora_core::{self as core, Core, CoreError, Request};

/// Why an operator's namespace change failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The core refused the change, which was not stored: the namespace is
    /// invalid, unknown, or still holds leases, live tasks or waiting
    /// requests.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The store could not record the change, so it was not applied.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A namespace put or deleted by an operator.
pub enum NamespaceChange {
    /// `namespace` as the core enforces it and as the store keeps it.
    Put {
        /// What the core enforces.
        namespace: Box<core::Namespace>,
        /// What the store keeps and a restart restores.
        stored: Box<api::Namespace>,
    },
    /// The named namespace, which must hold nothing, goes away.
    Delete(String),
}

/// Checks `change` against the core and writes it to the store; the
/// request that applies it is what remains.
pub(super) async fn persist(
    core: &Core,
    store: &Store,
    change: &NamespaceChange,
) -> Result<Request, AdminError> {
    match change {
        NamespaceChange::Put { namespace, stored } => {
            core.check_put_namespace(namespace)?;
            store.put_namespace(stored).await?;
            Ok(Request::PutNamespace(namespace.clone()))
        }
        NamespaceChange::Delete(name) => {
            core.check_delete_namespace(name)?;
            store.delete_namespace(name).await?;
            Ok(Request::DeleteNamespace(name.clone()))
        }
    }
}
