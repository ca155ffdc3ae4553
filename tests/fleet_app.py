"""A protected app for the fleet tests, configured by WINK_* variables (WINK_REDIS_URL included).

``app`` is ASGI (served by uvicorn), ``wsgi`` is WSGI (served by gunicorn); both answer the
verified user's winkToken and the worker's pid, and ``POST /logout`` revokes the caller's token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wink_middleware import (
    WinkMiddleware,
    WinkWSGIMiddleware,
    get_access_token,
    get_profile,
    get_verifier,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


async def whoami(request: Request) -> JSONResponse:
    profile = get_profile(request)
    assert profile is not None
    return JSONResponse({"user": profile.wink_token, "pid": os.getpid()})


async def logout(request: Request) -> JSONResponse:
    reached = await get_verifier(request).revoke(get_access_token(request))
    return JSONResponse({"fleet": reached, "pid": os.getpid()})


async def health(request: Request) -> JSONResponse:
    # With the count of failed Redis commands: a test can tell a single-flight broken from a
    # Redis that did not answer within redis_timeout.
    verifier = asgi.verifier
    return JSONResponse({**verifier.health(), "shared_errors": verifier.stats.shared_errors})


asgi = WinkMiddleware(
    Starlette(
        routes=[
            Route("/me", whoami),
            Route("/logout", logout, methods=["POST"]),
            Route("/health", health),
        ]
    ),
    public_paths=["/health"],
)
app = asgi


def _wsgi_me(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    profile = environ["wink.profile"]
    body = json.dumps({"user": profile.wink_token, "pid": os.getpid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


wsgi = WinkWSGIMiddleware(_wsgi_me)
