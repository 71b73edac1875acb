//! Durability end to end (issue 14): the broker is killed with SIGKILL and
//! started again on the same redb store, and nothing a frontend or the
//! quota depends on is lost. A focused test walks one restart step by
//! step; the crash loop kills the broker at random moments under a load of
//! short and long tasks and then checks, with the numbers printed, that
//! every promised task reached its end at its frontend, no status went
//! backwards, Mesos runs nothing no frontend owns, quota usage matches
//! Mesos, and no resource was ever used twice.
//!
//! The crash loop kills the broker `AGORA_CRASH_LOOPS` times (20 by
//! default; the longer run is `AGORA_CRASH_LOOPS=100`), at moments drawn
//! from `AGORA_CRASH_SEED` (printed; random when unset):
//!
//! ```text
//! AGORA_CRASH_LOOPS=100 AGORA_CRASH_SEED=42 cargo test -p agora-tests \
//!     --test durability -- --nocapture crash_loop
//! ```

#[path = "durability/findings.rs"]
mod findings;
#[path = "durability/fleet.rs"]
mod fleet;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use agora_tests::{
    CrashingBroker, SETTLE, admin, as_status,
    client::{self, Acquire, Frontend, Slot, Task, api},
    devcluster, eventually, get_json,
};
use api::{TaskState, lease_lost::Reason};
use findings::{Findings, Samples};
use fleet::{Answer, LeaseFate, NAMESPACE, Role, SimFrontend, TaskBook, is_terminal, unix_now};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};
use tonic::Code;

/// Offers stay pooled for the whole test and the pool stays warm, so that
/// acquires are served at once and the role is never suppressed.
const POOL: [(&str, &str); 2] = [
    ("AGORA_BROKER__POOL_TTL", "120s"),
    ("AGORA_BROKER__WARM_POOL", "10"),
];

