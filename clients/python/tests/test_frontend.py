"""The Frontend against a real `agora dev`."""

from __future__ import annotations

import grpc
import pytest

import agora
from agora.v1 import resources_pb2

from helpers import launch, state_names, statuses_until_terminal, unique


def test_runs_a_task_to_finished_and_acknowledges_its_statuses(address: str) -> None:
    name = unique("run")
    with agora.Frontend(address, name, ["default"]) as frontend:
        assert frontend.frontend_id == name
        assert frontend.session_id
        launched = launch(frontend, "hello", "echo hello")
        assert launched.client_task_id == "hello"
        seen = statuses_until_terminal(frontend, launched.task_id, acknowledge=True)
        assert state_names(seen)[-1] == "TASK_STATE_FINISHED", state_names(seen)
        sequences = [sequence for sequence, _ in seen]
        assert sequences == sorted(set(sequences)) and sequences[0] > 0
        assert frontend.last_sequence >= sequences[-1]
        tasks = {t.task_id: t for t in frontend.list_tasks()}
        assert tasks[launched.task_id].state == resources_pb2.TASK_STATE_FINISHED
    # Everything was acknowledged: a new session replays nothing.
    with agora.Frontend(address, name, ["default"]) as again:
        event = again.next_event(timeout=2)
        while event is not None and not event.sequence:
            event = again.next_event(timeout=2)
        assert event is None, f"replayed after acknowledgement: {event}"


def test_an_invalid_request_raises_with_code_reason_and_field(address: str) -> None:
    with agora.Frontend(address, unique("invalid"), ["default"]) as frontend:
        with pytest.raises(agora.AgoraError) as raised:
            frontend.acquire("default", [agora.slot(cpus=-1, mem_mb=32)])
        error = raised.value
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert error.reason == "INVALID_FIELD"
        assert error.field == "slots[0].resources.cpus"
        assert error.field_violations and error.field_violations[0][0] == error.field
        assert "slots[0].resources.cpus" in error.message
        assert "INVALID_ARGUMENT (INVALID_FIELD)" in str(error)
        assert not error.is_unavailable

        with pytest.raises(agora.AgoraError) as raised:
            frontend.hold(["no-such-lease"], hold_for=10)
        assert raised.value.code == grpc.StatusCode.NOT_FOUND
        assert raised.value.reason == "LEASE_NOT_FOUND"
        assert raised.value.metadata["lease"] == "no-such-lease"


def test_subscribe_errors_raise_at_once(address: str) -> None:
    failover = agora.Failover(deadline=30)
    with pytest.raises(agora.AgoraError) as raised:
        agora.Frontend(address, unique("ns"), ["no-such-namespace"], failover=failover)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.reason == "NAMESPACE_NOT_FOUND"
    assert raised.value.metadata["namespace"] == "no-such-namespace"


def test_resubscribing_replays_unacknowledged_events(address: str) -> None:
    name = unique("replay")
    with agora.Frontend(address, name, ["default"]) as frontend:
        launched = launch(frontend, "unacked", "true")
        first = statuses_until_terminal(frontend, launched.task_id, acknowledge=False)
    sequences = [sequence for sequence, _ in first]
    assert len(sequences) >= 2, state_names(first)

    # Nothing was acknowledged: a new session gets every event again.
    with agora.Frontend(address, name, ["default"], resume_after=0) as again:
        replayed = statuses_until_terminal(again, launched.task_id, acknowledge=False, timeout=10)
        assert [sequence for sequence, _ in replayed] == sequences
        assert state_names(replayed) == state_names(first)
        # Acknowledge the first only.
        again.acknowledge(sequences[0])

    # resume_after skips what the frontend says it has processed, and the
    # acknowledged first event is gone for good.
    with agora.Frontend(address, name, ["default"], resume_after=sequences[0]) as resumed:
        rest = statuses_until_terminal(resumed, launched.task_id, acknowledge=True, timeout=10)
        assert [sequence for sequence, _ in rest] == sequences[1:]


def test_hold_release_and_kill(address: str) -> None:
    with agora.Frontend(address, unique("calls"), ["default"]) as frontend:
        slots = [agora.slot(cpus=0.1, mem_mb=32, count=2)]
        leases = frontend.acquire("default", slots, hold_for=5, wait_for=20, request_id="r-1")
        assert len(leases) == 2
        # The same request_id answers the same leases.
        again = frontend.acquire("default", slots, hold_for=5, wait_for=20, request_id="r-1")
        assert sorted(lease.id for lease in again) == sorted(lease.id for lease in leases)

        held = frontend.hold([leases[0].id], hold_for=60)
        assert held[0].id == leases[0].id
        assert held[0].expires_at.ToSeconds() > leases[0].expires_at.ToSeconds()

        frontend.release([leases[1].id], refuse_for=1)
        assert [lease.id for lease in frontend.list_leases()] == [leases[0].id]

        launched = frontend.launch(
            leases[0].id, agora.task("sleeper", "sleep 60", cpus=0.1, mem_mb=32)
        )
        event = frontend.next_event(timeout=30)
        while event is not None and not (
            event.HasField("task_status")
            and event.task_status.state == resources_pb2.TASK_STATE_RUNNING
        ):
            event = frontend.next_event(timeout=30)
        assert event is not None, "no TASK_RUNNING"
        frontend.kill([launched.task_id], grace=0.5)
        seen = statuses_until_terminal(frontend, launched.task_id, acknowledge=True)
        assert state_names(seen)[-1] == "TASK_STATE_KILLED", state_names(seen)
        assert frontend.reconcile() == []  # nothing live
