"""The demo page in headless Chromium: sign in, see the profile table, then the 401 once the token
has expired or been revoked.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: NUL-separated
JSON on file descriptors 3 and 4), so no driver package and no debugging port are needed. Time is a
``FakeClock`` shared by the demo's emulator and verifier: expiry is a step of the clock, not a wait.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FakeClock
from wink_middleware.testing import SAMPLE_PROFILE
from wink_middleware.testing._demo import Demo, run_demo

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--no-pings",
    # Nothing but the demo on 127.0.0.1 may be reached: other hosts neither resolve nor connect.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=127.0.0.1:9",
    "--remote-debugging-pipe",
    "--window-size=1000,1300",
]
TIMEOUT = 15.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (scripts/install installs it as root)"
    ),
]


class DevToolsError(Exception):
    """Chromium answered a command with an error, or stopped answering."""


class Chromium:
    """A headless Chromium and one page, driven over the DevTools pipe."""

    def __init__(self, executable: str, profile_dir: Path, log: Path) -> None:
        # Our ends stay here; Chromium's ends are moved above 10 and handed over as fds 3 and 4.
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        with log.open("wb") as log_file:
            self._proc = subprocess.Popen(
                [
                    "/bin/bash",
                    "-c",
                    f'exec "$0" "$@" 3<&{child_r} 4>&{child_w} {child_r}<&- {child_w}>&-',
                    executable,
                    *FLAGS,
                    f"--user-data-dir={profile_dir}",
                    "about:blank",
                ],
                pass_fds=(child_r, child_w),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # its helpers share a process group we can end
            )
        os.close(child_r)
        os.close(child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send("Runtime.enable", session=True)
        self.send("Page.enable", session=True)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = False
    ) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data) :]
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise DevToolsError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], deadline - time.monotonic())
            if not ready:
                raise DevToolsError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise DevToolsError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=True,
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str) -> Any:
        """Poll until ``expression`` is truthy in the page; return its value."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise DevToolsError(f"timed out waiting for {expression!r}")
            time.sleep(0.02)

    def open(self, url: str) -> None:
        """Navigate and wait for the page to finish loading."""
        self.send("Page.navigate", {"url": url}, session=True)
        self.wait_for(f"document.readyState === 'complete' && location.href === {json.dumps(url)}")

    def screenshot(self, path: Path) -> None:
        """Save a PNG of the page (left in the test's tmp_path to look at)."""
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def page_errors(self) -> list[str]:
        """Uncaught JavaScript exceptions and console errors seen so far."""
        errors = []
        for event in self.events:
            if event.get("method") == "Runtime.exceptionThrown":
                errors.append(str(event["params"]["exceptionDetails"].get("text")))
            elif (
                event.get("method") == "Runtime.consoleAPICalled"
                and event["params"]["type"] == "error"
            ):
                errors.append(str(event["params"]["args"]))
        return errors

    def close(self) -> None:
        """Close the browser; end its process group if it does not go by itself."""
        with contextlib.suppress(DevToolsError, OSError):
            self.send("Browser.close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    assert CHROMIUM is not None
    chromium = Chromium(CHROMIUM, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def demo(clock: FakeClock) -> Iterator[tuple[str, Demo]]:
    with run_demo(clock=clock) as running:
        yield running


def text(selector: str) -> str:
    return f"document.querySelector({json.dumps(selector)}).textContent"


def visible(element_id: str) -> str:
    return f"!document.getElementById({json.dumps(element_id)}).hidden"


def click(browser: Chromium, element_id: str) -> None:
    browser.evaluate(f"document.getElementById({json.dumps(element_id)}).click()")


def profile_table(browser: Chromium) -> dict[str, str]:
    rows: list[tuple[str, str]] = browser.evaluate(
        "Array.from(document.querySelectorAll('#profile tr'))"
        ".map(tr => [tr.cells[0].textContent, tr.cells[1].textContent])"
    )
    return dict(rows)


def sign_in(browser: Chromium, ttl: int) -> dict[str, str]:
    browser.evaluate(f"document.getElementById('ttl').value = '{ttl}'")
    click(browser, "sign-in")
    browser.wait_for(f"{visible('profile-section')} && {text('#status')}.startsWith('200')")
    return profile_table(browser)


def test_demo_page_signs_in_and_shows_the_profile_table_then_the_401_after_expiry(
    browser: Chromium, demo: tuple[str, Demo], clock: FakeClock, tmp_path: Path
) -> None:
    url, parts = demo
    browser.open(f"{url}/")
    assert browser.evaluate("document.title") == "wink_middleware demo"

    table = sign_in(browser, ttl=15)
    assert list(table) == [
        "First Name",
        "Last Name",
        "Contact No",
        "Email",
        "Wink Tag",
        "Wink Token",
        "Date of Birth",
        "Expiry Time",
    ]
    assert table["First Name"] == SAMPLE_PROFILE["firstName"]
    assert table["Last Name"] == SAMPLE_PROFILE["lastName"]
    assert table["Email"] == SAMPLE_PROFILE["email"]
    assert table["Wink Tag"] == SAMPLE_PROFILE["winkTag"]
    assert table["Date of Birth"] == SAMPLE_PROFILE["dateOfBirth"]
    assert len(table["Wink Token"]) == 36
    assert table["Expiry Time"].endswith("Z")
    assert not browser.evaluate(visible("error"))
    browser.screenshot(tmp_path / "signed-in.png")

    clock.advance(15)
    click(browser, "call-api")
    summary = browser.wait_for(f"{visible('error')} && {text('#error-summary')}")
    assert summary == "401 invalid_token: the access token has expired"
    assert browser.evaluate(text("#status")) == "401 invalid_token"
    assert not browser.evaluate(visible("profile-section"))
    assert 'error="invalid_token"' in browser.evaluate(text("#error-detail"))
    assert parts.verifier.stats.local_rejections == 1
    assert browser.page_errors() == []


def test_demo_page_signs_out_and_shows_the_401_for_the_revoked_token(
    browser: Chromium, demo: tuple[str, Demo], tmp_path: Path
) -> None:
    url, parts = demo
    browser.open(f"{url}/")
    assert sign_in(browser, ttl=300)["First Name"] == "Ada"
    calls_before = parts.emulator.calls

    click(browser, "sign-out")
    summary = browser.wait_for(f"{visible('error')} && {text('#error-summary')}")
    assert summary == "401 invalid_token: the access token was rejected by Wink"
    assert browser.evaluate("document.getElementById('sign-out').disabled") is True
    # Sign-out dropped the cached profile, so the old token went back to Wink, which refused it.
    assert parts.emulator.calls == calls_before + 1
    log = browser.evaluate("document.getElementById('log').innerText")
    assert "POST /api/sign-out -> 200" in log
    browser.screenshot(tmp_path / "signed-out.png")
    assert browser.page_errors() == []
