"""The fleet on real processes: uvicorn workers sharing one redis-server.

Four single-process uvicorn servers of ``tests/fleet_app.py`` (each its own worker, on its own port,
as behind a load balancer), the emulator as Wink in this process, and a ``redis-server`` of the
benchmark's own. Figures, side by side in one run:

- Wink calls per token, 200 tokens x 20 rounds spread over the workers: with the tier and without;
- one cold token, 4 workers x 25 concurrent requests: Wink calls;
- a shared-tier hit (process cache cold, Redis warm) over an in-process hit: the added p50 / p99;
- revocation visible in every other worker (``POST /logout`` on one, the others polled): p50 / p99;
- requests failed while Redis is killed and restarted during a soak (clients x workers).

Run: ``python -m benchmarks.bench_fleet [--quick]`` (also ``scripts/bench --only fleet``).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from benchmarks._harness import Row
from tests.redis_server import RedisServer, free_port
from wink_middleware.testing import WinkEmulator

__all__ = ["run"]

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID = "bench-fleet"
SECRET = "bench-fleet-secret"
SECTION = "Fleet: uvicorn workers sharing one Redis"


@contextlib.contextmanager
def workers(n: int, base_url: str, redis_url: str | None) -> Iterator[list[str]]:
    """``n`` uvicorn processes of tests/fleet_app.py; yields their base URLs."""
    env = {
        **os.environ,
        "WINK_CLIENT_ID": CLIENT_ID,
        "WINK_CLIENT_SECRET": SECRET,
        "WINK_BASE_URL": base_url,
        "WINK_RETRIES": "0",
    }
    if redis_url is not None:
        env["WINK_REDIS_URL"] = redis_url
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(n):
            port = free_port()
            command = [sys.executable, "-m", "uvicorn", "tests.fleet_app:app", "--port", str(port)]
            processes.append(
                subprocess.Popen(
                    [*command, "--log-level", "error"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            deadline = time.monotonic() + 20
            while True:
                try:
                    httpx.get(f"{url}/health", timeout=0.5)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"worker {url} did not start") from None
                    time.sleep(0.05)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


def _get(client: httpx.Client, url: str, token: str) -> int:
    return client.get(f"{url}/me", headers={"Authorization": f"Bearer {token}"}).status_code


def calls_per_token(
    emulator: WinkEmulator, base_url: str, redis_url: str | None, tokens: int, rounds: int
) -> tuple[float, int]:
    """Wink calls per distinct token when every worker sees every token; and failed requests."""
    issued = [emulator.issue_token(ttl=3600) for _ in range(tokens)]
    with workers(4, base_url, redis_url) as urls:
        emulator.reset()
        plan = [(urls[(i + r) % 4], t) for r in range(rounds) for i, t in enumerate(issued)]
        with httpx.Client(timeout=10) as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda job: _get(client, *job), plan))
    return emulator.calls / tokens, sum(code != 200 for code in codes)


def cold_token(emulator: WinkEmulator, base_url: str, redis_url: str) -> tuple[int, int]:
    """Wink calls and failures for one cold token asked 25 times at once by each of 4 workers."""
    with workers(4, base_url, redis_url) as urls:
        emulator.reset()
        emulator.latency = 0.4
        token = emulator.issue_token()
        with httpx.Client(timeout=10) as client, concurrent.futures.ThreadPoolExecutor(100) as pool:
            codes = list(pool.map(lambda url: _get(client, url, token), urls * 25))
        emulator.latency = 0.0
    return emulator.calls, sum(code != 200 for code in codes)


def shared_hit_cost(emulator: WinkEmulator, redis_url: str, n: int) -> tuple[float, float]:
    """Added p50 / p99 (ms) of a shared-tier hit over an in-process hit, on AsyncWinkVerifier."""

    async def measure() -> tuple[float, float]:
        writer = emulator.async_verifier(redis_url=redis_url)
        reader = emulator.async_verifier(redis_url=redis_url)
        tokens = [emulator.issue_token(ttl=3600) for _ in range(n)]
        for token in tokens:
            await writer.verify(token)
        shared, local = [], []
        for token in tokens:
            started = time.perf_counter()
            await reader.verify(token)  # process cache cold, Redis warm
            shared.append(time.perf_counter() - started)
            started = time.perf_counter()
            await reader.verify(token)  # now an in-process hit
            local.append(time.perf_counter() - started)
        assert reader.stats.shared_hits == n, "every first read came from Redis"
        await writer.aclose()
        await reader.aclose()
        base = statistics.median(local)
        added = sorted(s - base for s in shared)
        return added[len(added) // 2] * 1000, added[int(len(added) * 0.99) - 1] * 1000

    return asyncio.run(measure())


def revocation_latency(
    emulator: WinkEmulator, base_url: str, redis_url: str, trials: int
) -> tuple[float, float]:
    """p50 / p99 (ms) from ``POST /logout`` on one worker to a 401 from each of the other three."""
    latencies: list[float] = []
    with workers(4, base_url, redis_url) as urls, httpx.Client(timeout=10) as client:
        warm = emulator.issue_token()
        for url in urls:  # a first verification starts each worker's listener (lazily)
            assert _get(client, url, warm) == 200
        for url in urls:  # every listener up before the first trial
            deadline = time.monotonic() + 10
            while client.get(f"{url}/health").json()["listener"] != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError("a worker's listener did not come up")
                time.sleep(0.02)
        for trial in range(trials):
            token = emulator.issue_token()
            for url in urls:
                assert _get(client, url, token) == 200
            revoker, others = urls[trial % 4], [u for u in urls if u != urls[trial % 4]]
            started = time.perf_counter()
            client.post(f"{revoker}/logout", headers={"Authorization": f"Bearer {token}"})

            def until_refused(url: str, started: float = started, token: str = token) -> float:
                with httpx.Client(timeout=10) as own:
                    while _get(own, url, token) != 401:
                        pass
                return time.perf_counter() - started

            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                latencies.extend(pool.map(until_refused, others))
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    return statistics.median(latencies) * 1000, p99 * 1000


def redis_restart_soak(
    emulator: WinkEmulator, base_url: str, redis: RedisServer, seconds: float, clients: int
) -> tuple[int, int, int]:
    """Requests, failures and Wink calls while Redis is killed and restarted twice mid-soak."""
    tokens = [emulator.issue_token(ttl=3600) for _ in range(200)]
    counts = {"requests": 0, "failed": 0}
    lock = threading.Lock()
    with workers(4, base_url, redis.url) as urls:
        emulator.reset()
        stop = time.monotonic() + seconds

        def client_loop(number: int) -> None:
            with httpx.Client(timeout=10) as client:
                i = number
                while time.monotonic() < stop:
                    code = _get(client, urls[i % 4], tokens[i % len(tokens)])
                    with lock:
                        counts["requests"] += 1
                        counts["failed"] += code != 200
                    i += 7

        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for at in (seconds / 3, 2 * seconds / 3):
            time.sleep(max(0.0, stop - seconds + at - time.monotonic()))
            redis.kill()
            time.sleep(1.0)
            redis.restart()
        for thread in threads:
            thread.join()
    return counts["requests"], counts["failed"], emulator.calls


def run(*, quick: bool = False) -> list[Row]:
    """Measure and return the table rows (needs ``redis-server``)."""
    emulator = WinkEmulator(client_id=CLIENT_ID, client_secret=SECRET)
    rounds = 5 if quick else 20
    with emulator.serve() as base_url, RedisServer() as redis:
        with_tier, failed_tier = calls_per_token(emulator, base_url, redis.url, 200, rounds)
        redis.flushall()
        without, failed_plain = calls_per_token(emulator, base_url, None, 200, rounds)
        redis.flushall()
        cold_calls, cold_failed = cold_token(emulator, base_url, redis.url)
        p50, p99 = shared_hit_cost(emulator, redis.url, 200 if quick else 1000)
        r50, r99 = revocation_latency(emulator, base_url, redis.url, 5 if quick else 20)
        redis.flushall()
        soak = 15.0 if quick else 60.0
        requests, soak_failed, soak_calls = redis_restart_soak(
            emulator, base_url, redis, soak, 16 if quick else 64
        )
    return [
        Row(
            SECTION,
            f"Wink calls per token, 4 workers, 200 tokens x {rounds} rounds",
            f"{with_tier:.2f} with the tier, {without:.2f} without ({failed_tier + failed_plain} failed)",
            "1.00 required",
            with_tier <= 1.0 and failed_tier == 0,
        ),
        Row(
            SECTION,
            "one cold token, 4 workers x 25 concurrent requests",
            f"{cold_calls} Wink call(s), {cold_failed} failed",
            "1 call required",
            cold_calls == 1 and cold_failed == 0,
        ),
        Row(
            SECTION,
            "shared-tier hit over an in-process hit, added p50 / p99",
            f"{p50:.3f} / {p99:.3f} ms",
            "≤ 0.5 / ≤ 2 ms",
            p50 <= 0.5 and p99 <= 2.0,
        ),
        Row(
            SECTION,
            "revocation refused by every other worker, p50 / p99",
            f"{r50:.1f} / {r99:.1f} ms",
            "p99 ≤ 100 ms",
            r99 <= 100.0,
        ),
        Row(
            SECTION,
            f"Redis killed + restarted twice in a {soak:.0f} s soak ({16 if quick else 64} clients)",
            f"{soak_failed} of {requests} requests failed; {soak_calls} Wink calls for 200 tokens",
            "0 failed required",
            soak_failed == 0,
        ),
    ]


def main() -> None:
    """Print the fleet rows."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from benchmarks.run import render

    print(render(run(quick=args.quick)))


if __name__ == "__main__":
    main()