/// A devcluster whose agents retry unacknowledged status updates after 1 s
/// (Mesos: 10 s), so that an update whose acknowledgement died with a
/// broker comes again soon, and whose record keeps every call of a long
/// crash loop.
async fn cluster(agents: u32) -> agora_tests::Process {
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

/// A broker with [`POOL`] settings and its store at `store`, which its
/// restarts keep.
async fn crashing_broker(master: &str, store: &std::path::Path) -> CrashingBroker {
    let mut env: Vec<(&str, &str)> = POOL.to_vec();
    env.push((
        "AGORA_STORE__PATH",
        store.to_str().expect("a UTF-8 temporary path"),
    ));
    CrashingBroker::start(master, &env).await
}

/// A task Mesos runs: not in a terminal state in the devcluster's `/state`.
#[derive(Debug)]
struct MesosTask {
    id: String,
    cpus: f64,
    mem: f64,
}

/// The tasks of every framework in `/state` that Mesos does not consider
/// ended (a terminal task stays listed until its update is acknowledged).
fn live_mesos_tasks(state: &Value) -> Vec<MesosTask> {
    let frameworks = state["frameworks"].as_array().into_iter().flatten();
    frameworks
        .flat_map(|f| f["tasks"].as_array().into_iter().flatten())
        .filter_map(|t| {
            let name = t["state"].as_str()?.strip_prefix("TASK_")?;
            let ended = api::TaskState::from_str_name(&format!("TASK_STATE_{name}"))
                .is_some_and(is_terminal);
            (!ended).then(|| MesosTask {
                id: t["id"].as_str().unwrap_or_default().to_owned(),
                cpus: t["resources"]["cpus"].as_f64().unwrap_or_default(),
                mem: t["resources"]["mem"].as_f64().unwrap_or_default(),
            })
        })
        .collect()
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
fn sample_agents(
    master: String,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Samples> {
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

/// The crash loop: frontends launching, the broker killed with SIGKILL at
/// random moments and started again.
struct CrashLoop {
    seed: u64,
    loops: u64,
    rng: StdRng,
    /// Each lease held when the broker died (frontend index, lease id),
    /// with the first kill that found it held.
    held_at_kill: BTreeMap<(usize, String), usize>,
    /// Kills at which the holder held a lease.
    holder_held: usize,
    /// When each kill was sent, in Unix seconds.
    kills_at: Vec<f64>,
}

impl CrashLoop {
    fn from_env() -> CrashLoop {
        let loops = env_number("AGORA_CRASH_LOOPS", 20);
        let seed = env_number("AGORA_CRASH_SEED", rand::rng().random());
        println!("crash loop: AGORA_CRASH_SEED={seed} AGORA_CRASH_LOOPS={loops}");
        CrashLoop {
            seed,
            loops,
            rng: StdRng::seed_from_u64(seed),
            held_at_kill: BTreeMap::new(),
            holder_held: 0,
            kills_at: Vec::new(),
        }
    }

    /// Four launchers, a quarter of their tasks long, and a holder.
    fn fleet(&self, url: &str, stop: &watch::Receiver<bool>) -> Vec<SimFrontend> {
        let launcher = Role::Launcher {
            long_share: 0.25,
            long_cap: 3,
        };
        let mut fleet: Vec<SimFrontend> = (0..4)
            .map(|i| {
                let name = format!("launcher-{i}");
                SimFrontend::start(url, &name, launcher, self.seed + i, stop.clone())
            })
            .collect();
        let holder = SimFrontend::start(url, "holder", Role::Holder, self.seed + 99, stop.clone());
        fleet.push(holder);
        fleet
    }

    /// Kills the broker `loops` times, 0.3 to 2 s apart, noting the leases
    /// each kill found held, and starts it again each time.
    async fn run(&mut self, broker: &mut CrashingBroker, fleet: &[SimFrontend]) {
        for kill in 1..=self.loops as usize {
            let pause = self.rng.random_range(300..2000);
            sleep(Duration::from_millis(pause)).await;
            self.kills_at.push(unix_now());
            broker.crash().await;
            for (f, frontend) in fleet.iter().enumerate() {
                let held = frontend.book().held();
                if frontend.name == "holder" && !held.is_empty() {
                    self.holder_held += 1;
                }
                for lease in held {
                    self.held_at_kill.entry((f, lease)).or_insert(kill);
                }
            }
            broker.restart().await;
        }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_loses_nothing() {
    let started = Instant::now();
    let mut crash_loop = CrashLoop::from_env();
    let seed = crash_loop.seed;
    let master = cluster(3).await;
    let store = tempfile::tempdir().expect("a temporary directory");
    let mut broker = crashing_broker(master.url(), &store.path().join("agora.redb")).await;
    let url = broker.url().to_owned();
    let (stop_tx, stop) = watch::channel(false);
    let mut fleet = crash_loop.fleet(&url, &stop);
    let sampler = sample_agents(master.url().to_owned(), stop.clone());
    crash_loop.run(&mut broker, &fleet).await;
    let loop_time = started.elapsed();
    stop_tx.send_replace(true);
    for frontend in &mut fleet {
        frontend.stopped().await;
    }
    let samples = sampler.await.expect("the sampler does not panic");

    // Settled: short tasks ended, long ones ended or run (unless killed).
    let unsettled = wait_for_tasks(&fleet, |task| {
        let running = task.last() == Some(TaskState::Running);
        task.ended() || (task.long && task.kill_answered_at.is_none() && running)
    })
    .await;
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
    let running = mesos_and_quota_agree(master.url(), &url, &known, seed).await;
    let killed_at_end = kill_the_rest(&fleet).await;
    let unended = wait_for_tasks(&fleet, TaskBook::ended).await;
    assert!(
        unended.is_empty(),
        "AGORA_CRASH_SEED={seed}: never ended: {unended:#?}"
    );
    let nothing = mesos_and_quota_agree(master.url(), &url, &known, seed).await;
    assert_eq!(
        nothing, 0,
        "AGORA_CRASH_SEED={seed}: Mesos runs tasks after the final kill"
    );
    let vanished = vanished_leases(&fleet).await;

    let mut findings = Findings::default();
    findings.note(format!(
        "{} kills in {:.1} s, {:.1} s in all; before the final kill Mesos ran {running} tasks, each \
         owned by a frontend and counted by the quota",
        crash_loop.loops,
        loop_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    findings.tasks(&fleet, &killed_at_end, unsettled);
    let (held, holder) = (&crash_loop.held_at_kill, crash_loop.holder_held);
    findings.leases(&fleet, held, holder, vanished);
    let state = get_json(master.url(), "/state").await;
    let record = get_json(master.url(), "/devcluster/calls").await;
    findings.devcluster(&state, &record, &samples, crash_loop.loops as usize + 1);
    findings.answers_reach_mesos(&fleet, &record, &crash_loop.kills_at);
    findings.report(seed);
}

/// Waits for the next status of one of `tasks` to be `state`, acknowledging
/// every event; the last sequence taken.
async fn await_states(
    frontend: &mut Frontend,
    events: &mut client::Events,
    tasks: &BTreeSet<String>,
    state: TaskState,
) -> u64 {
    let mut reached = BTreeSet::new();
    let mut last = 0;
    while reached.len() < tasks.len() {
        let (sequence, status) = timeout(SETTLE, events.next_task_status())
            .await
            .expect("a status within the settle time")
            .expect("the stream stays healthy")
            .expect("the stream stays open");
        frontend.acknowledge(sequence).await.expect("acknowledge");
        last = sequence;
        assert!(tasks.contains(&status.task_id), "{status:?}");
        if status.state() == state {
            reached.insert(status.task_id);
        }
    }
    last
}

fn cpus(amount: f64) -> Option<api::Resources> {
    Some(api::Resources {
        cpus: amount,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_keeps_tasks_events_and_quota() {
    let master = cluster(2).await;
    let store = tempfile::tempdir().expect("a temporary directory");
    let mut broker = crashing_broker(master.url(), &store.path().join("agora.redb")).await;
    let url = broker.url().to_owned();
    let capped = api::Namespace {
        name: "capped".into(),
        role: "capped".into(),
        limit: cpus(2.0),
        ..Default::default()
    };
    admin(&url)
        .await
        .put_namespace(api::PutNamespaceRequest {
            namespace: Some(capped),
        })
        .await
        .expect("the capped namespace is accepted");
    let namespaces = ["default", "capped"];
    let (mut ops, mut events) = Frontend::subscribe(&url, "ops", &namespaces).await.unwrap();

    // Three long tasks, 1.5 of the 2 cpus capped allows; a lease held.
    let mut tasks = BTreeSet::new();
    for i in 0..3 {
        let request = Acquire::new("capped")
            .slot(Slot::new(0.5, 32.0))
            .wait_for(SETTLE);
        let lease = ops.acquire(request).await.expect("a lease").remove(0);
        let task = Task::shell(&format!("long-{i}"), "sleep 600").resources(0.5, 32.0);
        tasks.insert(ops.launch(&lease.id, task).await.expect("launched").task_id);
    }
    let last = await_states(&mut ops, &mut events, &tasks, TaskState::Running).await;
    let held = Acquire::new("default")
        .slot(Slot::new(0.5, 32.0))
        .wait_for(SETTLE);
    let held = ops.acquire(held).await.expect("a lease").remove(0);
    let framework = get_json(master.url(), "/state").await["frameworks"][0]["id"].clone();

    broker.crash().await;
    broker.restart().await;

    let client = client::connect(&url).await.expect("connect again");
    let (mut ops, mut events) = Frontend::subscribe_with(client, "ops", &namespaces, last)
        .await
        .expect("the frontend subscribes again under its name");
    let (sequence, lost) = timeout(SETTLE, events.next_lease_lost())
        .await
        .expect("a LeaseLost within the settle time")
        .expect("the stream stays healthy")
        .expect("the stream stays open");
    ops.acknowledge(sequence).await.expect("acknowledge");
    assert_eq!(lost.lease_id, held.id);
    assert_eq!(lost.reason(), Reason::BrokerRestarted, "{lost:?}");

    let listed = ops.list_tasks().await.expect("list tasks");
    let ids: BTreeSet<String> = listed.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(ids, tasks, "the tasks are the frontend's still");
    assert!(
        listed.iter().all(|t| t.state() == TaskState::Running),
        "{listed:?}"
    );
    let reconcile = api::ReconcileRequest {
        session_id: ops.session_id().to_owned(),
        task_ids: Vec::new(),
    };
    let reconciled = ops
        .raw()
        .reconcile(reconcile)
        .await
        .expect("reconcile")
        .into_inner();
    let ids: BTreeSet<String> = reconciled.tasks.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(ids, tasks, "Reconcile knows them");

    // The quota still counts the 1.5 cpus running: 1 more is refused (once
    // the broker has heard from Mesos about its tasks), 0.5 fits exactly.
    let answer = eventually(SETTLE, "an answer other than UNAVAILABLE", || {
        let mut ops = ops.clone();
        async move {
            let more = Acquire::new("capped").slot(Slot::new(1.0, 32.0));
            match ops.acquire(more).await.map_err(as_status) {
                Err(status) if status.code() == Code::Unavailable => None,
                answer => Some(answer),
            }
        }
    })
    .await;
    let refused = answer.expect_err("1 cpu more than the limit allows");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    for fact in ["1.5 in use", "limit of 2"] {
        assert!(
            refused.message().contains(fact),
            "{fact}: {}",
            refused.message()
        );
    }
    let rest = Acquire::new("capped")
        .slot(Slot::new(0.5, 32.0))
        .wait_for(SETTLE);
    let rest = ops
        .acquire(rest)
        .await
        .expect("what is left of the limit")
        .remove(0);
    ops.release(&[&rest.id], Duration::ZERO)
        .await
        .expect("release");

    let ids: Vec<&str> = tasks.iter().map(String::as_str).collect();
    ops.kill(&ids).await.expect("kill");
    await_states(&mut ops, &mut events, &tasks, TaskState::Killed).await;
    let state = get_json(master.url(), "/state").await;
    assert_eq!(
        state["frameworks"][0]["id"], framework,
        "the same framework"
    );
    assert_eq!(state["frameworks"].as_array().map(Vec::len), Some(1));
    assert!(live_mesos_tasks(&state).is_empty());
}
