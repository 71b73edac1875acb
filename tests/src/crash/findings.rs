//! What the crash loop found: the numbers to print, and every broken
//! promise, gathered from the frontends' books, the leases held at each
//! crash and the devcluster's own accounting, and reported all at once.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::api::{TaskState, lease_lost::Reason};
use serde_json::Value;

use super::fleet::{Answer, LeaseFate, SimFrontend, is_terminal};
use super::{spread, streams::Streams};

/// How soon a launch answered OK must reach Mesos: the broker's launch
/// linger (20 ms), then the commit in flight and the one that covers the
/// ACCEPT's turn (the runtime holds every effect until its turn is
/// committed; with etcd on a busy machine a commit takes tens of
/// milliseconds), with room for a busy machine.
const TO_MESOS: f64 = 0.5;

/// How long after the broker sends an answer the frontend stamps it, at
/// most.
pub(crate) const STAMP_LAG: f64 = 0.1;

/// Numbers and broken promises.
#[derive(Debug, Default)]
pub struct Findings {
    lines: Vec<String>,
    problems: BTreeMap<&'static str, Vec<String>>,
}

impl Findings {
    /// A line of numbers for the report.
    pub fn note(&mut self, line: String) {
        self.lines.push(line);
    }

    /// A broken promise of the kind `what`.
    pub fn problem(&mut self, what: &'static str, detail: String) {
        self.problems.entry(what).or_default().push(detail);
    }

    /// Prints the numbers, and fails the test with every broken promise.
    pub fn report(self, seed: u64) {
        for line in &self.lines {
            println!("{line}");
        }
        let summary: Vec<String> = self
            .problems
            .iter()
            .map(|(what, details)| format!("{} {what}: {details:#?}", details.len()))
            .collect();
        assert!(
            summary.is_empty(),
            "AGORA_CRASH_SEED={seed}:\n{}",
            summary.join("\n")
        );
    }

    /// Tasks: every promised one ended at its frontend, statuses in order,
    /// those killed at the end KILLED, none `unsettled` (neither ended nor,
    /// for a long task no Kill was answered for, running) once the loop
    /// was over; events in sequence, none replayed at or below
    /// `resume_after`, none about tasks never launched.
    pub fn tasks(
        &mut self,
        fleet: &[SimFrontend],
        killed_at_end: &BTreeSet<(usize, String)>,
        unsettled: Vec<(String, bool)>,
    ) {
        for (task, kill_answered) in unsettled {
            let what = if kill_answered {
                "tasks still running after a Kill answered OK (the kill was lost)"
            } else {
                "tasks unsettled after the loop"
            };
            self.problem(what, task);
        }
        let mut terminal: BTreeMap<String, usize> = BTreeMap::new();
        let (mut asked, mut promised, mut failed, mut failed_seen) = (0, 0, 0, 0);
        let (mut statuses, mut sessions, mut not_ready, mut replayed) = (0, 0, 0, 0);
        for (f, frontend) in fleet.iter().enumerate() {
            let book = frontend.book();
            let name = &frontend.name;
            sessions += book.sessions;
            not_ready += book.not_ready;
            replayed += book.replayed;
            for gap in &book.gaps {
                self.problem("sequence gaps (expected, got)", format!("{name}: {gap:?}"));
            }
            for status in &book.strangers {
                self.problem(
                    "statuses of tasks never launched",
                    format!("{name}: {status:?}"),
                );
            }
            for (client, task) in &book.tasks {
                asked += 1;
                statuses += task.states.len();
                match task.answer {
                    Answer::Ok => promised += 1,
                    Answer::Failed => {
                        failed += 1;
                        failed_seen += usize::from(!task.states.is_empty());
                    }
                    Answer::Waiting => {}
                }
                let task_name = format!("{name}/{client}");
                if task.answer == Answer::Ok && !task.ended() {
                    self.problem(
                        "promised tasks lost",
                        format!("{task_name}: {:?}", task.states),
                    );
                }
                if let Some(why) = out_of_order(&task.states) {
                    self.problem("statuses out of order", format!("{task_name}: {why}"));
                }
                if let Some(last) = task.last().filter(|s| is_terminal(*s)) {
                    let reason = task.reasons.last().cloned().unwrap_or_default();
                    *terminal.entry(format!("{last:?} {reason}")).or_default() += 1;
                }
                if killed_at_end.contains(&(f, client.clone()))
                    && task.last() != Some(TaskState::Killed)
                {
                    self.problem(
                        "killed at the end, not KILLED",
                        format!("{task_name}: {:?}", task.states),
                    );
                }
            }
        }
        if replayed > 0 {
            self.problem(
                "events replayed at or below resume_after",
                replayed.to_string(),
            );
        }
        if promised == 0 {
            self.problem("no load", "no launch was answered OK".into());
        }
        self.note(format!(
            "tasks: {asked} launches asked, {promised} answered OK, {failed} failed ({failed_seen} of \
             them launched all the same); {statuses} statuses seen; {} killed at the end",
            killed_at_end.len()
        ));
        self.note(format!("terminal states seen: {terminal:?}"));
        self.note(format!(
            "frontends: {sessions} subscriptions, {not_ready} acquires NOT_READY"
        ));
    }

