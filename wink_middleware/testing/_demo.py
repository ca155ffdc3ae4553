"""The demo: a protected Starlette API, the Wink emulator and a browser page, in one ASGI app.

```
/                    the page (public)
/wink/...            the emulator (public): the middleware's base_url points here
/wink/demo/sign-in   issues a token for the sample user (stands in for Wink's front-end login)
/api/profile         protected: the verified profile as Wink's JSON
/api/sign-out        protected: revokes the token at the emulator and drops it from the cache
/api/echo            protected websocket: greets the user, then echoes; a browser sends the token
                     as the subprotocol pair `wink.bearer, <token>` (it cannot set headers)
```

The middleware really calls Verify Client over HTTP, on the same server, so the demo shows the same
path a production request takes.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from wink_middleware._asgi import WinkMiddleware
from wink_middleware._async_verifier import AsyncWinkVerifier
from wink_middleware._clock import Clock
from wink_middleware._get_profile import require_profile
from wink_middleware.testing._emulator import WinkEmulator
from wink_middleware.testing._server import ServerThread, bind, url_of

__all__ = ["DEMO_CLIENT_ID", "Demo", "build_demo", "run_demo"]

DEMO_CLIENT_ID = "demo-client"
SUBPROTOCOL = "wink.bearer"
_MAX_TTL = 3600


@dataclass(frozen=True, slots=True)
class Demo:
    """The demo's parts: the ASGI app to serve, its emulator and its verifier."""

    app: Starlette
    emulator: WinkEmulator
    verifier: AsyncWinkVerifier


def build_demo(base_url: str, *, clock: Clock | None = None) -> Demo:
    """The demo app, for a server reachable at ``base_url`` (its own emulator lives under /wink)."""
    # Nobody has to type this secret: the emulator and the middleware share it in-process.
    secret = secrets.token_urlsafe(24)
    emulator = WinkEmulator(client_id=DEMO_CLIENT_ID, client_secret=secret, clock=clock)
    config = emulator.wink_config(
        base_url=f"{base_url.rstrip('/')}/wink",
        public_paths=("/", "/favicon.ico", "/wink*"),
        # Expiry shows on the second in the page; a real deployment keeps the default leeway.
        leeway=0,
        retries=0,
    )
    verifier = AsyncWinkVerifier(config, clock=clock)
    page = resources.files("wink_middleware.testing").joinpath("demo.html").read_text("utf-8")

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def sign_in(request: Request) -> Response:
        ttl = 300.0
        if await request.body():
            try:
                data = await request.json()
                ttl = float(data.get("ttl", ttl))
            except (ValueError, TypeError, AttributeError):
                return JSONResponse({"error": 'send JSON like {"ttl": 30}'}, status_code=400)
        if not (math.isfinite(ttl) and 1 <= ttl <= _MAX_TTL):
            return JSONResponse({"error": f"ttl must be 1..{_MAX_TTL} seconds"}, status_code=400)
        token = emulator.issue_token(ttl=ttl)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": int(ttl)},
            headers={"Cache-Control": "no-store"},
        )

    async def profile(request: Request) -> Response:
        user = require_profile(request)
        return JSONResponse(user.to_wink(), headers={"Cache-Control": "no-store"})

    async def echo(websocket: WebSocket) -> None:
        user = require_profile(websocket)
        # A browser drops a connection that accepts none of the subprotocols it offered.
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        await websocket.send_json({"hello": user.display_name})
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    async def sign_out(request: Request) -> Response:
        token = request.headers["authorization"].split(" ", 1)[1].strip()
        emulator.revoke(token)
        await verifier.revoke(
            token
        )  # logout: refused from now on, in every worker sharing the tier
        return JSONResponse({"signed_out": True})

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/favicon.ico", favicon),
            Route("/api/profile", profile),
            Route("/api/sign-out", sign_out, methods=["POST"]),
            WebSocketRoute("/api/echo", echo),
            Mount(
                "/wink",
                routes=[
                    Route("/demo/sign-in", sign_in, methods=["POST"]),
                    Mount("/", app=emulator),
                ],
            ),
        ],
        middleware=[
            Middleware(WinkMiddleware, verifier=verifier, websocket_subprotocol=SUBPROTOCOL)
        ],
    )
    return Demo(app, emulator, verifier)


@contextmanager
def run_demo(
    host: str = "127.0.0.1", port: int = 0, *, clock: Clock | None = None
) -> Iterator[tuple[str, Demo]]:
    """Serve the demo in a background thread; yield its URL and parts; stop it on exit.

    Raises ``OSError`` if the port is taken.
    """
    sock = bind(host, port)
    try:
        base_url = url_of(sock)
        demo = build_demo(base_url, clock=clock)
        server = ServerThread(demo.app, sock)
    except BaseException:
        sock.close()
        raise
    try:
        server.start()
        yield base_url, demo
    finally:
        server.stop()
