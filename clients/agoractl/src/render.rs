//! The API's answers as cells and text for people. Pure functions of the
//! answer and the time `now`, so each is tested without a broker.

use std::time::{Duration, SystemTime};

use agora_proto::agora::v1 as api;
use tonic_types::StatusExt;

use crate::output::Table;

/// A number without needless decimals: `2`, `0.5`, `1.25`.
pub fn number(value: f64) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    if rounded == rounded.trunc() && rounded.abs() < 1e15 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded}")
    }
}

/// Resources as `cpus=2 mem=1024MB disk=100MB gpus=1 other=3
/// ports=31000-31002`; `-` when there are none.
pub fn resources(resources: Option<&api::Resources>) -> String {
    let Some(r) = resources else {
        return "-".into();
    };
    let mut parts = Vec::new();
    for (name, value, unit) in [
        ("cpus", r.cpus, ""),
        ("mem", r.mem_mb, "MB"),
        ("disk", r.disk_mb, "MB"),
        ("gpus", r.gpus, ""),
    ] {
        if value != 0.0 {
            parts.push(format!("{name}={}{unit}", number(value)));
        }
    }
    let mut others: Vec<_> = r.scalars.iter().filter(|(_, v)| **v != 0.0).collect();
    others.sort_by(|a, b| a.0.cmp(b.0));
    for (name, value) in others {
        parts.push(format!("{name}={}", number(*value)));
    }
    if !r.ports.is_empty() {
        let ranges: Vec<String> = r
            .ports
            .iter()
            .map(|p| {
                if p.begin == p.end {
                    p.begin.to_string()
                } else {
                    format!("{}-{}", p.begin, p.end)
                }
            })
            .collect();
        parts.push(format!("ports={}", ranges.join(",")));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" ")
    }
}

/// A protobuf time as a system time; `None` when unset or out of range.
pub fn time(at: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let at = at?;
    let seconds = u64::try_from(at.seconds).ok()?;
    let nanos = u32::try_from(at.nanos).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

/// A span of time as kubectl shows ages: `45s`, `12m`, `5h`, `3d`.
pub fn span(duration: Duration) -> String {
    let s = duration.as_secs();
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// How long ago `at` was; `-` when unknown.
pub fn age(at: Option<&prost_types::Timestamp>, now: SystemTime) -> String {
    time(at).map_or("-".into(), |at| {
        span(now.duration_since(at).unwrap_or_default())
    })
}

/// How long until `at`: `in 25s`, or `now` once it has passed; `-` when
/// unknown.
pub fn until(at: Option<&prost_types::Timestamp>, now: SystemTime) -> String {
    match time(at).map(|at| at.duration_since(now)) {
        None => "-".into(),
        Some(Ok(left)) => format!("in {}", span(left)),
        Some(Err(_)) => "now".into(),
    }
}

/// A protobuf duration, as `30s`.
pub fn duration(duration: Option<&prost_types::Duration>) -> Option<String> {
    let d = duration?;
    let d = Duration::new(u64::try_from(d.seconds).ok()?, u32::try_from(d.nanos).ok()?);
    Some(if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    })
}

/// An error status as kubectl shows them: `Error from server (NotFound,
/// reason NAMESPACE_NOT_FOUND): namespace "x" not found`, with the
/// reason's metadata when there is any.
pub fn status(status: &tonic::Status) -> String {
    let code = format!("{:?}", status.code());
    let mut text = match status.get_details_error_info() {
        Some(info) => {
            let mut facts: Vec<String> = info
                .metadata
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            facts.sort();
            let facts = if facts.is_empty() {
                String::new()
            } else {
                format!(" [{}]", facts.join(" "))
            };
            format!(
                "Error from server ({code}, reason {}): {}{facts}",
                info.reason,
                status.message()
            )
        }
        None => format!("Error from server ({code}): {}", status.message()),
    };
    if let Some(bad) = status.get_details_bad_request() {
        for violation in bad.field_violations {
            text.push_str(&format!(
                "\n  field {}: {}",
                violation.field, violation.description
            ));
        }
    }
    text
}

/// The namespaces table.
pub fn namespaces(namespaces: &[api::Namespace]) -> Table {
    let mut table = Table::new(&[
        ("NAME", false),
        ("ROLE", false),
        ("WEIGHT", false),
        ("GUARANTEE", false),
        ("LIMIT", false),
        ("LENDS", true),
        ("MAX-BORROWED", true),
        ("MAX-HOLD", true),
    ]);
    for ns in namespaces {
        let lends = match &ns.lending {
            Some(l) if l.lend == api::lending_policy::Lend::Idle as i32 => "idle",
            _ => "none",
        };
        table.row(vec![
            ns.name.clone(),
            ns.role.clone(),
            number(ns.weight),
            resources(ns.guarantee.as_ref()),
            resources(ns.limit.as_ref()),
            lends.into(),
            resources(ns.max_borrowed.as_ref()),
            duration(ns.max_hold.as_ref()).unwrap_or_else(|| "default".into()),
        ]);
    }
    table
}

/// What a frontend is doing, in a word.
pub fn frontend_status(frontend: &api::Frontend) -> &'static str {
    let holds = frontend.leases + frontend.live_tasks + frontend.waiting_requests > 0;
    match (frontend.draining, holds, frontend.sessions > 0) {
        (true, false, _) => "Drained",
        (true, true, _) => "Draining",
        (false, _, true) => "Active",
        (false, _, false) => "Disconnected",
    }
}

