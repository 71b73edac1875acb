"""Stand-ins for what `agora dev` cannot play: a standby replica, a broker
that falls silent, and a TCP proxy whose connections a test can cut."""

from __future__ import annotations

import socket
import threading
from concurrent import futures
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import grpc
from google.rpc import error_details_pb2, status_pb2

from agora.v1 import broker_pb2

Subscribe = Callable[
    [broker_pb2.SubscribeRequest, grpc.ServicerContext], Iterator[broker_pb2.Event]
]


class FakeBroker:
    """A gRPC server answering Broker.Subscribe with `subscribe`; it keeps
    each call's request and metadata."""

    def __init__(
        self,
        subscribe: Subscribe,
        tls: Optional[Tuple[bytes, bytes]] = None,
    ) -> None:
        self.requests: List[broker_pb2.SubscribeRequest] = []
        self.metadata: List[Dict[str, Any]] = []

        def recorded(
            request: broker_pb2.SubscribeRequest, context: grpc.ServicerContext
        ) -> Iterator[broker_pb2.Event]:
            self.requests.append(request)
            self.metadata.append(dict(context.invocation_metadata()))
            return subscribe(request, context)

        handler = grpc.method_handlers_generic_handler(
            "agora.v1.Broker",
            {
                "Subscribe": grpc.unary_stream_rpc_method_handler(
                    recorded,
                    request_deserializer=broker_pb2.SubscribeRequest.FromString,
                    response_serializer=broker_pb2.Event.SerializeToString,
                )
            },
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((handler,))
        if tls is None:
            port = self.server.add_insecure_port("127.0.0.1:0")
            self.address = f"http://127.0.0.1:{port}"
        else:
            credentials = grpc.ssl_server_credentials([tls])
            port = self.server.add_secure_port("127.0.0.1:0", credentials)
            self.address = f"https://127.0.0.1:{port}"
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None)


def standby(leader: Optional[str]) -> Subscribe:
    """Answers as a standby replica does: UNAVAILABLE, ErrorInfo NOT_READY
    with metadata `leader` when one is known."""

    def subscribe(
        _: broker_pb2.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[broker_pb2.Event]:
        info = error_details_pb2.ErrorInfo(
            reason="NOT_READY",
            domain="agora.v1",
            metadata={"leader": leader} if leader else {},
        )
        status = status_pb2.Status(code=grpc.StatusCode.UNAVAILABLE.value[0], message="standby")
        status.details.add().Pack(info)
        context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
        context.abort(grpc.StatusCode.UNAVAILABLE, "this replica stands by")
        yield broker_pb2.Event()  # never reached; makes this a generator

    return subscribe


def unused_address() -> str:
    """An address nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Proxy:
    """Forwards TCP connections to `upstream` (http://host:port) until
    `cut` closes every one of them; new connections are forwarded again."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.sockets: List[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        """Breaks every connection made so far."""
        with self.lock:
            cut, self.sockets = self.sockets, []
        for end in cut:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self.listener.close()
        self.cut()
