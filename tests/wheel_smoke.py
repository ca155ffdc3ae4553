"""Smoke tests of the installed wheel, run by ``scripts/wheel-check`` outside the repository.

The repository's own run does not collect this file (its name does not start with ``test_``): here
the package comes from a fresh virtualenv's site-packages, the pytest plugin from its ``pytest11``
entry point, and the console script from the virtualenv's ``bin``.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import httpx
import pytest

import wink_middleware
from wink_middleware.testing import WinkEmulator

SCRIPT = str(Path(sys.executable).with_name("wink-middleware"))


def test_the_package_is_the_installed_one() -> None:
    assert wink_middleware.__file__ is not None
    assert wink_middleware.__file__.startswith(sysconfig.get_paths()["purelib"])


def test_every_file_git_tracks_in_the_package_is_in_the_wheel() -> None:
    listing = os.environ.get("WINK_EXPECTED_FILES")
    if not listing:
        pytest.skip("run by scripts/wheel-check, which lists the files git tracks")
    expected = set(Path(listing).read_text().split())
    installed = {str(path) for path in metadata.files("wink-middleware") or []}
    missing = sorted(expected - installed)
    assert not missing, f"missing from the wheel: {missing}"


def test_the_wink_emulator_fixture_comes_from_the_plugin_entry_point(
    wink_emulator: WinkEmulator, wink_token: str, pytestconfig: pytest.Config
) -> None:
    assert pytestconfig.pluginmanager.has_plugin("wink_middleware")
    with wink_emulator.verifier() as verifier:
        assert verifier.verify(wink_token).first_name == "Ada"
    assert wink_emulator.calls == 1


@contextmanager
def serving(*argv: str) -> Iterator[queue.Queue[str]]:
    """Run ``wink-middleware ARGV`` and yield its stdout lines; stop it with SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINK_")}
    proc = subprocess.Popen(
        [SCRIPT, *argv], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # end of output: the command stopped

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield lines
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=20) == 0
        finally:
            proc.kill()


def first_match(lines: queue.Queue[str], pattern: str) -> str:
    while line := lines.get(timeout=20):
        found = re.search(pattern, line)
        if found:
            return found.group(1)
    raise AssertionError(f"the command stopped without printing {pattern!r}")


def test_the_console_script_serves_the_demo_page() -> None:
    with serving("demo", "--port", "0") as lines:
        url = first_match(lines, r"open (http://\S+)/ in a browser")
        page = httpx.get(f"{url}/", timeout=5)
        token = httpx.post(f"{url}/wink/_emulator/tokens", timeout=5).json()["access_token"]
        api = httpx.get(f"{url}/api/profile", headers={"Authorization": f"Bearer {token}"})
        # keycloak-js and its licence ship in the wheel: the page loads nothing from elsewhere.
        keycloak = httpx.get(f"{url}/keycloak.js", timeout=5)
        certs = httpx.get(f"{url}/wink/realms/wink/protocol/openid-connect/certs", timeout=5)
    assert page.status_code == 200
    assert "<title>wink_middleware demo</title>" in page.text
    assert api.json()["firstName"] == "Ada"
    assert keycloak.status_code == 200
    assert "export default class Keycloak" in keycloak.text
    assert certs.json()["keys"][0]["alg"] == "RS256"


def script(*argv: str, env: dict[str, str] | None = None) -> str:
    """Run ``wink-middleware ARGV`` to completion; its stdout (a failure raises)."""
    done = subprocess.run(
        [SCRIPT, *argv], capture_output=True, text=True, timeout=30, check=True, env=env
    )
    return done.stdout


def test_the_console_script_mints_and_verifies_with_a_running_emulator() -> None:
    with serving("emulator", "--port", "0") as lines:
        url = first_match(lines, r"listening on (http://\S+)")
        token = script("token", "--emulator", url, "--first-name", "Grace").strip()
        env = {
            **os.environ,
            "WINK_BASE_URL": url,
            "WINK_CLIENT_ID": "demo-client",
            "WINK_CLIENT_SECRET": "demo-secret",
        }
        verified = script("verify", token, env=env)
    assert '"firstName": "Grace"' in verified