/// The frontends table.
pub fn frontends(frontends: &[api::Frontend], now: SystemTime) -> Table {
    let mut table = Table::new(&[
        ("NAME", false),
        ("STATUS", false),
        ("NAMESPACES", false),
        ("SESSIONS", false),
        ("LEASES", false),
        ("TASKS", false),
        ("WAITING", false),
        ("UNACKED", true),
        ("LAST-SEEN", true),
        ("FORGET", true),
    ]);
    for f in frontends {
        let last_seen = if f.sessions > 0 {
            "now".into()
        } else {
            age(f.last_seen.as_ref(), now)
        };
        table.row(vec![
            f.name.clone(),
            frontend_status(f).into(),
            f.namespaces.join(","),
            f.sessions.to_string(),
            f.leases.to_string(),
            f.live_tasks.to_string(),
            f.waiting_requests.to_string(),
            f.unacknowledged_events.to_string(),
            last_seen,
            until(f.forget_at.as_ref(), now),
        ]);
    }
    table
}

/// The leases table.
pub fn leases(leases: &[api::FrontendLease], now: SystemTime) -> Table {
    let mut table = Table::new(&[
        ("ID", false),
        ("FRONTEND", false),
        ("NAMESPACE", false),
        ("AGENT", false),
        ("RESOURCES", false),
        ("EXPIRES", false),
        ("REVOCABLE", true),
        ("BORROWED-FROM", true),
        ("AGENT-ID", true),
    ]);
    for entry in leases {
        let Some(lease) = &entry.lease else { continue };
        let agent = lease.agent.clone().unwrap_or_default();
        table.row(vec![
            lease.id.clone(),
            entry.frontend.clone(),
            lease.namespace.clone(),
            agent.hostname,
            resources(lease.resources.as_ref()),
            until(lease.expires_at.as_ref(), now),
            if lease.revocable.is_some() {
                "yes"
            } else {
                "no"
            }
            .into(),
            dash(&lease.borrowed_from),
            agent.id,
        ]);
    }
    table
}

/// A task state without its prefix: `RUNNING`.
pub fn task_state(state: i32) -> String {
    api::TaskState::try_from(state).map_or_else(
        |_| format!("UNKNOWN({state})"),
        |s| s.as_str_name().trim_start_matches("TASK_STATE_").to_owned(),
    )
}

/// The tasks table.
pub fn tasks(tasks: &[api::FrontendTask], now: SystemTime) -> Table {
    let mut table = Table::new(&[
        ("ID", false),
        ("FRONTEND", false),
        ("NAMESPACE", false),
        ("STATE", false),
        ("AGENT", false),
        ("UPDATED", false),
        ("CLIENT-ID", true),
        ("RESOURCES", true),
        ("REASON", true),
        ("MESSAGE", true),
    ]);
    for task in tasks {
        let Some(status) = &task.status else { continue };
        table.row(vec![
            status.task_id.clone(),
            task.frontend.clone(),
            status.namespace.clone(),
            task_state(status.state),
            status.agent_id.clone(),
            age(status.timestamp.as_ref(), now),
            status.client_task_id.clone(),
            resources(task.resources.as_ref()),
            dash(&status.reason),
            dash(&status.message),
        ]);
    }
    table
}

