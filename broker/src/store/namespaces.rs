//! Namespaces put or deleted at run time through Admin, as records. A
//! namespace is kept as its `agora.v1.Namespace` protobuf encoding under
//! `namespaces/{name}`, so the record is the API's own contract and needs
//! no second schema. Deletions are kept too, under
//! `deleted_namespaces/{name}`, so that a namespace of the configuration
//! file deleted at run time stays deleted.

use agora_proto::agora::v1 as api;
use prost::Message;

use super::{Store, StoreError, Write};

/// Where namespaces put at run time are kept.
const PUT: &str = "namespaces/";
/// Where namespaces deleted at run time are kept.
const DELETED: &str = "deleted_namespaces/";

/// The key of namespace `name` put at run time.
pub(super) fn put_key(name: &str) -> String {
    format!("{PUT}{name}")
}

/// The key recording that namespace `name` was deleted at run time.
pub(super) fn deleted_key(name: &str) -> String {
    format!("{DELETED}{name}")
}

/// Namespaces changed at run time, as last stored.
#[derive(Debug, Default, PartialEq)]
pub struct StoredNamespaces {
    /// Namespaces put through Admin, in name order; each overrides a
    /// configured one of the same name.
    pub put: Vec<api::Namespace>,
    /// Names deleted through Admin and not put since, in name order; they
    /// stay deleted even when the configuration declares them.
    pub deleted: Vec<String>,
}

impl Store {
    /// Every namespace put and deleted at run time.
    pub async fn namespaces(&self) -> Result<StoredNamespaces, StoreError> {
        let put = self
            .load(PUT)
            .await?
            .into_iter()
            .map(|(_, value)| api::Namespace::decode(value.as_slice()))
            .collect::<Result<_, _>>()?;
        let deleted = self
            .load(DELETED)
            .await?
            .into_iter()
            .filter_map(|(key, _)| key.strip_prefix(DELETED).map(str::to_owned))
            .collect();
        Ok(StoredNamespaces { put, deleted })
    }

    /// Records a namespace put at run time, durably, before it takes effect.
    pub async fn put_namespace(&self, namespace: &api::Namespace) -> Result<(), StoreError> {
        let name = namespace.name.as_str();
        self.commit(vec![
            Write::Put {
                key: put_key(name),
                value: namespace.encode_to_vec(),
            },
            Write::Delete {
                key: deleted_key(name),
            },
        ])
        .await
    }

    /// Records a namespace deleted at run time, durably.
    pub async fn delete_namespace(&self, name: &str) -> Result<(), StoreError> {
        self.commit(vec![
            Write::Delete { key: put_key(name) },
            Write::Put {
                key: deleted_key(name),
                value: Vec::new(),
            },
        ])
        .await
    }
}