    /// Leases: each held at a crash was told lost with
    /// REASON_BROKER_RESTARTED (unless a launch on it reached the store),
    /// the holder held one at some crash, none lost twice or after a
    /// launch, and `vanished` (held by the frontends' books, not by the
    /// broker, never told lost) is empty.
    pub fn leases(
        &mut self,
        fleet: &[SimFrontend],
        held_at_kill: &BTreeMap<(usize, String), usize>,
        holder_held: usize,
        vanished: Vec<String>,
    ) {
        let mut told = 0;
        for ((f, lease), kill) in held_at_kill {
            let book = fleet[*f].book();
            match &book.leases[lease] {
                LeaseFate::Lost(Reason::BrokerRestarted) => told += 1,
                LeaseFate::Launching(client) if book.tasks[client].task_id.is_some() => {}
                LeaseFate::Launched => {}
                fate => self.problem(
                    "held at a crash, not told BROKER_RESTARTED",
                    format!("{}/{lease} at kill {kill}: {fate:?}", fleet[*f].name),
                ),
            }
        }
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut unknown = 0;
        for frontend in fleet {
            let book = frontend.book();
            for odd in &book.lease_oddities {
                self.problem(
                    "lease stories that contradict",
                    format!("{}: {odd}", frontend.name),
                );
            }
            unknown += book.unknown_lost.len();
            if book.unknown_lost.len() as u64 > book.acquires_failed {
                let what = "leases told lost, more than acquires whose answer was lost";
                let detail = format!(
                    "{}: {:?}, {} acquires failed",
                    frontend.name, book.unknown_lost, book.acquires_failed
                );
                self.problem(what, detail);
            }
            for fate in book.leases.values() {
                if let LeaseFate::Lost(reason) = fate {
                    *reasons.entry(format!("{reason:?}")).or_default() += 1;
                }
            }
        }
        for lease in vanished {
            self.problem("leases gone without a LeaseLost", lease);
        }
        if holder_held == 0 {
            self.problem(
                "no lease held at a crash",
                "the holder never held one".into(),
            );
        }
        self.note(format!(
            "leases: {} held at a kill, {told} told BROKER_RESTARTED; the holder held one at \
             {holder_held} kills; LeaseLost by reason: {reasons:?}, {unknown} of them for leases \
             whose Acquire answer died with the broker",
            held_at_kill.len()
        ));
    }

