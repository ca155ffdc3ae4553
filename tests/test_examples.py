"""Every example in examples/ runs against the emulator: 200 with a token, 401 without.

Each test does what the example's docstring says: a Wink emulator served on 127.0.0.1, the WINK_*
variables pointing at it, then the example imported and driven in-process (the Django ones in a
fresh interpreter each: Django's settings are configured once per process).
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.testclient import TestClient, WebSocketDenialResponse

from tests.chromium import CHROMIUM, Chromium, launch
from wink_middleware import TokenRejected
from wink_middleware.testing import WinkEmulator
from wink_middleware.testing._server import ServerThread, bind
from wink_middleware.testing.pytest_plugin import CLIENT_ID, CLIENT_SECRET

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def wink(monkeypatch: pytest.MonkeyPatch, wink_emulator: WinkEmulator) -> Iterator[WinkEmulator]:
    """The emulator on a real port, and the environment an example reads its config from."""
    with wink_emulator.serve() as base_url:
        monkeypatch.setenv("WINK_BASE_URL", base_url)
        monkeypatch.setenv("WINK_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("WINK_CLIENT_SECRET", CLIENT_SECRET)
        yield wink_emulator


def assert_logout_refuses_the_token(client: Any, token: str, then: str = "/me") -> None:
    """POST /logout with ``token``: signed out, and the token is refused from then on (revoked by
    the app's own verifier: without the shared tier, in this process only)."""
    assert client.get(then, headers=bearer(token)).status_code == 200
    answer = client.post("/logout", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"signed_out": True, "every_worker": False}
    refused = client.get(then, headers=bearer(token))
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_token")


def load(name: str) -> ModuleType:
    """Import ``examples.<name>`` afresh, so it reads this test's environment."""
    sys.modules.pop(f"examples.{name}", None)
    return importlib.import_module(f"examples.{name}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# A CORS preflight without a token: a method-agnostic example must not serve it its content.
PREFLIGHT = {"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}


def test_every_example_has_a_test_and_a_run_command() -> None:
    names = {path.stem for path in EXAMPLES.glob("*.py")} - {"__init__"}
    tested = {
        name.removeprefix("test_").removesuffix("_example")
        for name in globals()
        if name.startswith("test_") and name.endswith("_example")
    }
    assert names == tested
    for name in names - {"testing_kit"}:
        doc = ast.get_docstring(ast.parse((EXAMPLES / f"{name}.py").read_text())) or ""
        assert "wink-middleware emulator" in doc
        assert "WINK_BASE_URL=http://127.0.0.1:8765" in doc
    kit = ast.get_docstring(ast.parse((EXAMPLES / "testing_kit.py").read_text())) or ""
    assert "pytest examples/testing_kit.py" in kit


# -- ASGI ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_starlette_app_example(wink: WinkEmulator) -> None:
    module = load("starlette_app")
    with TestClient(module.app) as client:
        ok = client.get("/me", headers=bearer(wink.issue_token(first_name="Grace")))
        assert ok.status_code == 200
        assert ok.json()["name"] == "Grace Lovelace"
        assert client.get("/me").status_code == 401
        assert client.get("/health").status_code == 200
        assert_logout_refuses_the_token(client, wink.issue_token())


@pytest.mark.slow
def test_pages_app_example(wink: WinkEmulator) -> None:
    module = load("pages_app")

    def cookie(token: str) -> dict[str, str]:
        return {"Cookie": f"wink_session={token}"}

    with TestClient(module.app) as client:
        signed_in = client.get("/", headers=cookie(wink.issue_token(first_name="<b>Grace</b>")))
        assert signed_in.status_code == 200
        assert "Hello, &lt;b&gt;Grace&lt;/b&gt; Lovelace!" in signed_in.text
        assert "Sign in" not in signed_in.text

        anonymous = client.get("/")
        assert anonymous.status_code == 200
        assert '<a href="/sign-in">Sign in</a>' in anonymous.text
        assert "expired" not in anonymous.text

        stale = wink.issue_token()
        wink.revoke(stale)
        for token in (stale, wink.issue_token(ttl=-60), "not<a>token"):
            expired = client.get("/", headers=cookie(token))
            assert expired.status_code == 200
            assert "Your session expired, sign in again." in expired.text
            assert '<a href="/sign-in">Sign in</a>' in expired.text

        account = client.get("/account", headers=cookie(wink.issue_token()))
        assert "Ada Lovelace (ada.lovelace@example.com)" in account.text
        assert client.get("/account").status_code == 401
        assert client.get("/account", headers=cookie(stale)).status_code == 401

        wink.fail_next(2, status=503)
        assert client.get("/", headers=cookie(wink.issue_token())).status_code == 503


def test_fastapi_app_example(wink: WinkEmulator) -> None:
    module = load("fastapi_app")
    with TestClient(module.app) as client:
        ok = client.get("/me", headers=bearer(wink.issue_token()))
        assert ok.status_code == 200
        assert ok.json()["email"] == "ada.lovelace@example.com"
        missing = client.get("/me")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="wink"'
        revoked = wink.issue_token()
        wink.revoke(revoked)
        refused = client.get("/me", headers=bearer(revoked))
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_token")
        assert client.get("/").json() == {"hello": "anyone"}
        assert client.get("/", headers=bearer(wink.issue_token())).json() == {
            "hello": "Ada Lovelace"
        }
        assert client.get("/staff", headers=bearer(wink.issue_token())).json() == {"staff": True}
        outsider = client.get("/staff", headers=bearer(wink.issue_token(email="bo@elsewhere.org")))
        assert (outsider.status_code, outsider.json()["error"]) == (403, "insufficient_scope")
        document = client.get("/openapi.json").json()
        schemes = document["components"]["securitySchemes"]
        assert schemes["WinkBearer"]["scheme"] == "bearer"
        # The protected routes' refusals are in the document, not only the lock.
        for path, method in (("/me", "get"), ("/logout", "post"), ("/staff", "get")):
            assert {"400", "401", "403", "503"} <= set(document["paths"][path][method]["responses"])
        assert_logout_refuses_the_token(client, wink.issue_token())


@pytest.mark.slow
def test_fleet_setups_example(wink: WinkEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # No Redis listens there: Redis is never a gate, so the app answers all the same
    # (tests/test_fleet.py runs this app's twin on a real redis-server).
    monkeypatch.setenv("WINK_REDIS_URL", "redis://127.0.0.1:1/0")
    module = load("fleet_setups")
    token = wink.issue_token()
    with TestClient(module.app) as client:
        assert client.get("/me", headers=bearer(token)).json()["user_id"]
        assert client.get("/me", headers=bearer(token)).status_code == 200
        assert client.get("/me").status_code == 401
        assert module.app.verifier.health()["shared"] == "down"
    # The other setups build without reaching any Redis (their clients connect on first use).
    config = module.app.config
    inner = module.app.app
    for built in (
        module.on_a_cluster(inner),
        module.on_sentinel(inner, config),
        module.with_your_own_client(inner, config),
    ):
        # Built, not connected: "down" until Redis has answered once (no Redis listens here).
        assert built.verifier.health() == {"wink": "closed", "shared": "down", "listener": "off"}


def test_plain_asgi_example(wink: WinkEmulator) -> None:
    module = load("plain_asgi")
    with TestClient(module.app) as client:
        ok = client.get("/", headers=bearer(wink.issue_token()))
        assert ok.status_code == 200
        assert ok.json()["hello"] == "Ada Lovelace"
        assert client.get("/").status_code == 401
        assert client.options("/", headers=PREFLIGHT).status_code == 401
        assert_logout_refuses_the_token(client, wink.issue_token(), then="/")


@pytest.mark.slow
def test_websocket_app_example(wink: WinkEmulator) -> None:
    module = load("websocket_app")
    token = wink.issue_token()
    with TestClient(module.app) as client:
        with client.websocket_connect("/ws", subprotocols=["wink.bearer", token]) as ws:
            assert ws.accepted_subprotocol == "wink.bearer"
            assert ws.receive_json() == {"hello": "Ada Lovelace"}
            ws.send_text("hi")
            assert ws.receive_text() == ";ada.lovelace: hi"
        with client.websocket_connect("/ws", headers=bearer(token)) as ws:
            assert ws.accepted_subprotocol is None
            assert ws.receive_json() == {"hello": "Ada Lovelace"}
        # The query string is no token source here: URLs get logged.
        with (
            pytest.raises(WebSocketDenialResponse) as by_query,
            client.websocket_connect(f"/ws?access_token={token}"),
        ):
            pass
        assert by_query.value.status_code == 401
        # TestClient offers the websocket.http.response extension: the refusal is a real 401.
        with pytest.raises(WebSocketDenialResponse) as refused, client.websocket_connect("/ws"):
            pass
    assert refused.value.status_code == 401
    assert refused.value.json()["error"] == "missing_token"


# -- WSGI ----------------------------------------------------------------------------------------


def wsgi_client(app: WSGIApplication) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")


@pytest.mark.slow
def test_flask_app_example(wink: WinkEmulator) -> None:
    module = load("flask_app")
    with wsgi_client(module.app) as client:
        ok = client.get("/me", headers=bearer(wink.issue_token(last_name="Hopper")))
        assert ok.status_code == 200
        assert ok.json()["name"] == "Ada Hopper"
        assert client.get("/me").status_code == 401
        assert client.get("/health").status_code == 200
        assert_logout_refuses_the_token(client, wink.issue_token())
    module.app.wsgi_app.close()


def test_sign_in_example(wink: WinkEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WINK_SESSION_RETURN_URL", "http://localhost:8001/")
    monkeypatch.setenv("WINK_SESSION_CANCEL_URL", "http://localhost:8001/cancelled")
    module = load("sign_in")
    clients: list[httpx.Client] = [
        TestClient(module.starlette_app),
        TestClient(module.fastapi_app),
        wsgi_client(module.flask_app),
    ]
    for client in clients:
        with client:
            response = client.get("/api/wink/session")
            assert response.status_code == 200
            assert response.headers["cache-control"] == "no-store"
            assert wink.use_session(response.json()["sessionId"]) == (
                "http://localhost:8001/",
                "http://localhost:8001/cancelled",
            )
            other = client.get("/api/wink/session?returnUrl=https%3A%2F%2Fevil.example%2F")
            assert (other.status_code, other.json()["error"]) == (400, "invalid_request")
            assert client.post("/api/wink/session").status_code == 405
    assert wink.session_calls == 3
    module.flask_app.wsgi_app.close()
    # The Django settings are valid options (tests/test_django_inprocess.py drives them).
    config = wink.wink_config(**module.WINK)
    assert config.session_path == "/api/wink/session"


# Django's settings are configured once per process: each Django example runs in its own.
DRIVE_WSGI = """
import json, sys
import httpx
from importlib import import_module

app = import_module(sys.argv[1]).application
seen = []
with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver") as client:
    for method, path, headers in json.loads(sys.argv[2]):
        response = client.request(method, path, headers=headers)
        seen.append({"status": response.status_code, "body": response.text, "headers": dict(response.headers)})
print(json.dumps(seen))
"""


def run_wsgi_example(
    name: str, tmp_path: Path, requests: list[tuple[str, str, dict[str, str]]]
) -> list[dict[str, Any]]:
    """Send ``requests`` to ``examples.<name>.application`` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", DRIVE_WSGI, f"examples.{name}", json.dumps(requests)],
        cwd=EXAMPLES.parent,
        env={**os.environ, "DJANGO_DB": str(tmp_path / "db.sqlite3")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers: list[dict[str, Any]] = json.loads(done.stdout)
    for answer in answers:
        answer["json"] = json.loads(answer["body"]) if answer["body"] else None
    return answers


# The documented settings, as the examples (and the README, verbatim) give them: a password
# login, the one Django's admin login form makes through authenticate(), still works.
PASSWORD_LOGIN = """
import json, sys
from importlib import import_module

module = import_module(sys.argv[1])
from django.contrib.auth import authenticate
from django.contrib.auth.models import User

User.objects.create_superuser("admin", "admin@example.com", "correct horse")
seen = {
    "backends": module.AUTHENTICATION_BACKENDS,
    "right": getattr(authenticate(None, username="admin", password="correct horse"), "username", None),
    "wrong": getattr(authenticate(None, username="admin", password="wrong"), "username", None),
}
if "django.contrib.sessions" in module.settings.INSTALLED_APPS:
    from django.test import Client

    seen["client_login"] = Client().login(username="admin", password="correct horse")
print(json.dumps(seen))
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["django_app", "drf_app"])
def test_admin_login_works_with_the_documented_django_settings(
    name: str, wink: WinkEmulator, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", PASSWORD_LOGIN, f"examples.{name}"],
        cwd=EXAMPLES.parent,
        env={**os.environ, "DJANGO_DB": str(tmp_path / "db.sqlite3")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["backends"][0] == "django.contrib.auth.backends.ModelBackend"
    assert (seen["right"], seen["wrong"]) == ("admin", None)
    assert seen.get("client_login", True) is True


@pytest.mark.slow
def test_django_app_example(wink: WinkEmulator, tmp_path: Path) -> None:
    token = wink.issue_token(wink_token="user-42")
    leaving = wink.issue_token()
    ok, missing, health, preflight, logout, after = run_wsgi_example(
        "django_app",
        tmp_path,
        [
            ("GET", "/me", bearer(token)),
            ("GET", "/me", {}),
            ("GET", "/health", {}),
            ("OPTIONS", "/me", PREFLIGHT),
            ("POST", "/logout", bearer(leaving)),
            ("GET", "/me", bearer(leaving)),
        ],
    )
    assert (logout["status"], logout["json"]) == (200, {"signed_out": True, "every_worker": False})
    assert (after["status"], after["json"]["error"]) == (401, "invalid_token")
    assert ok["status"] == 200
    assert ok["json"] == {"user_id": "user-42", "name": "Ada Lovelace", "username": "user-42"}
    assert (missing["status"], missing["json"]["error"]) == (401, "missing_token")
    assert health["status"] == 200
    assert preflight["status"] == 401


@pytest.mark.slow
def test_drf_app_example(wink: WinkEmulator, tmp_path: Path) -> None:
    token = wink.issue_token(wink_token="user-7", first_name="Grace")
    revoked = wink.issue_token()
    wink.revoke(revoked)
    leaving = wink.issue_token()
    ok, missing, refused, health, logout, after = run_wsgi_example(
        "drf_app",
        tmp_path,
        [
            ("GET", "/me", bearer(token)),
            ("GET", "/me", {}),
            ("GET", "/me", bearer(revoked)),
            ("GET", "/health", {}),
            ("POST", "/logout", bearer(leaving)),
            ("GET", "/me", bearer(leaving)),
        ],
    )
    assert (logout["status"], logout["json"]) == (200, {"signed_out": True, "every_worker": False})
    assert (after["status"], after["json"]["error"]) == (401, "invalid_token")
    assert ok["status"] == 200
    assert ok["json"] == {"user_id": "user-7", "name": "Grace Lovelace", "username": "user-7"}
    # DRF answers like the middleware: 401 with the Bearer challenge, RFC 6750 bodies.
    assert missing["status"] == 401
    assert missing["headers"]["www-authenticate"] == 'Bearer realm="wink"'
    assert missing["json"] == {
        "error": "missing_token",
        "error_description": "a bearer token is required",
    }
    assert (refused["status"], refused["json"]["error"]) == (401, "invalid_token")
    assert health["json"] == {"ok": True}


@pytest.mark.slow
def test_plain_wsgi_example(wink: WinkEmulator) -> None:
    module = load("plain_wsgi")
    with wsgi_client(module.app) as client:
        ok = client.get("/anything", headers=bearer(wink.issue_token()))
        assert ok.status_code == 200
        assert ok.json()["hello"] == "Ada Lovelace"
        missing = client.get("/")
        assert missing.status_code == 401
        assert missing.json()["error"] == "missing_token"
        assert client.options("/", headers=PREFLIGHT).status_code == 401
        assert_logout_refuses_the_token(client, wink.issue_token(), then="/")
    module.app.close()


# -- the testing kit -----------------------------------------------------------------------------


@pytest.mark.slow
def test_testing_kit_example() -> None:
    # Run as its docstring says, in a fresh interpreter without WINK_* variables. The plugin is
    # named and its entry point turned off, so that the run is the same here (where pyproject turns
    # the entry point off) and against an installed wheel (where it is on).
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINK_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:wink_middleware",
            "-p",
            "wink_middleware.testing.pytest_plugin",
            "examples/testing_kit.py",
        ],
        cwd=EXAMPLES.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


# -- the logging configuration the README links ---------------------------------------------------


def test_logging_json_shows_the_library_at_info(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging
    import logging.config

    config = json.loads((EXAMPLES / "logging.json").read_text())
    monkeypatch.setattr(logging.root, "handlers", list(logging.root.handlers))
    monkeypatch.setattr(logging.root, "level", logging.root.level)
    logger = logging.getLogger("wink_middleware")
    monkeypatch.setattr(logger, "level", logger.level)
    logging.config.dictConfig(config)
    assert logger.isEnabledFor(logging.INFO)
    assert {"uvicorn", "uvicorn.access", "wink_middleware"} <= set(config["loggers"])


# -- signing in from a page (headless Chromium) ----------------------------------------------------

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (scripts/install installs it as root)"
)


def sign_in_from_the_page(
    chromium: Chromium, app_url: str, wink: WinkEmulator, shots: Path
) -> None:
    """signin.html: signed out, Wink's sign-in page, back signed in, then sign_out_from_the_page."""
    chromium.open(f"{app_url}/")
    assert chromium.wait_for("window.ready") == {"signedIn": False}
    chromium.evaluate("document.getElementById('sign-in').click()")
    chromium.wait_for("document.querySelector('button[name=user]') !== null")
    chromium.screenshot(shots / "sign-in-page.png")
    chromium.evaluate("document.querySelector('button[name=user]').click()")
    chromium.wait_for(f"location.href === {json.dumps(app_url + '/')} && window.ready")
    assert chromium.evaluate("window.ready") == {"signedIn": True}, chromium.page_errors()
    assert chromium.evaluate("document.getElementById('who').textContent") == (
        "Signed in as Ada Lovelace"
    )
    chromium.screenshot(shots / "signed-in.png")
    sign_out_from_the_page(chromium, app_url, wink)


def sign_out_from_the_page(chromium: Chromium, app_url: str, wink: WinkEmulator) -> None:
    """A refresh gives a token the API accepts; sign-out revokes it and ends Wink's session."""
    first = chromium.evaluate("keycloak.token")
    assert chromium.evaluate("keycloak.updateToken(-1)") is True  # a refresh, forced
    assert chromium.evaluate("window.api('/api/me').then(r => r.status)") == 200
    second = chromium.evaluate("keycloak.token")
    assert second != first
    chromium.evaluate("window.before = true; document.getElementById('sign-out').click()")
    chromium.wait_for(
        f"location.href === {json.dumps(app_url + '/')} && !window.before && window.ready"
    )
    assert chromium.evaluate("window.ready") == {"signedIn": False}
    # The API revoked the token the page held; Wink's logout ended the session, so Verify Client
    # refuses every token of it (an older one stays cached in the API until it expires, as any).
    assert httpx.get(f"{app_url}/api/me", headers=bearer(second)).status_code == 401
    for token in (first, second):
        with pytest.raises(TokenRejected):
            wink.verifier().verify(token)
    assert wink.session_calls == 1
    assert chromium.page_errors() == []


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    with launch(tmp_path) as browser:
        yield browser


@pytest.fixture
def app_url(monkeypatch: pytest.MonkeyPatch, wink: WinkEmulator) -> str:
    """A free port for the example, and the variables it reads to know where it and Wink live."""
    sock = bind()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    monkeypatch.setenv("APP_URL", url)
    monkeypatch.setenv("WINK_AUTH_URL", os.environ["WINK_BASE_URL"])
    return url


@pytest.mark.slow
@needs_chromium
def test_signin_app_example(
    wink: WinkEmulator, app_url: str, chromium: Chromium, tmp_path: Path
) -> None:
    module = load("signin_app")
    server = ServerThread(module.app, bind(port=int(app_url.rsplit(":", 1)[1])))
    server.start()
    try:
        sign_in_from_the_page(chromium, app_url, wink, tmp_path)
    finally:
        server.stop()


@pytest.mark.slow
@needs_chromium
def test_signin_flask_example(
    wink: WinkEmulator, app_url: str, chromium: Chromium, tmp_path: Path
) -> None:
    from werkzeug.serving import make_server

    module = load("signin_flask")
    server = make_server("127.0.0.1", int(app_url.rsplit(":", 1)[1]), module.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sign_in_from_the_page(chromium, app_url, wink, tmp_path)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        module.verifier.close()


@pytest.mark.slow
@needs_chromium
def test_signin_django_example(
    wink: WinkEmulator, app_url: str, chromium: Chromium, tmp_path: Path
) -> None:
    port = app_url.rsplit(":", 1)[1]
    env = {**os.environ, "DJANGO_DB": str(tmp_path / "users.sqlite3")}
    server = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "signin_django.py"),
            "runserver",
            f"127.0.0.1:{port}",
            "--noreload",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{app_url}/settings.json", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "Django did not start"
            time.sleep(0.1)
        sign_in_from_the_page(chromium, app_url, wink, tmp_path)
    finally:
        server.terminate()
        server.wait(10)
