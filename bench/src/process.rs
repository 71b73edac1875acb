//! Child processes the harness starts (devcluster, broker, the empty-RPC
//! server): each prints `listening on URL` as its first stdout line, logs to
//! a file, and is killed when its handle is dropped, so an interrupted or
//! failed run leaves nothing behind.

use std::{path::Path, process::Stdio, time::Duration};

use crate::cpu::Metered;
use anyhow::{Context, bail};
use serde::Serialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    time::timeout,
};

/// How long a child may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A started child that is killed on drop.
pub(crate) struct Process {
    child: Child,
    url: String,
}

impl Process {
    /// Starts `binary` with `args` and `env`, stderr to a file in
    /// `log_dir`, and waits for its `listening on URL` line.
    pub(crate) async fn start(
        binary: &Path,
        args: &[String],
        env: &[(String, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Process> {
        let name = binary
            .file_name()
            .map_or("child".into(), |n| n.to_string_lossy().into_owned());
        std::fs::create_dir_all(log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        let log = log_dir.join(format!("{name}-{}.log", unique_suffix()));
        let stderr = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut child = Command::new(binary)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = timeout(START_TIMEOUT, lines.next_line())
            .await
            .with_context(|| format!("{name} printed no address; see {}", log.display()))??;
        let Some(first) = first else {
            bail!("{name} exited before listening; see {}", log.display());
        };
        let Some(url) = first.strip_prefix("listening on ") else {
            bail!("{name} printed {first:?} instead of its address");
        };
        let url = url.to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Process { child, url })
    }

    /// The URL from the `listening on` line.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The child as a process whose CPU time a loop reports.
    pub(crate) fn metered(&self, name: &'static str) -> anyhow::Result<Metered> {
        let pid = self.child.id().context("the child has exited")?;
        Ok(Metered { name, pid })
    }

    /// The child's memory now, from `/proc/PID/status`.
    pub(crate) fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self.child.id().context("the child has exited")?;
        let path = format!("/proc/{pid}/status");
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        Memory::parse(&status).with_context(|| format!("{path} has no VmRSS/VmHWM"))
    }
}

/// Resident memory of a process, in KiB as the kernel counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// The highest resident set size so far (`VmHWM`).
    pub peak_kib: u64,
}

impl Memory {
    fn parse(status: &str) -> Option<Memory> {
        let field = |name: &str| {
            status.lines().find_map(|line| {
                line.strip_prefix(name)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        };
        Some(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }
}

/// Distinguishes log files of runs and children started in the same second.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak_from_proc_status() {
        let status = "Name:\tagora\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\nThreads:\t3\n";
        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                rss_kib: 10240,
                peak_kib: 20480
            })
        );
        assert_eq!(Memory::parse("Name:\tx\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let memory = Memory::parse(&status).unwrap();
        assert!(memory.rss_kib > 0 && memory.peak_kib >= memory.rss_kib);
    }
}
