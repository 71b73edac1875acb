"""The :class:`Frontend`: one frontend scheduler's session with the broker.

It connects to one or several broker endpoints, finds the leader among
them, subscribes, and carries the session id on every call. Its event
iterator resubscribes on its own when the stream breaks, resuming after the
last event it handed out, so no event is missed and none comes twice.
"""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
)

import grpc
from google.protobuf import duration_pb2

from agora.errors import AgoraError, NoLeaderError
from agora.v1 import broker_pb2, broker_pb2_grpc, resources_pb2

T = TypeVar("T")

#: How many heartbeat intervals of silence mean the broker is gone.
SILENT_HEARTBEATS = 3

#: The task states after which a task never changes again (TaskState).
TERMINAL_STATES = frozenset(
    {
        resources_pb2.TASK_STATE_FINISHED,
        resources_pb2.TASK_STATE_FAILED,
        resources_pb2.TASK_STATE_KILLED,
        resources_pb2.TASK_STATE_ERROR,
        resources_pb2.TASK_STATE_LOST,
        resources_pb2.TASK_STATE_DROPPED,
        resources_pb2.TASK_STATE_GONE,
        resources_pb2.TASK_STATE_GONE_BY_OPERATOR,
    }
)


def is_terminal(state: "resources_pb2.TaskState") -> bool:
    """Whether a task in ``state`` is done for good."""
    return state in TERMINAL_STATES


@dataclass(frozen=True)
class Credentials:
    """How to prove who the caller is, and to trust the broker.

    Attributes:
        token: sent as ``authorization: Bearer <token>`` on every call.
        ca_file: PEM file of the CA that signed the broker's certificate;
            with it, the channel speaks TLS (``https://`` addresses speak
            TLS too, trusting the system's roots without it).
        cert_file, key_file: the client's certificate and key (PEM) for
            mutual TLS; the broker takes the subject CN as the principal.
        server_name: check the broker's certificate for this name instead
            of the address's host (e.g. when connecting by IP).
    """

    token: Optional[str] = field(default=None, repr=False)
    ca_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = field(default=None, repr=False)
    server_name: Optional[str] = None

    @property
    def tls(self) -> bool:
        return self.ca_file is not None or self.cert_file is not None


@dataclass(frozen=True)
class Failover:
    """How patiently to look for the leader: each search gives up after
    ``deadline`` seconds (with :class:`NoLeaderError`); an endpoint that does
    not answer a Subscribe within ``attempt_timeout`` is passed over; after
    each fruitless round over the endpoints the search pauses from
    ``first_backoff`` doubling up to ``max_backoff`` (jittered)."""

    deadline: float = 30.0
    attempt_timeout: float = 5.0
    first_backoff: float = 0.05
    max_backoff: float = 0.5


def _target(address: str, credentials: Credentials) -> Tuple[str, bool]:
    """gRPC's ``host:port`` for ``address`` and whether to speak TLS."""
    address = address.strip().rstrip("/")
    if address.startswith("https://"):
        return address[len("https://") :], True
    if address.startswith("http://"):
        return address[len("http://") :], credentials.tls
    return address, credentials.tls


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(os.path.expanduser(path), "rb") as file:
        return file.read()


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds ``authorization: Bearer <token>`` to each call."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: Any) -> Any:
        metadata = list(details.metadata or []) + [self._header]
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def __repr__(self) -> str:
        return "_BearerToken(<redacted>)"


class _CallDetails(grpc.ClientCallDetails):
    def __init__(
        self,
        method: str,
        timeout: Optional[float],
        metadata: Any,
        credentials: Any,
        wait_for_ready: Optional[bool],
        compression: Any,
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def connect(address: str, credentials: Optional[Credentials] = None) -> grpc.Channel:
    """A channel to the broker at ``address`` (``http://host:port``,
    ``https://host:port`` or ``host:port``) carrying ``credentials``. Use it
    with the generated stubs (``agora.v1.admin_pb2_grpc.AdminStub``...) for
    what :class:`Frontend` does not wrap."""
    credentials = credentials or Credentials()
    target, secure = _target(address, credentials)
    if secure:
        tls = grpc.ssl_channel_credentials(
            root_certificates=_read(credentials.ca_file),
            private_key=_read(credentials.key_file),
            certificate_chain=_read(credentials.cert_file),
        )
        options = []
        if credentials.server_name:
            options.append(("grpc.ssl_target_name_override", credentials.server_name))
        channel = grpc.secure_channel(target, tls, options=options)
    else:
        channel = grpc.insecure_channel(target)
    if credentials.token is not None:
        if not credentials.token.isprintable() or not credentials.token.isascii():
            raise ValueError("the token must be printable ASCII to travel as a header")
        channel = grpc.intercept_channel(channel, _BearerToken(credentials.token))
    return channel


def seconds(value: Optional[float]) -> Optional[duration_pb2.Duration]:
    """A protobuf Duration of ``value`` seconds; None stays unset."""
    if value is None:
        return None
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(round(value * 1e9)))
    return duration


