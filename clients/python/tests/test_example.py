"""examples/run_command.py runs a command on `agora dev`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import unique

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "run_command.py"


def run(address: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--broker",
            address,
            "--frontend",
            unique("example"),
            "--",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_example_runs_a_command_to_finished(address: str) -> None:
    done = run(address, "echo", "hello")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("lease ") and lines[1].startswith("task ")
    assert lines[-1].startswith("TASK_STATE_FINISHED"), lines


def test_the_example_fails_with_the_command(address: str) -> None:
    done = run(address, "sh", "-c", "exit 3")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("TASK_STATE_FAILED"), done.stdout
