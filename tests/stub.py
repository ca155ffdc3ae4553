"""The one scripted stand-in for Wink's Verify Client in the tests, for both verifiers.

:class:`WinkStub` answers each call with the next scripted reply (the last one repeats) and records
the requests, behind an ``httpx.MockTransport``: ``client()`` for :class:`AsyncWinkVerifier`,
``sync_client()`` for :class:`WinkVerifier`. Where a test wants Wink's real contract (tokens it
issued, revocation, a served endpoint), it uses the shipped :class:`wink_middleware.testing.WinkEmulator`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from tests.helpers import FakeClock, config, profile_json
from wink_middleware import AsyncWinkVerifier, WinkVerifier

__all__ = ["Reply", "Trickle", "WinkStub", "sync_verifier", "verifier"]

Reply = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]

# How long a gated call waits for the test to open the gate before failing the test.
_GATE_TIMEOUT = 10.0


class WinkStub:
    """Answers each call with the next scripted reply (the last one repeats); records the requests.

    A reply is a response, an exception to raise, or a function of the request. ``delay`` seconds
    pass before each answer (``asyncio.sleep`` for the async client, ``time.sleep`` for the sync
    one); with ``gate``, every call waits for the gate to open first. Thread-safe: threads may call
    it at once, and a test may reassign ``replies``, ``delay`` and ``gate`` between calls.
    """

    def __init__(
        self, *replies: Reply, delay: float = 0.0, gate: threading.Event | None = None
    ) -> None:
        self.replies: list[Reply] = list(replies) or [httpx.Response(200, json=profile_json())]
        self.requests: list[httpx.Request] = []
        self.delay = delay
        self.gate = gate
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        """How many calls reached the stub."""
        return len(self.requests)

    def _record(self, request: httpx.Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.replies[min(len(self.requests), len(self.replies)) - 1]

    @staticmethod
    def _answer(reply: Reply, request: httpx.Request) -> httpx.Response:
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer one call, blocking for ``delay`` and ``gate`` (sync transports, respx routes)."""
        reply = self._record(request)
        if self.delay:
            time.sleep(self.delay)
        if self.gate is not None:
            assert self.gate.wait(_GATE_TIMEOUT), "the test never opened the gate"
        return self._answer(reply, request)

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        """Answer one call without blocking the event loop."""
        reply = self._record(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.gate is not None:
            waited = 0.0
            while not self.gate.is_set():
                assert waited < _GATE_TIMEOUT, "the test never opened the gate"
                await asyncio.sleep(0.001)
                waited += 0.001
        return self._answer(reply, request)

    def client(self) -> httpx.AsyncClient:
        """An async client whose calls reach this stub."""
        return httpx.AsyncClient(transport=httpx.MockTransport(self.async_handler))

    def sync_client(self) -> httpx.Client:
        """A sync client whose calls reach this stub."""
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def last_body(self) -> dict[str, Any]:
        """The JSON body of the last call."""
        body: dict[str, Any] = json.loads(self.requests[-1].content)
        return body


def verifier(stub: WinkStub, clock: FakeClock | None = None, **options: Any) -> AsyncWinkVerifier:
    """An async verifier talking to ``stub``, on a fake clock, with retries off unless asked."""
    return AsyncWinkVerifier(config(**options), client=stub.client(), clock=clock or FakeClock())


def sync_verifier(stub: WinkStub, clock: FakeClock | None = None, **options: Any) -> WinkVerifier:
    """A sync verifier talking to ``stub``, on a fake clock (its backoff sleeps move the clock)."""
    return WinkVerifier(config(**options), client=stub.sync_client(), clock=clock or FakeClock())


class Trickle(httpx.SyncByteStream):
    """A response body that arrives one chunk per ``step`` seconds of the fake clock, forever."""

    def __init__(self, clock: FakeClock, step: float, chunk: bytes = b" ") -> None:
        self.clock = clock
        self.step = step
        self.chunk = chunk
        self.chunks_sent = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            self.clock.advance(self.step)
            self.chunks_sent += 1
            yield self.chunk
