//! Process mode: each task's command runs for real, in its own process
//! group, with its sandbox as working directory and `stdout`/`stderr`
//! files in it, as Mesos's command executor does.
//!
//! KILL sends SIGTERM to the task's process group and SIGKILL after the
//! grace period. When the task's main process exits, whatever is left of
//! its group is killed too (the container is gone). When the process
//! running the agent dies, however abruptly, the task's main process is
//! killed by the kernel (see the `spawner` module), and the rest of its
//! group by the group's guard (see the `lifeline` module).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_proto::mesos::v1::CommandInfo;
use tokio::sync::watch;

use super::lifeline::Lifeline;

/// What happened to a task's process.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcessEvent {
    /// The process was spawned.
    Running,
    /// The process could not be spawned.
    LaunchFailed(String),
    /// The process exited with a code or was ended by a signal.
    Exited {
        /// Exit code, when it exited normally.
        code: Option<i32>,
        /// Signal number, when a signal ended it.
        signal: Option<i32>,
    },
}

/// Everything needed to start one task's process.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// Framework id.
    pub framework: String,
    /// Task id.
    pub task: String,
    /// Agent id.
    pub agent: String,
    /// Executor id (the task id for command tasks).
    pub executor: String,
    /// The command.
    pub command: CommandInfo,
    /// The sandbox directory (created if missing).
    pub sandbox: PathBuf,
}

type Key = (String, String);

#[derive(Debug)]
struct Entry {
    pid: Option<i32>,
    kill_tx: watch::Sender<Option<Duration>>,
}

/// Runs and kills task processes.
#[derive(Debug)]
pub struct ProcessRunner {
    running: Mutex<HashMap<Key, Entry>>,
    lifeline: Lifeline,
}

fn signal_group(pid: i32, signal: i32) {
    #[allow(unsafe_code)]
    // SAFETY: kill(2) with a negative pid signals a process group; it has
    // no memory-safety preconditions.
    unsafe {
        libc::kill(-pid, signal);
    }
}

impl ProcessRunner {
    /// A runner with no tasks; fails if the lifeline pipe cannot be made.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            running: Mutex::default(),
            lifeline: Lifeline::new()?,
        })
    }

    /// Starts the task; `report` is called with its events, from a tokio
    /// task, in order: `Running` then `Exited`, or `LaunchFailed`.
    pub fn launch<F>(self: &Arc<Self>, spec: LaunchSpec, report: F)
    where
        F: Fn(ProcessEvent) + Send + Sync + 'static,
    {
        let key = (spec.framework.clone(), spec.task.clone());
        let (kill_tx, kill_rx) = watch::channel(None);
        self.lock()
            .insert(key.clone(), Entry { pid: None, kill_tx });
        let runner = Arc::clone(self);
        tokio::spawn(async move {
            let event = runner.run(&key, spec, kill_rx, &report).await;
            runner.lock().remove(&key);
            report(event);
        });
    }

    /// Asks the task's process to stop: SIGTERM now, SIGKILL after `grace`.
    pub fn kill(&self, framework: &str, task: &str, grace: Duration) {
        if let Some(entry) = self.lock().get(&(framework.to_string(), task.to_string())) {
            entry.kill_tx.send_replace(Some(grace));
        }
    }

    /// Kills every running task's process group at once (shutdown).
    pub fn kill_all(&self) {
        for entry in self.lock().values() {
            if let Some(pid) = entry.pid {
                signal_group(pid, libc::SIGKILL);
            }
        }
    }

    /// Starts the guard of the task's group (see the `lifeline` module).
    fn guard(&self, group: i32, task: &str) -> Option<tokio::process::Child> {
        match self.lifeline.guard(group) {
            Ok(guard) => Some(guard),
            // The task ended at once, and its group with it: nothing to guard.
            Err(error) if error.raw_os_error() == Some(libc::EPERM) => None,
            Err(error) => {
                tracing::warn!(%task, %error, "cannot guard the task's process group: its children may outlive a crash of this process");
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run<F>(
        &self,
        key: &Key,
        spec: LaunchSpec,
        mut kill_rx: watch::Receiver<Option<Duration>>,
        report: &F,
    ) -> ProcessEvent
    where
        F: Fn(ProcessEvent),
    {
        let mut child = match spawn(&spec).await {
            Ok(child) => child,
            Err(error) => return ProcessEvent::LaunchFailed(error),
        };
        let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
            return ProcessEvent::LaunchFailed("the process exited before it was watched".into());
        };
        if let Some(entry) = self.lock().get_mut(key) {
            entry.pid = Some(pid);
        }
        let guard = self.guard(pid, &spec.task);
        report(ProcessEvent::Running);
        let status = tokio::select! {
            status = child.wait() => status,
            grace = wait_for_kill(&mut kill_rx) => {
                signal_group(pid, libc::SIGTERM);
                match tokio::time::timeout(grace, child.wait()).await {
                    Ok(status) => status,
                    Err(_) => {
                        signal_group(pid, libc::SIGKILL);
                        child.wait().await
                    }
                }
            }
        };
        signal_group(pid, libc::SIGKILL);
        if let Some(mut guard) = guard {
            // It died with its group just above; killing it by its own pid
            // too makes sure reaping it can never wait forever.
            let _ = guard.start_kill();
            let _ = guard.wait().await;
        }
        match status {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                ProcessEvent::Exited {
                    code: status.code(),
                    signal: status.signal(),
                }
            }
            Err(error) => ProcessEvent::LaunchFailed(format!("waiting for the process: {error}")),
        }
    }
}

