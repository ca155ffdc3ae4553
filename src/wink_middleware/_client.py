"""The HTTP client to Wink: one pooled httpx client per verifier, capped body reads, error mapping.

The two ``post`` functions are the only I/O of verification; they return ``(status, headers, body)``
for :func:`wink_middleware._protocol.classify_response` to judge. ``body`` is ``None`` when it was not
read (a non-2xx answer) or when it passed ``MAX_BODY_BYTES``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from wink_middleware._config import WinkConfig
from wink_middleware._exceptions import WinkBadResponse, WinkUnavailable
from wink_middleware._protocol import MAX_BODY_BYTES, request_headers

__all__ = [
    "Answer",
    "async_post",
    "make_async_client",
    "make_sync_client",
    "sync_post",
    "translate",
]

Answer = tuple[int, httpx.Headers, bytes | None]
# Sent with every call, also through a client the user injected.
_HEADERS = request_headers()


def _client_options(config: WinkConfig) -> dict[str, object]:
    return {
        "headers": _HEADERS,
        "timeout": httpx.Timeout(config.timeout),
        "limits": httpx.Limits(max_connections=100, max_keepalive_connections=20),
        "follow_redirects": False,
        "trust_env": False,
    }


def make_async_client(config: WinkConfig) -> httpx.AsyncClient:
    """A pooled async client with explicit timeouts and our User-Agent."""
    return httpx.AsyncClient(**_client_options(config))  # type: ignore[arg-type]


def make_sync_client(config: WinkConfig) -> httpx.Client:
    """A pooled sync client with explicit timeouts and our User-Agent."""
    return httpx.Client(**_client_options(config))  # type: ignore[arg-type]


def _too_long(response: httpx.Response) -> bool:
    length = response.headers.get("content-length", "")
    return length.isdigit() and int(length) > MAX_BODY_BYTES


async def async_post(client: httpx.AsyncClient, url: str, body: bytes) -> Answer:
    """POST ``body`` to ``url``; read at most ``MAX_BODY_BYTES`` of a 2xx answer."""
    async with client.stream("POST", url, content=body, headers=_HEADERS) as response:
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
) -> Answer:
    """POST ``body`` to ``url``; read at most ``MAX_BODY_BYTES`` of a 2xx answer.

    httpx's sync client has no overall timeout (its timeouts bound each connect, write and read),
    so ``timeout`` bounds each of those and ``deadline``, on ``clock``, is checked once the
    headers are in and between body chunks: a slow trickle raises :class:`TimeoutError`.
    """
    options: dict[str, Any] = {} if timeout is None else {"timeout": httpx.Timeout(timeout)}
    with client.stream("POST", url, content=body, headers=_HEADERS, **options) as response:
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
