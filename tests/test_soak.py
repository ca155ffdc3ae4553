"""A short soak (benchmarks/soak.py): uvicorn in a subprocess, the emulator upstream, tokens rotating.

Eight clients, 50 token slots of 3 s lifetime, 5 s: every request is answered, none with a 5xx, and
Wink is asked at most once per token lifetime. The server subprocess never outlives the soak.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.soak import run_soak

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def gone(pid: int, within: float = 10.0) -> bool:
    """Whether ``pid`` has exited (absent, or a zombie nobody reaped) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            return True
        if re.search(r"^State:\s+Z", status, re.MULTILINE):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_a_short_soak_loses_nothing_serves_no_5xx_and_asks_wink_once_per_token() -> None:
    lines: list[str] = []
    result = run_soak(
        duration=5, clients=8, tokens=50, lifetime=3, leeway=0.5, latency=0.02, log=lines.append
    )
    assert result.served > 500, result.report()
    assert result.server_errors == 0, result.report()
    assert not result.lost, result.report()
    assert result.non_2xx == {}, result.report()
    assert result.tokens_issued > 50, "tokens rotated during the run"
    assert 0 < result.wink_calls <= result.tokens_issued, result.report()
    assert result.server_stats["wink_calls"] == result.wink_calls
    server = re.search(r"subprocess (\d+)", lines[0])
    assert server is not None
    assert gone(int(server.group(1)), within=0), "the server subprocess was stopped and reaped"


def start_soak() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.soak", "--duration", "60", "--tokens", "10"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    found = re.search(r"subprocess (\d+)", proc.stdout.readline())
    assert found is not None
    return proc, int(found.group(1))


def test_ctrl_c_stops_the_soak_and_its_server_at_once() -> None:
    proc, server = start_soak()
    try:
        proc.send_signal(signal.SIGINT)
        # The soak stops its server with SIGTERM and waits up to 10 s, then kills it and waits
        # up to 10 s more: on a loaded machine (coverage in both processes) that can pass 20 s.
        _, err = proc.communicate(timeout=45)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert gone(server, within=0)


def test_the_server_stops_itself_when_the_soak_process_dies() -> None:
    proc, server = start_soak()
    proc.kill()
    proc.communicate(timeout=20)
    assert gone(server), "an orphaned server notices its closed stdin and exits"
