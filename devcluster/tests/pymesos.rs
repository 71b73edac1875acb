//! End to end with a third-party Mesos client: pymesos (from PyPI,
//! unchanged) runs `tests/pymesos/scheduler.py` against a standalone
//! `devcluster` process on port 0 and must see `echo hello` finish.
//!
//! The interpreter is `$PYMESOS_PYTHON`, else `target/pymesos-venv/bin/python`
//! (made by `devcluster/tests/pymesos/setup.sh`). Without pymesos the test
//! is skipped, unless `CI` is set, where it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn python() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = std::env::var_os("PYMESOS_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([manifest.join("../target/pymesos-venv/bin/python")]);
    candidates.into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import pymesos"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Kills the devcluster on drop (SIGTERM: graceful shutdown).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            #[allow(unsafe_code)]
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let _ = self.0.wait();
    }
}

#[test]
fn pymesos_scheduler_runs_a_task_to_completion() {
    let Some(python) = python() else {
        let message = "pymesos is not installed: run devcluster/tests/pymesos/setup.sh \
                       (or set PYMESOS_PYTHON to an interpreter that has it)";
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        println!("skipped: run devcluster/tests/pymesos/setup.sh ({message})");
        return;
    };

    let mut devcluster = Child(
        Command::new(env!("CARGO_BIN_EXE_devcluster"))
            .args(["--listen", "127.0.0.1:0", "--allocation-interval", "100ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("devcluster starts"),
    );
    let mut first = String::new();
    BufReader::new(devcluster.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let address = first
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pymesos/scheduler.py");
    let mut scheduler = Command::new(&python)
        .arg(&script)
        .arg(&address)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = scheduler.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = scheduler.kill();
            panic!("the pymesos scheduler did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    std::io::Read::read_to_string(&mut scheduler.stdout.take().unwrap(), &mut output).unwrap();
    println!("{output}");
    assert!(status.success(), "scheduler failed ({status}):\n{output}");
    assert!(
        output.contains("states TASK_STARTING TASK_RUNNING TASK_FINISHED"),
        "{output}"
    );
}
