"""The demo page in headless Chromium, signing in the way a Wink front end does: keycloak-js 26 asks
the API for a Wink session, the emulator's sign-in page, back with a code, the token exchange, the
protected API and websocket; a refresh before expiry; sign-out through the API's logout then Wink's;
with Redis, two workers that verify once for the fleet and both refuse the token after sign-out.

Chromium is driven over the DevTools protocol on a pipe (``tests/chromium.py``). Time is a
``FakeClock`` shared by the demo's emulator and verifier where a test steps over expiry.
Screenshots of each step stay in the test's tmp_path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chromium import CHROMIUM, Chromium, launch
from tests.helpers import FakeClock
from wink_middleware import TokenRejected
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


def ready(browser: Chromium, url: str) -> None:
    browser.open(f"{url}/")
    browser.wait_for("window.demoReady === true")


def sign_in(browser: Chromium, url: str, shots: Path, user: str = "Ada Lovelace") -> None:
    """From the signed-out page through Wink's sign-in page and back, signed in."""
    browser.wait_for(visible("signed-out"))
    browser.screenshot(shots / "1-signed-out.png")
    click(browser, "sign-in")
    browser.wait_for(
        "location.pathname.endsWith('/protocol/openid-connect/auth')"
        " && document.querySelector('button[name=cancel]') !== null"
    )
    browser.screenshot(shots / "2-wink-sign-in.png")
    browser.evaluate(
        "Array.from(document.querySelectorAll('button[name=user]'))"
        f".find(b => b.textContent === {json.dumps('Sign in as ' + user)}).click()"
    )
    browser.wait_for(f"location.href === {json.dumps(url + '/')} && window.demoReady === true")
    browser.wait_for(f"{visible('signed-in')} && {text('#status')}.startsWith('200')")


def test_demo_signs_in_through_wink_and_shows_the_profile_tokens_and_websocket(
    browser: Chromium, demo: tuple[str, Demo], tmp_path: Path
) -> None:
    url, parts = demo
    ready(browser, url)
    assert browser.evaluate("document.title") == "wink_middleware demo"
    sign_in(browser, url, tmp_path)
    table = profile_table(browser)
    assert table["First name"] == SAMPLE_PROFILE["firstName"]
    assert table["Last name"] == SAMPLE_PROFILE["lastName"]
    assert table["Email"] == SAMPLE_PROFILE["email"]
    assert table["WinkTag"] == SAMPLE_PROFILE["winkTag"]
    assert table["Date of birth"] == SAMPLE_PROFILE["dateOfBirth"]
    assert table["WinkToken (user id)"] == parts.emulator.users[0].wink_token
    assert table["Token expires"].endswith("Z")
    assert browser.evaluate(text("#user-name")) == "Ada Lovelace"
    greeting = browser.wait_for(f"{text('#ws-greeting')}")
    assert greeting == "Hello, Ada Lovelace!"
    access = browser.wait_for(f"{text('#access-left')}")
    assert access.endswith("of 300 s")
    assert browser.evaluate(text("#refresh-left")).endswith("of 1800 s")
    # The page holds only tokens, whose personal claims are tokenized.
    claims = browser.evaluate("keycloak.tokenParsed")
    assert claims["given_name"].startswith("tok_sandbox_")
    assert parts.emulator.session_calls == 1
    browser.screenshot(tmp_path / "3-signed-in.png")
    assert browser.page_errors() == []


def test_demo_refreshes_the_token_and_the_api_refuses_the_expired_one(
    browser: Chromium, demo: tuple[str, Demo], clock: FakeClock, tmp_path: Path
) -> None:
    url, _ = demo
    ready(browser, url)
    sign_in(browser, url, tmp_path)
    old = browser.evaluate("keycloak.token")
    clock.advance(300)  # the server's time: the access token has expired there
    click(browser, "call-api")
    summary = browser.wait_for(f"{visible('error')} && {text('#error-summary')}")
    assert summary == "401 invalid_token: the access token has expired"
    browser.screenshot(tmp_path / "4-expired.png")
    click(browser, "refresh-now")
    browser.wait_for(f"keycloak.token !== {json.dumps(old)} && {text('#status')}.startsWith('200')")
    assert not browser.evaluate(visible("error"))
    browser.wait_for(f"{text('#refresh-note')}.includes('Refreshed 1 time so far')")
    browser.screenshot(tmp_path / "5-refreshed.png")
    assert browser.page_errors() == []


