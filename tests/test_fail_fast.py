"""Fail fast: a Starlette or FastAPI app whose WinkMiddleware has no configuration fails at startup
(the lifespan) with the WinkConfigError under uvicorn's default ``--lifespan auto``, and answers
no request with a 500. Starlette builds its middleware on the first ASGI call (the lifespan
startup), where an exception used to read to uvicorn as "this app has no lifespan"."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from wink_middleware import WinkConfigError, WinkMiddleware

APPS = {
    "starlette": """
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route
        from wink_middleware import WinkMiddleware

        async def health(request):
            return PlainTextResponse("ok")

        app = Starlette(routes=[Route("/health", health)])
        app.add_middleware(WinkMiddleware, public_paths=["/health"])
    """,
    "fastapi": """
        from fastapi import FastAPI
        from wink_middleware import WinkMiddleware

        app = FastAPI()
        app.add_middleware(WinkMiddleware, public_paths=["/health"])

        @app.get("/health")
        def health():
            return {"ok": True}
    """,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
@pytest.mark.parametrize("framework", sorted(APPS))
def test_an_app_without_configuration_fails_at_startup_under_lifespan_auto(
    framework: str, tmp_path: Path
) -> None:
    (tmp_path / "unconfigured_app.py").write_text(textwrap.dedent(APPS[framework]))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WINK_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "unconfigured_app:app", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"uvicorn did not exit: it served without its configuration\n{err}")
    assert proc.returncode != 0, err
    assert "WinkConfigError: missing Wink configuration: set WINK_CLIENT_ID" in err
    assert "Application startup failed" in err
    assert "Uvicorn running" not in err  # it never served: no request got a 500
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


async def health(request: object) -> PlainTextResponse:
    return PlainTextResponse("ok")


@pytest.mark.anyio
async def test_without_a_lifespan_every_request_raises_the_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("WINK_"):
            monkeypatch.delenv(name)
    app = Starlette(routes=[Route("/health", health)])
    app.add_middleware(WinkMiddleware, public_paths=["/health"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(WinkConfigError, match="missing Wink configuration"):
            await client.get("/health")
    middleware = app.middleware_stack
    while middleware is not None and not isinstance(middleware, WinkMiddleware):
        middleware = getattr(middleware, "app", None)
    assert middleware is not None
    with pytest.raises(WinkConfigError, match="missing Wink configuration"):
        middleware.verifier  # noqa: B018


def test_built_outside_a_server_the_config_error_is_raised_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("WINK_"):
            monkeypatch.delenv(name)
    with pytest.raises(WinkConfigError, match="missing Wink configuration"):
        WinkMiddleware(Starlette())