    /// The devcluster: one framework throughout, subscribed again after
    /// every crash (`starts` SUBSCRIBE calls at least), no launch refused,
    /// no agent ever using more than it has.
    pub fn devcluster(&mut self, state: &Value, record: &Value, samples: &Samples, starts: usize) {
        let frameworks = count(&state["frameworks"]) + count(&state["completed_frameworks"]);
        if frameworks != 1 {
            self.problem("frameworks (one expected)", frameworks.to_string());
        }
        let id = state["frameworks"][0]["id"].as_str().unwrap_or_default();
        let dropped = record["frameworks"][id]["dropped"]
            .as_u64()
            .unwrap_or_default();
        if dropped > 0 {
            let detail = format!("{dropped} calls dropped: raise --calls-kept");
            self.problem("the devcluster's record is incomplete", detail);
        }
        let calls = record["frameworks"][id]["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        // Refused calls by type: how many, and the first one's error.
        let mut refused: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for call in &calls {
            let kind = call["type"].as_str().unwrap_or_default().to_owned();
            if call["status"].as_u64().unwrap_or_default() >= 400 {
                let error = call["error"].as_str().unwrap_or_default().to_owned();
                refused.entry(kind.clone()).or_insert((0, error)).0 += 1;
            }
            for task in call["refused_tasks"].as_array().into_iter().flatten() {
                self.problem("launches the devcluster refused", task.to_string());
            }
            *by_type.entry(kind).or_default() += 1;
        }
        let subscribes = by_type.get("SUBSCRIBE").copied().unwrap_or_default();
        if subscribes < starts {
            self.problem(
                "SUBSCRIBE calls (one per start)",
                format!("{subscribes} for {starts} starts"),
            );
        }
        for overuse in &samples.overused {
            self.problem("agents using more than they have", overuse.clone());
        }
        if samples.taken == 0 {
            self.problem("no /state sample", String::new());
        }
        self.note(format!(
            "devcluster: {} /state samples, peak agent cpu use {:.0}%; {frameworks} framework; calls \
             {by_type:?}, refused {refused:?}",
            samples.taken,
            samples.peak_cpus * 100.0,
        ));
    }

    /// Mesos connections: one at a time, each opened by a SUBSCRIBE and
    /// silent once a newer one has called (see [`Streams`]).
    pub fn streams(&mut self, streams: &Streams) {
        for call in &streams.interleaved {
            let what = "calls of a Mesos connection after a newer one had called (two brokers \
                        calling Mesos in the same period)";
            self.problem(what, call.clone());
        }
        for call in &streams.unopened {
            self.problem("calls on a connection no SUBSCRIBE opened", call.clone());
        }
        let mut calls: Vec<f64> = streams.opened.iter().map(|s| s.calls as f64).collect();
        let mut gaps: Vec<f64> = streams.gaps().iter().map(|gap| gap * 1e3).collect();
        self.note(format!(
            "Mesos connections: {} in turn; calls on each: {}; silence between one's last call \
             and the next one's SUBSCRIBE: {}",
            streams.opened.len(),
            spread(&mut calls, 0, ""),
            spread(&mut gaps, 0, " ms"),
        ));
    }

    /// Every launch and every kill answered OK reached Mesos (an ACCEPT
    /// or a KILL naming the task in the devcluster's `record`) within
    /// [`TO_MESOS`] of the answer, unless the broker was killed (at
    /// `kills_at`) first.
    pub fn answers_reach_mesos(&mut self, fleet: &[SimFrontend], record: &Value, kills_at: &[f64]) {
        let (accepts, kills) = (calls_naming(record, "ACCEPT"), calls_naming(record, "KILL"));
        let mut launches = Reach::default();
        let mut killed = Reach::default();
        for frontend in fleet {
            for (client, task) in &frontend.book().tasks {
                let Some(id) = &task.task_id else {
                    continue;
                };
                let name = format!("{}/{client}", frontend.name);
                if let Some(at) = task.answered_at {
                    launches.check(&name, at, accepts.get(id), kills_at);
                }
                match task.kill_answered_at {
                    // Over before the Kill came: gone or finished, or killed
                    // by a KILL already sent (an earlier attempt of this
                    // Kill, resent after a takeover). The core had the end
                    // when the Kill came, the frontend not yet, so there was
                    // nothing to ask of Mesos. A kill that was lost shows as
                    // a task still running instead.
                    Some(at) if task.ended() && over_before(task.last(), kills.get(id), at) => {
                        killed.moot += 1;
                    }
                    Some(at) => {
                        let name = format!("{name} (states seen: {:?})", task.states);
                        killed.check(&name, at, kills.get(id), kills_at);
                    }
                    None => {}
                }
            }
        }
        for (what, mut reach) in [("launches", launches), ("kills", killed)] {
            self.note(reach.summary(what));
            for late in reach.late {
                self.problem(
                    "answered OK, not at Mesos in time",
                    format!("{what}: {late}"),
                );
            }
        }
    }
}

fn count(list: &Value) -> usize {
    list.as_array().map_or(0, Vec::len)
}

/// Whether a task that ended as `last` was over before a Kill answered at
/// `at`: it ended otherwise than killed, or a KILL naming it (among
/// `kill_calls`) reached Mesos before the answer.
fn over_before(last: Option<TaskState>, kill_calls: Option<&Vec<f64>>, at: f64) -> bool {
    last != Some(TaskState::Killed) || kill_calls.into_iter().flatten().any(|t| *t < at)
}

/// When the devcluster received each call of `kind`, by the task it names.
fn calls_naming(record: &Value, kind: &str) -> BTreeMap<String, Vec<f64>> {
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let frameworks = record["frameworks"].as_object().into_iter().flatten();
    let calls = frameworks.flat_map(|(_, f)| f["calls"].as_array().into_iter().flatten());
    for call in calls.filter(|c| c["type"] == kind) {
        let received = call["received"].as_f64().unwrap_or_default();
        for task in call["tasks"].as_array().into_iter().flatten() {
            let id = task.as_str().unwrap_or_default().to_owned();
            times.entry(id).or_default().push(received);
        }
    }
    times
}

/// How answers OK of one kind reached Mesos.
#[derive(Debug, Default)]
struct Reach {
    /// Seconds from each answer to its call at the devcluster.
    delays: Vec<f64>,
    /// Answers whose call a kill of the broker cut off.
    cut: usize,
    /// Answers whose call came late or never.
    late: Vec<String>,
    /// Kills of tasks that ended otherwise, which needed no call.
    moot: usize,
}

impl Reach {
    /// Takes the answer at `at` about task `name`, whose calls reached the
    /// devcluster at `calls`. The answer is stamped when the frontend has
    /// it, a little after the broker sent it: its call, and a kill of the
    /// broker that cut the call off, may come just before the stamp.
    fn check(&mut self, name: &str, at: f64, calls: Option<&Vec<f64>>, kills_at: &[f64]) {
        let after = |t: &f64| *t >= at - STAMP_LAG;
        let call = calls.into_iter().flatten().copied().find(after);
        let crash = kills_at.iter().copied().find(after);
        match (call, crash) {
            (Some(call), _) if call - at <= TO_MESOS => self.delays.push((call - at).max(0.0)),
            (_, Some(crash)) if crash - at <= TO_MESOS => self.cut += 1,
            (call, crash) => self.late.push(format!(
                "{name}: the call came {:?} s after the answer, the broker was killed {:?} s after",
                call.map(|c| c - at),
                crash.map(|k| k - at)
            )),
        }
    }

