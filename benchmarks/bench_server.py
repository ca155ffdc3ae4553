"""Through a real server: uvicorn on 127.0.0.1, wrk as the load, bare app vs wrapped app (warm cache).

The servers run at once, each in its own process on its own loopback port; wrk loads one, then the
next, in alternating rounds of a few seconds. All traffic stays on 127.0.0.1 and every run is
bounded by wrk's ``-d``. wrk comes from Debian's packages: when it is missing and we run as root,
it is installed with apt-get; otherwise the benchmark prints a skip line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import httpx

from benchmarks._harness import Row, jwt, median

__all__ = ["Load", "Served", "ensure_wrk", "run", "serve", "wrk"]

TARGET = 0.9
CONNECTIONS = 32


def ensure_wrk() -> str | None:
    """The path of wrk, installing Debian's package when missing and root; ``None`` if unavailable."""
    found = shutil.which("wrk")
    if found is not None:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("bench_server: installing wrk with apt-get ...", file=sys.stderr, flush=True)
    for command in ([apt, "install", "-y", "-q", "wrk"], [apt, "update", "-q"]):
        subprocess.run(command, env=env, check=False, capture_output=True, timeout=300)
        found = shutil.which("wrk")
        if found is not None:
            return found
    subprocess.run([apt, "install", "-y", "-q", "wrk"], env=env, check=False, timeout=300)
    return shutil.which("wrk")


def http_implementation() -> str:
    """What uvicorn's ``--http auto`` picks here: httptools when installed, else h11."""
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Served:
    """A running uvicorn: where it listens, and its process id (to read its CPU time)."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the server's event-loop thread has used so far (``/proc/<pid>/schedstat``)."""
        with open(f"/proc/{self.pid}/schedstat", encoding="ascii") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9


@dataclass(frozen=True)
class Load:
    """One wrk run: the rate it saw and the server CPU time each request cost."""

    rate: float
    cpu_per_request: float


@contextlib.contextmanager
def serve(factory: str, token: str) -> Iterator[Served]:
    """Serve ``benchmarks._apps:<factory>`` with uvicorn on a free loopback port.

    Yields once the app answers 200 to a request carrying ``token`` (which warms the cache).
    """
    # Not --fd: uvicorn takes an inherited socket for AF_UNIX, so asyncio leaves Nagle on and
    # delayed ACKs cap the rate at ~700 req/s.
    url = f"http://127.0.0.1:{_free_port()}/hello"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        f"benchmarks._apps:{factory}",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        url.rsplit(":", 1)[1].split("/")[0],
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            cwd=root,
            stdout=log,
            stderr=log,
            env={**os.environ, "WINK_BENCH_TOKEN": token},
        )
        try:
            _wait_until_ready(url, token, process, log)
            yield Served(url, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(
    url: str,
    token: str,
    process: subprocess.Popen[bytes],
    log: IO[bytes],
) -> None:
    deadline = time.monotonic() + 20
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"uvicorn exited: {log.read().decode(errors='replace')}")
            with contextlib.suppress(httpx.TransportError):
                response = client.get(url, headers={"Authorization": f"Bearer {token}"})
                if response.status_code == 200:
                    return
                raise RuntimeError(f"{url} answered {response.status_code}, not 200")
            time.sleep(0.05)
    raise RuntimeError(f"uvicorn did not start serving {url} in time")


def wrk(path: str, server: Served, token: str, seconds: float) -> Load:
    """Load ``server`` with wrk for ``seconds`` (one thread, 32 connections, the bearer token)."""
    cpu_before = server.cpu_seconds()
    result = subprocess.run(
        [
            path,
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-H",
            f"Authorization: Bearer {token}",
            server.url,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    )
    cpu = server.cpu_seconds() - cpu_before
    if "Non-2xx or 3xx responses" in result.stdout:
        raise RuntimeError(f"wrk saw error responses from {server.url}:\n{result.stdout}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    count = re.search(r"(\d+) requests in", result.stdout)
    if rate is None or count is None:
        raise RuntimeError(f"unexpected wrk output:\n{result.stdout}")
    return Load(float(rate.group(1)), cpu / int(count.group(1)))


def run(*, rounds: int, seconds: float) -> list[Row]:
    """Measure and return the table rows (or one skip row when wrk is unavailable).

    Besides bare and wrapped, the hand-written sha256 + dict AuthenticationMiddleware is served
    too: through a real server every middleware layer costs more than in-process, and its row
    shows how much of the gap any authentication middleware has. Two ratios are reported: wrk's
    rates, and the server's CPU time per request (``/proc/<pid>/schedstat``), which is what the
    rate of a CPU-bound server is the inverse of, and which other processes on a shared machine
    disturb much less than they disturb wall-clock rates.
    """
    section = (
        f"Real server (uvicorn {http_implementation()}, 1 worker; wrk -t1 -c{CONNECTIONS}; "
        f"{rounds}x{seconds:g} s each, median of rounds)"
    )
    path = ensure_wrk()
    if path is None:
        return [Row(section, "skipped", "wrk is not installed and apt-get needs root")]
    token = jwt(padding=400)
    names = ["bare", "handwritten", "wrapped"]
    loads: dict[str, list[Load]] = {name: [] for name in names}
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(serve(name, token)) for name in names}
        for name in names:  # warm-up
            wrk(path, servers[name], token, 1)
        for round_no in range(rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                loads[name].append(wrk(path, servers[name], token, seconds))

    def rate_ratio(name: str) -> list[float]:
        # A round's runs are seconds apart: per-round ratios cancel the machine's slow drift.
        pairs = zip(loads["bare"], loads[name], strict=True)
        return sorted(load.rate / bare.rate for bare, load in pairs)

    def cpu_ratio(name: str) -> list[float]:
        pairs = zip(loads["bare"], loads[name], strict=True)
        return sorted(bare.cpu_per_request / load.cpu_per_request for bare, load in pairs)

    def figures(name: str) -> str:
        rate = median([load.rate for load in loads[name]])
        cpu = median([load.cpu_per_request for load in loads[name]]) * 1e6
        return f"{rate:,.0f} req/s, {cpu:.1f} µs CPU/req"

    rows = [
        Row(section, "(a) bare Starlette route", figures("bare")),
        Row(section, "(b) + AuthenticationMiddleware (sha256 + dict)", figures("handwritten")),
        Row(section, "(c) + WinkMiddleware, warm cache", figures("wrapped")),
    ]
    for label, ratios in (("wrk rate", rate_ratio), ("1 / CPU per request", cpu_ratio)):
        wink, handwritten = ratios("wrapped"), ratios("handwritten")
        rows.append(
            Row(
                section,
                f"throughput ratio (c)/(a), by {label}",
                f"{median(wink):.3f} (rounds {wink[0]:.2f}..{wink[-1]:.2f}; "
                f"(b)/(a) {median(handwritten):.3f})",
                f"≥ {TARGET}",
                median(wink) >= TARGET,
            )
        )
    return rows
