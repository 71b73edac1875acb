//! Every request of the `agora.v1` Broker and Admin services, read from
//! protobuf as tonic reads it, then put through what its handler
//! (`api::broker`, `api::admin`) checks and converts before it sends a
//! command to the runtime. Any frontend or operator can send these, so a
//! panic here, or memory out of proportion to the request, is a crash or
//! an exhaustion of the broker from the network.
//!
//! Byte 0 picks the request type from `REQUESTS` (modulo its length); the
//! rest is the message. Each type has one check function below, calling
//! the broker's functions for it: when the handlers' validation changes,
//! repoint that function and nothing else.
//!
//! Beyond not panicking and memory linear in the input, it checks what the
//! conversion modules promise: bad input is refused as `INVALID_ARGUMENT`
//! naming the field, and accepted resources and namespaces survive the trip back to protobuf
//! (leases, Admin answers, the store) and in again unchanged.

#![no_main]

use std::collections::BTreeSet;

use agora_broker::api::{
    admin,
    auth::{Grant, Principal},
    convert, limits, namespace,
    ownership::Ownership,
};
use agora_core::{self as core, Resources, SessionId};
use agora_fuzz::alloc::within_budget;
use agora_proto::agora::v1 as api;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tonic::{Code, Status};

/// Heap bytes a run may hold per input byte: the decoded request, its
/// domain form and the statuses with their details.
const PER_BYTE: usize = 1024;
/// And beyond that, whatever the input's size.
const SLACK: usize = 1 << 20;

/// The session the caller owns; a request naming another is refused.
const SESSION: &str = "session-1";
/// The role prefix of namespaces put without a role.
const ROLE_PREFIX: &str = "agora-";

/// A handler's verdict on a request before any command is sent.
type Verdict = Result<(), Status>;

/// Every request type of both services, by the index byte 0 names. Seeds
/// depend on the order: append, never reorder.
const REQUESTS: &[(&str, fn(&[u8]))] = &[
    ("Broker.Subscribe", |body| run(body, subscribe)),
    ("Broker.Acquire", |body| run(body, acquire)),
    ("Broker.Hold", |body| run(body, hold)),
    ("Broker.Release", |body| run(body, release)),
    ("Broker.Launch", |body| run(body, launch)),
    ("Broker.Kill", |body| run(body, kill)),
    ("Broker.Acknowledge", |body| run(body, acknowledge)),
    ("Broker.Reconcile", |body| run(body, reconcile)),
    ("Broker.ListAgents", |body| run(body, list_agents)),
    ("Broker.ListLeases", |body| run(body, list_leases)),
    ("Broker.ListTasks", |body| run(body, list_tasks)),
    ("Admin.PutNamespace", |body| run(body, put_namespace)),
    ("Admin.GetNamespace", |body| run(body, get_namespace)),
    ("Admin.ListNamespaces", |body| {
        run::<api::ListNamespacesRequest>(body, as_is)
    }),
    ("Admin.DeleteNamespace", |body| run(body, delete_namespace)),
    ("Admin.GetUsage", |body| run(body, get_usage)),
    ("Admin.ListFrontends", |body| {
        run::<api::ListFrontendsRequest>(body, as_is)
    }),
    ("Admin.DrainFrontend", |body| run(body, drain_frontend)),
    ("Admin.ListReclaims", |body| run(body, list_reclaims)),
    ("Admin.ListAllLeases", |body| run(body, list_all_leases)),
    ("Admin.ListAllTasks", |body| run(body, list_all_tasks)),
    ("Admin.ListAllAgents", |body| {
        run::<api::ListAllAgentsRequest>(body, as_is)
    }),
    ("Admin.ListWaitingRequests", |body| {
        run(body, list_waiting_requests)
    }),
];

/// Who the checks run for: a principal granted two namespaces and owning
/// one session, so that the namespace and session checks can each refuse.
/// (Frontend names are owned in the core, past these checks.)
struct Caller {
    principal: Principal,
    ownership: Ownership,
}

impl Caller {
    fn new() -> Caller {
        let principal = Principal {
            name: "fuzz".into(),
            namespaces: Grant::Only(BTreeSet::from(["default".into(), "batch".into()])),
            admin: true,
        };
        let ownership = Ownership::default();
        ownership.open_session(&SessionId(SESSION.into()), &principal.name);
        Caller {
            principal,
            ownership,
        }
    }

    /// What `BrokerService::session` checks: a bounded id, the caller's.
    fn session(&self, id: &str) -> Verdict {
        field(limits::text("session_id", id, limits::MAX_ID_BYTES))?;
        let session = SessionId(id.to_owned());
        Ok(self
            .ownership
            .check_session(&session, &self.principal.name)?)
    }
}

/// Decodes `body` as an `R` and runs `check` on it.
fn run<R: Message + Default>(body: &[u8], check: fn(&R, &Caller) -> Verdict) {
    let Ok(request) = R::decode(body) else {
        return;
    };
    if let Err(status) = check(&request, &Caller::new()) {
        assert!(!status.message().is_empty(), "a refusal says why");
    }
}

/// A conversion's result, held to what `api::convert` promises of its
/// refusals.
fn field<T>(converted: Result<T, Status>) -> Result<T, Status> {
    if let Err(status) = &converted {
        assert!(
            status.code() == Code::InvalidArgument,
            "refused as {:?}: {}",
            status.code(),
            status.message()
        );
    }
    converted
}

