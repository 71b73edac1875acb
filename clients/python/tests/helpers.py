"""What several tests do: run a task and read its statuses."""

from __future__ import annotations

import itertools
import time
from typing import List, Optional, Tuple

import agora
from agora.v1 import broker_pb2, resources_pb2

_names = itertools.count()


def unique(prefix: str) -> str:
    """A frontend name no other test uses (the broker outlives each test)."""
    return f"{prefix}-{int(time.time() * 1000) % 10**8}-{next(_names)}"


def launch(frontend: agora.Frontend, task_id: str, shell: str) -> broker_pb2.LaunchedTask:
    """Acquires one small slot in `default` and launches `shell` on it."""
    leases = frontend.acquire("default", [agora.slot(cpus=0.1, mem_mb=32)], wait_for=20)
    assert len(leases) == 1, leases
    spec = agora.task(task_id, shell, cpus=0.1, mem_mb=32)
    return frontend.launch(leases[0].id, spec)


def statuses_until_terminal(
    frontend: agora.Frontend,
    task_id: str,
    acknowledge: bool,
    timeout: float = 60.0,
) -> List[Tuple[int, resources_pb2.TaskStatus]]:
    """Reads events until the task (Agora's id) is terminal; returns its
    statuses with their sequences, acknowledging each event if asked."""
    seen: List[Tuple[int, resources_pb2.TaskStatus]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event: Optional[broker_pb2.Event] = frontend.next_event(timeout=deadline - time.monotonic())
        if event is None:
            break
        if acknowledge and event.sequence:
            frontend.acknowledge(event.sequence)
        if event.HasField("task_status") and event.task_status.task_id == task_id:
            seen.append((event.sequence, event.task_status))
            if agora.is_terminal(event.task_status.state):
                return seen
    raise AssertionError(f"task {task_id} not terminal within {timeout}s; saw {seen}")


def state_names(seen: List[Tuple[int, resources_pb2.TaskStatus]]) -> List[str]:
    return [resources_pb2.TaskState.Name(status.state) for _, status in seen]
