"""Memory: RSS growth for N cached profiles, and proof the cache never holds more than ``cache_size``.

The cache is filled through the public API (``await verifier.verify(token)``), one distinct token
per profile, against a stateless in-process stand-in for Wink (``FastWink``: it keeps nothing per
token, so the growth is the verifier's). Tokens are made, verified and dropped: only their sha256
digests stay, as keys. Runs in a fresh process (``python -m benchmarks.bench_memory``) so that the
RSS it reads is not the one of earlier benchmarks; prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from typing import Any

from benchmarks._harness import FastWink, Row, jwt

__all__ = ["bound", "fill", "rss_bytes", "run"]

TARGET_MB = 150.0
BATCH = 100


def rss_bytes() -> int:
    """This process's resident set size, from ``/proc/self/status``."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


async def fill(profiles: int) -> dict[str, Any]:
    """Cache ``profiles`` distinct profiles; return the RSS growth and the cache's length."""
    verifier = FastWink().verifier(cache_size=profiles + 1)
    await verifier.verify(jwt(padding=400))  # warm-up: imports, the client, first-call paths
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    for _ in range(0, profiles, BATCH):
        batch = [jwt(padding=400) for _ in range(BATCH)]
        await asyncio.gather(*(verifier.verify(token) for token in batch))
    seconds = time.perf_counter() - started
    gc.collect()
    after = rss_bytes()
    return {
        "profiles": len(verifier.cache) - 1,
        "rss_growth": after - before,
        "seconds": seconds,
    }


async def bound(cache_size: int, tokens: int) -> dict[str, Any]:
    """Verify ``tokens`` distinct tokens with ``cache_size``; track the largest cache length seen."""
    wink = FastWink()
    verifier = wink.verifier(cache_size=cache_size)
    issued = [jwt() for _ in range(tokens)]
    largest = 0
    for token in issued:
        await verifier.verify(token)
        largest = max(largest, len(verifier.cache))
    # LRU, not FIFO: the oldest cached token, once read again, outlives the next-oldest.
    calls = wink.calls
    oldest, next_oldest = issued[-cache_size], issued[min(-cache_size + 1, -1)]
    await verifier.verify(oldest)  # a hit: now the most recently used
    hit = wink.calls == calls
    await verifier.verify(jwt())  # one more token evicts one entry...
    await verifier.verify(oldest)  # ...not the one just read (a FIFO cache would evict it)...
    read_kept = wink.calls == calls + 1
    await verifier.verify(next_oldest)  # ...but the least recently used
    lru_evicted = wink.calls == calls + 2
    return {
        "cache_size": cache_size,
        "tokens": tokens,
        "largest": largest,
        "final": len(verifier.cache),
        "lru": hit and read_kept and lru_evicted,
    }


def measure(profiles: int, cache_size: int, tokens: int) -> dict[str, Any]:
    """Both measurements, in a fresh interpreter."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_memory",
        "--profiles",
        str(profiles),
        "--cache-size",
        str(cache_size),
        "--tokens",
        str(tokens),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    result: dict[str, Any] = json.loads(output.stdout)
    return result


def run(*, profiles: int, cache_size: int = 1000, tokens: int = 5000) -> list[Row]:
    """Measure in a fresh process and return the table rows."""
    result = measure(profiles, cache_size, tokens)
    filled, limits = result["fill"], result["bound"]
    growth_mb = filled["rss_growth"] / 1e6
    per_profile = filled["rss_growth"] / filled["profiles"]
    projected = per_profile * 100_000 / 1e6
    section = "Memory (fresh process; cache filled through verifier.verify(), stateless stand-in)"
    rows = [
        Row(
            section,
            f"RSS growth, {filled['profiles']:,} cached profiles",
            f"{growth_mb:.1f} MB ({per_profile:,.0f} B/profile; filled in {filled['seconds']:.1f} s)",
        )
    ]
    if filled["profiles"] == 100_000:
        rows.append(
            Row(
                section,
                "RSS growth for 100,000",
                f"{growth_mb:.1f} MB",
                "≤ 150 MB",
                growth_mb <= 150,
            )
        )
    else:
        rows.append(
            Row(
                section,
                "RSS growth for 100,000 (projected)",
                f"{projected:.1f} MB",
                "≤ 150 MB",
                projected <= TARGET_MB,
            )
        )
    rows.append(
        Row(
            section,
            f"cache_size={limits['cache_size']:,}, {limits['tokens']:,} distinct tokens",
            f"largest len(cache) seen {limits['largest']:,}, final {limits['final']:,}, "
            f"LRU evicted first: {limits['lru']}",
            f"≤ {limits['cache_size']:,}",
            limits["largest"] <= limits["cache_size"] and limits["lru"],
        )
    )
    return rows


def main() -> None:
    """Entry point of the fresh process: print the measurements as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--cache-size", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args()
    result = {
        "fill": asyncio.run(fill(args.profiles)),
        "bound": asyncio.run(bound(args.cache_size, args.tokens)),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
