"""httpx transports that hand requests to a WinkEmulator in-process (async and sync twins).

Both ask :meth:`WinkEmulator.answer` and differ only in how they wait. Like a real server, they honour
the request's read timeout: an added latency longer than it ends in ``httpx.ReadTimeout``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import anyio
import httpx

if TYPE_CHECKING:
    from wink_middleware.testing._emulator import Answer, WinkEmulator

__all__ = ["AsyncEmulatorTransport", "SyncEmulatorTransport"]


def _read_timeout(request: httpx.Request) -> float | None:
    timeout = request.extensions.get("timeout")
    value = timeout.get("read") if isinstance(timeout, dict) else None
    return value if isinstance(value, int | float) else None


def _wait(request: httpx.Request, answer: Answer) -> tuple[float, bool]:
    """How long to wait, and whether the wait ends in a read timeout."""
    limit = _read_timeout(request)
    if limit is not None and answer.delay > limit:
        return limit, True
    return answer.delay, False


def _finish(request: httpx.Request, answer: Answer, timed_out: bool) -> httpx.Response:
    if timed_out:
        raise httpx.ReadTimeout("the Wink emulator did not answer in time", request=request)
    if answer.drop:
        raise httpx.RemoteProtocolError(
            "Server disconnected without sending a response.", request=request
        )
    return httpx.Response(
        answer.status, headers=answer.all_headers(), content=answer.body, request=request
    )


class AsyncEmulatorTransport(httpx.AsyncBaseTransport):
    """For ``httpx.AsyncClient(transport=emulator.transport())``."""

    def __init__(self, emulator: WinkEmulator) -> None:
        self.emulator = emulator

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` as the emulator decides, waiting without blocking the event loop."""
        body = await request.aread()
        answer = self.emulator.answer(
            request.method, request.url.path, body, request.headers.get("authorization")
        )
        delay, timed_out = _wait(request, answer)
        if delay:
            await anyio.sleep(delay)
        return _finish(request, answer, timed_out)


class SyncEmulatorTransport(httpx.BaseTransport):
    """For ``httpx.Client(transport=emulator.sync_transport())``."""

    def __init__(self, emulator: WinkEmulator) -> None:
        self.emulator = emulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` as the emulator decides, blocking this thread for any latency."""
        body = request.read()
        answer = self.emulator.answer(
            request.method, request.url.path, body, request.headers.get("authorization")
        )
        delay, timed_out = _wait(request, answer)
        if delay:
            time.sleep(delay)
        return _finish(request, answer, timed_out)
