"""Single-flight: concurrent requests for cold tokens, through WinkMiddleware, against the emulator.

1,000 concurrent requests carrying one cold token must cost exactly one call to Wink; 100 cold
tokens with 10 concurrent requests each, exactly 100. The emulator answers after ``latency`` so
that every request really arrives while the first call for its token is in flight.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from starlette.types import Message, Receive, Scope, Send

from benchmarks._harness import CLIENT_ID, CLIENT_SECRET, Row
from wink_middleware import WinkMiddleware
from wink_middleware.testing import WinkEmulator

__all__ = ["Flight", "fly", "hello", "request", "run"]


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """A plain ASGI app that answers 200 "hello"."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def request(app: WinkMiddleware, token: str) -> int:
    """Send one GET /hello with ``token`` through ``app`` in-process; return the status."""
    status = 0

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/hello",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
    }
    await app(scope, _receive, send)
    return status


@dataclass(frozen=True)
class Flight:
    """The outcome of one burst of concurrent cold requests."""

    requests: int
    tokens: int
    wink_calls: int
    coalesced: int
    all_ok: bool
    seconds: float


async def fly(tokens: int, per_token: int, *, latency: float = 0.05) -> Flight:
    """``tokens`` cold tokens, ``per_token`` concurrent requests each, all at once, shuffled."""
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET, latency=latency)
    verifier = emulator.async_verifier()
    app = WinkMiddleware(hello, verifier=verifier)
    issued = [emulator.issue_token(ttl=3600) for _ in range(tokens)]
    burst = [token for token in issued for _ in range(per_token)]
    random.shuffle(burst)
    started = time.perf_counter()
    statuses = await asyncio.gather(*(request(app, token) for token in burst))
    seconds = time.perf_counter() - started
    await verifier.aclose()
    return Flight(
        requests=len(burst),
        tokens=tokens,
        wink_calls=emulator.calls,
        coalesced=verifier.stats.coalesced,
        all_ok=all(status == 200 for status in statuses),
        seconds=seconds,
    )


async def run() -> list[Row]:
    """Measure and return the table rows (well under a second)."""
    section = "Coalescing (in-process emulator, 50 ms latency)"
    rows = []
    for tokens, per_token in ((1, 1000), (100, 10)):
        flight = await fly(tokens, per_token)
        label = "token" if tokens == 1 else "tokens"
        rows.append(
            Row(
                section,
                f"{flight.requests:,} concurrent requests, {tokens} cold {label}",
                f"{flight.wink_calls} Wink call{'s' if flight.wink_calls != 1 else ''}, "
                f"{flight.coalesced} coalesced, all 200: {flight.all_ok}, "
                f"{flight.seconds * 1e3:.0f} ms",
                f"= {tokens}",
                flight.wink_calls == tokens and flight.all_ok,
            )
        )
    return rows
