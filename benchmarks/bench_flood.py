"""A flood of forged tokens, with and without the signature pre-filter: ``scripts/bench --only flood``.

Through ``WinkMiddleware`` in-process, against the emulator (Verify Client answering after
``latency``, like a remote Wink; its JWKS served by the same ASGI app): ``forged`` distinct tokens
that carry the realm's ``kid`` but a bad signature, sent by ``clients`` concurrent clients, while
``users`` real users (RS256 access tokens from the emulator's sign-in) keep calling. Each run reports
the Wink calls the flood cost (target with the pre-filter: 0) and the real users' p50/p99. A last
row is the pre-filter's cost per miss (a forged token refused) against a cache hit, in one run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import secrets
import statistics
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from benchmarks._harness import CLIENT_ID, CLIENT_SECRET, Row
from benchmarks.bench_coalesce import hello, request
from wink_middleware import AsyncWinkVerifier, TokenRejected, WinkConfig, WinkMiddleware
from wink_middleware.testing import WinkEmulator

__all__ = ["Flood", "flood", "run", "sign_in"]

BASE = "http://wink.bench"
OIDC = "/realms/wink/protocol/openid-connect"
RETURN_URL = "http://localhost:3000/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def sign_in(http: httpx.AsyncClient) -> str:
    """One access token from the emulator's OIDC sign-in (``http`` reaches the emulator)."""
    answer = await http.post(
        "/wink/v1/session",
        auth=(CLIENT_ID, CLIENT_SECRET),
        json={"returnUrl": RETURN_URL, "cancelUrl": RETURN_URL},
    )
    verifier = secrets.token_urlsafe(48)
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": RETURN_URL,
        "state": "s",
        "response_mode": "query",
        "response_type": "code",
        "nonce": "n",
        "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
        "sessionId": answer.json()["sessionId"],
    }
    page = await http.get(f"{OIDC}/auth", params=params)
    if page.status_code == 200:  # the first sign-in; later ones come back with the SSO cookie
        form = dict(re.findall(r"name='(login|user)' value='([^']+)'", page.text))
        action = re.search(r"action='([^']+)'", page.text)
        assert action is not None
        page = await http.post(action[1], data=form)
    code = parse_qs(urlsplit(page.headers["location"]).query)["code"][0]
    tokens = await http.post(
        f"{OIDC}/token",
        data={
            "code": code,
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "redirect_uri": RETURN_URL,
            "code_verifier": verifier,
        },
    )
    token: str = tokens.json()["access_token"]
    return token


def forgeries(real: str, count: int) -> list[str]:
    """``count`` distinct tokens with ``real``'s header (its ``kid``) and a forged signature."""
    head, payload, _ = real.split(".")
    return [f"{head}.{payload}.{_b64(secrets.token_bytes(256))}" for _ in range(count)]


@dataclass(frozen=True)
class Flood:
    """One run's outcome."""

    prefilter: bool
    flood_wink_calls: int
    refused: int
    user_requests: int
    user_ok: bool
    p50_ms: float
    p99_ms: float
    seconds: float


async def flood(*, prefilter: bool, forged: int, clients: int, users: int, latency: float) -> Flood:
    """One flood run: ``forged`` tokens at ``clients`` clients while ``users`` real users call."""
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET, latency=latency)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator), base_url=BASE)
    real = [await sign_in(http) for _ in range(users)]
    emulator.reset()  # sign-in's session calls are not the flood's
    emulator.latency = latency
    config = WinkConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=BASE,
        retries=0,
        jwks_url=f"{BASE}{OIDC}/certs" if prefilter else None,
    )
    verifier = AsyncWinkVerifier(config, client=http)
    app = WinkMiddleware(hello, verifier=verifier)
    queue = forgeries(real[0], forged)
    statuses: list[int] = []
    latencies: list[float] = []
    done = asyncio.Event()

    async def attacker() -> None:
        while queue:
            statuses.append(await request(app, queue.pop()))
            # A client over a socket waits for its next request: give the loop to the others
            # (in-process, a refusal that never awaits would otherwise run the whole queue).
            await asyncio.sleep(0)

    async def user(token: str) -> None:
        while not done.is_set():
            started = time.perf_counter()
            status = await request(app, token)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise AssertionError(f"a real user got {status}")
            await asyncio.sleep(0.002)

    started = time.perf_counter()
    people = [asyncio.ensure_future(user(token)) for token in real]
    await asyncio.gather(*(attacker() for _ in range(clients)))
    seconds = time.perf_counter() - started
    done.set()
    await asyncio.gather(*people)
    await http.aclose()
    ordered = sorted(latencies)
    return Flood(
        prefilter=prefilter,
        # Each real user's first request costs one call; everything else is the flood's.
        flood_wink_calls=emulator.calls - users,
        refused=sum(status == 401 for status in statuses),
        user_requests=len(latencies),
        user_ok=True,
        p50_ms=statistics.median(ordered) * 1e3,
        p99_ms=ordered[int(len(ordered) * 0.99)] * 1e3,
        seconds=seconds,
    )


async def miss_cost(n: int = 2000) -> tuple[float, float]:
    """Microseconds per forged token refused by the pre-filter (a miss), and per cache hit."""
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator), base_url=BASE)
    real = await sign_in(http)
    config = WinkConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=BASE,
        jwks_url=f"{BASE}{OIDC}/certs",
    )
    verifier = AsyncWinkVerifier(config, client=http)
    await verifier.verify(real)  # the keys are fetched, the real token cached
    tokens = forgeries(real, n)
    started = time.perf_counter()
    for token in tokens:
        with contextlib.suppress(TokenRejected):
            await verifier.verify(token)
    per_miss = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for _ in range(n):
        await verifier.verify(real)
    per_hit = (time.perf_counter() - started) / n * 1e6
    assert emulator.calls == 1
    await http.aclose()
    return per_miss, per_hit


async def run(
    *, forged: int = 10_000, clients: int = 64, users: int = 50, latency: float = 0.02
) -> list[Row]:
    """Both runs and the cost row."""
    section = (
        f"Flood: {forged:,} forged tokens at {clients} clients, {users} real users calling "
        f"(in-process emulator, {latency * 1e3:.0f} ms latency)"
    )
    rows = []
    for prefilter in (False, True):
        result = await flood(
            prefilter=prefilter, forged=forged, clients=clients, users=users, latency=latency
        )
        label = "with jwks_url" if prefilter else "without jwks_url"
        rows.append(
            Row(
                section,
                f"{label}: Wink calls for the flood",
                f"{result.flood_wink_calls:,} ({result.refused:,} refused, {result.seconds:.2f} s)",
                "= 0" if prefilter else "",
                result.flood_wink_calls == 0 if prefilter else None,
            )
        )
        rows.append(
            Row(
                section,
                f"{label}: real users' p50 / p99",
                f"{result.p50_ms:.2f} / {result.p99_ms:.2f} ms "
                f"({result.user_requests:,} requests, all 200)",
            )
        )
    per_miss, per_hit = await miss_cost()
    rows.append(
        Row(
            section,
            "pre-filter refusal per miss vs a cache hit (verify())",
            f"{per_miss:.1f} µs vs {per_hit:.2f} µs",
        )
    )
    return rows
