"""WinkWSGIMiddleware in front of real WSGI frameworks and a real WSGI server (issue 3).

Flask and a plain WSGI app run in-process through ``httpx.WSGITransport``; the Django project in
``tests/django_project`` runs in its own interpreter (Django's settings are per process, and other
tests configure them differently); one test serves the wrapped app with ``wsgiref.simple_server``
on 127.0.0.1 and talks to it over a real socket.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.validate import validator

import httpx
import pytest
from flask import Flask, request
from werkzeug.wrappers import Request

from tests.helpers import make_token, profile_json
from tests.stub import WinkStub, sync_verifier
from wink_middleware import WinkProfile, WinkWSGIMiddleware, get_profile

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

ROOT = Path(__file__).resolve().parent.parent
TOKEN = make_token()
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WINK_TOKEN = profile_json()["winkToken"]


def client_for(app: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://app.test")


# -- Flask --------------------------------------------------------------------------------------


def flask_app(stub: WinkStub, **options: Any) -> Flask:
    """A Flask app whose views read ``get_profile(request)``, behind the middleware."""
    app = Flask(__name__)

    @app.get("/me")
    def me() -> dict[str, Any]:
        profile = get_profile(request)
        assert profile is not None
        return {
            "user_id": profile.user_id,
            "name": profile.display_name,
            "remote_user": request.remote_user,
        }

    @app.get("/feed")
    def feed() -> dict[str, Any]:
        profile = get_profile(request)
        return {"hello": "stranger" if profile is None else profile.display_name}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True}

    app.wsgi_app = WinkWSGIMiddleware(  # type: ignore[method-assign]
        validator(app.wsgi_app), verifier=sync_verifier(stub, **options)
    )
    return app


def test_flask_view_reads_the_profile_with_get_profile_request() -> None:
    stub = WinkStub()
    with client_for(validator(flask_app(stub))) as client:
        response = client.get("/me", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {
        "user_id": WINK_TOKEN,
        "name": "Ada Lovelace",
        "remote_user": WINK_TOKEN,
    }


def test_flask_never_runs_a_view_without_a_valid_token() -> None:
    stub = WinkStub(httpx.Response(401))
    with client_for(validator(flask_app(stub))) as client:
        assert client.get("/me").status_code == 401
        rejected = client.get("/me", headers=AUTH)
    assert rejected.status_code == 401
    assert rejected.json()["error"] == "invalid_token"


def test_flask_optional_and_public_routes() -> None:
    app = flask_app(WinkStub(), optional_paths=["/feed"], public_paths=["/health"])
    with client_for(validator(app)) as client:
        assert client.get("/feed").json() == {"hello": "stranger"}
        assert client.get("/feed", headers=AUTH).json() == {"hello": "Ada Lovelace"}
        assert client.get("/health").json() == {"ok": True}


def test_flask_head_of_a_protected_route_without_a_token_has_no_body() -> None:
    with client_for(validator(flask_app(WinkStub()))) as client:
        response = client.head("/me")
    assert response.status_code == 401
    assert response.content == b""


def test_get_profile_reads_a_werkzeug_request() -> None:
    profile = WinkProfile.from_wink(profile_json())
    environ: dict[str, Any] = {"wsgi.version": (1, 0), "wink.profile": profile}
    assert get_profile(Request(environ)) is profile
    assert get_profile(Request({"wsgi.version": (1, 0)})) is None


# -- Django -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_run() -> dict[str, Any]:
    """What the Django project saw, driven through the middleware in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "tests.django_project.scenario"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout)
    return seen


@pytest.mark.slow
def test_django_request_user_is_a_django_user_keyed_by_the_wink_token(
    django_run: dict[str, Any],
) -> None:
    alice = django_run["alice"]
    assert alice["status"] == 200
    assert alice["body"]["authenticated"] is True
    assert alice["body"]["username"] == "0a6c1f3e-alice-wink-token"
    assert alice["body"]["remote_user"] == "0a6c1f3e-alice-wink-token"
    assert alice["body"]["wink_tag"] == ";0a6c1"


