"""Fixtures: a real `agora dev` (broker plus embedded devcluster) on a free
port, started once for the test session.

The binary is $AGORA_BIN, else <repo>/target/debug/agora (built by
`cargo build -p agora-broker`).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import grpc
import pytest

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 60.0


def agora_bin() -> Path:
    configured = os.environ.get("AGORA_BIN")
    path = Path(configured) if configured else REPO / "target" / "debug" / "agora"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"no agora binary at {path}: run `cargo build -p agora-broker` in {REPO} "
            "or point AGORA_BIN at one",
            pytrace=False,
        )
    return path


def serving(address: str) -> bool:
    """Whether grpc.health.v1 answers SERVING (the broker is subscribed to
    Mesos). A raw call: HealthCheckRequest{} is empty, and the answer
    {status: SERVING} is the two bytes 08 01."""
    with grpc.insecure_channel(address.removeprefix("http://")) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            return check(b"", timeout=2) == b"\x08\x01"
        except grpc.RpcError:
            return False


class Broker:
    """A running `agora dev`: its address and its log."""

    def __init__(self, tmp: Path) -> None:
        self.log_path = tmp / "agora-dev.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                str(agora_bin()),
                "dev",
                "--listen",
                "127.0.0.1:0",
                "--agents",
                "2",
                "--agent-resources",
                "cpus:4;mem:4096;disk:10000;ports:[31000-31999]",
            ],
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,
        )
        lines: "queue.Queue[str]" = queue.Queue()

        def pump() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                lines.put(line.decode(errors="replace"))

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        self.address = ""
        while not self.address:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.fail("did not print its address")
            if line.startswith("listening on "):
                self.address = line.split()[-1]
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.fail("did not print its address")
        while not serving(self.address):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.fail("did not become SERVING")
            time.sleep(0.1)

    def fail(self, why: str) -> None:
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-4000:]
        pytest.fail(
            f"agora dev {why} within {START_TIMEOUT}s; its log ends:\n{tail}", pytrace=False
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    running = Broker(tmp_path_factory.mktemp("agora"))
    yield running
    running.stop()


@pytest.fixture
def address(broker: Broker) -> str:
    """The broker's address, such as http://127.0.0.1:41234."""
    return broker.address
