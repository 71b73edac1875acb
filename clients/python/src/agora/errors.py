"""The one exception of the client: :class:`AgoraError`.

A refused call carries the canonical gRPC code, the broker's message and,
in the `grpc-status-details-bin` trailer, a ``google.rpc.Status`` whose
details hold a ``google.rpc.ErrorInfo`` (domain ``agora.v1``, reason an
``agora.v1.ErrorReason`` name such as ``QUOTA_EXCEEDED``, and its facts in
metadata) and, for a bad field, a ``google.rpc.BadRequest`` naming it.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Tuple

import grpc
from google.rpc import error_details_pb2, status_pb2

#: The ``ErrorInfo.domain`` of every Agora error.
DOMAIN = "agora.v1"

_DETAILS_KEY = "grpc-status-details-bin"


class AgoraError(Exception):
    """A call the broker refused, or that did not reach it.

    Attributes:
        code: the gRPC status code (``grpc.StatusCode.INVALID_ARGUMENT``...).
        message: the broker's message, a sentence saying what to fix.
        reason: the ``ErrorInfo`` reason (an ``agora.v1.ErrorReason`` name
            such as ``"INVALID_FIELD"``), or ``None`` when the status carries
            none (see errors.proto for those). Treat a reason you do not
            know by its code.
        metadata: the ``ErrorInfo`` facts, such as ``{"field": "slots"}``.
        field_violations: ``(field, description)`` pairs of a
            ``google.rpc.BadRequest`` detail.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        field_violations: Sequence[Tuple[str, str]] = (),
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations: list[tuple[str, str]] = list(field_violations)
        shown = (
            f"{code.name}: {message}" if reason is None else f"{code.name} ({reason}): {message}"
        )
        super().__init__(shown)

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> AgoraError:
        """Reads code, message and details of a failed call."""
        if not isinstance(error, grpc.Call):
            return cls(grpc.StatusCode.UNKNOWN, str(error))
        code = error.code() or grpc.StatusCode.UNKNOWN
        message = error.details() or ""
        reason: Optional[str] = None
        metadata: dict[str, str] = {}
        violations: list[tuple[str, str]] = []
        for key, value in error.trailing_metadata() or ():
            if key != _DETAILS_KEY or not isinstance(value, bytes):
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                bad_request = error_details_pb2.BadRequest()
                if detail.Unpack(info):
                    if info.domain == DOMAIN:
                        reason = info.reason
                        metadata = dict(info.metadata)
                elif detail.Unpack(bad_request):
                    violations += [(v.field, v.description) for v in bad_request.field_violations]
        return cls(code, message, reason, metadata, violations)

    @property
    def field(self) -> Optional[str]:
        """The path of the field at fault for ``INVALID_ARGUMENT`` (such as
        ``launches[0].task.id``), when the broker named one."""
        if "field" in self.metadata:
            return self.metadata["field"]
        return self.field_violations[0][0] if self.field_violations else None

    @property
    def leader(self) -> Optional[str]:
        """The leader's URL when a standby replica refused the call
        (``UNAVAILABLE``, reason ``NOT_READY``, metadata ``leader``)."""
        if self.code != grpc.StatusCode.UNAVAILABLE or self.reason != "NOT_READY":
            return None
        return self.metadata.get("leader") or None

    @property
    def is_unavailable(self) -> bool:
        """Whether the broker is away rather than refusing the call: a
        standby, restarting, not subscribed to Mesos, or unreachable. A call
        failing so may succeed later; repeat it only if that is safe (reads,
        Acknowledge, Kill, Hold, Acquire with a request_id; not Launch)."""
        # A connection reset mid-call often surfaces as UNKNOWN or INTERNAL
        # from the transport rather than from the broker; those carry no
        # ErrorInfo, whereas the broker's own INTERNAL is a bug either way.
        return self.code == grpc.StatusCode.UNAVAILABLE or (
            self.code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED)
            and self.reason is None
            and "transport" in self.message.lower()
        )


class NoLeaderError(AgoraError):
    """No endpoint led and answered before the failover deadline.

    ``tried`` maps each endpoint to the last error it answered.
    """

    def __init__(self, within: float, tried: Mapping[str, AgoraError]) -> None:
        self.tried = dict(tried)
        listed = "; ".join(f"{address} ({error})" for address, error in self.tried.items())
        super().__init__(
            grpc.StatusCode.UNAVAILABLE,
            f"no Agora leader answered within {within:g}s; tried {listed or 'nothing'}",
        )
