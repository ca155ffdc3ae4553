"""Chaos soak: a fleet of uvicorn workers sharing Redis while Redis restarts and Wink fails at times.

    .venv/bin/python -m benchmarks.chaos [--minutes 10] [--workers 4] [--clients 64] [--tokens 1000]
                                         [--cluster] [--chaos-every 60] [--fault-rate 0.05]

``--workers`` single-process uvicorn servers of ``tests/fleet_app.py`` (``WINK_REDIS_URL``, and
``WINK_REDIS_CLUSTER=1`` with ``--cluster``) share one throwaway ``redis-server`` (or a local
three-primary Redis Cluster) that this process starts. The emulator plays Wink on 127.0.0.1 in this
process and answers ``--fault-rate`` of its calls with a transient 503. ``--clients`` tasks send
requests over httpx to the workers at random, each for one of ``--tokens`` browser sessions whose
token is used for a while (``--token-life`` s, jittered) and then replaced, as browsers refresh.
Every ``--chaos-every`` seconds a background loop restarts Redis (SIGKILL, start again empty), or
with ``--cluster`` SIGKILLs a primary, waits for its replica's promotion and starts the killed node
again as a replica.

Reported, with targets (exit status 1 if one is missed):

- failures: any answer but 200 for a token Wink accepts. A 503 is excused only when the emulator
  injected a fault for that very token while the request was in flight (Wink was down for it and
  nothing was cached); anything else counts. Target 0.
- Wink calls that answered / distinct token lifetimes. A lifetime is a (token, Redis generation)
  pair that was requested: a restart empties Redis, so the fleet must ask Wink again once. Target
  <= 1.05 (injected faults and their retries are reported apart).
- RSS of every worker after warm-up and at the end: flat within 10 %.
- Redis connections over time (``CLIENT LIST`` on every node): no leak, the last sample at most
  the warm-up peak plus a quarter, plus one per worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.soak import rss_kib
from tests.redis_cluster import LocalCluster
from tests.redis_server import RedisServer, free_port
from wink_middleware.testing import Answer, WinkEmulator

__all__ = ["ChaosResult", "FlakyWink", "main", "run_chaos"]

CLIENT_ID = "chaos-client"
SECRET = "chaos-secret"
RSS_FLAT_RATIO = 0.10
_ROOT = Path(__file__).resolve().parent.parent


class FlakyWink(WinkEmulator):
    """The emulator, answering a share of its calls with a transient 503, and remembering for
    which token and when (so a 503 the user sees can be traced to Wink being down for it)."""

    def __init__(self, fault_rate: float, seed: int = 0) -> None:
        super().__init__(client_id=CLIENT_ID, client_secret=SECRET)
        self.fault_rate = fault_rate
        self.faults = 0
        self._random = random.Random(seed)
        self._faulted: dict[str, list[float]] = {}
        self._records = threading.Lock()

    def answer(
        self, method: str, path: str, body: bytes, authorization: str | None = None
    ) -> Answer:
        """Decide one answer: a random transient 503, or what the emulator says."""
        with self._records:
            fail = self._random.random() < self.fault_rate
            if fail:
                self.faults += 1
                token = _access_token(body)
                self._faulted.setdefault(token, []).append(time.monotonic())
        answer = super().answer(method, path, body, authorization)
        return Answer(503, delay=answer.delay) if fail else answer

    def faulted(self, token: str, start: float, end: float) -> bool:
        """Whether a fault was injected for ``token`` between ``start`` and ``end`` (monotonic)."""
        with self._records:
            return any(start <= t <= end for t in self._faulted.get(token, ()))


def _access_token(body: bytes) -> str:
    import json

    try:
        return str(json.loads(body).get("AccessToken", ""))
    except (ValueError, AttributeError):
        return ""


@dataclass
class ChaosResult:
    """What one chaos run measured."""

    seconds: float
    workers: int
    cluster: bool
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    excused: int = 0
    calls: int = 0
    faults: int = 0
    lifetimes: int = 0
    chaos: list[str] = field(default_factory=list)
    rss_warm: list[int] = field(default_factory=list)
    rss_end: list[int] = field(default_factory=list)
    connections: list[tuple[float, int]] = field(default_factory=list)
    warm_connections: int = 0

    @property
    def answered_calls(self) -> int:
        """Wink calls that were not an injected fault."""
        return self.calls - self.faults

    @property
    def calls_per_lifetime(self) -> float:
        """Answered Wink calls per distinct token lifetime."""
        return self.answered_calls / max(self.lifetimes, 1)

    @property
    def rss_flat(self) -> bool:
        """Every worker's RSS at the end within 10 % of its RSS after warm-up."""
        return all(
            e <= w * (1 + RSS_FLAT_RATIO) for w, e in zip(self.rss_warm, self.rss_end, strict=True)
        )

    @property
    def no_connection_leak(self) -> bool:
        """The last connection count is at most the warm-up peak plus a quarter and one per
        worker (pools re-grow on new primaries; a leak grows with every request or reconnect)."""
        return bool(self.connections) and self.connections[-1][1] <= (
            self.warm_connections * 1.25 + self.workers
        )

    def targets(self) -> list[tuple[str, bool]]:
        """Each target and whether it was met."""
        return [
            ("0 failures for users Wink accepts", not self.failures),
            ("Wink calls / token lifetimes <= 1.05", self.calls_per_lifetime <= 1.05),
            ("worker RSS flat within 10 %", self.rss_flat),
            ("no Redis connection leak", self.no_connection_leak),
        ]

    def report(self) -> str:
        """The figures and targets, one per line."""
        series = " ".join(f"{t:.0f}s:{n}" for t, n in self.connections)
        lines = [
            f"chaos soak: {self.seconds:.0f} s, {self.workers} workers, "
            f"{'Redis Cluster' if self.cluster else 'one Redis'}",
            f"  chaos events: {len(self.chaos)} ({'; '.join(self.chaos[:3])}"
            f"{' ...' if len(self.chaos) > 3 else ''})",
            f"  requests: {self.requests} ({self.requests / self.seconds:.0f}/s), "
            f"statuses {dict(sorted(self.statuses.items()))}",
            f"  failures: {len(self.failures)}; 503s excused (Wink faulted for that token, "
            f"nothing cached): {self.excused}",
            f"  Wink calls: {self.calls} ({self.faults} injected faults), answered "
            f"{self.answered_calls} / {self.lifetimes} token lifetimes = "
            f"{self.calls_per_lifetime:.3f}",
            "  RSS KiB warm -> end: "
            + ", ".join(f"{w} -> {e}" for w, e in zip(self.rss_warm, self.rss_end, strict=True)),
            f"  Redis connections (warm-up peak {self.warm_connections}): {series}",
        ]
        lines += [f"  [{'ok' if ok else 'MISSED'}] {name}" for name, ok in self.targets()]
        lines += [f"  failure: {f}" for f in self.failures[:10]]
        return "\n".join(lines)