/// The agents table.
pub fn agents(agents: &[api::AgentView]) -> Table {
    let mut table = Table::new(&[
        ("ID", false),
        ("HOSTNAME", false),
        ("POOLED", false),
        ("LEASED", false),
        ("ATTRIBUTES", true),
    ]);
    for view in agents {
        let agent = view.agent.clone().unwrap_or_default();
        let mut attributes: Vec<String> = agent
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        attributes.sort();
        table.row(vec![
            agent.id,
            agent.hostname,
            resources(view.pooled.as_ref()),
            resources(view.leased.as_ref()),
            dash(&attributes.join(",")),
        ]);
    }
    table
}

/// The reclaims table.
pub fn reclaims(reclaims: &[api::Reclaim], now: SystemTime) -> Table {
    let mut table = Table::new(&[
        ("OWNER", false),
        ("BORROWER", false),
        ("TASKS", false),
        ("DECIDED", false),
        ("DEADLINE", false),
        ("REASON", true),
    ]);
    for r in reclaims {
        table.row(vec![
            r.owner_namespace.clone(),
            r.borrower_namespace.clone(),
            r.task_ids.len().to_string(),
            age(r.decided_at.as_ref(), now),
            until(r.deadline.as_ref(), now),
            r.reason.clone(),
        ]);
    }
    table
}

/// A wait reason's kind as a word: `capacity`, `quota`, `gang`.
pub fn reason_kind(kind: i32) -> String {
    api::wait_reason::Kind::try_from(kind).map_or_else(
        |_| format!("unknown({kind})"),
        |k| {
            k.as_str_name()
                .trim_start_matches("KIND_")
                .to_lowercase()
                .replace('_', "-")
        },
    )
}

/// The waiting requests table.
pub fn waiting(requests: &[api::WaitingRequest], now: SystemTime) -> Table {
    let mut table = Table::new(&[
        ("FRONTEND", false),
        ("NAMESPACE", false),
        ("REQUEST-ID", false),
        ("POSITION", false),
        ("SLOTS", false),
        ("WAITING", false),
        ("GIVES-UP", false),
        ("WHY", false),
        ("ASKED", true),
        ("GANG", true),
    ]);
    for w in requests {
        let why: Vec<String> = w.reasons.iter().map(|r| reason_kind(r.kind)).collect();
        table.row(vec![
            w.frontend.clone(),
            w.namespace.clone(),
            dash(&w.request_id),
            w.position.to_string(),
            w.slots.to_string(),
            age(w.since.as_ref(), now),
            until(w.deadline.as_ref(), now),
            why.join(","),
            resources(w.asked.as_ref()),
            if w.gang { "yes" } else { "no" }.into(),
        ]);
    }
    table
}

/// What the namespace's leases and tasks count against its limit: leased
/// plus running, less what is borrowed or revocable.
pub fn quota_used(usage: &api::NamespaceUsage) -> api::Resources {
    let d = api::Resources::default();
    let (leased, running, borrowed) = (
        usage.leased.as_ref().unwrap_or(&d),
        usage.running.as_ref().unwrap_or(&d),
        usage.borrowed.as_ref().unwrap_or(&d),
    );
    api::Resources {
        cpus: leased.cpus + running.cpus - borrowed.cpus,
        mem_mb: leased.mem_mb + running.mem_mb - borrowed.mem_mb,
        disk_mb: leased.disk_mb + running.disk_mb - borrowed.disk_mb,
        gpus: leased.gpus + running.gpus - borrowed.gpus,
        ..Default::default()
    }
}

/// `used/limit` and the percentage, or `used/-` and `-` when unlimited.
fn against(used: f64, limit: f64) -> (String, String) {
    if limit > 0.0 {
        (
            format!("{}/{}", number(used), number(limit)),
            format!("{}%", (used / limit * 100.0).round()),
        )
    } else {
        (format!("{}/-", number(used)), "-".into())
    }
}

/// The `top` table: usage against quota per namespace.
pub fn top(usages: &[api::NamespaceUsage]) -> Table {
    let mut table = Table::new(&[
        ("NAMESPACE", false),
        ("CPUS", false),
        ("CPUS%", false),
        ("MEM(MB)", false),
        ("MEM%", false),
        ("BORROWED", false),
        ("LENT", false),
        ("SHARE", false),
        ("WAITING-SLOTS", false),
        ("GPUS", true),
        ("DISK(MB)", true),
        ("LEASED", true),
        ("RUNNING", true),
        ("GUARANTEE", true),
    ]);
    for u in usages {
        let used = quota_used(u);
        let limit = u.limit.clone().unwrap_or_default();
        let (cpus, cpus_pct) = against(used.cpus, limit.cpus);
        let (mem, mem_pct) = against(used.mem_mb, limit.mem_mb);
        let (gpus, _) = against(used.gpus, limit.gpus);
        let (disk, _) = against(used.disk_mb, limit.disk_mb);
        table.row(vec![
            u.namespace.clone(),
            cpus,
            cpus_pct,
            mem,
            mem_pct,
            resources(u.borrowed.as_ref()),
            resources(u.lent.as_ref()),
            format!("{:.3}", u.dominant_share),
            u.waiting_slots.to_string(),
            gpus,
            disk,
            resources(u.leased.as_ref()),
            resources(u.running.as_ref()),
            resources(u.guarantee.as_ref()),
        ]);
    }
    table
}

