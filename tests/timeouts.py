"""A per-test timeout that dumps every thread's and every asyncio task's stack (loaded by
``tests/conftest.py``'s ``pytest_plugins``).

Each test (setup, call and teardown together) gets ``WINK_TEST_TIMEOUT`` seconds (default 120).
When it runs over, ``SIGALRM`` fails it in the main thread with the stacks of every thread and of
every pending asyncio task (of every event loop) in the failure report, and fails it again every 5 s
while it keeps running (an error raised inside an event loop callback may not end the test at once).
If the test still has not ended ``WINK_TEST_TIMEOUT_GRACE`` s later (default 30), the stacks go to the terminal and the run exits with
status 70: a hung test fails the run instead of hanging it.
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

__all__ = ["TIMEOUT", "stacks"]

TIMEOUT = float(os.environ.get("WINK_TEST_TIMEOUT", "120"))
REPEAT = 5.0
GRACE = float(os.environ.get("WINK_TEST_TIMEOUT_GRACE", "30"))
EXIT_STATUS = 70


def stacks() -> str:
    """Every thread's stack and every pending asyncio task's, as text."""
    out = io.StringIO()
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        out.write(f"--- thread {names.get(ident, '?')} ({ident}) ---\n")
        out.write("".join(traceback.format_stack(frame)))
    # Tasks of every loop, the ones running in other threads included: asyncio.all_tasks() sees
    # only one loop's.
    tasks = [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()]
    for task in tasks:
        out.write(f"--- asyncio task {task.get_name()} ---\n")
        task.print_stack(file=out)
    if not tasks:
        out.write("--- no pending asyncio task ---\n")
    return out.getvalue()


def _abort(item: pytest.Item) -> None:
    capture: Any = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    sys.stderr.write(
        f"\n{item.nodeid} still running {GRACE:.0f} s after its {TIMEOUT:.0f} s timeout: "
        f"exiting with status {EXIT_STATUS}\n{stacks()}"
    )
    sys.stderr.flush()
    os._exit(EXIT_STATUS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        return (yield)
    fired = 0

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        fired += 1
        if fired == 1:
            pytest.fail(
                f"over the per-test timeout of {TIMEOUT:.0f} s (WINK_TEST_TIMEOUT); stacks:\n"
                f"{stacks()}",
                pytrace=False,
            )
        pytest.fail(f"still running {TIMEOUT + (fired - 1) * REPEAT:.0f} s in", pytrace=False)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    backstop = threading.Timer(TIMEOUT + GRACE, _abort, args=(item,))
    backstop.daemon = True
    backstop.start()
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT, REPEAT)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        backstop.cancel()
