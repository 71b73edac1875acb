//! Simulated frontends for crash loops. Each one subscribes under its
//! name and launches short and long tasks over real gRPC while brokers are
//! killed under it. Against one broker ([`Target::Broker`]) it subscribes
//! again itself when its stream breaks, under the same name with
//! `resume_after` set to the last event it processed; against replicas
//! ([`Target::Replicas`]) the SDK follows the leader and does the same.
//! It acknowledges every event it processed, and keeps a [`Book`] of what
//! it was answered and what it saw, which the test checks at the end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::client::{self, Acquire, ConnectOptions, Failover, Frontend, Slot, Task, api};
use crate::has_reason;
use api::{TaskState, event::Kind, lease_lost::Reason};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::sleep;

/// The namespace every simulated frontend works in.
pub const NAMESPACE: &str = "default";

/// Resources of a short task (`sleep 0.1`) and of a long one (`sleep 600`).
const SHORT: (f64, f64) = (0.1, 16.0);
const LONG: (f64, f64) = (0.2, 16.0);

/// How a task's launch was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Not yet.
    Waiting,
    /// OK: the broker promised the task.
    Ok,
    /// An error, most often the broker dying under the call: the task may
    /// or may not exist.
    Failed,
}

/// One task a frontend launched, by its client id.
#[derive(Debug, Clone)]
pub struct TaskBook {
    /// A `sleep 600` task, killed through the broker.
    pub long: bool,
    /// Agora's id, from the launch answer or a status.
    pub task_id: Option<String>,
    /// How the launch was answered.
    pub answer: Answer,
    /// Every state seen on the event stream, in order.
    pub states: Vec<TaskState>,
    /// The reason of each status seen.
    pub reasons: Vec<String>,
    /// When a Kill of it was answered OK, in Unix seconds.
    pub kill_answered_at: Option<f64>,
    /// When the launch was answered OK, in Unix seconds.
    pub answered_at: Option<f64>,
}

impl TaskBook {
    /// The latest state seen.
    pub fn last(&self) -> Option<TaskState> {
        self.states.last().copied()
    }

    /// Whether a terminal state was seen.
    pub fn ended(&self) -> bool {
        self.last().is_some_and(is_terminal)
    }
}

/// What became of a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseFate {
    /// Acquired, nothing asked of it yet.
    Held,
    /// A launch of the client task named was asked on it.
    Launching(String),
    /// Launched on, answered OK.
    Launched,
    /// A LeaseLost event said so.
    Lost(Reason),
}

/// What one frontend was answered and saw.
#[derive(Debug, Default)]
pub struct Book {
    /// The last event sequence processed.
    pub last_sequence: u64,
    /// Sequences skipped: (expected, received).
    pub gaps: Vec<(u64, u64)>,
    /// Events received again after they were processed.
    pub replayed: u64,
    /// Tasks by client id, in launch order.
    pub tasks: BTreeMap<String, TaskBook>,
    /// Statuses of tasks this frontend never launched.
    pub strangers: Vec<api::TaskStatus>,
    /// Leases by id.
    pub leases: BTreeMap<String, LeaseFate>,
    /// What contradicts the leases' story: lost twice, lost after a launch
    /// answered OK, launched OK after it was lost.
    pub lease_oddities: Vec<String>,
    /// Leases told lost that this frontend never knew: granted by an
    /// Acquire whose answer died with the broker.
    pub unknown_lost: Vec<String>,
    /// Acquires that failed (an answer may have died with the broker).
    pub acquires_failed: u64,
    /// Subscriptions made (the first and every reconnection).
    pub sessions: u64,
    /// Acquires refused UNAVAILABLE with reason NOT_READY (recovering).
    pub not_ready: u64,
}

impl Book {
    /// Takes one event; whether to acknowledge it.
    fn take(&mut self, event: api::Event) -> bool {
        let sequence = event.sequence;
        if sequence == 0 {
            return false;
        }
        if sequence <= self.last_sequence {
            self.replayed += 1;
            return true;
        }
        if sequence != self.last_sequence + 1 {
            self.gaps.push((self.last_sequence + 1, sequence));
        }
        self.last_sequence = sequence;
        match event.kind {
            Some(Kind::TaskStatus(status)) => self.status(status),
            Some(Kind::LeaseLost(lost)) => self.lost(&lost),
            _ => {}
        }
        true
    }

