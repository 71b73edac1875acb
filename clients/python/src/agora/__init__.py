"""Agora's Python client.

``agora.v1`` holds the stubs generated from the repository's proto/ when
the package was built (``broker_pb2``, ``broker_pb2_grpc``, ``resources_pb2``,
``admin_pb2``, ``errors_pb2``...). Around them, :class:`Frontend` is a thin
session of a frontend scheduler::

    import agora

    with agora.Frontend("http://127.0.0.1:50051", "hello", ["default"]) as frontend:
        lease = frontend.acquire("default", [agora.slot(cpus=1, mem_mb=128)], wait_for=10)[0]
        frontend.launch(lease.id, agora.task("hello", "echo hello", cpus=1, mem_mb=128))
        for event in frontend.events():
            ...
            frontend.acknowledge(event.sequence)
"""

from agora.client import (
    TERMINAL_STATES,
    Credentials,
    Failover,
    Frontend,
    connect,
    is_terminal,
    seconds,
    slot,
    task,
)
from agora.errors import DOMAIN, AgoraError, NoLeaderError

__all__ = [
    "DOMAIN",
    "TERMINAL_STATES",
    "AgoraError",
    "Credentials",
    "Failover",
    "Frontend",
    "NoLeaderError",
    "connect",
    "is_terminal",
    "seconds",
    "slot",
    "task",
]
