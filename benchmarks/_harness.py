"""Shared pieces of the benchmarks: alternating timing, result rows, tokens and a fast Wink stand-in.

Every comparison runs its variants side by side in one process, in alternating rounds (the order
rotates each round), and reports medians: on a shared 2-core machine a single timing says little.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import math
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from wink_middleware import AsyncWinkVerifier, WinkConfig

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "FastWink",
    "Row",
    "Timings",
    "alternate",
    "jwt",
    "median",
    "overhead_rows",
    "percentile",
    "profile_body",
    "wink_config",
]

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-never-printed"
BASE_URL = "https://wink.bench"


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    section: str
    measure: str
    value: str
    goal: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        """``ok``, ``not yet`` (a goal this run did not reach: a target, not a failed test) or
        empty when the row has no goal."""
        if self.met is None:
            return ""
        return "ok" if self.met else "not yet"


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def overhead_rows(
    section: str, timings: Mapping[str, Sequence[float]], labels: Sequence[str]
) -> list[Row]:
    """Rows for (a) bare, (b) reference and (c) Wink timings, and the ratio (c-a)/(b-a).

    ``timings`` holds per-round seconds under keys "bare", "reference" and "wink"; ``labels`` names
    the three variants.
    """
    bare, ref, wink = (median(timings[k]) * 1e6 for k in ("bare", "reference", "wink"))
    ratio = (wink - bare) / (ref - bare)
    # Per-round ratios show how much the verdict moves with the machine's noise.
    per_round = sorted(
        (w - b) / (r - b)
        for b, r, w in zip(timings["bare"], timings["reference"], timings["wink"], strict=True)
    )
    return [
        Row(section, f"(a) {labels[0]}", f"{bare:.2f} µs/req"),
        Row(section, f"(b) {labels[1]}", f"{ref:.2f} µs/req (+{ref - bare:.2f})"),
        Row(section, f"(c) {labels[2]}", f"{wink:.2f} µs/req (+{wink - bare:.2f})"),
        Row(
            section,
            "overhead ratio (c-a)/(b-a)",
            f"{ratio:.2f} (rounds {per_round[0]:.2f}..{per_round[-1]:.2f})",
            "≤ 1.0 required",
            ratio <= 1.0,
        ),
        Row(section, "overhead ratio, stretch goal", f"{ratio:.2f}", "≤ 0.6 goal", ratio <= 0.6),
    ]


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


Timings = dict[str, list[float]]


async def alternate(
    variants: Mapping[str, Callable[[int], Awaitable[float]]], *, rounds: int, n: int
) -> Timings:
    """Run each variant's batch of ``n`` operations once per round, rotating the order each round.

    Each variant is ``async run(n) -> seconds``; the result maps a variant's name to its seconds per
    operation, one figure per round.
    """
    names = list(variants)
    timings: Timings = {name: [] for name in names}
    for name in names:  # warm-up: caches, lazy imports, first-call paths
        await variants[name](max(1, n // 10))
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            timings[name].append(await variants[name](n) / n)
    return timings


def _b64(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def jwt(*, ttl: float = 3600.0, padding: int = 0, sub: str | None = None) -> str:
    """A JWT-shaped access token like Wink's (unsigned: the middleware never trusts its claims).

    ``padding`` adds a claim of that many characters; ``padding=400`` gives a token of about 1 KB,
    the size of a Keycloak access token with a few roles.
    """
    now = int(time.time())
    payload: dict[str, Any] = {
        "exp": now + int(ttl),
        "iat": now,
        "jti": uuid.uuid4().hex,
        "iss": "https://wink.bench/realms/wink",
        "aud": "account",
        "typ": "Bearer",
        "azp": CLIENT_ID,
        "sub": sub or str(uuid.uuid4()),
    }
    if padding:
        payload["realm_access"] = {"roles": ["x" * padding]}
    signature = base64.urlsafe_b64encode(bytes(range(64))).rstrip(b"=").decode()
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT', 'kid': 'bench'})}.{_b64(payload)}.{signature}"


def profile_body(wink_token: str, expiry: float) -> bytes:
    """Wink's Verify Client answer for one user, as in its docs."""
    return json.dumps(
        {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "contactNo": "(875) 945-3854",
            "email": "ada.lovelace@example.com",
            "winkTag": ";ada.lovelace",
            "winkToken": wink_token,
            "dateOfBirth": "**/**/1983",
            "expiryTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expiry)),
        }
    ).encode()


def wink_config(**options: Any) -> WinkConfig:
    """The benchmarks' config: their client credentials and the stand-in's base URL."""
    options.setdefault("base_url", BASE_URL)
    return WinkConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options)


class FastWink(httpx.AsyncBaseTransport):
    """A stateless stand-in for Wink: accepts any token, answers a fresh profile after ``latency``.

    Keeps nothing per token (so memory measurements see only the verifier's cache) and counts calls.
    ``durations`` holds how long each call spent inside the stand-in when ``record`` is set.
    """

    def __init__(self, latency: float = 0.0, *, record: bool = False) -> None:
        self.latency = latency
        self.calls = 0
        self.record = record
        self.durations: list[float] = []
        self._expiry = time.time() + 3600

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer like Verify Client does for a valid token."""
        started = time.perf_counter()
        self.calls += 1
        await request.aread()
        if self.latency:
            await asyncio.sleep(self.latency)
        response = httpx.Response(
            200,
            headers={"content-type": "application/json"},
            content=profile_body(str(uuid.uuid4()), self._expiry),
            request=request,
        )
        if self.record:
            self.durations.append(time.perf_counter() - started)
        return response

    def verifier(self, **options: Any) -> AsyncWinkVerifier:
        """An :class:`AsyncWinkVerifier` whose calls reach this stand-in in-process."""
        client = httpx.AsyncClient(transport=self)
        return AsyncWinkVerifier(wink_config(**options), client=client)
