"""Run every benchmark and print one table: ``python -m benchmarks [--quick] [--only NAME ...]``.

Sections: ``asgi`` (cache-hit overhead in-process), ``wsgi`` (the same for WSGI, plus
``bench_wsgi``'s rate ratios to a bare hello and a Flask route), ``coalesce``
(single-flight), ``flood`` (forged tokens with and without ``jwks_url``), ``miss`` (cold-request cost beyond Wink's latency), ``server`` (uvicorn + wrk on
127.0.0.1) and ``memory`` (RSS for 100,000 cached profiles, ``cache_size`` bound). The full run
takes about two minutes on 2 cores; ``--quick`` about twenty seconds, with fewer rounds and a
memory figure projected from 10,000 profiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from benchmarks import (
    bench_asgi,
    bench_coalesce,
    bench_fleet,
    bench_flood,
    bench_memory,
    bench_miss,
    bench_server,
    bench_variants,
    bench_wsgi,
    bench_wsgi_overhead,
)
from benchmarks._harness import Row

__all__ = ["FULL", "QUICK", "SECTIONS", "Settings", "machine", "main", "render"]


@dataclass(frozen=True)
class Settings:
    """Iteration counts of one run."""

    asgi_rounds: int
    asgi_n: int
    wsgi_rounds: int
    wsgi_n: int
    miss_n: int
    server_rounds: int
    server_seconds: float
    memory_profiles: int
    bound_tokens: int
    flood_tokens: int


FULL = Settings(
    asgi_rounds=21,
    asgi_n=4000,
    wsgi_rounds=9,
    wsgi_n=20_000,
    miss_n=300,
    server_rounds=7,
    server_seconds=2,
    memory_profiles=100_000,
    bound_tokens=5000,
    flood_tokens=10_000,
)
QUICK = Settings(
    asgi_rounds=7,
    asgi_n=1000,
    wsgi_rounds=5,
    wsgi_n=5000,
    miss_n=50,
    server_rounds=2,
    server_seconds=1,
    memory_profiles=10_000,
    bound_tokens=3000,
    flood_tokens=2000,
)

SECTIONS: dict[str, Callable[[Settings], list[Row]]] = {
    "asgi": lambda s: asyncio.run(bench_asgi.run(rounds=s.asgi_rounds, n=s.asgi_n)),
    "variants": lambda s: asyncio.run(bench_variants.run(rounds=s.asgi_rounds, n=s.asgi_n)),
    "wsgi": lambda s: [
        *bench_wsgi_overhead.run(rounds=s.wsgi_rounds, n=s.wsgi_n),
        *bench_wsgi.run(rounds=s.wsgi_rounds, n=s.wsgi_n),
    ],
    "coalesce": lambda s: asyncio.run(bench_coalesce.run()),
    "flood": lambda s: asyncio.run(bench_flood.run(forged=s.flood_tokens)),
    "miss": lambda s: asyncio.run(bench_miss.run(n=s.miss_n)),
    "server": lambda s: bench_server.run(rounds=s.server_rounds, seconds=s.server_seconds),
    "memory": lambda s: bench_memory.run(profiles=s.memory_profiles, tokens=s.bound_tokens),
    "fleet": lambda s: bench_fleet.run(quick=s is QUICK),
}


def machine() -> str:
    """Cores, CPU model and Python version of this machine."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def render(rows: Sequence[Row], *, markdown: bool = False) -> str:
    """The rows as an aligned text table, or as a Markdown table."""
    if markdown:
        lines = ["| benchmark | measure | figure | goal | met |", "|---|---|---|---|---|"]
        section = ""
        for row in rows:
            shown = row.section if row.section != section else ""
            section = row.section
            lines.append(f"| {shown} | {row.measure} | {row.value} | {row.goal} | {row.verdict} |")
        return "\n".join(lines)
    width = max((len(row.measure) for row in rows), default=0) + 2
    value_width = max((len(row.value) for row in rows), default=0) + 2
    lines = []
    section = ""
    for row in rows:
        if row.section != section:
            section = row.section
            lines.append(section)
        goal = f"  [{row.goal}: {row.verdict}]" if row.goal else ""
        lines.append(f"  {row.measure:<{width}}{row.value:<{value_width}}{goal}".rstrip())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections, print the table; exit status 0 (goals are reported, not enforced)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 20 s)")
    parser.add_argument(
        "--only", nargs="+", choices=list(SECTIONS), metavar="NAME", help=", ".join(SECTIONS)
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    started = time.perf_counter()
    rows: list[Row] = []
    for name in args.only or list(SECTIONS):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(SECTIONS[name](settings))
    elapsed = time.perf_counter() - started
    kind = "quick" if args.quick else "full"
    print(f"wink_middleware benchmarks ({kind} run, {elapsed:.0f} s) on {machine()}")
    print()
    print(render(rows, markdown=args.markdown))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump([asdict(row) | {"verdict": row.verdict} for row in rows], out, indent=2)
    return 0
