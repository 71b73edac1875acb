//! What the crash loop found: the numbers to print, and every broken
//! promise, gathered from the frontends' books, the leases held at each
//! crash and the devcluster's own accounting, and reported all at once.

use std::collections::{BTreeMap, BTreeSet};

use agora_tests::client::api::{TaskState, lease_lost::Reason};
use serde_json::Value;

use super::fleet::{Answer, LeaseFate, SimFrontend, is_terminal};

/// Numbers and broken promises.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    lines: Vec<String>,
    problems: BTreeMap<&'static str, Vec<String>>,
}

impl Findings {
    /// A line of numbers for the report.
    pub(crate) fn note(&mut self, line: String) {
        self.lines.push(line);
    }

    /// A broken promise of the kind `what`.
    fn problem(&mut self, what: &'static str, detail: String) {
        self.problems.entry(what).or_default().push(detail);
    }

    /// Prints the numbers, and fails the test with every broken promise.
    pub(crate) fn report(self, seed: u64) {
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
    /// those killed at the end KILLED; events in sequence, none replayed
    /// at or below `resume_after`, none about tasks never launched.
    pub(crate) fn tasks(
        &mut self,
        fleet: &[SimFrontend],
        killed_at_end: &BTreeSet<(usize, String)>,
    ) {
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
    pub(crate) fn leases(
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
        for frontend in fleet {
            let book = frontend.book();
            for odd in &book.lease_oddities {
                self.problem(
                    "lease stories that contradict",
                    format!("{}: {odd}", frontend.name),
                );
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
             {holder_held} kills; LeaseLost by reason: {reasons:?}",
            held_at_kill.len()
        ));
    }

    /// The devcluster: one framework throughout, subscribed again after
    /// every crash (`starts` SUBSCRIBE calls at least), no launch refused,
    /// no agent ever using more than it has.
    pub(crate) fn devcluster(
        &mut self,
        state: &Value,
        record: &Value,
        samples: &Samples,
        starts: usize,
    ) {
        let frameworks = count(&state["frameworks"]) + count(&state["completed_frameworks"]);
        if frameworks != 1 {
            self.problem("frameworks (one expected)", frameworks.to_string());
        }
        let id = state["frameworks"][0]["id"].as_str().unwrap_or_default();
        let calls = record["frameworks"][id]["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        let mut refused: BTreeMap<String, usize> = BTreeMap::new();
        for call in &calls {
            let kind = call["type"].as_str().unwrap_or_default().to_owned();
            if call["status"].as_u64().unwrap_or_default() >= 400 {
                *refused.entry(kind.clone()).or_default() += 1;
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
}

fn count(list: &Value) -> usize {
    list.as_array().map_or(0, Vec::len)
}

/// What the devcluster's accounting showed while the broker crashed.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    /// How many `/state` documents were read.
    pub(crate) taken: u64,
    /// Agents whose used resources exceeded their total, as seen.
    pub(crate) overused: Vec<String>,
    /// The highest used/total cpu ratio of any agent.
    pub(crate) peak_cpus: f64,
}

impl Samples {
    /// Takes one `/state` document.
    pub(crate) fn take(&mut self, state: &Value) {
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
pub(crate) fn out_of_order(states: &[TaskState]) -> Option<String> {
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
