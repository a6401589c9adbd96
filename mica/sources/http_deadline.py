"""httpx sockets bounded by a wall-clock deadline: every connect, read and write of a thread.

httpx bounds only each read (encode/httpx#1450), so a server dripping a byte a second never
times out there. A client built on `deadline_transport` takes its sockets from a
`DeadlineBackend`, which cuts every socket operation of the calling thread at that thread's
deadline (`DeadlineBackend.until`): a server dripping the response headers or the body holds
a request no longer than the deadline. Used by the ``cda`` source (`mica.sources.cda`).
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore sockets whose connects, reads and writes all end by a wall-clock deadline.

    A thread sets its deadline (`time.monotonic` seconds) with `until`; every socket
    operation that thread then makes through the client is given at most the time left, and
    none starts once it has passed (a timeout error). httpx's own timeouts bound one read
    each, never a whole response (encode/httpx#1450), and its sync client does the I/O of a
    request in the calling thread: so a per-thread deadline bounds each download thread.
    """

    def __init__(self, backend: httpcore.NetworkBackend | None = None):
        self.backend = backend or httpcore.SyncBackend()
        self._local = threading.local()

    @contextmanager
    def until(self, deadline: float | None) -> Iterator[None]:
        """Bound this thread's socket operations by ``deadline`` (None: unbounded)."""
        before = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = before

    def left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """``timeout`` cut to the time left before this thread's deadline; ``error`` once
        the deadline has passed."""
        deadline = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise error("deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self.left(timeout, httpcore.ConnectTimeout)
        stream = self.backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        timeout = self.left(timeout, httpcore.ConnectTimeout)
        stream = self.backend.connect_unix_socket(path, timeout, socket_options)
        return _DeadlineStream(stream, self)

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose operations are bounded by its backend's thread deadline."""

    def __init__(self, stream: httpcore.NetworkStream, clock: DeadlineBackend):
        self.stream, self.clock = stream, clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self.clock.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self.clock.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = self.clock.left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self.stream.start_tls(ssl_context, server_hostname, timeout), self.clock
        )

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


def deadline_transport(limits: httpx.Limits, clock: DeadlineBackend) -> httpx.HTTPTransport:
    """httpx's transport with its connection pool on ``clock``'s sockets.

    httpx takes no network backend, its connection pool (httpcore) does: the transport's
    pool is replaced by one built as httpx builds it (verified TLS, the same limits).
    """
    transport = httpx.HTTPTransport(limits=limits)
    transport._pool.close()  # noqa: SLF001 (empty: nothing connected yet)
    transport._pool = httpcore.ConnectionPool(  # noqa: SLF001
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=clock,
    )
    return transport


def env_proxies() -> bool:
    """Whether the environment sets an HTTP(S) proxy (httpx then routes through it)."""
    return any(k in ("http", "https", "all") for k in urllib.request.getproxies())
