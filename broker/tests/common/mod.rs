//! Runs the real `agora` binary for the tests in this directory: cargo
//! builds it for the package's integration tests and names it in
//! `CARGO_BIN_EXE_agora`.

#![allow(
    dead_code,
    reason = "each test file compiles this module and uses a part of it"
)]

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::{Child, Command},
    task::JoinHandle,
    time::{Instant, sleep, timeout},
};

/// How long `agora` may take to print its address, or a log line.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// `agora` with `args`, with none of the caller's `AGORA_*` variables nor
/// `NO_COLOR`, so that a developer's environment cannot change what a test
/// sees, and logs at `info`.
pub(crate) fn agora(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agora"));
    command
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AGORA_") {
            command.env_remove(name);
        }
    }
    command.kill_on_drop(true);
    command
}

/// An `agora` server past its `listening on URL` line, its stdout and
/// stderr read through pipes (so neither is a terminal).
pub(crate) struct Running {
    child: Child,
    /// The address from the `listening on` line.
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `command` and waits for its first stdout line, failing the
    /// test with the child's stderr if it exits before listening.
    pub(crate) async fn start(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start agora");
        let stderr = Arc::new(Mutex::new(String::new()));
        let collector = collect(
            child.stderr.take().expect("stderr is piped"),
            stderr.clone(),
        );
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let first = timeout(WAIT, stdout.next_line())
            .await
            .expect("agora printed its address in time")
            .expect("read agora's stdout");
        let Some(first) = first else {
            let status = child.wait().await.expect("agora exited");
            collector.await.expect("stderr collector");
            panic!(
                "agora exited ({status}) before listening:\n{}",
                stderr.lock().expect("stderr lock")
            );
        };
        let url = first
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("agora's first line was {first:?}"))
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        Running { child, url, stderr }
    }

    /// Waits until a line of stderr contains `needle`; all of stderr so far.
    pub(crate) async fn stderr_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let stderr = self.stderr.lock().expect("stderr lock").clone();
            if stderr.contains(needle) {
                return stderr;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on agora's stderr in {WAIT:?}:\n{stderr}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server.
    pub(crate) async fn stop(mut self) {
        self.child.kill().await.expect("kill agora");
    }
}

/// Appends everything `pipe` carries to `into`, as it arrives, until the
/// pipe closes.
fn collect(
    pipe: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut text = into.lock().expect("stderr lock");
            text.push_str(&line);
            text.push('\n');
        }
    })
}
