"""The session route over real sockets: WinkMiddleware under uvicorn, WinkWSGIMiddleware under
gunicorn, both against the emulator served over HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from tests.redis_server import free_port
from tests.servers import serve_asgi
from wink_middleware import WinkMiddleware
from wink_middleware.testing import WinkEmulator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PATH = "/api/wink/session"
RETURN_URL = "https://app.example/signed-in"
CANCEL_URL = "https://app.example/cancelled"
BAD = [
    {"returnUrl": "https://evil.example/"},
    {"returnUrl": "javascript:alert(1)"},
    {"cancelUrl": "//evil.example/"},
    {"cancelUrl": "https://user@app.example/"},
    {"returnUrl": "/relative"},
    {"returnUrl": "https://app.example/caf\u00e9"},
    {"returnUrl": "https://app.example/" + "a" * 10_240},
]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        # The middleware closes its HTTP client when the lifespan shuts down.
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"the app"})


@pytest.fixture
def emulator() -> Iterator[tuple[WinkEmulator, str]]:
    wink = WinkEmulator("served-client", "served-secret")
    with wink.serve() as url:
        yield wink, url


def check_route(url: str, wink: WinkEmulator) -> None:
    """The answers every adapter gives, over a socket."""
    with httpx.Client(base_url=url, timeout=10) as client:
        ok = client.get(PATH)
        assert ok.status_code == 200, ok.text
        assert ok.headers["content-type"] == "application/json"
        assert ok.headers["cache-control"] == "no-store"
        assert wink.use_session(ok.json()["sessionId"]) == (RETURN_URL, CANCEL_URL)
        given = client.get(PATH, params={"returnUrl": "https://app.example/x"})
        assert wink.use_session(given.json()["sessionId"]) == ("https://app.example/x", CANCEL_URL)
        calls = wink.session_calls
        for query in BAD:
            refused = client.get(f"{PATH}?{urlencode(query)}")
            assert refused.status_code == 400, query
            assert next(iter(query)) in refused.json()["error_description"]
        assert wink.session_calls == calls, "a refused URL never reaches Wink"
        for method in ("POST", "PUT", "DELETE", "HEAD"):
            answer = client.request(method, PATH)
            assert answer.status_code == 405 and answer.headers["allow"] == "GET"
        assert client.get("/other").status_code == 401  # the rest stays protected


def test_the_route_under_uvicorn(emulator: tuple[WinkEmulator, str]) -> None:
    wink, wink_url = emulator
    middleware = WinkMiddleware(
        app,
        config=wink.wink_config(
            base_url=wink_url,
            session_path=PATH,
            session_return_url=RETURN_URL,
            session_cancel_url=CANCEL_URL,
        ),
    )
    with serve_asgi(middleware) as url:
        check_route(url, wink)


def test_the_route_under_uvicorn_with_root_path(emulator: tuple[WinkEmulator, str]) -> None:
    wink, wink_url = emulator
    middleware = WinkMiddleware(
        app,
        config=wink.wink_config(
            base_url=wink_url, session_path=PATH, session_return_url=RETURN_URL,
            session_cancel_url=CANCEL_URL,
        ),
    )  # fmt: skip
    with serve_asgi(middleware, root_path="/mounted") as url:
        # uvicorn puts --root-path in front of the path the proxy forwarded (scope["path"] holds
        # both); the route matches the path without it.
        response = httpx.get(f"{url}{PATH}")
        other = httpx.get(f"{url}/other")
    assert response.status_code == 200 and "sessionId" in response.json()
    assert other.status_code == 401


def test_a_concurrent_burst_under_uvicorn_is_capped_by_session_rate(
    emulator: tuple[WinkEmulator, str],
) -> None:
    wink, wink_url = emulator
    middleware = WinkMiddleware(
        app,
        config=wink.wink_config(
            base_url=wink_url, session_path=PATH, session_return_url=RETURN_URL,
            session_cancel_url=CANCEL_URL, session_rate=10,
        ),
    )  # fmt: skip

    async def burst(url: str) -> tuple[list[httpx.Response], float]:
        limits = httpx.Limits(max_connections=10)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            started = time.monotonic()
            answers = await asyncio.gather(*(client.get(PATH) for _ in range(200)))
            return list(answers), time.monotonic() - started

    with serve_asgi(middleware) as url:
        answers, took = asyncio.run(burst(url))
    created = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(created) + len(refused) == 200
    # The bucket starts at 2 x 10 and refills 10 a second while the burst lasts.
    assert 20 <= len(created) <= 20 + 10 * took + 1
    assert wink.session_calls == len(created)
    assert all(int(a.headers["retry-after"]) >= 1 for a in refused)


def test_the_route_under_gunicorn(emulator: tuple[WinkEmulator, str]) -> None:
    wink, wink_url = emulator
    port = free_port()
    env = {
        **os.environ,
        "WINK_CLIENT_ID": "served-client",
        "WINK_CLIENT_SECRET": "served-secret",
        "WINK_BASE_URL": wink_url,
        "WINK_SESSION_RETURN_URL": RETURN_URL,
        "WINK_SESSION_CANCEL_URL": CANCEL_URL,
    }
    command = [
        sys.executable, "-m", "gunicorn", "-w", "1", "--threads", "4", "-b", f"127.0.0.1:{port}",
        # Long request lines (0: no limit) reach the app, which refuses them itself (400 naming returnUrl).
        "--limit-request-line", "0", "tests.session_app:app",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for(url, process)
        check_route(url, wink)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert b"served-secret" not in stderr


def _wait_for(url: str, process: Any) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline and process.poll() is None, "gunicorn did not start"
            time.sleep(0.1)
