"""A scripted, thread-safe stand-in for Wink's Verify Client behind an httpx.MockTransport (sync)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from tests.helpers import FakeClock, profile_json
from tests.wink_stub import config
from wink_middleware import WinkVerifier

Reply = httpx.Response | BaseException | Callable[[httpx.Request], httpx.Response]


class SyncWinkStub:
    """Answers each call with the next scripted reply (the last one repeats); records the requests.

    With ``gate``, every call waits for the gate to open before answering.
    """

    def __init__(self, *replies: Reply, gate: threading.Event | None = None) -> None:
        self.replies: list[Reply] = list(replies) or [httpx.Response(200, json=profile_json())]
        self.requests: list[httpx.Request] = []
        self.gate = gate
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.requests)

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def last_body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[-1].content)
        return body


def sync_verifier(
    stub: SyncWinkStub, clock: FakeClock | None = None, **options: Any
) -> WinkVerifier:
    """A verifier talking to ``stub``, on a fake clock, with retries off unless asked."""
    return WinkVerifier(config(**options), client=stub.client(), clock=clock or FakeClock())


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