/// `describe namespace`: the namespace, its usage and its waiting demand.
pub fn describe_namespace(
    ns: &api::Namespace,
    usage: Option<&api::NamespaceUsage>,
    waiting: &[api::WaitingRequest],
    now: SystemTime,
) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("{:<16}{value}\n", format!("{label}:")));
    };
    line("Name", ns.name.clone());
    line("Role", ns.role.clone());
    line("Weight", number(ns.weight));
    line("Guarantee", resources(ns.guarantee.as_ref()));
    line("Limit", resources(ns.limit.as_ref()));
    line(
        "Max hold",
        duration(ns.max_hold.as_ref()).unwrap_or_else(|| "the broker's default".into()),
    );
    line("Max borrowed", resources(ns.max_borrowed.as_ref()));
    let lending = match &ns.lending {
        Some(l) if l.lend == api::lending_policy::Lend::Idle as i32 => format!(
            "lends idle capacity, at most {}, reclaim grace {}",
            resources(l.max_lent.as_ref()),
            duration(l.reclaim_grace.as_ref()).unwrap_or_else(|| "0s".into())
        ),
        _ => "lends nothing".into(),
    };
    line("Lending", lending);
    if let Some(u) = usage {
        line("Leased", resources(u.leased.as_ref()));
        line("Running", resources(u.running.as_ref()));
        line("Quota used", resources(Some(&quota_used(u))));
        line("Borrowed", resources(u.borrowed.as_ref()));
        line("Lent", resources(u.lent.as_ref()));
        line("Dominant share", format!("{:.3}", u.dominant_share));
        line("Waiting slots", u.waiting_slots.to_string());
    }
    if waiting.is_empty() {
        out.push_str("Waiting demand: none\n");
    } else {
        out.push_str(&format!("Waiting demand: {} request(s)\n", waiting.len()));
        for row in waiting_table_lines(waiting, now) {
            out.push_str("  ");
            out.push_str(&row);
            out.push('\n');
        }
    }
    out
}

