"""ASGI cache hit with the optional parts on: observers (Prometheus, OpenTelemetry) and the shared tier.

Same driver and reference as :mod:`benchmarks.bench_asgi` (a bare Starlette route, the route behind
a hand-written ``AuthenticationMiddleware`` with a sha256 + dict backend), measured side by side in
one run, so each variant's overhead ratio ``(c-a)/(b-a)`` compares with the plain ``WinkMiddleware``.
The OpenTelemetry observer runs on the API's default, no-op providers: what an app that installed
``[otel]`` but configured no SDK pays. The shared tier needs ``redis-server``: its variant is
skipped (and says so) without one.
"""

from __future__ import annotations

import hashlib
import shutil
from statistics import median
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.authentication import BaseUser, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware

from benchmarks._harness import FastWink, Row, alternate, jwt
from benchmarks.bench_asgi import (
    TOKEN_PADDING,
    DictBackend,
    Variant,
    driver,
    http_scope,
    starlette_app,
)
from wink_middleware import WinkMiddleware
from wink_middleware.otel import OpenTelemetryObserver
from wink_middleware.prometheus import PrometheusObserver

__all__ = ["run"]

LABELS = {
    "wink": "WinkMiddleware, no observer",
    "prometheus": "+ PrometheusObserver",
    "otel": "+ OpenTelemetryObserver, no SDK",
    "shared": "shared tier on (in-process hit)",
}
GOALS = {"wink": 1.0, "prometheus": 1.3, "otel": 1.05, "shared": 1.0}


async def _wink(token: str, **options: Any) -> Variant:
    verifier = FastWink().verifier(**options)
    await verifier.verify(token)  # warm the cache through the public API
    return driver(starlette_app([Middleware(WinkMiddleware, verifier=verifier)]), http_scope(token))


async def run(*, rounds: int, n: int) -> list[Row]:
    """Measure and return the rows: one overhead ratio per variant."""
    token = jwt(padding=TOKEN_PADDING)
    users: dict[str, BaseUser] = {hashlib.sha256(token.encode()).hexdigest(): SimpleUser("ada")}
    scope = http_scope(token)
    variants: dict[str, Variant] = {
        "bare": driver(starlette_app(), scope),
        "reference": driver(
            starlette_app([Middleware(AuthenticationMiddleware, backend=DictBackend(users))]), scope
        ),
        "wink": await _wink(token),
        "prometheus": await _wink(
            token, observers=[PrometheusObserver(registry=CollectorRegistry())]
        ),
        "otel": await _wink(token, observers=[OpenTelemetryObserver()]),
    }
    server = None
    if shutil.which("redis-server"):
        from tests.redis_server import RedisServer

        server = RedisServer().start()
        variants["shared"] = await _wink(token, redis_url=server.url)
    try:
        timings = await alternate(variants, rounds=rounds, n=n)
    finally:
        if server is not None:
            server.stop()
    section = f"ASGI cache hit with options on ({len(token)} B JWT, {rounds}x{n} req, median)"
    bare, ref = median(timings["bare"]) * 1e6, median(timings["reference"]) * 1e6
    rows = [
        Row(section, "(a) bare Starlette route", f"{bare:.2f} µs/req"),
        Row(section, "(b) + AuthenticationMiddleware (sha256 + dict)", f"{ref:.2f} µs/req"),
    ]
    for name, label in LABELS.items():
        if name not in timings:
            rows.append(Row(section, f"{label}: ratio (c-a)/(b-a)", "skipped: no redis-server"))
            continue
        wink = median(timings[name]) * 1e6
        ratio = (wink - bare) / (ref - bare)
        goal = GOALS[name]
        rows.append(
            Row(
                section,
                f"{label}: ratio (c-a)/(b-a)",
                f"{ratio:.2f} ({wink:.2f} µs/req)",
                f"≤ {goal} required",
                ratio <= goal,
            )
        )
    return rows
