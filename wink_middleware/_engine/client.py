"""The HTTP client to Wink: one pooled httpx client per verifier, capped body reads, error mapping.

The only module of the engine that imports the HTTP library. The two ``attempt`` functions are the
I/O of a :class:`~wink_middleware._engine.flow.Post` step: they return ``(status, headers, body)``
for :func:`wink_middleware._engine.protocol.classify_response` to judge (``body`` is ``None`` when it
was not read, a non-2xx answer, or when it passed ``MAX_BODY_BYTES``), and raise an I/O failure as
the package's exception for it (:func:`translate`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

from wink_middleware._config import WinkConfig
from wink_middleware._engine.protocol import (
    MAX_BODY_BYTES,
    USER_AGENT,
    is_identity,
    request_headers,
)
from wink_middleware._exceptions import WinkBadResponse, WinkUnavailable

__all__ = [
    "Answer",
    "AsyncClient",
    "Client",
    "async_attempt",
    "async_get",
    "is_timeout",
    "make_async_client",
    "make_sync_client",
    "sync_attempt",
    "sync_get",
    "translate",
]

#: The client types a verifier accepts as ``client=`` (named here: the twins import no httpx).
AsyncClient = httpx.AsyncClient
Client = httpx.Client

Answer = tuple[int, httpx.Headers, bytes | None]
# Sent with every call, also through a client the user injected.
_HEADERS = request_headers()
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def _client_options(config: WinkConfig) -> dict[str, object]:
    return {
        "headers": _HEADERS,
        "timeout": httpx.Timeout(config.timeout),
        "limits": _LIMITS,
        "follow_redirects": False,
        "trust_env": False,
    }


def make_async_client(config: WinkConfig) -> httpx.AsyncClient:
    """A pooled async client with explicit timeouts and our User-Agent."""
    return httpx.AsyncClient(**_client_options(config))  # type: ignore[arg-type]


def make_sync_client(config: WinkConfig) -> httpx.Client:
    """A pooled sync client with explicit timeouts and our User-Agent, whose sockets keep deadlines.

    httpx's timeouts bound each socket operation, so a Wink that trickles its headers a byte at a
    time would hold a thread for as long as it likes; this client's sockets never wait past the
    deadline :func:`sync_post` is given.
    """
    transport = httpx.HTTPTransport(limits=_LIMITS, trust_env=False)
    # httpx offers no way to pass httpcore a network backend: wrap the one its pool made. Should a
    # later httpx hide it, the per-read timeouts and the per-chunk deadline checks still hold.
    pool = transport._pool
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend):
        pool._network_backend = _DeadlineBackend(backend)
    return httpx.Client(transport=transport, **_client_options(config))  # type: ignore[arg-type]


# The deadline, on time.monotonic(), of the sync_post running in this thread.
_local = threading.local()


@contextmanager
def _deadline_scope(seconds: float | None) -> Iterator[None]:
    previous = getattr(_local, "at", None)
    _local.at = None if seconds is None else time.monotonic() + seconds
    try:
        yield
    finally:
        _local.at = previous


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's deadline; ``error`` when nothing is."""
    at: float | None = getattr(_local, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("Wink's answer did not arrive before the deadline")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every wait ends by the deadline of the call using it."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        timeout = _clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, making :class:`_DeadlineStream` connections."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        timeout = _clamp(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:  # pragma: no cover - Wink is reached over TCP
        timeout = _clamp(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - used by httpcore retries only
        self._backend.sleep(seconds)


def _too_long(response: httpx.Response) -> bool:
    """A 2xx answer not to read: longer than the cap, or encoded.

    We ask for ``identity``; a gzip answer could decode to far more than the cap, so an encoded
    body is never read. What is read is then sent as is (httpx has nothing to decode), and the
    cap holds on the bytes as received.
    """
    if not is_identity(response.headers):
        return True
    length = response.headers.get("content-length", "")
    return length.isdigit() and int(length) > MAX_BODY_BYTES


async def async_post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str] | None = None
) -> Answer:
    """POST ``body`` to ``url`` (with ``headers``, default Verify Client's); read at most
    ``MAX_BODY_BYTES`` of a 2xx answer."""
    sent = _HEADERS if headers is None else headers
    async with client.stream("POST", url, content=body, headers=sent) as response:
        status = response.status_code
        if not 200 <= status < 300 or _too_long(response):
            return status, response.headers, None
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return status, response.headers, None
            chunks.append(chunk)
        return status, response.headers, b"".join(chunks)


def sync_post(
    client: httpx.Client,
    url: str,
    body: bytes,
    *,
    timeout: float | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    headers: dict[str, str] | None = None,
) -> Answer:
    """POST ``body`` to ``url``; read at most ``MAX_BODY_BYTES`` of a 2xx answer.

    httpx's sync client has no overall timeout (its timeouts bound each connect, write and read),
    so ``timeout`` bounds each of those and ``deadline``, on ``clock``, is checked once the
    headers are in and between body chunks: a slow trickle raises :class:`TimeoutError`. On a
    client from :func:`make_sync_client`, every socket wait also ends by the deadline.
    """
    options: dict[str, Any] = {} if timeout is None else {"timeout": httpx.Timeout(timeout)}
    left = None if deadline is None else deadline - clock()
    sent = _HEADERS if headers is None else headers
    with (
        _deadline_scope(left),
        client.stream("POST", url, content=body, headers=sent, **options) as response,
    ):
        _check_deadline(deadline, clock)
        status = response.status_code
        if not 200 <= status < 300 or _too_long(response):
            return status, response.headers, None
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            _check_deadline(deadline, clock)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return status, response.headers, None
            chunks.append(chunk)
        return status, response.headers, b"".join(chunks)


def _check_deadline(deadline: float | None, clock: Callable[[], float]) -> None:
    if deadline is not None and clock() >= deadline:
        raise TimeoutError("Wink's answer did not arrive before the deadline")


async def async_attempt(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str] | None,
    timeout: float,
) -> Answer:
    """One attempt: :func:`async_post` within ``timeout`` seconds, an I/O failure translated."""
    try:
        async with asyncio.timeout(timeout):
            return await async_post(client, url, body, headers)
    except (httpx.HTTPError, httpx.StreamError, OSError, TimeoutError) as exc:
        raise translate(exc) from exc


