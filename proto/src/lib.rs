//! Types generated from `proto/`: Agora's public API and the subset of the
//! Mesos v1 wire protocol that the broker and the devcluster speak.
//!
//! Code generation happens here and nowhere else, so every crate in the
//! workspace sees the same types. The Mesos wire's framing and encodings
//! live beside those types, so the broker's client and the devcluster's
//! master read and write it with one implementation.
//!
//! # Layout
//! - [`agora::v1`]: the public API — the `Broker` service for frontends and
//!   the `Admin` service for operators, with their messages and events.
//! - [`mesos::v1`], [`mesos::v1::scheduler`], [`mesos::v1::master`],
//!   [`mesos::v1::quota`]: Mesos messages, same package, names and field
//!   numbers as upstream, so the bytes match a real master.
//! - [`codec`]: the servers' codec (undecodable requests are
//!   INVALID_ARGUMENT).
//! - [`mesos_json`]: Mesos's own JSON dialect for those messages.
//! - [`wire`]: the Mesos HTTP wire both ends share: RecordIO framing and
//!   the protobuf / JSON [`wire::Encoding`].
//! - [`FILE_DESCRIPTOR_SET`]: descriptors for reflection and JSON.

pub mod codec;
pub mod mesos_json;
pub mod wire;

/// Agora's public API.
pub mod agora {
    /// `agora.v1`: Broker and Admin services.
    // Generated code: the `.proto` comments become its docs, and the
    // fields and variants whose names say it all have none.
    #[allow(missing_docs)]
    pub mod v1 {
        tonic::include_proto!("agora.v1");
        include!(concat!(env!("OUT_DIR"), "/servers/agora.v1.rs"));
    }
}

/// Mesos v1 wire types.
pub mod mesos {
    /// `mesos.v1`: ids, resources, offers, tasks, statuses.
    // Generated from upstream's `.proto` files, kept as upstream wrote them
    // so the bytes match a real master; Mesos documents these messages.
    #[allow(missing_docs)]
    pub mod v1 {
        tonic::include_proto!("mesos.v1");

        /// `mesos.v1.scheduler`: the scheduler API's calls and events.
        pub mod scheduler {
            tonic::include_proto!("mesos.v1.scheduler");
        }

        /// `mesos.v1.quota`: quota configuration (operator API).
        pub mod quota {
            tonic::include_proto!("mesos.v1.quota");
        }

        /// `mesos.v1.master`: the operator API's calls and responses.
        pub mod master {
            tonic::include_proto!("mesos.v1.master");
        }
    }
}

/// Encoded `FileDescriptorSet` of every proto compiled here.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("descriptor");
