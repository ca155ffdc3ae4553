"""Wink's sign-in, end to end in headless Chromium: the shipped keycloak-js 26, driven the way Wink's
SDK drives it, against the emulator served over HTTP, and an API protected by WinkMiddleware with
``session_path``. Screenshots of each step stay in the test's tmp_path.

Time is a ``FakeClock`` shared by the emulator and the API's verifier: expiry is a step of the clock.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.chromium import CHROMIUM, Chromium, launch
from tests.helpers import FakeClock
from wink_middleware import WinkMiddleware, require_profile
from wink_middleware.testing import KEYCLOAK_JS, WinkEmulator
from wink_middleware.testing._server import ServerThread, bind

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (scripts/install installs it as root)"
    ),
]

CLIENT_ID = "browser-client"
CLIENT_SECRET = "browser-secret"
ACCESS_TTL = 60
KEYCLOAK_JS_SHA256 = "12ea5e286a90308c2cce9768c41a8d0d2724ff00c0800a614fdf28cd4a43d43f"

# The front end, as a Wink app writes it with Wink's SDK (which wraps keycloak-js 26): check-sso on
# every load with PKCE S256, a session from the back end right before the login, createLoginUrl plus
# Wink's sessionId, then the protected API with the access token.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Signed-in app</title></head>
<body><h1 id="who">…</h1>
<script type="module">
import Keycloak from "/keycloak.js";
const keycloak = new Keycloak({url: "{{auth_url}}", realm: "wink", clientId: "{{client_id}}"});
window.keycloak = keycloak;
window.signIn = async () => {
  const answer = await fetch("/api/session");
  const {sessionId} = await answer.json();
  const url = await keycloak.createLoginUrl({redirectUri: location.origin + "/"});
  const loginUrl = url + "&sessionId=" + encodeURIComponent(sessionId);
  sessionStorage.setItem("loginUrl", loginUrl);
  location.assign(loginUrl);
};
window.callApi = async (token) => {
  const answer = await fetch("/api/me", {headers: {Authorization: "Bearer " + (token ?? keycloak.token)}});
  return {status: answer.status, body: await answer.text()};
};
try {
  const authenticated = await keycloak.init({
    onLoad: "check-sso",
    pkceMethod: "S256",
    checkLoginIframe: false,
    silentCheckSsoRedirectUri: location.origin + "/silent-check-sso.html",
  });
  document.getElementById("who").textContent = authenticated ? keycloak.tokenParsed.preferred_username : "signed out";
  window.ready = {authenticated};
} catch (error) {
  window.ready = {error: String(error && (error.error || error.message || error))};
}
</script></body></html>
"""
SILENT_CHECK = """<!doctype html><html><body><script>
parent.postMessage(location.href, location.origin);
</script></body></html>"""
CANCELLED = "<!doctype html><html><body><h1>Cancelled</h1></body></html>"


@dataclass
class Site:
    app_url: str
    auth_url: str
    emulator: WinkEmulator
    clock: FakeClock


def api(emulator: WinkEmulator, clock: FakeClock, app_url: str, auth_url: str) -> WinkMiddleware:
    async def page(request: Request) -> Response:
        html = PAGE.replace("{{auth_url}}", auth_url).replace("{{client_id}}", CLIENT_ID)
        return HTMLResponse(html)

    async def me(request: Request) -> Response:
        profile = require_profile(request)
        return JSONResponse({"name": profile.display_name, "winkTag": profile.wink_tag})

    app = Starlette(
        routes=[
            Route("/", page),
            Route(
                "/keycloak.js", lambda r: FileResponse(KEYCLOAK_JS, media_type="text/javascript")
            ),
            Route("/silent-check-sso.html", lambda r: HTMLResponse(SILENT_CHECK)),
            Route("/cancelled", lambda r: HTMLResponse(CANCELLED)),
            Route("/api/me", me),
        ]
    )
    verifier = emulator.async_verifier(clock=clock)
    return WinkMiddleware(
        app,
        verifier=verifier,
        public_paths=["/", "/keycloak.js", "/silent-check-sso.html", "/cancelled"],
        session_path="/api/session",
        session_return_url=f"{app_url}/",
        session_cancel_url=f"{app_url}/cancelled",
    )


@pytest.fixture
def site() -> Iterator[Site]:
    clock = FakeClock(time.time())
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET, clock=clock, access_ttl=ACCESS_TTL)
    app_sock, idp_sock = bind(), bind()
    app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    auth_url = f"http://127.0.0.1:{idp_sock.getsockname()[1]}"
    idp = ServerThread(emulator, idp_sock)
    app = ServerThread(api(emulator, clock, app_url, auth_url), app_sock)
    idp.start()
    try:
        app.start()
        try:
            yield Site(app_url, auth_url, emulator, clock)
        finally:
            app.stop()
    finally:
        idp.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Chromium]:
    with launch(tmp_path) as chromium:
        yield chromium


def loaded(browser: Chromium, site: Site) -> dict[str, Any]:
    browser.open(f"{site.app_url}/")
    ready: dict[str, Any] = browser.wait_for("window.ready")
    assert "error" not in ready, ready
    return ready


