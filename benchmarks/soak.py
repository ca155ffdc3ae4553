"""Soak: the wrapped ASGI app under steady load with tokens that expire and rotate, for a minute.

    .venv/bin/python -m benchmarks.soak [--duration 60 --clients 64 --tokens 1000 --lifetime 10
                                         --latency 0.02 --leeway 5]

uvicorn serves ``WinkMiddleware`` around a tiny app in a subprocess (so the load generator does not
share its GIL); the emulator plays Wink on 127.0.0.1 with ``--latency`` seconds per call, in this
process, which issues the tokens. ``--clients`` concurrent clients (one ``httpx.AsyncClient``) pick
one of ``--tokens`` token slots at random for each request; each slot holds a token of ``--lifetime``
seconds and is given a fresh one shortly before it reaches expiry - leeway, as a browser refreshes.

It prints the requests served, any non-2xx by status, requests lost (no answer), the calls to Wink
against the distinct tokens issued, and the server's RSS after warm-up and at the end, then checks
the targets: zero 5xx, zero lost, calls to Wink ≤ distinct tokens, RSS flat after warm-up. Exit
status 1 if one is missed. All traffic stays on 127.0.0.1; the run is bounded by ``--duration``;
the server subprocess is stopped on exit, on Ctrl-C, and stops itself if this process dies.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from wink_middleware.testing import WinkEmulator

__all__ = ["SoakResult", "main", "run_soak"]

CLIENT_ID = "soak-client"
STATS_PATH = "/_soak/stats"
# A slot gets its next token this long before its current one reaches expiry - leeway (at least
# REFRESH_MARGIN seconds, a fifth of the usable life when that is more): a request picks its token
# before it waits its turn in the event loop, and must still reach the server in time.
REFRESH_MARGIN = 0.5
# RSS may grow this much after warm-up and still count as flat (allocator noise, lazy imports).
RSS_FLAT_KIB = 4 * 1024
RSS_FLAT_RATIO = 0.05
_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SoakResult:
    """What one soak run measured."""

    duration: float
    clients: int
    slots: int
    lifetime: float
    leeway: float
    latency: float
    warmup: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    tokens_issued: int = 0
    wink_calls: int = 0
    rss_kib: list[tuple[float, int]] = field(default_factory=list)  # (seconds into the run, KiB)
    rss_after_warmup_kib: int = 0
    rss_end_kib: int = 0
    server_stats: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def served(self) -> int:
        """Requests that got an answer."""
        return sum(self.by_status.values())

    @property
    def server_errors(self) -> int:
        """Answers with a 5xx status."""
        return sum(n for status, n in self.by_status.items() if status >= 500)

    @property
    def non_2xx(self) -> dict[int, int]:
        return {s: n for s, n in sorted(self.by_status.items()) if not 200 <= s < 300}

    @property
    def rss_growth_kib(self) -> int:
        return self.rss_end_kib - self.rss_after_warmup_kib

    @property
    def rss_flat(self) -> bool:
        allowed = max(RSS_FLAT_KIB, RSS_FLAT_RATIO * self.rss_after_warmup_kib)
        return self.rss_growth_kib <= allowed

    def targets(self) -> list[tuple[str, bool]]:
        """Each target and whether it was met."""
        return [
            ("zero 5xx", self.server_errors == 0),
            ("zero lost requests", sum(self.lost.values()) == 0),
            ("calls to Wink <= distinct tokens", self.wink_calls <= self.tokens_issued),
            ("RSS flat after warm-up", self.rss_flat),
        ]

    def report(self) -> str:
        """The human-readable summary."""
        mib = 1024.0
        rss = [kib for _, kib in self.rss_kib]
        stats = self.server_stats
        lines = [
            f"soak: {self.duration:g} s, {self.clients} clients, {self.slots} token slots of "
            f"{self.lifetime:g} s lifetime (leeway {self.leeway:g} s), "
            f"Wink latency {self.latency * 1000:g} ms",
            f"requests served:       {self.served} ({self.served / max(self.elapsed, 1e-9):.0f}/s)",
            f"non-2xx by status:     {self.non_2xx or 'none'}",
            f"lost (no answer):      {dict(self.lost) or 0}",
            f"distinct tokens:       {self.tokens_issued} issued",
            f"calls to Wink:         {self.wink_calls} "
            f"({self.wink_calls / max(self.tokens_issued, 1):.3f} per token lifetime)",
            f"server verifier stats: hits={stats.get('hits')} misses={stats.get('misses')} "
            f"coalesced={stats.get('coalesced')} wink_calls={stats.get('wink_calls')} "
            f"failures={stats.get('wink_failures')} local_rejections={stats.get('local_rejections')}"
            f" cache_entries={stats.get('cache_entries')}",
            f"server RSS:            {self.rss_after_warmup_kib / mib:.1f} MiB after "
            f"{self.warmup:g} s warm-up, {self.rss_end_kib / mib:.1f} MiB at the end "
            f"({self.rss_growth_kib / mib:+.1f} MiB); min {min(rss, default=0) / mib:.1f}, "
            f"max {max(rss, default=0) / mib:.1f} MiB over the run",
        ]
        lines += [f"target {name}: {'ok' if met else 'MISSED'}" for name, met in self.targets()]
        return "\n".join(lines)


# -- the server (subprocess) --------------------------------------------------------------------


def _serve() -> None:
    """Child process: uvicorn serving the wrapped app on a free 127.0.0.1 port, printed on stdout.

    The Wink settings come from the environment (``WINK_*``). Stops when stdin closes (the load
    generator exited, however it died), on SIGTERM, and after ``WINK_SOAK_MAX_SECONDS`` at most.
    """
    import uvicorn

    from wink_middleware import WinkMiddleware

    middleware: WinkMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == STATS_PATH:
            stats = middleware.verifier.stats.as_dict()
            stats["cache_entries"] = len(middleware.verifier.cache)
            body = json.dumps(stats).encode()
        else:
            body = scope["user"].wink_tag.encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    middleware = WinkMiddleware(app, public_paths=[STATS_PATH])
    # IPPROTO_TCP, so that asyncio sets TCP_NODELAY on the connections it accepts.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(
        middleware, log_level="warning", access_log=False, ws="none", lifespan="on", backlog=1024
    )
    server = uvicorn.Server(config)

    def stop_when_orphaned() -> None:
        sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
        server.should_exit = True

    def stop_at_the_latest() -> None:
        time.sleep(float(os.environ.get("WINK_SOAK_MAX_SECONDS", "600")))
        os._exit(3)

    threading.Thread(target=stop_when_orphaned, daemon=True).start()
    threading.Thread(target=stop_at_the_latest, daemon=True).start()
    print(f"LISTENING {sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


@contextmanager
def _server_process(
    wink_url: str, secret: str, leeway: float, max_seconds: float
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINK_")}
    env.update(
        WINK_BASE_URL=wink_url,
        WINK_CLIENT_ID=CLIENT_ID,
        WINK_CLIENT_SECRET=secret,
        WINK_LEEWAY=str(leeway),
        WINK_SOAK_MAX_SECONDS=str(max_seconds),
        PYTHONPATH=os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")])),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.soak", "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=_ROOT,
        start_new_session=True,  # Ctrl-C reaches only us; we stop the server ourselves
    )
    try:
        assert proc.stdout is not None
        line = _read_line(proc.stdout, timeout=30)
        if not line.startswith(b"LISTENING "):
            raise RuntimeError(f"the soak server did not start (said {line!r})")
        yield proc, f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        _stop(proc)


def _read_line(stream: IO[bytes], timeout: float) -> bytes:
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else b""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, from ``/proc/PID/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- the load -----------------------------------------------------------------------------------


def _exp(token: str) -> float:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["exp"])


class TokenSlots:
    """``n`` browser sessions: each holds a token and refreshes it before expiry - leeway."""

    def __init__(self, emulator: WinkEmulator, n: int, lifetime: float, leeway: float) -> None:
        self._emulator = emulator
        self._lifetime = lifetime
        self._leeway = leeway
        self.issued = 0
        self._tokens: list[str] = []
        self._refresh_at: list[float] = []
        for _ in range(n):
            token, refresh_at = self._issue()
            self._tokens.append(token)
            self._refresh_at.append(refresh_at)

    def _issue(self) -> tuple[str, float]:
        token = self._emulator.issue_token(ttl=self._lifetime)
        self.issued += 1
        margin = max(REFRESH_MARGIN, (self._lifetime - self._leeway) / 5)
        refresh_at = _exp(token) - self._leeway - margin
        if refresh_at <= time.time():
            raise ValueError(
                f"a {self._lifetime:g} s token is unusable with a {self._leeway:g} s leeway: "
                "raise --lifetime or lower --leeway"
            )
        return token, refresh_at

    def token(self, slot: int, now: float) -> str:
        if now >= self._refresh_at[slot]:
            self._tokens[slot], self._refresh_at[slot] = self._issue()
        return self._tokens[slot]


async def _drive(result: SoakResult, url: str, slots: TokenSlots, pid: int) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    started = time.monotonic()
    stop_at = started + result.duration
    warmup_ends = started + result.warmup

    async def client_loop(client: httpx.AsyncClient) -> None:
        rng = random.Random()
        while time.monotonic() < stop_at:
            token = slots.token(rng.randrange(result.slots), time.time())
            try:
                response = await client.get("/", headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                result.lost[type(exc).__name__] += 1
            else:
                result.by_status[response.status_code] += 1

    async def sample_rss() -> None:
        warm = False
        while time.monotonic() < stop_at:
            now = time.monotonic()
            kib = rss_kib(pid)
            result.rss_kib.append((now - started, kib))
            if not warm and now >= warmup_ends:
                warm = True
                result.rss_after_warmup_kib = kib
            await asyncio.sleep(1.0)

    # One client (one kept-alive connection) per simulated browser: a single pooled client with
    # 64 connections spends more CPU matching requests to connections than sending them.
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, limits=limits, timeout=30)
            )
            for _ in range(result.clients)
        ]
        await asyncio.gather(sample_rss(), *(client_loop(client) for client in clients))
        result.elapsed = time.monotonic() - started
        result.rss_end_kib = rss_kib(pid)
        result.server_stats = (await clients[0].get(STATS_PATH)).json()
    if not result.rss_after_warmup_kib:
        result.rss_after_warmup_kib = result.rss_kib[0][1]


def run_soak(
    *,
    duration: float = 60.0,
    clients: int = 64,
    tokens: int = 1000,
    lifetime: float = 10.0,
    latency: float = 0.02,
    leeway: float = 5.0,
    warmup: float | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> SoakResult:
    """Run one soak and return what it measured (see the module docstring)."""
    secret = base64.urlsafe_b64encode(os.urandom(18)).decode()
    emulator = WinkEmulator(CLIENT_ID, secret, latency=latency)
    result = SoakResult(duration, clients, tokens, lifetime, leeway, latency)
    result.warmup = min(lifetime, duration / 4) if warmup is None else warmup
    with (
        asyncio.Runner() as runner,
        emulator.serve() as wink_url,
        _server_process(wink_url, secret, leeway, max_seconds=duration + 120) as (proc, url),
    ):
        # The load's event loop is built before the first line is logged: a Ctrl-C that lands
        # while a loop is being built leaves a half-made loop whose __del__ prints a traceback
        # at exit (asyncio's, not ours), and the first line is what tells a user it started.
        runner.get_loop()
        log(f"server: uvicorn in subprocess {proc.pid} on {url}; Wink emulator on {wink_url}")
        log(f"server RSS before load: {rss_kib(proc.pid) / 1024:.1f} MiB")
        slots = TokenSlots(emulator, tokens, lifetime, leeway)
        runner.run(_drive(result, url, slots, proc.pid))
        result.tokens_issued = slots.issued
        result.wink_calls = emulator.calls
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (60)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (64)")
    parser.add_argument("--tokens", type=int, default=1000, help="token slots (1000)")
    parser.add_argument("--lifetime", type=float, default=10.0, help="token lifetime, s (10)")
    parser.add_argument("--latency", type=float, default=0.02, help="Wink's latency, s (0.02)")
    parser.add_argument("--leeway", type=float, default=5.0, help="the middleware's leeway, s (5)")
    parser.add_argument("--warmup", type=float, default=None, help="s before RSS is taken")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve()
        return 0
    try:
        result = run_soak(
            duration=args.duration,
            clients=args.clients,
            tokens=args.tokens,
            lifetime=args.lifetime,
            latency=args.latency,
            leeway=args.leeway,
            warmup=args.warmup,
            log=lambda line: print(line, flush=True),
        )
    except KeyboardInterrupt:
        print("interrupted: the server subprocess was stopped", file=sys.stderr)
        return 130
    except ValueError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    print(result.report())
    return 0 if all(met for _, met in result.targets()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