    /// The distribution of delays, for the report.
    fn summary(&mut self, what: &str) -> String {
        self.delays.sort_by(f64::total_cmp);
        let last = self.delays.len().saturating_sub(1);
        let at = |q: f64| {
            self.delays
                .get((last as f64 * q) as usize)
                .copied()
                .unwrap_or_default()
                * 1e3
        };
        format!(
            "{what} answered OK to their call at the devcluster: p50 {:.0} ms, p99 {:.0} ms, max \
             {:.0} ms ({} calls); {} cut off by a kill of the broker; {} of tasks already over",
            at(0.5),
            at(0.99),
            at(1.0),
            self.delays.len(),
            self.cut,
            self.moot
        )
    }
}

/// What the devcluster's accounting showed while the broker crashed.
#[derive(Debug, Default)]
pub struct Samples {
    /// How many `/state` documents were read.
    pub taken: u64,
    /// Agents whose used resources exceeded their total, as seen.
    pub overused: Vec<String>,
    /// The highest used/total cpu ratio of any agent.
    pub peak_cpus: f64,
}

impl Samples {
    /// Takes one `/state` document.
    pub fn take(&mut self, state: &Value) {
        self.taken += 1;
        for agent in state["slaves"].as_array().into_iter().flatten() {
            for resource in ["cpus", "mem"] {
                let total = agent["resources"][resource].as_f64().unwrap_or_default();
                let used = agent["used_resources"][resource]
                    .as_f64()
                    .unwrap_or_default();
                if used > total + 1e-9 {
                    let id = &agent["id"];
                    self.overused
                        .push(format!("{id}: {resource} {used} of {total}"));
                }
                if resource == "cpus" && total > 0.0 {
                    self.peak_cpus = self.peak_cpus.max(used / total);
                }
            }
        }
    }
}

/// Where each state stands: a status may repeat but never go back.
fn rank(state: TaskState) -> Option<u8> {
    match state {
        TaskState::Staging => Some(0),
        TaskState::Starting => Some(1),
        TaskState::Running => Some(2),
        TaskState::Killing => Some(3),
        state if is_terminal(state) => Some(4),
        _ => None,
    }
}

/// Why a task's states are not in order, if they are not: a state with no
/// place in a run without partitions, a step back, or anything after a
/// terminal state.
pub fn out_of_order(states: &[TaskState]) -> Option<String> {
    if let Some(odd) = states.iter().find(|s| rank(**s).is_none()) {
        return Some(format!("{odd:?} in {states:?}"));
    }
    for pair in states.windows(2) {
        if is_terminal(pair[0]) || rank(pair[1]) < rank(pair[0]) {
            return Some(format!("{:?} after {:?} in {states:?}", pair[1], pair[0]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_may_repeat_but_not_go_back_or_follow_an_end() {
        use TaskState::*;
        assert_eq!(
            out_of_order(&[Starting, Running, Running, Killing, Killed]),
            None
        );
        assert_eq!(out_of_order(&[Staging, Finished]), None);
        assert!(out_of_order(&[Running, Starting]).is_some());
        assert!(out_of_order(&[Running, Finished, Finished]).is_some());
        assert!(out_of_order(&[Finished, Running]).is_some());
        assert!(out_of_order(&[Running, Unreachable]).is_some());
    }
}
