"""Miss path: what a cold request costs beyond Wink's own latency.

Each request carries a token the verifier has never seen, so it goes through the whole miss path:
middleware, pre-check, single-flight, httpx, Wink (the emulator, 20 ms latency), classification,
profile parsing, caching. The time spent inside the emulator is measured per call and subtracted,
so the figure is the package's own cost (plus httpx's), not the emulator's or asyncio's timer slack.
"""

from __future__ import annotations

import time

import httpx

from benchmarks._harness import CLIENT_ID, CLIENT_SECRET, Row, percentile
from benchmarks.bench_coalesce import hello, request
from wink_middleware import AsyncWinkVerifier, WinkMiddleware
from wink_middleware.testing import WinkEmulator

__all__ = ["TimedTransport", "run"]

LATENCY = 0.020


class TimedTransport(httpx.AsyncBaseTransport):
    """Wraps a transport and records how long each request spent inside it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.durations: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Delegate to the wrapped transport, timing it."""
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        self.durations.append(time.perf_counter() - started)
        return response


async def run(*, n: int) -> list[Row]:
    """Send ``n`` cold requests one after another and return the table rows."""
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET, latency=LATENCY)
    transport = TimedTransport(emulator.transport())
    verifier = AsyncWinkVerifier(
        emulator.wink_config(), client=httpx.AsyncClient(transport=transport)
    )
    app = WinkMiddleware(hello, verifier=verifier)
    tokens = [emulator.issue_token(ttl=3600) for _ in range(n + 5)]
    for token in tokens[:5]:  # warm-up: imports, first-call paths, the client's pool
        await request(app, token)
    transport.durations.clear()
    totals: list[float] = []
    for token in tokens[5:]:
        started = time.perf_counter()
        status = await request(app, token)
        totals.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"a cold request answered {status}, not 200")
    await verifier.aclose()
    if emulator.calls != n + 5:
        raise RuntimeError(f"{n + 5} cold tokens made {emulator.calls} calls to the emulator")
    own = [total - inside for total, inside in zip(totals, transport.durations, strict=True)]
    section = f"Miss path ({n} cold requests, emulator latency {LATENCY * 1e3:.0f} ms)"
    p50, p99 = percentile(own, 50) * 1e3, percentile(own, 99) * 1e3
    return [
        Row(
            section,
            "cold request, total",
            f"p50 {percentile(totals, 50) * 1e3:.2f} ms, p99 {percentile(totals, 99) * 1e3:.2f} ms",
        ),
        Row(
            section,
            "time inside the emulator",
            f"p50 {percentile(transport.durations, 50) * 1e3:.2f} ms",
        ),
        Row(
            section,
            "cold request minus emulator time",
            f"p50 {p50:.3f} ms, p99 {p99:.3f} ms",
            "p50 < 1 ms",
            p50 < 1.0,
        ),
    ]