class Sessions:
    """``n`` browser sessions: each uses its token for a while, then a fresh one."""

    def __init__(self, wink: WinkEmulator, n: int, life: float, rng: random.Random) -> None:
        self._wink = wink
        self._life = life
        self._random = rng
        now = time.monotonic()
        # Staggered so replacements spread over the run instead of arriving all at once.
        self._slots = [
            (wink.issue_token(ttl=life * 3 + 120), now + rng.uniform(0, life)) for _ in range(n)
        ]

    def token(self, slot: int) -> str:
        token, until = self._slots[slot]
        now = time.monotonic()
        if now >= until:
            token = self._wink.issue_token(ttl=self._life * 3 + 120)
            self._slots[slot] = (token, now + self._random.uniform(0.5, 1.5) * self._life)
        return token


class Fleet:
    """Redis (or a cluster) and what the chaos loop does to it."""

    def __init__(self, cluster: bool) -> None:
        self.cluster = cluster
        self.generation = 0
        self._stack = ExitStack()
        if cluster:
            self._nodes = self._stack.enter_context(LocalCluster())
            self.url = self._nodes.url
        else:
            self._server = self._stack.enter_context(RedisServer())
            self.url = self._server.url

    def strike(self) -> str:
        """Restart Redis (empty), or fail over a cluster primary; say what happened."""
        started = time.monotonic()
        if not self.cluster:
            self._server.restart()
            self.generation += 1  # a restarted Redis holds nothing: every token is new to it
            return f"restart {time.monotonic() - started:.2f}s"
        victim = self._nodes.kill_primary(random.choice(self._nodes.primaries()))
        promoted = self._nodes.wait_promoted()
        self._nodes.restart_node(victim)
        self._nodes.wait_ok()
        return f"primary {victim} killed, promoted {promoted:.1f}s"

    def connections(self) -> int:
        """Client connections on every live node, this probe's own aside."""
        import redis

        ports = self._nodes.ports if self.cluster else [self._server.port]
        total = 0
        for port in ports:
            try:
                with redis.Redis(port=port, socket_timeout=1) as admin:
                    total += len(admin.client_list()) - 1
            except redis.RedisError:
                continue
        return total

    def close(self) -> None:
        self._stack.close()