def to_sign_in_page(browser: Chromium, site: Site, shot: Path) -> None:
    browser.evaluate("window.signIn(); true")
    browser.wait_for(
        f"location.href.startsWith({json.dumps(site.auth_url)}) && document.readyState === 'complete'"
        " && document.querySelector('button[name=cancel]') !== null"
    )
    browser.screenshot(shot)


def test_the_shipped_keycloak_js_is_the_unmodified_26_release_with_its_licence() -> None:
    assert hashlib.sha256(KEYCLOAK_JS.read_bytes()).hexdigest() == KEYCLOAK_JS_SHA256
    licence = (KEYCLOAK_JS.parent / "keycloak-js.LICENSE.txt").read_text()
    assert "Apache License" in licence
    assert "Version 2.0" in licence


def test_sign_in_api_refresh_expiry_and_a_reused_session(
    browser: Chromium, site: Site, tmp_path: Path
) -> None:
    assert loaded(browser, site) == {"authenticated": False}  # check-sso: login_required, silently
    browser.screenshot(tmp_path / "1-signed-out.png")
    to_sign_in_page(browser, site, tmp_path / "2-sign-in-page.png")
    assert browser.evaluate("document.title").startswith("Sign in")
    browser.evaluate("document.querySelector('button[name=user]').click(); true")
    browser.wait_for(
        f"location.href.startsWith({json.dumps(site.app_url)}) && window.ready !== undefined"
    )
    ready = browser.wait_for("window.ready")
    assert ready == {"authenticated": True}, (ready, browser.page_errors())
    browser.screenshot(tmp_path / "3-signed-in.png")
    assert browser.evaluate("document.getElementById('who').textContent") == ";ada.lovelace"
    # keycloak-js cleaned the code out of the URL
    assert "code=" not in browser.evaluate("location.href")

    answer = browser.evaluate("window.callApi()")
    assert answer["status"] == 200
    assert json.loads(answer["body"]) == {"name": "Ada Lovelace", "winkTag": ";ada.lovelace"}

    old = browser.evaluate("keycloak.token")
    site.clock.advance(ACCESS_TTL)
    expired = browser.evaluate(f"window.callApi({json.dumps(old)})")
    assert expired["status"] == 401
    # The app refreshes before (here: after) expiry; the new token is one the API accepts.
    assert browser.evaluate("keycloak.updateToken(1e9)") is True
    assert browser.evaluate("keycloak.token") != old
    assert browser.evaluate("window.callApi()")["status"] == 200
    assert browser.evaluate(f"window.callApi({json.dumps(old)})")["status"] == 401

    # The session the first login used is spent: the same login URL is refused.
    browser.open(browser.evaluate("sessionStorage.getItem('loginUrl')"))
    browser.screenshot(tmp_path / "4-reused-session.png")
    assert "already used or has expired" in browser.evaluate("document.body.textContent")
    assert browser.page_errors() == []


def test_cancel_lands_on_the_cancel_url_with_access_denied(
    browser: Chromium, site: Site, tmp_path: Path
) -> None:
    loaded(browser, site)
    to_sign_in_page(browser, site, tmp_path / "1-sign-in-page.png")
    browser.evaluate("document.querySelector('button[name=cancel]').click(); true")
    browser.wait_for(f"location.href.startsWith({json.dumps(site.app_url + '/cancelled?')})")
    browser.screenshot(tmp_path / "2-cancelled.png")
    query = browser.evaluate("Object.fromEntries(new URLSearchParams(location.search))")
    assert query["error"] == "access_denied"
    assert query["state"]
    assert site.emulator.session_calls == 1


def test_the_login_status_iframe_says_unchanged_then_changed_when_the_session_cookie_goes(
    browser: Chromium, site: Site, tmp_path: Path
) -> None:
    loaded(browser, site)
    to_sign_in_page(browser, site, tmp_path / "1-sign-in-page.png")
    browser.evaluate("document.querySelector('button[name=user]').click(); true")
    browser.wait_for(f"location.href.startsWith({json.dumps(site.app_url)}) && window.ready")
    # A second keycloak-js on the page, with Keycloak's session iframe on (Wink's SDK turns it off).
    watching = browser.evaluate(
        "(async () => {"
        " const { default: Keycloak } = await import('/keycloak.js');"
        f" const watcher = new Keycloak({{url: {json.dumps(site.auth_url)}, realm: 'wink',"
        f" clientId: {json.dumps(CLIENT_ID)}}});"
        " window.watcher = watcher; window.loggedOut = false;"
        " watcher.onAuthLogout = () => { window.loggedOut = true; };"
        " return await watcher.init({onLoad: 'check-sso', pkceMethod: 'S256',"
        " checkLoginIframe: true, checkLoginIframeInterval: 1,"
        " silentCheckSsoRedirectUri: location.origin + '/silent-check-sso.html'});"
        "})()"
    )
    assert watching is True  # signed in silently: prompt=none with the SSO cookie
    time.sleep(2.5)  # two checks of the iframe, each "unchanged"
    assert browser.evaluate("window.loggedOut") is False
    assert browser.evaluate("window.watcher.authenticated") is True
    browser.send("Network.clearBrowserCookies", session=True)
    browser.wait_for("window.loggedOut === true")
    assert browser.evaluate("window.watcher.authenticated") is False
    assert browser.page_errors() == []
