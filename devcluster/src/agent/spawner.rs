//! Starts task processes that die with the process that started them.
//!
//! Each child asks the kernel for SIGKILL when its parent dies
//! (`PR_SET_PDEATHSIG`), so a devcluster (or an `agora dev` embedding
//! one) that crashes or is killed with SIGKILL takes its tasks along.
//!
//! Linux counts the *thread* that forked as the parent: the signal fires
//! when that thread exits, even if the process lives on. A tokio runtime
//! forks on whichever thread polls the spawning task, and its threads do
//! exit (blocking-pool threads after idling, a worker handed off by
//! `block_in_place`, a current-thread runtime's caller), which would kill
//! healthy tasks. So every fork happens on one dedicated thread that is
//! never stopped: its death is the process's death.
//!
//! The child also checks, after setting the signal, that its parent is
//! still the one that forked it: a parent dying between fork and `prctl`
//! would otherwise leave it unprotected.
//!
//! A child loses the signal when it executes a set-user-ID or
//! file-capability program, and its own children never inherit it.

use std::io;
use std::sync::Mutex;
use std::sync::mpsc;

use tokio::process::{Child, Command};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// One fork to do: the command, the runtime that will watch the child,
/// and where the outcome goes.
struct Request {
    command: Command,
    runtime: Handle,
    reply: oneshot::Sender<io::Result<Child>>,
}

/// The spawner thread's queue; started on first use. The sender is never
/// dropped, so the thread never ends.
static SPAWNER: Mutex<Option<mpsc::Sender<Request>>> = Mutex::new(None);

/// Spawns `command` from the spawner thread, with a parent-death SIGKILL
/// for the child. Must be called within a tokio runtime, which then
/// watches the child.
pub(crate) async fn spawn(mut command: Command) -> io::Result<Child> {
    die_with_parent(&mut command);
    let (reply, answer) = oneshot::channel();
    let request = Request {
        command,
        runtime: Handle::current(),
        reply,
    };
    queue()?
        .send(request)
        .map_err(|_| io::Error::other("the spawner thread has stopped"))?;
    answer
        .await
        .map_err(|_| io::Error::other("the spawner thread dropped a request"))?
}

/// The spawner thread's queue, starting the thread if it is not running.
fn queue() -> io::Result<mpsc::Sender<Request>> {
    let mut spawner = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sender) = spawner.as_ref() {
        return Ok(sender.clone());
    }
    let (sender, requests) = mpsc::channel();
    std::thread::Builder::new()
        .name("devcluster-spawner".into())
        .spawn(move || serve(requests))?;
    *spawner = Some(sender.clone());
    Ok(sender)
}

fn serve(requests: mpsc::Receiver<Request>) {
    for request in requests {
        let Request {
            mut command,
            runtime,
            reply,
        } = request;
        let spawned = {
            let _runtime = runtime.enter();
            command.spawn()
        };
        // The caller went away (its runtime is shutting down): nobody
        // will watch or kill this child, so end it now.
        if let Err(Ok(mut child)) = reply.send(spawned) {
            let _ = child.start_kill();
        }
    }
}

/// Makes the child ask for SIGKILL at its parent's death, and exit at
/// once if the parent already died before it could ask.
fn die_with_parent(command: &mut Command) {
    // Read before the fork: in the child, `getppid` must still name us.
    let parent = i32::try_from(std::process::id()).unwrap_or(0);
    #[allow(unsafe_code)]
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: prctl(2) and getppid(2) are
    // plain system calls, and the errors are built without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let state = stat[stat.rfind(')').unwrap_or(0) + 1..]
            .trim_start()
            .chars()
            .next();
        !matches!(state, None | Some('Z' | 'X'))
    }

    /// A child spawned for a thread that then exits (with its runtime)
    /// lives on: the parent-death signal is tied to the spawner thread,
    /// not to the caller's.
    #[test]
    fn a_child_outlives_the_thread_that_asked_for_it() {
        let pid = std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut command = Command::new("sleep");
                command.arg("30");
                let child = spawn(command).await.unwrap();
                i32::try_from(child.id().unwrap()).unwrap()
            })
        })
        .join()
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let survived = alive(pid);
        #[allow(unsafe_code)]
        // SAFETY: kill(2) and waitpid(2) on our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        assert!(survived, "the child died with the thread that asked for it");
    }
}