def test_django_maps_each_wink_user_to_one_django_user(django_run: dict[str, Any]) -> None:
    assert django_run["alice_again"]["body"]["user_pk"] == django_run["alice"]["body"]["user_pk"]
    assert django_run["bob"]["body"]["username"] == "7d2b9e40-bob-wink-token"
    assert django_run["users"] == ["0a6c1f3e-alice-wink-token", "7d2b9e40-bob-wink-token"]
    assert django_run["wink_calls"] == 2


def test_django_never_sees_a_request_without_a_token(django_run: dict[str, Any]) -> None:
    assert django_run["missing"] == {
        "status": 401,
        "body": {"error": "missing_token", "error_description": "a bearer token is required"},
    }


def test_django_public_path_is_anonymous_even_with_a_session(django_run: dict[str, Any]) -> None:
    # RemoteUserMiddleware logs the session user out when REMOTE_USER is absent.
    public = django_run["public_after_login"]
    assert public["status"] == 200
    assert public["body"]["authenticated"] is False
    assert public["body"]["wink_tag"] is None


def test_get_profile_reads_a_django_http_request(django_run: dict[str, Any]) -> None:
    assert django_run["plain_request_profile"] == "0a6c1f3e-alice-wink-token"


# -- a plain WSGI app ---------------------------------------------------------------------------


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Greets the verified user, or a stranger."""
    profile = get_profile(environ)
    name = "stranger" if profile is None else profile.display_name
    body = json.dumps({"hello": name, "remote_user": environ.get("REMOTE_USER")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def test_plain_wsgi_app_gets_the_profile_from_the_environ() -> None:
    app = WinkWSGIMiddleware(validator(hello), verifier=sync_verifier(WinkStub()))
    with client_for(validator(app)) as client:
        assert client.get("/", headers=AUTH).json() == {
            "hello": "Ada Lovelace",
            "remote_user": WINK_TOKEN,
        }
        assert client.get("/").status_code == 401


# -- a real WSGI server over a real socket ------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Served:
    url: str
    stub: WinkStub
    middleware: WinkWSGIMiddleware


@pytest.fixture
def served() -> Iterator[Served]:
    """The wrapped plain app under a threaded ``wsgiref`` server on 127.0.0.1, an ephemeral port."""
    stub = WinkStub()
    middleware = WinkWSGIMiddleware(validator(hello), verifier=sync_verifier(stub))
    server = make_server(
        "127.0.0.1",
        0,
        validator(middleware),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", stub, middleware)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        middleware.close()


@pytest.mark.slow
def test_served_by_a_threaded_wsgiref_server_over_a_real_socket(served: Served) -> None:
    with httpx.Client(base_url=served.url) as client:
        ok = client.get("/", headers=AUTH)
        missing = client.get("/")
        head = client.head("/")
        twice = client.get("/", headers=[("Authorization", f"Bearer {TOKEN}")] * 2)
    assert ok.status_code == 200
    assert ok.json() == {"hello": "Ada Lovelace", "remote_user": WINK_TOKEN}
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="wink"'
    assert missing.json()["error"] == "missing_token"
    assert head.status_code == 401
    assert head.content == b""
    # The server merges the two headers into one value; the middleware still refuses it.
    assert twice.status_code == 400
    assert twice.json()["error"] == "invalid_request"
    assert served.stub.calls == 1


@pytest.mark.slow
def test_threaded_server_requests_for_one_cold_token_share_one_wink_call(served: Served) -> None:
    gate = threading.Event()
    served.stub.gate = gate
    stats = served.middleware.verifier.stats

    def open_gate() -> None:
        deadline = time.monotonic() + 10
        while stats.coalesced < 7 and time.monotonic() < deadline:
            time.sleep(0.001)
        gate.set()

    opener = threading.Thread(target=open_gate)
    opener.start()
    with httpx.Client(base_url=served.url) as client, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: client.get("/", headers=AUTH).status_code, range(8)))
    opener.join()
    assert statuses == [200] * 8
    assert served.stub.calls == 1