def slot(
    cpus: float = 0.0,
    mem_mb: float = 0.0,
    *,
    disk_mb: float = 0.0,
    gpus: float = 0.0,
    count: int = 1,
    port_count: int = 0,
) -> broker_pb2.SlotRequest:
    """``count`` slots of the given resources (a SlotRequest)."""
    resources = resources_pb2.Resources(cpus=cpus, mem_mb=mem_mb, disk_mb=disk_mb, gpus=gpus)
    return broker_pb2.SlotRequest(resources=resources, count=count, port_count=port_count)


def task(
    task_id: str,
    shell: Optional[str] = None,
    *,
    argv: Optional[Sequence[str]] = None,
    cpus: float = 0.0,
    mem_mb: float = 0.0,
    disk_mb: float = 0.0,
    environment: Optional[Mapping[str, str]] = None,
    name: str = "",
    labels: Optional[Mapping[str, str]] = None,
) -> resources_pb2.TaskSpec:
    """A TaskSpec running ``shell`` with ``/bin/sh -c`` or ``argv`` directly.
    ``task_id`` is the frontend's own id (unique among its live tasks)."""
    command = resources_pb2.Command(
        shell=shell or "", argv=list(argv or ()), environment=dict(environment or {})
    )
    return resources_pb2.TaskSpec(
        id=task_id,
        name=name,
        resources=resources_pb2.Resources(cpus=cpus, mem_mb=mem_mb, disk_mb=disk_mb),
        command=command,
        labels=dict(labels or {}),
    )


def _rpc(call: Callable[[], T]) -> T:
    try:
        return call()
    except grpc.RpcError as error:
        raise AgoraError.from_rpc_error(error) from None


_Item = Tuple[str, Any]  # ("event", Event) | ("error", AgoraError) | ("end", None)


class _Session:
    """One Subscribe stream: its channel, ids, and a thread that moves its
    messages into a queue, so that waiting for the next one can time out."""

    def __init__(
        self, address: str, credentials: Credentials, request: broker_pb2.SubscribeRequest
    ) -> None:
        self.address = address
        self.channel = connect(address, credentials)
        self.stub: Any = broker_pb2_grpc.BrokerStub(self.channel)  # type: ignore[no-untyped-call]
        self.queue: "queue.Queue[_Item]" = queue.Queue()
        self.call: Any = self.stub.Subscribe(request)
        self.session_id = ""
        self.frontend_id = ""
        self.subscribed = broker_pb2.Event()
        self.silence: Optional[float] = None
        threading.Thread(target=self._pump, name="agora-events", daemon=True).start()

    def _pump(self) -> None:
        try:
            for event in self.call:
                self.queue.put(("event", event))
            self.queue.put(("end", None))
        except grpc.RpcError as error:
            self.queue.put(("error", AgoraError.from_rpc_error(error)))
        except Exception as error:  # noqa: BLE001 -- reported to the reader
            self.queue.put(("error", AgoraError(grpc.StatusCode.UNKNOWN, repr(error))))

    def confirm(self, within: float) -> None:
        """Waits for the Subscribed event; raises what came instead."""
        try:
            kind, value = self.queue.get(timeout=within)
        except queue.Empty:
            raise AgoraError(
                grpc.StatusCode.UNAVAILABLE,
                f"the broker at {self.address} did not answer within {within:g}s",
            ) from None
        if kind == "error":
            raise value
        if kind == "end" or not value.HasField("subscribed"):
            raise AgoraError(
                grpc.StatusCode.UNAVAILABLE, "the broker did not confirm the subscription"
            )
        self.subscribed = value
        self.session_id = value.subscribed.session_id
        self.frontend_id = value.subscribed.frontend_id
        interval = value.subscribed.heartbeat_interval.ToNanoseconds() / 1e9
        self.silence = interval * SILENT_HEARTBEATS if interval > 0 else None

    def close(self) -> None:
        self.call.cancel()
        self.channel.close()