    fn status(&mut self, status: api::TaskStatus) {
        let Some(task) = self.tasks.get_mut(&status.client_task_id) else {
            self.strangers.push(status);
            return;
        };
        match &task.task_id {
            Some(id) if *id != status.task_id => self.strangers.push(status.clone()),
            Some(_) => {}
            None => task.task_id = Some(status.task_id.clone()),
        }
        task.states.push(status.state());
        task.reasons.push(status.reason);
    }

    fn lost(&mut self, lost: &api::LeaseLost) {
        let reason = lost.reason();
        match self.leases.get_mut(&lost.lease_id) {
            Some(fate @ (LeaseFate::Held | LeaseFate::Launching(_))) => {
                *fate = LeaseFate::Lost(reason);
            }
            Some(fate) => {
                let odd = format!("{} lost ({reason:?}) when {fate:?}", lost.lease_id);
                self.lease_oddities.push(odd);
            }
            None => self
                .unknown_lost
                .push(format!("{} ({reason:?})", lost.lease_id)),
        }
    }

    /// Leases acquired and neither launched on nor lost.
    pub fn held(&self) -> Vec<String> {
        self.leases
            .iter()
            .filter(|(_, fate)| matches!(fate, LeaseFate::Held | LeaseFate::Launching(_)))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Long tasks launched OK and running, no Kill answered: oldest first.
    fn running_long(&self) -> Vec<String> {
        self.tasks
            .values()
            .filter(|t| t.long && t.answer == Answer::Ok && t.kill_answered_at.is_none())
            .filter(|t| t.last() == Some(TaskState::Running))
            .filter_map(|t| t.task_id.clone())
            .collect()
    }

    /// Long tasks that may be alive: not known to have ended, and either
    /// promised or seen (a failed launch never seen most likely never
    /// happened).
    fn live_long(&self) -> usize {
        self.tasks
            .values()
            .filter(|t| t.long && !t.ended())
            .filter(|t| t.answer != Answer::Failed || !t.states.is_empty())
            .count()
    }
}

/// The wall clock in Unix seconds, as the devcluster stamps what it
/// receives.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs_f64()
}

/// Whether a task state is final.
pub fn is_terminal(state: TaskState) -> bool {
    matches!(
        state,
        TaskState::Finished
            | TaskState::Failed
            | TaskState::Killed
            | TaskState::Error
            | TaskState::Lost
            | TaskState::Dropped
            | TaskState::Gone
            | TaskState::GoneByOperator
    )
}

/// What a simulated frontend does.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// Launches tasks one after another, a share of them long, keeping at
    /// most `long_cap` long ones alive by killing the oldest.
    Launcher {
        /// The share of launches that are long tasks.
        long_share: f64,
        /// The most long tasks alive at once.
        long_cap: usize,
    },
    /// Keeps one lease held and never launches on it, so that every crash
    /// finds a lease to be told lost.
    Holder,
}

/// One simulated frontend: a listener task that owns the subscription and
/// a driver task that calls the broker over the listener's session.
pub struct SimFrontend {
    /// Its name.
    pub name: String,
    book: Arc<Mutex<Book>>,
    session: watch::Receiver<Option<Frontend>>,
    listener: JoinHandle<()>,
    driver: JoinHandle<()>,
}

impl SimFrontend {
    /// Starts frontend `name` against `target`; it drives until `stop`
    /// turns true.
    pub fn start(
        target: &Target,
        name: &str,
        role: Role,
        seed: u64,
        stop: watch::Receiver<bool>,
    ) -> SimFrontend {
        let book = Arc::new(Mutex::new(Book::default()));
        let (session_tx, session) = watch::channel(None);
        let listener = tokio::spawn(listen(
            target.clone(),
            name.to_owned(),
            book.clone(),
            session_tx,
        ));
        let driver = Driver {
            book: book.clone(),
            session: session.clone(),
            stop,
            rng: StdRng::seed_from_u64(seed),
            launched: 0,
        };
        let driver = tokio::spawn(driver.run(role));
        SimFrontend {
            name: name.to_owned(),
            book,
            session,
            listener,
            driver,
        }
    }

    /// Its book.
    pub fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the driver has stopped (after `stop` turned true).
    pub async fn stopped(&mut self) {
        (&mut self.driver).await.expect("the driver does not panic");
    }

    /// The current session, waiting for one.
    pub async fn session(&self) -> Frontend {
        let mut session = self.session.clone();
        let current = session
            .wait_for(Option::is_some)
            .await
            .expect("the listener runs");
        current.clone().expect("waited for a session")
    }
}

impl Drop for SimFrontend {
    fn drop(&mut self) {
        self.listener.abort();
        self.driver.abort();
    }
}

