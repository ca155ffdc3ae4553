"""Starlette: every route needs a Wink token except /health.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    uvicorn examples.starlette_app:app --port 8001            # terminal 2
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8001/me
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wink_middleware import WinkMiddleware, get_access_token, get_verifier, require_profile


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@requires("authenticated")
async def me(request: Request) -> JSONResponse:
    profile = require_profile(request)  # the middleware only lets verified requests reach here
    return JSONResponse({"user_id": profile.user_id, "name": profile.display_name})


@requires("authenticated")
async def logout(request: Request) -> JSONResponse:
    # The token this request was verified with (header, cookie, query or subprotocol), refused
    # from now on by the middleware's verifier (by every worker, with the shared tier).
    everywhere = await get_verifier(request).revoke(get_access_token(request))
    return JSONResponse({"signed_out": True, "every_worker": everywhere})


app = Starlette(
    routes=[Route("/health", health), Route("/me", me), Route("/logout", logout, methods=["POST"])],
    # Options over WINK_* environment variables (WinkConfig.from_env()).
    middleware=[Middleware(WinkMiddleware, public_paths=["/health"])],
)