def test_demo_refreshes_before_expiry_by_itself(browser: Chromium, tmp_path: Path) -> None:
    with run_demo(access_ttl=3) as (url, _):
        ready(browser, url)
        sign_in(browser, url, tmp_path)
        first = browser.evaluate("keycloak.token")
        # 3 s tokens are refreshed 1 s before they expire, without a click.
        browser.wait_for(
            f"keycloak.token !== {json.dumps(first)} && {text('#refresh-note')}.includes('Refreshed 1 time')"
        )
        browser.wait_for(f"{text('#status')}.startsWith('200')")
        assert browser.page_errors() == []


def test_demo_cancel_comes_back_signed_out_with_a_notice(
    browser: Chromium, demo: tuple[str, Demo], tmp_path: Path
) -> None:
    url, _ = demo
    ready(browser, url)
    click(browser, "sign-in")
    browser.wait_for("document.querySelector('button[name=cancel]') !== null")
    browser.evaluate("document.querySelector('button[name=cancel]').click()")
    browser.wait_for(f"location.href === {json.dumps(url + '/')} && window.demoReady === true")
    assert browser.evaluate(visible("signed-out"))
    assert "Sign-in cancelled" in browser.evaluate(text("#notice"))
    browser.screenshot(tmp_path / "cancelled.png")
    assert browser.page_errors() == []


def test_demo_signs_out_through_the_api_then_winks_logout(
    browser: Chromium, demo: tuple[str, Demo], tmp_path: Path
) -> None:
    url, parts = demo
    ready(browser, url)
    sign_in(browser, url, tmp_path)
    token = browser.evaluate("keycloak.token")
    click(browser, "sign-out")
    browser.wait_for(f"window.demoReady === true && {visible('signed-out')} && {visible('notice')}")
    notice = browser.evaluate(text("#notice"))
    assert notice.startswith("You are signed out. The API revoked your token (200)")
    assert "worker 1: 401" in notice
    browser.screenshot(tmp_path / "4-signed-out.png")
    # Wink's side ended too: Verify Client refuses the token, and the next visit is signed out.
    verifier = parts.emulator.verifier()
    with pytest.raises(TokenRejected):
        verifier.verify(token)
    ready(browser, url)
    assert browser.evaluate(visible("signed-out"))
    assert browser.page_errors() == []


def test_demo_with_redis_verifies_once_for_the_fleet_and_every_worker_refuses_after_sign_out(
    browser: Chromium, redis_url: str, tmp_path: Path
) -> None:
    with run_demo(redis_url=redis_url) as (url, parts):
        ready(browser, url)
        sign_in(browser, url, tmp_path)
        summary = browser.wait_for(
            f"{text('#fleet-summary')}.startsWith('Verified once') && {text('#fleet-summary')}"
        )
        assert summary == (
            "Verified once for the fleet: 2 workers accepted the token, Wink was called once."
        )
        assert parts.emulator.calls == 1
        assert sorted(w.stats.wink_calls for w in parts.workers) == [0, 1]
        browser.screenshot(tmp_path / "3-fleet.png")
        token = browser.evaluate("keycloak.token")
        click(browser, "sign-out")
        browser.wait_for(f"window.demoReady === true && {visible('notice')}")
        notice = browser.evaluate(text("#notice"))
        assert "worker 1: 401" in notice
        assert "worker 2: 401" in notice
        # Every worker refuses it, however often it is asked.
        with httpx.Client(base_url=url, timeout=5) as client:
            answers = [
                client.get("/api/profile", headers={"Authorization": f"Bearer {token}"})
                for _ in range(4)
            ]
        assert sorted({a.headers["x-demo-worker"] for a in answers}) == ["1", "2"]
        assert [a.status_code for a in answers] == [401] * 4
        assert browser.page_errors() == []