/// Where the fleet finds the broker.
#[derive(Debug, Clone)]
pub enum Target {
    /// One broker at this URL, started again there after each crash: each
    /// frontend subscribes again itself when its stream breaks.
    Broker(String),
    /// Replicas at these URLs, one of which leads: each frontend is given
    /// them all and the SDK follows the leader
    /// ([`Frontend::subscribe_to`]).
    Replicas(Vec<String>),
}

/// How long the SDK looks for a leader before [`client::Events::next`]
/// gives up for once (and the listener asks again).
const FOLLOW_DEADLINE: Duration = Duration::from_secs(30);

/// Keeps frontend `name` subscribed to `target`, publishes its session,
/// and takes and acknowledges every event.
async fn listen(
    target: Target,
    name: String,
    book: Arc<Mutex<Book>>,
    session: watch::Sender<Option<Frontend>>,
) {
    match target {
        Target::Broker(url) => resubscribe(&url, &name, &book, &session).await,
        Target::Replicas(urls) => follow(urls, &name, &book, &session).await,
    }
}

/// Subscribes (again after every break), publishes the session, and takes
/// and acknowledges every event.
async fn resubscribe(
    url: &str,
    name: &str,
    book: &Mutex<Book>,
    session: &watch::Sender<Option<Frontend>>,
) {
    let mut backoff = Duration::from_millis(20);
    loop {
        let resume_after = lock(book).last_sequence;
        let subscribed = async {
            let client = client::connect(url).await?;
            Frontend::subscribe_with(client, name, &[NAMESPACE], resume_after).await
        };
        let (mut frontend, mut events) = match subscribed.await {
            Ok(pair) => pair,
            Err(_) => {
                sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(400));
                continue;
            }
        };
        backoff = Duration::from_millis(20);
        lock(book).sessions += 1;
        session.send_replace(Some(frontend.clone()));
        while let Ok(Some(event)) = events.next().await {
            take(book, &mut frontend, event).await;
        }
        session.send_replace(None);
    }
}