/// Resources go back to protobuf in leases and Admin answers and may come
/// in again from there: the trip must not change them.
fn round_trip(resources: &Resources) {
    let wire = convert::api_resources(resources);
    match convert::resources("round_trip", Some(&wire)) {
        Ok(back) => assert_eq!(&back, resources, "through {wire:?}"),
        Err(status) => panic!("{resources} does not come back from {wire:?}: {status:?}"),
    }
}

/// A namespace is stored and answered as `to_api` writes it and read back
/// with `from_api`: the trip must not change it, whatever the role prefix.
/// A NaN weight (the core refuses it later) is compared by its bits.
fn namespace_round_trip(put: &core::Namespace) {
    let wire = namespace::to_api(put);
    let mut back = namespace::from_api(&wire, "another-prefix-")
        .unwrap_or_else(|status| panic!("{put:?} does not come back from {wire:?}: {status:?}"));
    assert_eq!(back.weight.to_bits(), put.weight.to_bits());
    back.weight = put.weight;
    if !put.weight.is_nan() {
        assert_eq!(&back, put, "through {wire:?}");
    }
}

// ----- one check per request type: what its handler runs before sending a
// command to the runtime ------------------------------------------------------

fn subscribe(request: &api::SubscribeRequest, caller: &Caller) -> Verdict {
    field(convert::subscribe(request))?;
    caller.principal.check_namespaces(&request.namespaces)?;
    Ok(())
}

fn acquire(request: &api::AcquireRequest, caller: &Caller) -> Verdict {
    let session = caller.session(&request.session_id);
    let acquire = field(convert::acquire(request))?;
    for slot in &acquire.slots {
        round_trip(&slot.resources);
    }
    session
}

fn hold(request: &api::HoldRequest, caller: &Caller) -> Verdict {
    let session = caller.session(&request.session_id);
    field(convert::lease_ids(&request.lease_ids))?;
    field(convert::duration("hold_for", request.hold_for.as_ref()))?;
    session
}

fn release(request: &api::ReleaseRequest, caller: &Caller) -> Verdict {
    let session = caller.session(&request.session_id);
    field(convert::lease_ids(&request.lease_ids))?;
    field(convert::duration("refuse_for", request.refuse_for.as_ref()))?;
    session
}

fn launch(request: &api::LaunchRequest, caller: &Caller) -> Verdict {
    let session = caller.session(&request.session_id);
    for (_, work) in field(convert::launches(request))? {
        for task in work.tasks() {
            round_trip(&task.resources);
        }
    }
    session
}

fn kill(request: &api::KillRequest, caller: &Caller) -> Verdict {
    let session = caller.session(&request.session_id);
    field(convert::task_ids(&request.task_ids))?;
    field(convert::duration("grace", request.grace.as_ref()))?;
    session
}

fn acknowledge(request: &api::AcknowledgeRequest, caller: &Caller) -> Verdict {
    caller.session(&request.session_id)
}

fn reconcile(request: &api::ReconcileRequest, caller: &Caller) -> Verdict {
    let session = caller.session(&request.session_id);
    field(convert::task_ids(&request.task_ids))?;
    session
}

fn list_agents(request: &api::ListAgentsRequest, caller: &Caller) -> Verdict {
    caller.session(&request.session_id)
}

fn list_leases(request: &api::ListLeasesRequest, caller: &Caller) -> Verdict {
    let session = caller.session(&request.session_id);
    field(convert::namespace_filter(&request.namespace))?;
    session
}

fn list_tasks(request: &api::ListTasksRequest, caller: &Caller) -> Verdict {
    let session = caller.session(&request.session_id);
    field(convert::namespace_filter(&request.namespace))?;
    session
}

fn put_namespace(request: &api::PutNamespaceRequest, _: &Caller) -> Verdict {
    if let Some(asked) = &request.namespace {
        namespace_round_trip(&field(namespace::from_api(asked, ROLE_PREFIX))?);
    }
    Ok(())
}

fn get_namespace(request: &api::GetNamespaceRequest, _: &Caller) -> Verdict {
    field(limits::name("name", &request.name))
}

fn delete_namespace(request: &api::DeleteNamespaceRequest, _: &Caller) -> Verdict {
    field(limits::name("name", &request.name))
}

fn get_usage(request: &api::GetUsageRequest, _: &Caller) -> Verdict {
    field(convert::namespace_filter(&request.namespace)).map(drop)
}

fn drain_frontend(request: &api::DrainFrontendRequest, _: &Caller) -> Verdict {
    field(limits::name("name", &request.name))
}

fn list_reclaims(request: &api::ListReclaimsRequest, _: &Caller) -> Verdict {
    field(convert::namespace_filter(&request.namespace)).map(drop)
}

fn list_all_leases(request: &api::ListAllLeasesRequest, _: &Caller) -> Verdict {
    field(admin::filters(&request.namespace, &request.frontend)).map(drop)
}

fn list_all_tasks(request: &api::ListAllTasksRequest, _: &Caller) -> Verdict {
    field(admin::filters(&request.namespace, &request.frontend)).map(drop)
}

fn list_waiting_requests(request: &api::ListWaitingRequestsRequest, _: &Caller) -> Verdict {
    field(admin::waiting_filters(request)).map(drop)
}

/// The Admin requests with nothing in them to check: only decoding runs.
fn as_is<R>(_: &R, _: &Caller) -> Verdict {
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let (_, check) = REQUESTS[usize::from(which) % REQUESTS.len()];
    within_budget(data.len(), PER_BYTE, SLACK, || check(body));
});