def _open_on_leader(
    endpoints: Sequence[str],
    credentials: Credentials,
    failover: Failover,
    request: broker_pb2.SubscribeRequest,
    failed_leader: Optional[str] = None,
) -> _Session:
    """Subscribes on whichever endpoint leads: a standby that names the
    leader sends the search there at once; one that names none, a refused
    connection or a silent endpoint moves it to the next, pausing between
    rounds until the deadline. Errors other than the broker being away end
    the search (another replica would refuse the same way). The endpoint
    that served a session just lost is tried last."""
    order = [a for a in endpoints if a != failed_leader] + [
        a for a in endpoints if a == failed_leader
    ]
    deadline = time.monotonic() + failover.deadline
    backoff = failover.first_backoff
    tried: Dict[str, AgoraError] = {}
    turn = 0
    named: Optional[str] = None
    hops = 0
    while True:
        if named is not None:
            address, named = named, None
        else:
            address = order[turn % len(order)]
            turn += 1
        within = max(0.001, min(failover.attempt_timeout, deadline - time.monotonic()))
        session = _Session(address, credentials, request)
        try:
            session.confirm(within)
            return session
        except AgoraError as error:
            session.close()
            if not error.is_unavailable:
                raise
            tried[address] = error
            leader = error.leader
            if leader is not None and leader != address and hops < 2:
                hops += 1
                named = leader
                continue
        hops = 0
        if turn % len(order) != 0 and time.monotonic() < deadline:
            continue
        if deadline - time.monotonic() <= backoff:
            raise NoLeaderError(failover.deadline, tried)
        time.sleep(backoff / 2 + random.random() * backoff / 2)
        backoff = min(backoff * 2, failover.max_backoff)


