"""Sign in with Wink, offline: a Starlette back end with the session route, and a page (signin.html)
that signs in with keycloak-js 26, the library Wink's SDK wraps, against the local Wink emulator.

Run it, from the repository root (no Wink account, no network):

    wink-middleware emulator                  # terminal 1: the emulator, sign-in included
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    uvicorn examples.signin_app:app --port 8001               # terminal 2
    # then open http://127.0.0.1:8001/ and press "Sign in with Wink"

Against Wink itself, set WINK_AUTH_URL=https://auth.winkapis.com and APP_URL to your site, and
bundle keycloak-js (or Wink's SDK) from npm instead of the copy the testing kit ships.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.routing import Route

from wink_middleware import (
    AsyncWinkVerifier,
    WinkConfig,
    WinkMiddleware,
    get_access_token,
    require_profile,
)
from wink_middleware.testing import KEYCLOAK_JS

APP_URL = os.environ.get("APP_URL", "http://127.0.0.1:8001")
AUTH_URL = os.environ.get("WINK_AUTH_URL", os.environ.get("WINK_BASE_URL", ""))
PAGE = Path(__file__).with_name("signin.html")
SILENT_CHECK = "<script>parent.postMessage(location.href, location.origin)</script>"

config = WinkConfig.from_env()
verifier = AsyncWinkVerifier(config)


async def settings(request: Request) -> JSONResponse:
    return JSONResponse({"authUrl": AUTH_URL, "realm": "wink", "clientId": config.client_id})


async def me(request: Request) -> JSONResponse:
    profile = require_profile(request)
    return JSONResponse({"user_id": profile.user_id, "name": profile.display_name})


async def logout(request: Request) -> JSONResponse:
    token = get_access_token(request)  # the token this request was verified with
    if token is not None:
        await verifier.revoke(token)  # refused from now on, in every worker sharing the tier
    return JSONResponse({"signed_out": True})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await verifier.aclose()


routes = [
    Route("/", lambda request: FileResponse(PAGE)),
    Route("/keycloak.js", lambda request: FileResponse(KEYCLOAK_JS, media_type="text/javascript")),
    Route("/silent-check-sso.html", lambda request: HTMLResponse(SILENT_CHECK)),
    Route("/settings.json", settings),
    Route("/api/me", me),
    Route("/api/logout", logout, methods=["POST"]),
]


app = Starlette(
    routes=routes,
    lifespan=lifespan,
    middleware=[
        Middleware(
            WinkMiddleware,
            verifier=verifier,
            public_paths=["/", "/keycloak.js", "/silent-check-sso.html", "/settings.json"],
            # GET /api/session: a Wink session for the page, which sends the user back to APP_URL.
            session_path="/api/session",
            session_return_url=f"{APP_URL}/",
            session_cancel_url=f"{APP_URL}/",
        )
    ],
)
