//! Kills a task's whole process group when the process running its agent
//! dies, however it dies.
//!
//! The parent-death signal (see the `spawner` module) reaches only the
//! task's main process; what it starts (a shell's pipeline or background
//! jobs) would be left running. So each task's group gets a guard: a small
//! shell in the group that reads the lifeline, a pipe whose write end only
//! the runner holds (close-on-exec, so no task inherits it). The kernel
//! closes that end when the process dies, even on SIGKILL; the guard's
//! read then returns and it kills its own group.
//!
//! Being a member of the group, the guard keeps the group's id from being
//! reused while it waits, so it never signals a stranger. It ignores
//! SIGTERM, which a normal KILL sends to the whole group, so that a task
//! that outlasts its grace period stays covered; the runner's final
//! SIGKILL to the group ends it.

use std::io::{self, PipeReader, PipeWriter};
use std::process::Stdio;

use tokio::process::{Child, Command};

/// Ignore SIGTERM, wait for end-of-file on stdin, then SIGKILL every
/// process in the guard's own process group.
const GUARD: &str = "trap '' TERM; read -r _; kill -KILL 0";

/// The pipe that ends when the process running the agents ends.
#[derive(Debug)]
pub(crate) struct Lifeline {
    reader: PipeReader,
    /// Never written to: held only so that it closes when we die.
    _writer: PipeWriter,
}

impl Lifeline {
    /// Opens the pipe.
    pub(crate) fn new() -> io::Result<Self> {
        let (reader, writer) = io::pipe()?;
        Ok(Self {
            reader,
            _writer: writer,
        })
    }

    /// Starts a guard in the process group `group`; it fails when the
    /// group no longer exists.
    pub(crate) fn guard(&self, group: i32) -> io::Result<Child> {
        Command::new("/bin/sh")
            .args(["-c", GUARD, "devcluster-guard"])
            .stdin(Stdio::from(self.reader.try_clone()?))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(group)
            .kill_on_drop(false)
            .spawn()
    }
}
