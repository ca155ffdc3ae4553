"""The suite's per-test timeout (tests/timeouts.py): a hung test fails with every thread's and
every asyncio task's stack, and a test that will not stop ends the run instead of hanging it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

HANGS = """
import asyncio
import threading
import time


def test_hangs_in_a_thread_and_a_task():
    stop = threading.Event()

    def parked_in_a_worker_thread():
        stop.wait()

    async def parked_in_a_task():
        await asyncio.sleep(3600)

    async def main():
        task = asyncio.create_task(parked_in_a_task(), name="the-parked-task")
        await asyncio.sleep(0)
        threading.Thread(target=parked_in_a_worker_thread, name="the-worker", daemon=True).start()
        time.sleep(3600)  # blocks the loop: only the alarm can end this test

    asyncio.run(main())


def test_after_it_still_runs():
    assert True
"""

WONT_STOP = """
import time


def test_swallows_every_failure():
    while True:
        try:
            time.sleep(3600)
        except BaseException:
            pass
"""


def run(tmp_path: Path, source: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_it.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.timeouts"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_hung_test_fails_with_every_threads_and_tasks_stack(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(tmp_path, HANGS, WINK_TEST_TIMEOUT="2")
    output = result.stdout + result.stderr
    assert time.monotonic() - started < 30
    assert result.returncode == 1, output
    assert "over the per-test timeout of 2 s (WINK_TEST_TIMEOUT)" in output
    assert "--- thread the-worker" in output and "parked_in_a_worker_thread" in output
    assert "--- asyncio task the-parked-task ---" in output and "parked_in_a_task" in output
    assert "1 failed, 1 passed" in output  # the run went on after the hung test


def test_a_test_that_will_not_stop_ends_the_run_with_its_stacks(tmp_path: Path) -> None:
    result = run(tmp_path, WONT_STOP, WINK_TEST_TIMEOUT="1", WINK_TEST_TIMEOUT_GRACE="2")
    output = result.stdout + result.stderr
    assert result.returncode == 70, output
    assert "still running 2 s after its 1 s timeout: exiting with status 70" in output
    assert "test_swallows_every_failure" in output
