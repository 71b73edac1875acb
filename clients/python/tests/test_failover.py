"""Following the leader, resubscribing, credentials: against `agora dev`
and stand-ins for what it cannot play (see fakes.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import grpc
import pytest
from google.protobuf import duration_pb2

import agora
from agora.v1 import broker_pb2, resources_pb2

from fakes import FakeBroker, Proxy, standby, unused_address
from helpers import launch, unique


def test_a_standby_sends_the_frontend_to_the_leader(address: str) -> None:
    replica = FakeBroker(standby(leader=address))
    try:
        with agora.Frontend([replica.address], unique("follow"), ["default"]) as frontend:
            assert frontend.address == address
            assert frontend.list_leases() == []
        assert len(replica.requests) == 1
    finally:
        replica.stop()


def test_endpoints_are_tried_in_turn_until_one_leads(address: str) -> None:
    leaderless = FakeBroker(standby(leader=None))
    try:
        endpoints = [unused_address(), leaderless.address, address]
        with agora.Frontend(endpoints, unique("turns"), ["default"]) as frontend:
            assert frontend.address == address
        assert len(leaderless.requests) == 1
    finally:
        leaderless.stop()


def test_no_leader_within_the_deadline_names_every_endpoint() -> None:
    leaderless = FakeBroker(standby(leader=None))
    nobody = unused_address()
    try:
        started = time.monotonic()
        with pytest.raises(agora.NoLeaderError) as raised:
            agora.Frontend(
                [leaderless.address, nobody],
                "nobody-leads",
                ["default"],
                failover=agora.Failover(deadline=1.0),
            )
        assert time.monotonic() - started < 5
        error = raised.value
        assert error.code == grpc.StatusCode.UNAVAILABLE and error.is_unavailable
        assert list(error.tried) == [leaderless.address, nobody]
        assert error.tried[leaderless.address].reason == "NOT_READY"
        assert nobody in str(error)
        assert len(leaderless.requests) >= 2, "the search went round more than once"
    finally:
        leaderless.stop()


def test_the_token_travels_as_a_bearer_header_and_is_never_shown() -> None:
    replica = FakeBroker(standby(leader=None))
    credentials = agora.Credentials(token="s3cret")
    try:
        with pytest.raises(agora.NoLeaderError):
            agora.Frontend(
                replica.address,
                "token",
                ["default"],
                credentials=credentials,
                failover=agora.Failover(deadline=0.2),
            )
        assert replica.metadata[0]["authorization"] == "Bearer s3cret"
        assert "s3cret" not in repr(credentials)
    finally:
        replica.stop()


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    """A CA and a server certificate for 127.0.0.1 and `agora.test`."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=agora.test",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:agora.test,IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    )
    return tmp_path


def test_tls_with_a_ca_file(certificates: Path) -> None:
    key_and_chain = (
        (certificates / "server.key").read_bytes(),
        (certificates / "server.pem").read_bytes(),
    )
    replica = FakeBroker(standby(leader=None), tls=key_and_chain)
    failover = agora.Failover(deadline=0.3)
    try:
        # Trusting the CA, the handshake succeeds and the standby answers.
        trusted = agora.Credentials(ca_file=str(certificates / "ca.pem"), token="t")
        with pytest.raises(agora.NoLeaderError) as raised:
            agora.Frontend(
                replica.address, "tls", ["default"], credentials=trusted, failover=failover
            )
        assert raised.value.tried[replica.address].reason == "NOT_READY"
        assert replica.metadata[0]["authorization"] == "Bearer t"
        # Without it, the broker's certificate is refused before any call.
        calls = len(replica.requests)
        with pytest.raises(agora.NoLeaderError) as raised:
            agora.Frontend(replica.address, "tls", ["default"], failover=failover)
        assert raised.value.tried[replica.address].reason is None
        assert len(replica.requests) == calls
    finally:
        replica.stop()


def test_the_events_resubscribe_when_the_stream_breaks(address: str) -> None:
    proxy = Proxy(address)
    try:
        with agora.Frontend(proxy.address, unique("broken"), ["default"]) as frontend:
            launched = launch(frontend, "slow", "sleep 2")
            first_session = frontend.session_id
            handed: List[int] = []
            event = frontend.next_event(timeout=30)
            while event is not None and not (
                event.HasField("task_status")
                and event.task_status.state == resources_pb2.TASK_STATE_RUNNING
            ):
                handed.append(event.sequence)
                event = frontend.next_event(timeout=30)
            assert event is not None, "no TASK_RUNNING"
            handed.append(event.sequence)
            before = frontend.last_sequence

            proxy.cut()  # nothing acknowledged: the broker would replay all

            event = frontend.next_event(timeout=30)
            assert event is not None and event.HasField("subscribed"), event
            assert event.subscribed.session_id == frontend.session_id != first_session
            finished = None
            while finished is None:
                event = frontend.next_event(timeout=30)
                assert event is not None, "no TASK_FINISHED after resubscribing"
                handed.append(event.sequence)
                if event.HasField("task_status") and agora.is_terminal(event.task_status.state):
                    finished = event
            assert finished.task_status.task_id == launched.task_id
            assert finished.task_status.state == resources_pb2.TASK_STATE_FINISHED
            assert finished.sequence > before
            numbered = [sequence for sequence in handed if sequence]
            assert numbered == sorted(set(numbered)), f"duplicates or disorder: {handed}"
            # Calls follow the new session.
            assert [t.state for t in frontend.list_tasks()] == [resources_pb2.TASK_STATE_FINISHED]
            frontend.acknowledge()
    finally:
        proxy.close()


def test_a_silent_broker_is_left_and_replays_are_dropped() -> None:
    """The first session falls silent after two events; the second replays
    the last of them (delivery is at least once) and goes on."""

    def event(sequence: int, task_id: str) -> broker_pb2.Event:
        status = resources_pb2.TaskStatus(task_id=task_id, state=resources_pb2.TASK_STATE_RUNNING)
        return broker_pb2.Event(sequence=sequence, task_status=status)

    def subscribe(
        request: broker_pb2.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[broker_pb2.Event]:
        session = f"s{len(fake.requests)}"
        yield broker_pb2.Event(
            subscribed=broker_pb2.Subscribed(
                frontend_id=request.frontend,
                session_id=session,
                heartbeat_interval=duration_pb2.Duration(nanos=100_000_000),
            )
        )
        if session == "s1":
            yield event(1, "a")
            yield event(2, "b")
            while context.is_active():  # silent, the connection open
                time.sleep(0.05)
        else:
            yield event(2, "b")
            yield event(3, "c")
            yield broker_pb2.Event(heartbeat=broker_pb2.Heartbeat())
            while context.is_active():
                time.sleep(0.05)

    fake = FakeBroker(subscribe)
    try:
        with agora.Frontend(fake.address, "quiet", ["default"]) as frontend:
            assert frontend.session_id == "s1"
            got = []
            for _ in range(5):
                received = frontend.next_event(timeout=5)
                assert received is not None
                got.append(received.WhichOneof("kind") + str(received.sequence))
            assert got == [
                "task_status1",
                "task_status2",
                "subscribed0",
                "task_status3",
                "heartbeat0",
            ]
            assert frontend.session_id == "s2"
            assert [r.resume_after for r in fake.requests] == [0, 2]
    finally:
        fake.stop()