fn waiting_table_lines(waiting: &[api::WaitingRequest], now: SystemTime) -> Vec<String> {
    self::waiting(waiting, now)
        .render(false)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `why`: each waiting request and what it waits for, in words.
pub fn why(requests: &[api::WaitingRequest], now: SystemTime) -> String {
    let mut out = String::new();
    for w in requests {
        let id = if w.request_id.is_empty() {
            String::new()
        } else {
            format!(" (request id {})", w.request_id)
        };
        out.push_str(&format!(
            "Request of frontend {}{id} in namespace {}: #{} in its queue, waiting {}, gives up {}\n",
            w.frontend,
            w.namespace,
            w.position,
            age(w.since.as_ref(), now),
            until(w.deadline.as_ref(), now),
        ));
        let constraints = match w.constraints {
            0 => String::new(),
            1 => ", 1 constraint".into(),
            n => format!(", {n} constraints"),
        };
        out.push_str(&format!(
            "  asks {} slot(s){} for {}{constraints}\n",
            w.slots,
            if w.gang { " as a gang" } else { "" },
            resources(w.asked.as_ref()),
        ));
        out.push_str("  waits for:\n");
        for reason in &w.reasons {
            out.push_str(&format!(
                "    {:<13}{}\n",
                format!("{}:", reason_kind(reason.kind)),
                reason.message
            ));
        }
    }
    out
}

fn dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
    }

    #[test]
    fn numbers_and_resources_read_short() {
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(0.1 + 0.2), "0.3");
        let r = api::Resources {
            cpus: 1.5,
            mem_mb: 128.0,
            scalars: [("fpgas".to_owned(), 2.0)].into(),
            ports: vec![
                api::PortRange {
                    begin: 31000,
                    end: 31002,
                },
                api::PortRange {
                    begin: 32000,
                    end: 32000,
                },
            ],
            ..Default::default()
        };
        assert_eq!(
            resources(Some(&r)),
            "cpus=1.5 mem=128MB fpgas=2 ports=31000-31002,32000"
        );
        assert_eq!(resources(None), "-");
        assert_eq!(resources(Some(&api::Resources::default())), "-");
    }

    #[test]
    fn times_read_as_kubectl_ages() {
        assert_eq!(age(at(1_000_000 - 45).as_ref(), now()), "45s");
        assert_eq!(age(at(1_000_000 - 600).as_ref(), now()), "10m");
        assert_eq!(age(at(1_000_000 - 3 * 3600).as_ref(), now()), "3h");
        assert_eq!(age(at(1_000_000 - 3 * 86_400).as_ref(), now()), "3d");
        assert_eq!(age(None, now()), "-");
        assert_eq!(until(at(1_000_025).as_ref(), now()), "in 25s");
        assert_eq!(until(at(999_000).as_ref(), now()), "now");
    }

    #[test]
    fn a_refusal_shows_its_code_reason_and_facts() {
        use tonic_types::{ErrorDetails, StatusExt};
        let details = ErrorDetails::with_error_info(
            "NAMESPACE_NOT_FOUND",
            "agora.v1",
            [("namespace".to_owned(), "nope".to_owned())],
        );
        let refused = tonic::Status::with_error_details(
            tonic::Code::NotFound,
            "namespace \"nope\" not found",
            details,
        );
        assert_eq!(
            status(&refused),
            "Error from server (NotFound, reason NAMESPACE_NOT_FOUND): namespace \"nope\" \
             not found [namespace=nope]"
        );
        assert_eq!(
            status(&tonic::Status::permission_denied("not an admin")),
            "Error from server (PermissionDenied): not an admin"
        );
    }

    #[test]
    fn frontends_show_what_they_are_doing() {
        let active = api::Frontend {
            name: "spark".into(),
            namespaces: vec!["default".into(), "batch".into()],
            sessions: 1,
            leases: 2,
            ..Default::default()
        };
        let drained = api::Frontend {
            name: "ci".into(),
            draining: true,
            last_seen: at(1_000_000 - 30),
            ..Default::default()
        };
        let table = frontends(&[active, drained], now()).render(false);
        assert_eq!(
            table,
            "NAME    STATUS    NAMESPACES      SESSIONS   LEASES   TASKS   WAITING\n\
             spark   Active    default,batch   1          2        0       0\n\
             ci      Drained                   0          0        0       0\n"
        );
    }

    #[test]
    fn top_measures_quota_use_against_the_limit() {
        let usage = api::NamespaceUsage {
            namespace: "batch".into(),
            leased: Some(api::Resources {
                cpus: 1.0,
                ..Default::default()
            }),
            running: Some(api::Resources {
                cpus: 4.0,
                mem_mb: 512.0,
                ..Default::default()
            }),
            borrowed: Some(api::Resources {
                cpus: 1.0,
                ..Default::default()
            }),
            limit: Some(api::Resources {
                cpus: 8.0,
                ..Default::default()
            }),
            dominant_share: 0.25,
            waiting_slots: 3,
            ..Default::default()
        };
        let table = top(&[usage]).render(false);
        assert_eq!(
            table.lines().nth(1).unwrap(),
            "batch       4/8    50%     512/-     -      cpus=1     -      0.250   3"
        );
    }

    #[test]
    fn why_says_what_each_request_waits_for() {
        let request = api::WaitingRequest {
            frontend: "mpi".into(),
            namespace: "default".into(),
            request_id: "job-7".into(),
            position: 1,
            slots: 3,
            gang: true,
            asked: Some(api::Resources {
                cpus: 3.0,
                ..Default::default()
            }),
            since: at(1_000_000 - 12),
            deadline: at(1_000_048),
            reasons: vec![api::WaitReason {
                kind: api::wait_reason::Kind::Gang as i32,
                message: "a gang of 3 slots takes all or none: 2 fit together now".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            why(std::slice::from_ref(&request), now()),
            "Request of frontend mpi (request id job-7) in namespace default: #1 in its \
             queue, waiting 12s, gives up in 48s\n\
             \x20 asks 3 slot(s) as a gang for cpus=3\n\
             \x20 waits for:\n\
             \x20   gang:        a gang of 3 slots takes all or none: 2 fit together now\n"
        );
        let table = waiting(&[request], now()).render(false);
        assert!(table.lines().nth(1).unwrap().ends_with("gang"), "{table}");
    }
}
