//! Crash loops (issue 14): a [`fleet`] of simulated frontends launches
//! short and long tasks while the broker is knocked out under it again and
//! again, and once the loop is over the checks of [`findings`] say, with
//! numbers, whether anything a frontend or the quota depends on was lost.
//! `tests/durability.rs` kills a single broker; `tests/ha.rs` kills the
//! leader among replicas, and cuts it off from etcd.
//!
//! A loop is drawn from a seed: `AGORA_CRASH_SEED` (printed; random when
//! unset) draws every pause and every frontend's choices, and
//! `AGORA_CRASH_LOOPS` sets how many times the broker is knocked out.

pub mod findings;
pub mod fleet;
pub mod streams;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::{Process, SETTLE, admin, client::api, devcluster, get_json};
use findings::{Findings, Samples};
use fleet::{Answer, LeaseFate, NAMESPACE, Role, SimFrontend, Target, TaskBook, unix_now};
use streams::Streams;

/// Broker settings for a crash loop: offers stay pooled for the whole test
/// and the pool stays warm, so that acquires are served at once and the
/// role is never suppressed.
pub const POOL: [(&str, &str); 2] = [
    ("AGORA_BROKER__POOL_TTL", "120s"),
    ("AGORA_BROKER__WARM_POOL", "10"),
];

/// A devcluster with `agents` agents for a crash loop: they retry
/// unacknowledged status updates after 1 s (Mesos: 10 s), so that an
/// update whose acknowledgement died with a broker comes again soon, and
/// its record keeps every call of a long loop.
pub async fn cluster(agents: u32) -> Process {
    let args = [
        "--allocation-interval",
        "100ms",
        "--status-update-retry",
        "1s",
        "--calls-kept",
        "1000000",
    ];
    devcluster(agents, &args).await
}

/// A task Mesos runs: not in a terminal state in the devcluster's `/state`.
#[derive(Debug)]
pub struct MesosTask {
    /// Its id (Agora's task id).
    pub id: String,
    /// The cpus it holds.
    pub cpus: f64,
    /// The memory it holds, in MB.
    pub mem: f64,
}

/// The tasks of every framework in `/state` that Mesos does not consider
/// ended (a terminal task stays listed until its update is acknowledged).
pub fn live_mesos_tasks(state: &Value) -> Vec<MesosTask> {
    let frameworks = state["frameworks"].as_array().into_iter().flatten();
    frameworks
        .flat_map(|f| f["tasks"].as_array().into_iter().flatten())
        .filter_map(|t| {
            let name = t["state"].as_str()?.strip_prefix("TASK_")?;
            let ended = api::TaskState::from_str_name(&format!("TASK_STATE_{name}"))
                .is_some_and(fleet::is_terminal);
            (!ended).then(|| MesosTask {
                id: t["id"].as_str().unwrap_or_default().to_owned(),
                cpus: t["resources"]["cpus"].as_f64().unwrap_or_default(),
                mem: t["resources"]["mem"].as_f64().unwrap_or_default(),
            })
        })
        .collect()
}

/// `min … median … max over n` of `values`, each with `decimals` digits
/// and `unit` (such as `" s"`, or `""`).
pub fn spread(values: &mut [f64], decimals: usize, unit: &str) -> String {
    if values.is_empty() {
        return "(none)".to_owned();
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let (min, median, max) = (values[0], values[n / 2], values[n - 1]);
    format!(
        "min {min:.decimals$}{unit}, median {median:.decimals$}{unit}, max {max:.decimals$}{unit} \
         over {n}"
    )
}

/// How a crash loop is drawn: its seed and how many times the broker is
/// knocked out.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// What every random choice of the loop is drawn from.
    pub seed: u64,
    /// How many times the broker is knocked out.
    pub loops: u64,
    /// What a loop is, for the report: "kills of the broker".
    what: &'static str,
}

impl Plan {
    /// `AGORA_CRASH_SEED` (random when unset) and `AGORA_CRASH_LOOPS`
    /// (`default_loops` when unset), printed under `name` at once so that
    /// a failing run can be repeated. `what` names one loop in the report
    /// ("kills of the leader").
    pub fn from_env(name: &str, what: &'static str, default_loops: u64) -> Plan {
        let loops = env_number("AGORA_CRASH_LOOPS", default_loops);
        let seed = env_number("AGORA_CRASH_SEED", rand::rng().random());
        println!("{name}: AGORA_CRASH_SEED={seed} AGORA_CRASH_LOOPS={loops}");
        Plan { seed, loops, what }
    }