class Frontend:
    """A frontend scheduler's session with the broker.

    ``Frontend(endpoints, name, namespaces)`` connects to ``endpoints`` (one
    address such as ``"http://127.0.0.1:50051"``, or the list of a broker's
    replicas), finds the leader, subscribes as ``name`` in ``namespaces``
    and waits for the ``Subscribed`` event; errors raise
    :class:`~agora.AgoraError`. Every call carries the session's id.

    Read events with :meth:`events` (or :meth:`next_event`) all along: the
    broker closes sessions that fall behind, and the reader is what notices
    a broken stream. When the stream fails, ends, or stays silent for three
    heartbeat intervals, the reader finds the leader again, subscribes under
    the same name with ``resume_after`` = :attr:`last_sequence`, yields the
    new session's ``Subscribed`` event and then the events the old one did
    not deliver, dropping any it already handed out. Calls then go to the
    new session. Leases do not survive a broker failover (each is reported
    by ``LeaseLost`` with ``REASON_BROKER_RESTARTED``); tasks do.

    Calls made while the broker is away raise an error whose
    :attr:`~agora.AgoraError.is_unavailable` is true; none is retried
    behind your back (repeat only what is safe to repeat: not ``launch``).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        endpoints: Union[str, Sequence[str]],
        name: str,
        namespaces: Sequence[str],
        *,
        credentials: Optional[Credentials] = None,
        resume_after: int = 0,
        follow: bool = True,
        failover: Optional[Failover] = None,
        capabilities: Iterable["broker_pb2.FrontendCapability"] = (),
    ) -> None:
        """
        Args:
            endpoints: the broker's address, or the addresses of all its
                replicas, tried in this order.
            name: the frontend's stable name; tasks and unacknowledged
                events belong to it across sessions.
            namespaces: the namespaces this session works in.
            credentials: a token and/or TLS settings; none by default (a
                broker run with ``agora dev`` or ``--insecure``).
            resume_after: replay unacknowledged events with a sequence above
                this (0: all of them).
            follow: resubscribe when the stream breaks (default). With
                False the events end with the stream.
            failover: how patiently to look for the leader.
            capabilities: FrontendCapability values to declare.
        """
        self._endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        if not self._endpoints:
            raise ValueError(
                "no broker endpoints given: name at least one, such as http://127.0.0.1:50051"
            )
        self._credentials = credentials or Credentials()
        self._failover = failover or Failover()
        self._follow = follow
        self._request = broker_pb2.SubscribeRequest(
            frontend=name,
            namespaces=list(namespaces),
            capabilities=list(capabilities),
            resume_after=resume_after,
        )
        self._last = resume_after
        self._lock = threading.Lock()
        self._closed = False
        self._live = True
        self._session = _open_on_leader(
            self._endpoints, self._credentials, self._failover, self._request
        )

    # -- the session ---------------------------------------------------

    @property
    def frontend_id(self) -> str:
        """The broker's id for this frontend (its name)."""
        return self._session.frontend_id

    @property
    def session_id(self) -> str:
        """The current session's id; it changes when the events resubscribe."""
        return self._session.session_id

    @property
    def address(self) -> str:
        """The endpoint serving the current session (the leader)."""
        return self._session.address

    @property
    def subscribed(self) -> broker_pb2.Event:
        """The current session's Subscribed event."""
        return self._session.subscribed

    @property
    def last_sequence(self) -> int:
        """The highest sequence handed out so far: where a new session
        resumes, and what :meth:`acknowledge` confirms by default."""
        return self._last

    @property
    def stub(self) -> Any:
        """The generated ``BrokerStub`` of the current session's broker, for
        calls this class does not wrap; pass it :attr:`session_id`."""
        return self._session.stub

    def close(self) -> None:
        """Ends the session (its leases are released after the broker's
        session grace; tasks stay with the frontend)."""
        with self._lock:
            self._closed = True
            self._session.close()

    def __enter__(self) -> Frontend:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- events --------------------------------------------------------

    def events(self, timeout: Optional[float] = None) -> Iterator[broker_pb2.Event]:
        """Yields events until the frontend is closed (or, with
        ``follow=False``, the stream ends); with ``timeout``, also ends after
        that many seconds without an event. Events with a sequence come once
        each, in order; :meth:`acknowledge` them once processed."""
        while True:
            event = self.next_event(timeout)
            if event is None:
                return
            yield event

    def next_event(self, timeout: Optional[float] = None) -> Optional[broker_pb2.Event]:
        """The next event, or None after ``timeout`` seconds without one, or
        when closed (or, with ``follow=False``, when the stream ended).
        Raises :class:`~agora.NoLeaderError` when the stream broke and no
        leader answered within the failover deadline (the next call searches
        again), or the error that ended the stream with ``follow=False``."""
        until = None if timeout is None else time.monotonic() + timeout
        while not self._closed:
            session = self._session
            if self._live:
                wait = session.silence
                if until is not None:
                    left = max(0.0, until - time.monotonic())
                    wait = left if wait is None else min(wait, left)
                try:
                    kind, value = session.queue.get(timeout=wait)
                except queue.Empty:
                    if until is not None and time.monotonic() >= until:
                        return None
                    kind, value = (
                        "error",
                        AgoraError(grpc.StatusCode.UNAVAILABLE, "the broker fell silent"),
                    )
                if kind == "event":
                    if self._is_new(value.sequence):
                        return value  # type: ignore[no-any-return]
                    continue
                if self._closed:
                    return None
                if not self._follow:
                    if kind == "error":
                        raise value
                    return None
                self._live = False
            subscribed = self._resubscribe(session)
            if subscribed is not None:
                return subscribed
        return None

    def _resubscribe(self, lost: _Session) -> Optional[broker_pb2.Event]:
        lost.close()
        request = broker_pb2.SubscribeRequest()
        request.CopyFrom(self._request)
        request.resume_after = self._last
        session = _open_on_leader(
            self._endpoints, self._credentials, self._failover, request, lost.address
        )
        with self._lock:
            if self._closed:
                session.close()
                return None
            self._session = session
            self._live = True
        return session.subscribed

    def _is_new(self, sequence: int) -> bool:
        if sequence == 0:
            return True
        if sequence <= self._last:
            return False
        self._last = sequence
        return True

    def acknowledge(self, up_to_sequence: Optional[int] = None) -> None:
        """Confirms every event up to ``up_to_sequence`` (by default
        :attr:`last_sequence`): the broker no longer replays them."""
        up_to = self._last if up_to_sequence is None else up_to_sequence
        self._call(
            "Acknowledge",
            lambda sid: broker_pb2.AcknowledgeRequest(session_id=sid, up_to_sequence=up_to),
        )

    # -- calls ---------------------------------------------------------

    def _call(self, method: str, build: Callable[[str], Any]) -> Any:
        """Calls ``method`` of the current session with the request
        ``build`` makes of its id."""
        session = self._session
        request = build(session.session_id)
        return _rpc(lambda: getattr(session.stub, method)(request))

    def acquire(
        self,
        namespace: str,
        slots: Sequence[broker_pb2.SlotRequest],
        *,
        constraints: Sequence[resources_pb2.Constraint] = (),
        gang: bool = False,
        revocable: "broker_pb2.Revocable" = broker_pb2.REVOCABLE_DENY,
        hold_for: Optional[float] = None,
        wait_for: Optional[float] = None,
        request_id: str = "",
    ) -> list[resources_pb2.Lease]:
        """Leases capacity in ``namespace``: one lease per slot granted (see
        :func:`agora.slot`). ``hold_for`` and ``wait_for`` are seconds;
        without ``wait_for`` it answers at once (DEADLINE_EXCEEDED with
        reason NO_CAPACITY when nothing fits). ``request_id`` makes a retry
        return the same leases."""
        response: broker_pb2.AcquireResponse = self._call(
            "Acquire",
            lambda sid: broker_pb2.AcquireRequest(
                session_id=sid,
                namespace=namespace,
                slots=list(slots),
                constraints=list(constraints),
                gang=gang,
                revocable=revocable,
                hold_for=seconds(hold_for),
                wait_for=seconds(wait_for),
                request_id=request_id,
            ),
        )
        return list(response.leases)

    def hold(self, lease_ids: Sequence[str], hold_for: float) -> list[resources_pb2.Lease]:
        """Extends leases to expire ``hold_for`` seconds from now (capped by
        the namespace's maximum hold); answers them as extended."""
        response: broker_pb2.HoldResponse = self._call(
            "Hold",
            lambda sid: broker_pb2.HoldRequest(
                session_id=sid, lease_ids=list(lease_ids), hold_for=seconds(hold_for)
            ),
        )
        return list(response.leases)

    def release(self, lease_ids: Sequence[str], refuse_for: Optional[float] = None) -> None:
        """Gives leases back; their agents are not leased to this frontend
        again for ``refuse_for`` seconds."""
        self._call(
            "Release",
            lambda sid: broker_pb2.ReleaseRequest(
                session_id=sid, lease_ids=list(lease_ids), refuse_for=seconds(refuse_for)
            ),
        )

    def launch(self, lease_id: str, spec: resources_pb2.TaskSpec) -> broker_pb2.LaunchedTask:
        """Starts one task (see :func:`agora.task`) on a lease; its statuses
        follow as TaskStatus events. Not safe to repeat blindly: after an
        error, look for the task in :meth:`list_tasks` first."""
        launch = broker_pb2.Launch(lease_id=lease_id, task=spec)
        return self.launch_many([launch])[0]

    def launch_group(
        self, lease_id: str, specs: Sequence[resources_pb2.TaskSpec]
    ) -> list[broker_pb2.LaunchedTask]:
        """Starts tasks that share one executor (a Mesos task group)."""
        group = resources_pb2.TaskGroupSpec(tasks=list(specs))
        return self.launch_many([broker_pb2.Launch(lease_id=lease_id, task_group=group)])

    def launch_many(self, launches: Sequence[broker_pb2.Launch]) -> list[broker_pb2.LaunchedTask]:
        """Several launches in one call, started whole or not at all."""
        response: broker_pb2.LaunchResponse = self._call(
            "Launch",
            lambda sid: broker_pb2.LaunchRequest(session_id=sid, launches=list(launches)),
        )
        return list(response.tasks)

    def kill(self, task_ids: Sequence[str], grace: Optional[float] = None) -> None:
        """Asks Mesos to kill tasks (Agora's ids: ``LaunchedTask.task_id``);
        ``grace`` seconds between the polite signal and the forced kill."""
        self._call(
            "Kill",
            lambda sid: broker_pb2.KillRequest(
                session_id=sid, task_ids=list(task_ids), grace=seconds(grace)
            ),
        )

    def reconcile(self, task_ids: Sequence[str] = ()) -> list[resources_pb2.TaskStatus]:
        """The latest recorded statuses of these tasks (every live one when
        empty); fresher ones follow as events."""
        response: broker_pb2.ReconcileResponse = self._call(
            "Reconcile",
            lambda sid: broker_pb2.ReconcileRequest(session_id=sid, task_ids=list(task_ids)),
        )
        return list(response.tasks)

    def list_leases(self, namespace: str = "") -> list[resources_pb2.Lease]:
        """The frontend's live leases (in ``namespace``, when given)."""
        response: broker_pb2.ListLeasesResponse = self._call(
            "ListLeases",
            lambda sid: broker_pb2.ListLeasesRequest(session_id=sid, namespace=namespace),
        )
        return list(response.leases)

    def list_tasks(self, namespace: str = "") -> list[resources_pb2.TaskStatus]:
        """The latest status of each task the broker remembers."""
        response: broker_pb2.ListTasksResponse = self._call(
            "ListTasks",
            lambda sid: broker_pb2.ListTasksRequest(session_id=sid, namespace=namespace),
        )
        return list(response.tasks)

    def list_agents(self) -> list[broker_pb2.AgentView]:
        """The agents Agora holds capacity of, with what it holds."""
        response: broker_pb2.ListAgentsResponse = self._call(
            "ListAgents", lambda sid: broker_pb2.ListAgentsRequest(session_id=sid)
        )
        return list(response.agents)