/// Subscribes through whichever of `urls` leads and publishes the
/// frontend once: from then on the SDK carries the event stream from
/// leader to leader, resuming after the last event handed out, and the
/// frontend's calls move with it.
async fn follow(
    urls: Vec<String>,
    name: &str,
    book: &Mutex<Book>,
    session: &watch::Sender<Option<Frontend>>,
) {
    let options = ConnectOptions::new().failover(Failover::new().deadline(FOLLOW_DEADLINE));
    let (mut frontend, mut events) = loop {
        match Frontend::subscribe_to(urls.clone(), name, &[NAMESPACE], &options).await {
            Ok(pair) => break pair,
            Err(_) => sleep(Duration::from_millis(100)).await,
        }
    };
    lock(book).sessions += 1;
    session.send_replace(Some(frontend.clone()));
    loop {
        match events.next().await {
            Ok(Some(event)) => {
                if matches!(event.kind, Some(Kind::Subscribed(_))) {
                    lock(book).sessions += 1;
                }
                take(book, &mut frontend, event).await;
            }
            // No leader within the deadline (a following stream never
            // ends): the next read searches again.
            Ok(None) | Err(_) => sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Books `event` and acknowledges it when it was processed.
async fn take(book: &Mutex<Book>, frontend: &mut Frontend, event: api::Event) {
    let sequence = event.sequence;
    if lock(book).take(event) {
        // A lost acknowledgement only means a replay after the next
        // subscription.
        let _ = frontend.acknowledge(sequence).await;
    }
}

fn lock(book: &Mutex<Book>) -> MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|e| e.into_inner())
}

/// The calls of one frontend.
struct Driver {
    book: Arc<Mutex<Book>>,
    session: watch::Receiver<Option<Frontend>>,
    stop: watch::Receiver<bool>,
    rng: StdRng,
    launched: u64,
}

impl Driver {
    async fn run(mut self, role: Role) {
        while !*self.stop.borrow() {
            let current = self.session.borrow().clone();
            let Some(mut frontend) = current else {
                tokio::select! {
                    _ = self.session.changed() => {}
                    _ = self.stop.changed() => {}
                }
                continue;
            };
            let step = match role {
                Role::Launcher {
                    long_share,
                    long_cap,
                } => self.launch_one(&mut frontend, long_share, long_cap).await,
                Role::Holder => self.hold_one(&mut frontend).await,
            };
            if let Err(error) = step {
                if let client::Error::Status(status) = &error
                    && has_reason(status, "NOT_READY")
                {
                    lock(&self.book).not_ready += 1;
                }
                let pause = self.rng.random_range(20..120);
                sleep(Duration::from_millis(pause)).await;
            }
        }
    }

    /// Kills the oldest long task when at the cap, then acquires a lease
    /// and launches one task on it.
    async fn launch_one(
        &mut self,
        frontend: &mut Frontend,
        long_share: f64,
        long_cap: usize,
    ) -> Result<(), client::Error> {
        let (victim, live_long) = {
            let book = lock(&self.book);
            let running = book.running_long();
            let victim = (running.len() >= long_cap).then(|| running[0].clone());
            (victim, book.live_long())
        };
        if let Some(task_id) = victim {
            frontend.kill(&[&task_id]).await?;
            let mut book = lock(&self.book);
            if let Some(task) = book
                .tasks
                .values_mut()
                .find(|t| t.task_id.as_deref() == Some(task_id.as_str()))
            {
                task.kill_answered_at = Some(unix_now());
            }
        }
        let long = live_long < long_cap && self.rng.random_bool(long_share);
        let (cpus, mem) = if long { LONG } else { SHORT };
        let lease = self.acquire(frontend, cpus, mem, None).await?;
        if self.rng.random_bool(0.2) {
            let hold = self.rng.random_range(0..300);
            sleep(Duration::from_millis(hold)).await;
        }
        self.launched += 1;
        let client_id = format!(
            "{}{:05}",
            if long { "long" } else { "short" },
            self.launched
        );
        {
            let mut book = lock(&self.book);
            if book.leases.get(&lease) != Some(&LeaseFate::Held) {
                // Told lost meanwhile: nothing to launch on.
                return Ok(());
            }
            book.tasks.insert(
                client_id.clone(),
                TaskBook {
                    long,
                    task_id: None,
                    answer: Answer::Waiting,
                    states: Vec::new(),
                    reasons: Vec::new(),
                    kill_answered_at: None,
                    answered_at: None,
                },
            );
            book.leases
                .insert(lease.clone(), LeaseFate::Launching(client_id.clone()));
        }
        let command = if long { "sleep 600" } else { "sleep 0.1" };
        let task = Task::shell(&client_id, command).resources(cpus, mem);
        let answer = frontend.launch(&lease, task).await;
        let mut book = lock(&self.book);
        let launched = answer.as_ref().ok().map(|l| l.task_id.clone());
        let entry = book.tasks.get_mut(&client_id).expect("inserted above");
        entry.answer = if launched.is_some() {
            entry.answered_at = Some(unix_now());
            Answer::Ok
        } else {
            Answer::Failed
        };
        if let Some(id) = &launched {
            if entry.task_id.get_or_insert_with(|| id.clone()) != id {
                let odd = format!(
                    "{client_id} launched as {id}, statuses name {:?}",
                    entry.task_id
                );
                book.lease_oddities.push(odd);
            }
            match book.leases.insert(lease.clone(), LeaseFate::Launched) {
                Some(LeaseFate::Launching(_)) => {}
                other => {
                    let odd = format!("{lease} launched OK when {other:?}");
                    book.lease_oddities.push(odd);
                }
            }
        }
        answer.map(|_| ())
    }

    /// Acquires one lease when none is held; otherwise waits a little.
    async fn hold_one(&mut self, frontend: &mut Frontend) -> Result<(), client::Error> {
        if !lock(&self.book).held().is_empty() {
            tokio::select! {
                _ = self.session.changed() => {}
                _ = self.stop.changed() => {}
                _ = sleep(Duration::from_millis(200)) => {}
            }
            return Ok(());
        }
        let (cpus, mem) = SHORT;
        self.acquire(frontend, cpus, mem, Some(Duration::from_secs(120)))
            .await
            .map(|_| ())
    }

    /// One lease of `cpus` and `mem`, booked as held; its id.
    async fn acquire(
        &mut self,
        frontend: &mut Frontend,
        cpus: f64,
        mem: f64,
        hold_for: Option<Duration>,
    ) -> Result<String, client::Error> {
        let mut request = Acquire::new(NAMESPACE)
            .slot(Slot::new(cpus, mem))
            .wait_for(Duration::from_secs(5));
        if let Some(hold_for) = hold_for {
            request = request.hold_for(hold_for);
        }
        let leases = match frontend.acquire(request).await {
            Ok(leases) => leases,
            Err(error) => {
                lock(&self.book).acquires_failed += 1;
                return Err(error);
            }
        };
        let mut book = lock(&self.book);
        for lease in &leases {
            book.leases.insert(lease.id.clone(), LeaseFate::Held);
        }
        Ok(leases
            .first()
            .map(|l| l.id.clone())
            .expect("an answered acquire holds a lease"))
    }
}