    /// Starts the fleet against `target`, and the sampling of the
    /// devcluster at `master` that checks no agent is ever used beyond
    /// what it has.
    pub fn start(self, target: &Target, master: &str) -> CrashLoop {
        let (stop, stopped) = watch::channel(false);
        let fleet = fleet(self.seed, target, &stopped);
        let sampler = sample_agents(master.to_owned(), stopped);
        CrashLoop {
            plan: self,
            rng: StdRng::seed_from_u64(self.seed),
            started: Instant::now(),
            fleet,
            stop,
            sampler,
            held_at_kill: BTreeMap::new(),
            holder_held: 0,
            kills_at: Vec::new(),
        }
    }
}

/// A crash loop under way: the fleet at work, and what each knock-out
/// found.
pub struct CrashLoop {
    plan: Plan,
    rng: StdRng,
    started: Instant,
    fleet: Vec<SimFrontend>,
    stop: watch::Sender<bool>,
    sampler: JoinHandle<Samples>,
    /// Each lease held when the broker was knocked out (frontend index,
    /// lease id), with the first knock-out that found it held.
    held_at_kill: BTreeMap<(usize, String), usize>,
    /// Knock-outs at which the holder held a lease.
    holder_held: usize,
    /// When each knock-out began, in Unix seconds.
    kills_at: Vec<f64>,
}

/// Four launchers, a quarter of their tasks long, and a holder.
fn fleet(seed: u64, target: &Target, stop: &watch::Receiver<bool>) -> Vec<SimFrontend> {
    let launcher = Role::Launcher {
        long_share: 0.25,
        long_cap: 3,
    };
    let mut fleet: Vec<SimFrontend> = (0..4)
        .map(|i| {
            let name = format!("launcher-{i}");
            SimFrontend::start(target, &name, launcher, seed + i, stop.clone())
        })
        .collect();
    let holder = SimFrontend::start(target, "holder", Role::Holder, seed + 99, stop.clone());
    fleet.push(holder);
    fleet
}

impl CrashLoop {
    /// Sleeps a while drawn from `millis`.
    pub async fn pause(&mut self, millis: Range<u64>) {
        let pause = self.rng.random_range(millis);
        sleep(Duration::from_millis(pause)).await;
    }

    /// Knocks the broker out with `knock_out` (a SIGKILL, a partition),
    /// noting when it began and, once it is done and the broker can answer
    /// no more, the leases the frontends hold: each must be told lost.
    pub async fn knock_out<T>(&mut self, knock_out: impl Future<Output = T>) -> T {
        self.kills_at.push(unix_now());
        let done = knock_out.await;
        let kill = self.kills_at.len();
        for (f, frontend) in self.fleet.iter().enumerate() {
            let held = frontend.book().held();
            if frontend.name == "holder" && !held.is_empty() {
                self.holder_held += 1;
            }
            for lease in held {
                self.held_at_kill.entry((f, lease)).or_insert(kill);
            }
        }
        done
    }

    /// Seconds from the start of the last knock-out to the first launch
    /// answered OK after it (see [`CrashLoop::first_launch_after`]), once
    /// there is one.
    pub fn served_again(&self) -> Option<f64> {
        self.first_launch_after(*self.kills_at.last()?)
    }

    /// Seconds from Unix time `after` to the first launch the fleet was
    /// answered OK later than a broker knocked out at `after` could have
    /// answered it: the first call served again.
    pub fn first_launch_after(&self, after: f64) -> Option<f64> {
        let after = after + findings::STAMP_LAG;
        self.fleet
            .iter()
            .flat_map(|f| {
                let answered: Vec<f64> = f
                    .book()
                    .tasks
                    .values()
                    .filter_map(|t| t.answered_at)
                    .collect();
                answered
            })
            .filter(|at| *at > after)
            .min_by(f64::total_cmp)
            .map(|at| at - after + findings::STAMP_LAG)
    }

