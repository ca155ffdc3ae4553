"""The demo page in headless Chromium: sign in, see the profile table and the websocket's greeting,
then the 401 once the token has expired (the page asks the API again at expiry) or been revoked; with Redis, two workers that
verify once for the fleet and a sign-out that reaches both.

Chromium is driven over the DevTools protocol on a pipe (``tests/chromium.py``). Time is a
``FakeClock`` shared by the demo's emulator and verifier: expiry is a step of the clock, not a wait.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chromium import CHROMIUM, Chromium, launch
from tests.helpers import FakeClock
from wink_middleware.testing import SAMPLE_PROFILE
from wink_middleware.testing._demo import Demo, run_demo

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (scripts/install installs it as root)"
    ),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    with launch(tmp_path) as chromium:
        yield chromium


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
    # A lifetime the menu lacks (a short one for the expiry test) is added as an option.
    browser.evaluate(
        f"(s => {{ if (![...s.options].some(o => o.value === '{ttl}')) s.add(new Option('{ttl}', '{ttl}'));"
        f" s.value = '{ttl}'; }})(document.getElementById('ttl'))"
    )
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
    # The websocket: the token as the wink.bearer subprotocol, the greeting from the server.
    greeting = browser.wait_for(f"{visible('websocket-section')} && {text('#ws-greeting')}")
    assert greeting == "Hello, Ada Lovelace!"
    log = browser.evaluate("document.getElementById('log').innerText")
    assert (
        "WebSocket /api/echo with the token as the wink.bearer subprotocol -> open (wink.bearer)"
        in log
    )
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
    assert summary == "401 invalid_token: the access token was revoked"
    assert browser.evaluate("document.getElementById('sign-out').disabled") is True
    # Sign-out revoked the token: it is refused from now on without asking Wink again.
    assert parts.emulator.calls == calls_before
    log = browser.evaluate("document.getElementById('log').innerText")
    assert "POST /api/sign-out -> 200" in log
    browser.screenshot(tmp_path / "signed-out.png")
    assert browser.page_errors() == []


def test_demo_page_calls_the_api_again_when_the_token_expires_instead_of_keeping_the_200(
    browser: Chromium, demo: tuple[str, Demo], clock: FakeClock
) -> None:
    url, parts = demo
    browser.open(f"{url}/")
    sign_in(browser, ttl=2)
    assert browser.evaluate("document.getElementById('status').className") == "ok"
    clock.advance(2)  # the server's time; the page's own timer fires two real seconds after sign-in
    summary = browser.wait_for(f"{visible('error')} && {text('#error-summary')}")
    assert summary == "401 invalid_token: the access token has expired"
    assert browser.evaluate(text("#status")) == "401 invalid_token"
    assert browser.evaluate("document.getElementById('status').className") == "bad"
    assert "expired" in browser.evaluate(text("#countdown"))
    assert parts.verifier.stats.local_rejections == 1
    assert browser.page_errors() == []


def test_demo_page_with_redis_shows_two_workers_verified_once_for_the_fleet_and_a_shared_sign_out(
    browser: Chromium, redis_url: str, tmp_path: Path
) -> None:
    with run_demo(redis_url=redis_url) as (url, parts):
        browser.open(f"{url}/")
        browser.wait_for(visible("fleet"))
        sign_in(browser, ttl=300)
        summary = browser.wait_for(
            f"{text('#fleet-summary')}.startsWith('Verified once') && {text('#fleet-summary')}"
        )
        assert summary == (
            "Verified once for the fleet: 2 workers accepted the token, Wink was called once."
        )
        assert workers_table(browser) == {
            "worker 1": ["200 OK", "wink"],
            "worker 2": ["200 OK", "fleet cache"],
        }
        assert parts.emulator.calls == 1
        assert [w.stats.wink_calls for w in parts.workers] == [1, 0]
        assert parts.workers[1].stats.shared_hits == 1
        browser.screenshot(tmp_path / "fleet.png")

        click(browser, "sign-out")
        browser.wait_for(
            f"{text('#log')}.split('GET /api/profile').length === 5"  # 2 at sign-in, 2 after
        )
        # The worker that did not sign the user out refuses the token too, without asking Wink:
        # the revocation reached its cache by message, or it read it from Redis.
        table = workers_table(browser)
        assert table["worker 1"] == ["401 invalid_token", "local cache"]
        assert table["worker 2"][0] == "401 invalid_token"
        assert table["worker 2"][1] in ("local cache", "fleet cache")
        assert browser.evaluate(text("#error-summary")) == (
            "401 invalid_token: the access token was revoked"
        )
        assert parts.emulator.calls == 1
        assert browser.page_errors() == []


def workers_table(browser: Chromium) -> dict[str, list[str]]:
    rows: list[list[str]] = browser.evaluate(
        "Array.from(document.querySelectorAll('#workers tbody tr'))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent))"
    )
    return {row[0]: row[1:] for row in rows}
