//! Tasks die with their agent: after the standalone `devcluster` is killed
//! with SIGKILL (no shutdown code of its own runs), none of its task
//! processes is left running.

mod common;

use std::time::Duration;

use common::*;

/// Runs `command` as a task on a standalone devcluster, waits until it
/// is RUNNING and has written the pids named by `pid_files` (relative to
/// the scratch directory, passed to the command as `$SCRATCH`), then
/// SIGKILLs the devcluster and returns the processes of those pids.
async fn run_then_kill_the_devcluster(
    command: &str,
    pid_files: &[&str],
) -> (Vec<ProcessId>, Scratch) {
    let scratch = Scratch::new();
    let work_dir = scratch.0.join("work");
    let mut devcluster = Standalone::start(&["--work-dir", work_dir.to_str().unwrap()]);
    let mut sub = subscribe(devcluster.addr, JSON, framework_info(&["web"])).await;
    let offer = sub.next_offers().await.remove(0);
    let command = format!("SCRATCH='{}'; {command}", scratch.0.display());
    let task = command_task("sleeper", &offer, "cpus:0.1;mem:32", &command);
    let (status, body) = sub.call(launch_call(&offer, vec![task], None)).await;
    assert_eq!(status, 202, "{body}");
    loop {
        let update = sub.next_update().await;
        assert_eq!(sub.acknowledge(&update).await, 202);
        match state_name(&update) {
            "TASK_STARTING" => {}
            "TASK_RUNNING" => break,
            other => panic!("the task ended {other}: {update:?}"),
        }
    }
    let mut processes = Vec::new();
    for file in pid_files {
        processes.push(pid_in(&scratch.0.join(file)).await);
    }
    drop(sub);
    devcluster.kill_hard();
    (processes, scratch)
}

#[tokio::test]
async fn a_task_process_dies_with_a_killed_devcluster() {
    let (processes, _scratch) = run_then_kill_the_devcluster(
        "echo $$ > \"$SCRATCH/task.pid\"; exec sleep 600",
        &["task.pid"],
    )
    .await;
    let reaper = Reaper(processes);
    let gone = eventually(Duration::from_secs(10), || {
        reaper.0.iter().all(|p| !p.is_alive())
    })
    .await;
    assert!(
        gone,
        "still running after the devcluster died: {:?}",
        reaper.0
    );
}

/// The shell's own children (a pipeline, a background job) are not the
/// agent's children, yet they belong to the task and die with it.
#[tokio::test]
async fn a_shell_tasks_children_die_with_a_killed_devcluster() {
    let (processes, _scratch) = run_then_kill_the_devcluster(
        "sleep 600 & echo $! > \"$SCRATCH/background.pid\"; \
         echo $$ > \"$SCRATCH/shell.pid\"; wait",
        &["background.pid", "shell.pid"],
    )
    .await;
    let reaper = Reaper(processes);
    let gone = eventually(Duration::from_secs(10), || {
        reaper.0.iter().all(|p| !p.is_alive())
    })
    .await;
    let alive: Vec<_> = reaper.0.iter().filter(|p| p.is_alive()).collect();
    assert!(gone, "still running after the devcluster died: {alive:?}");
}