    /// Stops the fleet, lets the cluster settle and checks everything the
    /// crash loop promises, through the broker serving at `broker` and the
    /// devcluster at `master`: every promised task ended at its frontend
    /// and every task left is killed at the end, statuses in order, Mesos
    /// runs nothing no frontend owns, the quota counts what Mesos runs,
    /// each lease held at a knock-out told lost, no agent used beyond its
    /// total, answers OK reach Mesos, and one broker at a time calls
    /// Mesos. Fails the test at once when tasks never end or Mesos and the
    /// quota disagree; the rest is in the findings, to report.
    pub async fn finish(mut self, master: &str, broker: &str) -> Findings {
        let seed = self.plan.seed;
        let loop_time = self.started.elapsed();
        self.stop.send_replace(true);
        for frontend in &mut self.fleet {
            frontend.stopped().await;
        }
        let samples = self.sampler.await.expect("the sampler does not panic");
        let fleet = &self.fleet;

        // Settled: short tasks ended, long ones ended or run (unless killed).
        let unsettled = wait_for_tasks(fleet, |task| {
            let running = task.last() == Some(api::TaskState::Running);
            task.ended() || (task.long && task.kill_answered_at.is_none() && running)
        })
        .await;
        let evidence = match unsettled.is_empty() {
            true => None,
            false => Some(save_evidence(master, fleet).await),
        };
        let known: BTreeSet<String> = fleet
            .iter()
            .flat_map(|f| {
                f.book()
                    .tasks
                    .values()
                    .filter_map(|t| t.task_id.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let running = mesos_and_quota_agree(master, broker, &known, seed).await;
        let killed_at_end = kill_the_rest(fleet).await;
        let unended = wait_for_tasks(fleet, TaskBook::ended).await;
        assert!(
            unended.is_empty(),
            "AGORA_CRASH_SEED={seed}: never ended: {unended:#?}"
        );
        let nothing = mesos_and_quota_agree(master, broker, &known, seed).await;
        assert_eq!(
            nothing, 0,
            "AGORA_CRASH_SEED={seed}: Mesos runs tasks after the final kill"
        );
        let vanished = vanished_leases(fleet).await;

        let mut findings = Findings::default();
        findings.note(format!(
            "{} {} in {:.1} s, {:.1} s in all; before the final kill Mesos ran {running} tasks, \
             each owned by a frontend and counted by the quota",
            self.plan.loops,
            self.plan.what,
            loop_time.as_secs_f64(),
            self.started.elapsed().as_secs_f64()
        ));
        if let Some(path) = evidence {
            findings.note(format!(
                "tasks unsettled: the devcluster's /state and call record and the frontends' \
                 books when the wait for them ran out are in {}",
                path.display()
            ));
        }
        findings.tasks(fleet, &killed_at_end, unsettled);
        findings.leases(fleet, &self.held_at_kill, self.holder_held, vanished);
        let state = get_json(master, "/state").await;
        let record = get_json(master, "/devcluster/calls").await;
        findings.devcluster(&state, &record, &samples, self.plan.loops as usize + 1);
        findings.answers_reach_mesos(fleet, &record, &self.kills_at);
        findings.streams(&Streams::of(&record));
        findings
    }
}

/// Writes the devcluster's `/state` and call record and the frontends'
/// books beside the children's logs, to see why tasks did not settle;
/// where.
async fn save_evidence(master: &str, fleet: &[SimFrontend]) -> PathBuf {
    let state = get_json(master, "/state").await;
    let record = get_json(master, "/devcluster/calls").await;
    let books: Vec<String> = fleet
        .iter()
        .map(|f| format!("{}: {:#?}", f.name, f.book().tasks))
        .collect();
    let path = crate::log_path("unsettled");
    let evidence = format!("{state:#}\n{record:#}\n{}\n", books.join("\n"));
    std::fs::write(&path, evidence).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// The running usage of `namespace` as the broker's Admin reports it:
/// (cpus, mem).
async fn broker_usage(broker_url: &str, namespace: &str) -> Option<(f64, f64)> {
    let mut admin = admin(broker_url).await;
    let request = api::GetUsageRequest {
        namespace: namespace.to_owned(),
    };
    let usage = admin.get_usage(request).await.ok()?.into_inner();
    let running = usage
        .namespaces
        .first()?
        .running
        .clone()
        .unwrap_or_default();
    Some((running.cpus, running.mem_mb))
}

/// Reads the devcluster's `/state` every 200 ms until `stop`.
fn sample_agents(master: String, mut stop: watch::Receiver<bool>) -> JoinHandle<Samples> {
    tokio::spawn(async move {
        let mut samples = Samples::default();
        while !*stop.borrow() {
            samples.take(&get_json(&master, "/state").await);
            tokio::select! {
                _ = stop.changed() => {}
                _ = sleep(Duration::from_millis(200)) => {}
            }
        }
        samples
    })
}

/// A number from the environment, or `default`.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

/// Tasks that a frontend must see to their end: promised by an OK answer,
/// or seen on its stream after a launch whose answer was lost.
fn tracked(task: &TaskBook) -> bool {
    task.answer == Answer::Ok || !task.states.is_empty()
}

/// Waits up to [`SETTLE`] until every tracked task of every frontend is
/// `done`; those that are not then (frontend/client id: states), each with
/// whether a Kill of it was answered OK.
async fn wait_for_tasks(
    fleet: &[SimFrontend],
    done: impl Fn(&TaskBook) -> bool,
) -> Vec<(String, bool)> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut waiting = Vec::new();
        for frontend in fleet {
            for (client, task) in &frontend.book().tasks {
                if tracked(task) && !done(task) {
                    let name = format!("{}/{client}: {:?}", frontend.name, task.states);
                    waiting.push((name, task.kill_answered_at.is_some()));
                }
            }
        }
        if waiting.is_empty() || Instant::now() >= deadline {
            return waiting;
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// Kills every task of every frontend not known to have ended, through
/// the broker; which tasks (frontend index, client id).
async fn kill_the_rest(fleet: &[SimFrontend]) -> BTreeSet<(usize, String)> {
    let mut killed = BTreeSet::new();
    for (f, frontend) in fleet.iter().enumerate() {
        let live: Vec<(String, String)> = frontend
            .book()
            .tasks
            .iter()
            .filter(|(_, t)| tracked(t) && !t.ended())
            .filter_map(|(client, t)| Some((client.clone(), t.task_id.clone()?)))
            .collect();
        if live.is_empty() {
            continue;
        }
        let ids: Vec<&str> = live.iter().map(|(_, id)| id.as_str()).collect();
        let mut session = frontend.session().await;
        session
            .kill(&ids)
            .await
            .expect("the final kill is answered");
        killed.extend(live.into_iter().map(|(client, _)| (f, client)));
    }
    killed
}

/// Leases a frontend's book holds (acquired; no launch seen, no LeaseLost)
/// that the broker does not list: gone without a word.
async fn vanished_leases(fleet: &[SimFrontend]) -> Vec<String> {
    let mut vanished = Vec::new();
    for frontend in fleet {
        let listed = frontend
            .session()
            .await
            .list_leases()
            .await
            .expect("list leases");
        let listed: BTreeSet<String> = listed.into_iter().map(|l| l.id).collect();
        let book = frontend.book();
        for (lease, fate) in &book.leases {
            let launched = match fate {
                LeaseFate::Launching(client) => book.tasks[client].task_id.is_some(),
                LeaseFate::Held => false,
                LeaseFate::Launched | LeaseFate::Lost(_) => continue,
            };
            if !launched && !listed.contains(lease) {
                vanished.push(format!("{}/{lease}: {fate:?}", frontend.name));
            }
        }
    }
    vanished
}

/// Waits up to [`SETTLE`] until Mesos runs only tasks some frontend knows
/// and the broker's running usage of the namespace equals what they hold;
/// their number. Fails the test with the strangers and both sums.
async fn mesos_and_quota_agree(
    master: &str,
    broker: &str,
    known: &BTreeSet<String>,
    seed: u64,
) -> usize {
    let deadline = Instant::now() + SETTLE;
    loop {
        let live = live_mesos_tasks(&get_json(master, "/state").await);
        let mesos = live
            .iter()
            .fold((0.0, 0.0), |(c, m), t| (c + t.cpus, m + t.mem));
        let usage = broker_usage(broker, NAMESPACE).await;
        let strangers: Vec<&String> = live
            .iter()
            .map(|t| &t.id)
            .filter(|id| !known.contains(*id))
            .collect();
        let counted = usage.is_some_and(|(cpus, mem)| {
            (cpus - mesos.0).abs() < 1e-6 && (mem - mesos.1).abs() < 1e-6
        });
        if strangers.is_empty() && counted {
            return live.len();
        }
        assert!(
            Instant::now() < deadline,
            "AGORA_CRASH_SEED={seed}: Mesos runs {} tasks holding (cpus, mem) {mesos:?}, the \
             broker counts {usage:?} running; tasks no frontend knows: {strangers:#?}",
            live.len()
        );
        sleep(Duration::from_millis(100)).await;
    }
}