async fn wait_for_kill(kill_rx: &mut watch::Receiver<Option<Duration>>) -> Duration {
    let grace = kill_rx
        .wait_for(Option::is_some)
        .await
        .map(|grace| grace.unwrap_or_default());
    match grace {
        Ok(grace) => grace,
        Err(_) => std::future::pending().await,
    }
}

async fn spawn(spec: &LaunchSpec) -> Result<tokio::process::Child, String> {
    std::fs::create_dir_all(&spec.sandbox)
        .map_err(|e| format!("cannot create sandbox {}: {e}", spec.sandbox.display()))?;
    let open = |name: &str| {
        std::fs::File::create(spec.sandbox.join(name))
            .map_err(|e| format!("cannot create {name} in the sandbox: {e}"))
    };
    let value = spec.command.value.clone().unwrap_or_default();
    let mut command = if spec.command.shell.unwrap_or(true) {
        let mut command = tokio::process::Command::new("/bin/sh");
        command.arg("-c").arg(&value);
        command
    } else {
        let mut command = tokio::process::Command::new(&value);
        if let Some(arg0) = spec.command.arguments.first() {
            command.arg0(arg0);
        }
        command.args(spec.command.arguments.iter().skip(1));
        command
    };
    command
        .current_dir(&spec.sandbox)
        .env("MESOS_SANDBOX", &spec.sandbox)
        .env("MESOS_FRAMEWORK_ID", &spec.framework)
        .env("MESOS_AGENT_ID", &spec.agent)
        .env("MESOS_EXECUTOR_ID", &spec.executor)
        .env("MESOS_TASK_ID", &spec.task);
    if let Some(environment) = &spec.command.environment {
        for variable in &environment.variables {
            command.env(
                &variable.name,
                variable.value.as_deref().unwrap_or_default(),
            );
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(open("stdout")?)
        .stderr(open("stderr")?)
        .process_group(0)
        .kill_on_drop(false);
    super::spawner::spawn(command)
        .await
        .map_err(|e| format!("cannot run '{value}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn spec(dir: &std::path::Path, value: &str) -> LaunchSpec {
        LaunchSpec {
            framework: "fw".into(),
            task: value.into(),
            agent: "a".into(),
            executor: "e".into(),
            command: CommandInfo {
                value: Some(value.into()),
                environment: Some(agora_proto::mesos::v1::Environment {
                    variables: vec![agora_proto::mesos::v1::environment::Variable {
                        name: "GREETING".into(),
                        value: Some("hello".into()),
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            },
            sandbox: dir.to_path_buf(),
        }
    }

    async fn events(runner: &Arc<ProcessRunner>, spec: LaunchSpec) -> mpsc::Receiver<ProcessEvent> {
        let (tx, rx) = mpsc::channel();
        runner.launch(spec, move |event| {
            let _ = tx.send(event);
        });
        rx
    }

    fn next(rx: &mpsc::Receiver<ProcessEvent>) -> ProcessEvent {
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    #[tokio::test]
    async fn runs_in_the_sandbox_with_the_environment_and_reports_the_exit() {
        let dir = std::env::temp_dir().join(format!("devcluster-test-{}", uuid::Uuid::new_v4()));
        let runner = Arc::new(ProcessRunner::new().unwrap());
        let rx = events(&runner, spec(&dir, "echo $GREETING; exit 3")).await;
        let seen = tokio::task::spawn_blocking(move || [next(&rx), next(&rx)])
            .await
            .unwrap();
        assert_eq!(
            seen,
            [
                ProcessEvent::Running,
                ProcessEvent::Exited {
                    code: Some(3),
                    signal: None
                }
            ]
        );
        let stdout = std::fs::read_to_string(dir.join("stdout")).unwrap();
        assert_eq!(stdout, "hello\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn kill_sends_sigterm_then_sigkill_after_the_grace() {
        let dir = std::env::temp_dir().join(format!("devcluster-test-{}", uuid::Uuid::new_v4()));
        let runner = Arc::new(ProcessRunner::new().unwrap());
        let rx = events(
            &runner,
            spec(
                &dir,
                "trap '' TERM; touch trapped; sleep 30 & wait; sleep 30",
            ),
        )
        .await;
        let rx = tokio::task::spawn_blocking(move || {
            assert_eq!(next(&rx), ProcessEvent::Running);
            rx
        })
        .await
        .unwrap();
        // SIGTERM before the shell ran `trap` would kill it at once: wait
        // until the script says it ignores TERM.
        while !dir.join("trapped").exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let started = std::time::Instant::now();
        runner.kill(
            "fw",
            "trap '' TERM; touch trapped; sleep 30 & wait; sleep 30",
            Duration::from_millis(300),
        );
        let end = tokio::task::spawn_blocking(move || next(&rx))
            .await
            .unwrap();
        assert_eq!(
            end,
            ProcessEvent::Exited {
                code: None,
                signal: Some(libc::SIGKILL)
            }
        );
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(10));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