def sync_attempt(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str] | None,
    timeout: float,
    clock: Callable[[], float],
) -> Answer:
    """One attempt: :func:`sync_post` with ``timeout`` as its deadline on ``clock``, an I/O failure
    translated."""
    try:
        return sync_post(
            client,
            url,
            body,
            timeout=timeout,
            deadline=clock() + timeout,
            clock=clock,
            headers=headers,
        )
    except (httpx.HTTPError, httpx.StreamError, OSError, TimeoutError, RuntimeError) as exc:
        # A bare RuntimeError is only ours to map when close() in another thread closed the client
        # under this call.
        if type(exc) is RuntimeError and not client.is_closed:
            raise
        raise translate(exc) from exc


def translate(error: Exception) -> WinkUnavailable | WinkBadResponse:
    """Map an I/O error (httpx's, a timeout, an OS error) to the package's exception for it."""
    result: WinkUnavailable | WinkBadResponse
    if isinstance(error, httpx.DecodingError):
        result = WinkBadResponse("Wink's answer could not be decoded")
    elif isinstance(error, httpx.TimeoutException | TimeoutError):
        result = WinkUnavailable("Wink did not answer in time")
    elif isinstance(error, httpx.ConnectError):
        result = WinkUnavailable("Wink could not be reached")
    else:
        result = WinkUnavailable(f"the connection to Wink failed ({type(error).__name__})")
    result.__cause__ = error  # kept for debuggers; the message itself never holds request data
    return result


# A key set is asked for as JSON, uncompressed: the 64 KiB cap is a cap on memory too.
_GET_HEADERS = {
    "Accept": "application/json",
    "User-Agent": USER_AGENT,
    "Accept-Encoding": "identity",
}


async def async_get(client: httpx.AsyncClient, url: str) -> tuple[int, bytes | None]:
    """GET ``url`` (the realm's key set): the status and at most ``MAX_BODY_BYTES`` of a 2xx body
    (``None`` when it was longer, encoded or not 2xx)."""
    async with client.stream("GET", url, headers=_GET_HEADERS) as response:
        status = response.status_code
        if not 200 <= status < 300 or _too_long(response):
            return status, None
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return status, None
            chunks.append(chunk)
        return status, b"".join(chunks)


def sync_get(
    client: httpx.Client, url: str, *, timeout: float, clock: Callable[[], float] = time.monotonic
) -> tuple[int, bytes | None]:
    """:func:`async_get`'s sync twin, within ``timeout`` overall (as :func:`sync_post`)."""
    deadline = clock() + timeout
    with (
        _deadline_scope(timeout),
        client.stream("GET", url, headers=_GET_HEADERS, timeout=httpx.Timeout(timeout)) as response,
    ):
        _check_deadline(deadline, clock)
        status = response.status_code
        if not 200 <= status < 300 or _too_long(response):
            return status, None
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            _check_deadline(deadline, clock)
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return status, None
            chunks.append(chunk)
        return status, b"".join(chunks)


def is_timeout(error: BaseException) -> bool:
    """Whether an I/O error is a timeout (httpx's or asyncio's)."""
    return isinstance(error, httpx.TimeoutException | TimeoutError)