@contextmanager
def _workers(n: int, env: dict[str, str]) -> Iterator[list[tuple[str, int]]]:
    processes: list[subprocess.Popen[bytes]] = []
    urls: list[tuple[str, int]] = []
    try:
        for _ in range(n):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "tests.fleet_app:app"]
            process = subprocess.Popen(
                [*command, "--port", str(port), "--log-level", "error", "--no-access-log"],
                cwd=_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(process)
            urls.append((f"http://127.0.0.1:{port}", process.pid))
        deadline = time.monotonic() + 30
        for url, _ in urls:
            while True:
                try:
                    httpx.get(f"{url}/health", timeout=0.5)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("a worker did not start") from None
                    time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _client(
    http: httpx.AsyncClient,
    urls: list[str],
    sessions: Sessions,
    n: int,
    wink: FlakyWink,
    fleet: Fleet,
    result: ChaosResult,
    lifetimes: set[tuple[str, int]],
    stop_at: float,
    rng: random.Random,
) -> None:
    while (start := time.monotonic()) < stop_at:
        token = sessions.token(rng.randrange(n))
        lifetimes.add((token, fleet.generation))
        try:
            response = await http.get(
                f"{rng.choice(urls)}/me", headers={"Authorization": f"Bearer {token}"}
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            status = 0
            detail = type(exc).__name__
        else:
            detail = response.text[:120]
        result.requests += 1
        result.statuses[status] += 1
        if status == 200:
            continue
        if status == 503 and wink.faulted(token, start - 0.05, time.monotonic()):
            result.excused += 1
        else:
            result.failures.append(f"{status} at {start - stop_at + result.seconds:.1f}s: {detail}")


async def _chaos(fleet: Fleet, every: float, stop_at: float, result: ChaosResult) -> None:
    while time.monotonic() + every < stop_at:
        await asyncio.sleep(every)
        event = await asyncio.to_thread(fleet.strike)
        result.chaos.append(event)


async def _watch(fleet: Fleet, started: float, stop_at: float, result: ChaosResult) -> None:
    while time.monotonic() < stop_at:
        count = await asyncio.to_thread(fleet.connections)
        result.connections.append((time.monotonic() - started, count))
        await asyncio.sleep(5)


async def _drive(
    result: ChaosResult,
    fleet: Fleet,
    wink: FlakyWink,
    workers: list[tuple[str, int]],
    clients: int,
    tokens: int,
    token_life: float,
    chaos_every: float,
    warmup: float,
    log: Callable[[str], None],
) -> None:
    rng = random.Random(1)
    sessions = Sessions(wink, tokens, token_life, rng)
    urls = [url for url, _ in workers]
    lifetimes: set[tuple[str, int]] = set()
    # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout: reusing one the
    # server is closing at that instant fails in the client (RemoteProtocolError, ReadError) with
    # no request ever reaching a worker; that race is the load generator's, not the fleet's.
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        started = time.monotonic()
        stop_at = started + result.seconds
        load = [
            asyncio.create_task(
                _client(http, urls, sessions, tokens, wink, fleet, result, lifetimes, stop_at, rng)
            )
            for _ in range(clients)
        ]
        watch = asyncio.create_task(_watch(fleet, started, stop_at, result))
        await asyncio.sleep(warmup)
        result.rss_warm = [rss_kib(pid) for _, pid in workers]
        result.warm_connections = max(n for _, n in result.connections)
        log(f"warm: {result.requests} requests, RSS {result.rss_warm}")
        chaos = asyncio.create_task(_chaos(fleet, chaos_every, stop_at, result))
        await asyncio.gather(*load, chaos, watch)
    result.rss_end = [rss_kib(pid) for _, pid in workers]
    result.connections.append((result.seconds, await asyncio.to_thread(fleet.connections)))
    result.lifetimes = len(lifetimes)


def run_chaos(
    *,
    seconds: float,
    workers: int = 4,
    clients: int = 64,
    tokens: int = 1000,
    token_life: float = 60.0,
    chaos_every: float = 60.0,
    fault_rate: float = 0.05,
    cluster: bool = False,
    warmup: float = 20.0,
    log: Callable[[str], None] = print,
) -> ChaosResult:
    """Run the chaos soak for ``seconds`` and return what it measured."""
    result = ChaosResult(seconds=seconds, workers=workers, cluster=cluster)
    wink = FlakyWink(fault_rate)
    wink.latency = 0.02
    fleet = Fleet(cluster)
    try:
        with wink.serve() as base_url:
            env: dict[str, Any] = {
                **os.environ,
                "WINK_CLIENT_ID": CLIENT_ID,
                "WINK_CLIENT_SECRET": SECRET,
                "WINK_BASE_URL": base_url,
                "WINK_REDIS_URL": fleet.url,
                "WINK_REDIS_CLUSTER": "1" if cluster else "0",
            }
            with _workers(workers, env) as running:
                asyncio.run(
                    _drive(
                        result,
                        fleet,
                        wink,
                        running,
                        clients,
                        tokens,
                        token_life,
                        chaos_every,
                        warmup,
                        log,
                    )
                )
        result.calls, result.faults = wink.calls, wink.faults
    finally:
        fleet.close()
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: run, print the report, exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--token-life", type=float, default=60.0)
    parser.add_argument("--chaos-every", type=float, default=60.0)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args(argv)
    result = run_chaos(
        seconds=args.minutes * 60,
        workers=args.workers,
        clients=args.clients,
        tokens=args.tokens,
        token_life=args.token_life,
        chaos_every=args.chaos_every,
        fault_rate=args.fault_rate,
        cluster=args.cluster,
        warmup=args.warmup,
    )
    print(result.report())
    return 0 if all(ok for _, ok in result.targets()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
