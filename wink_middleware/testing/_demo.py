"""The demo: a protected Starlette API, the Wink emulator and a browser page, in one ASGI app.

```
/                    the page (public)
/status              public: how many API workers, and how many calls the emulated Wink received
/wink/...            the emulator (public): the middleware's base_url points here
/wink/demo/sign-in   issues a token for the sample user (stands in for Wink's front-end login)
/api/profile         protected: the verified profile as Wink's JSON
/api/sign-out        protected: revokes the token at the emulator and in the verifier (logout)
/api/echo            protected websocket: greets the user, then echoes; a browser sends the token
                     as the subprotocol pair `wink.bearer, <token>` (it cannot set headers)
```

The middleware really calls Verify Client over HTTP, on the same server, so the demo shows the same
path a production request takes. With ``redis_url``, ``/api`` is two workers, each its own
``WinkMiddleware`` and ``AsyncWinkVerifier`` (own in-process cache, own Redis connections) sharing
the Redis tier, taken in turn like a round-robin load balancer: a token is verified with Wink once
for both, and a sign-out on one reaches the other. Every ``/api`` answer names its worker
(``X-Demo-Worker``) and where its verifier found the answer (``X-Demo-Answered-From``: ``wink``,
``fleet cache``, ``local cache`` or ``local check``).
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, Router, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from wink_middleware._adapters.asgi import WinkMiddleware
from wink_middleware._clock import Clock
from wink_middleware._engine.async_verifier import AsyncWinkVerifier
from wink_middleware._exceptions import MissingToken
from wink_middleware._get_profile import get_access_token, require_profile
from wink_middleware.testing._emulator import WinkEmulator
from wink_middleware.testing._server import ServerThread, bind, url_of

__all__ = ["DEMO_CLIENT_ID", "Demo", "build_demo", "run_demo"]

DEMO_CLIENT_ID = "demo-client"
_MAX_TTL = 3600
_NO_STORE = {"Cache-Control": "no-store"}
SUBPROTOCOL = "wink.bearer"


@dataclass(frozen=True, slots=True)
class Demo:
    """The demo's parts: the ASGI app to serve, its emulator and the API workers' verifiers.

    ``verifier`` is the first worker's; there are two workers with the shared tier, else one.
    """

    app: Starlette
    emulator: WinkEmulator
    verifier: AsyncWinkVerifier
    workers: tuple[AsyncWinkVerifier, ...]


def build_demo(base_url: str, *, clock: Clock | None = None, redis_url: str | None = None) -> Demo:
    """The demo app, for a server reachable at ``base_url`` (its own emulator lives under /wink).

    ``redis_url`` runs two API workers sharing that Redis; it needs the ``[redis]`` extra
    (:class:`~wink_middleware.WinkConfigError` otherwise).
    """
    # Nobody has to type this secret: the emulator and the middleware share it in-process.
    secret = secrets.token_urlsafe(24)
    emulator = WinkEmulator(client_id=DEMO_CLIENT_ID, client_secret=secret, clock=clock)
    fleet = {} if redis_url is None else {"redis_url": redis_url}
    config = emulator.wink_config(
        base_url=f"{base_url.rstrip('/')}/wink",
        # Expiry shows on the second in the page; a real deployment keeps the default leeway.
        leeway=0,
        retries=0,
        **fleet,
    )
    workers = tuple(
        AsyncWinkVerifier(config, clock=clock) for _ in range(1 if redis_url is None else 2)
    )
    page = resources.files("wink_middleware.testing").joinpath("demo.html").read_text("utf-8")

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers=_NO_STORE)

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    async def status(request: Request) -> Response:
        return JSONResponse(
            {"workers": len(workers), "wink_calls": emulator.calls}, headers=_NO_STORE
        )

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
            headers=_NO_STORE,
        )

    def api(verifier: AsyncWinkVerifier) -> ASGIApp:
        async def profile(request: Request) -> Response:
            user = require_profile(request)
            return JSONResponse(user.to_wink(), headers=_NO_STORE)

        async def echo(websocket: WebSocket) -> None:
            user = require_profile(websocket)
            # A browser drops a connection that accepts none of the subprotocols it offered.
            offered = websocket.scope["subprotocols"]
            await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
            await websocket.send_json({"hello": user.display_name})
            async for text in websocket.iter_text():
                await websocket.send_text(text)

        async def sign_out(request: Request) -> Response:
            # The verified token, whatever its source (a protected path: there is one).
            token = get_access_token(request)
            if token is None:
                raise MissingToken()
            emulator.revoke(token)
            # Logout: refused from now on, here and in every worker sharing the tier.
            reached_fleet = await verifier.revoke(token)
            return JSONResponse({"signed_out": True, "reached_fleet": reached_fleet})

        routes = [
            Route("/profile", profile),
            Route("/sign-out", sign_out, methods=["POST"]),
            WebSocketRoute("/echo", echo),
        ]
        return WinkMiddleware(Router(routes), verifier=verifier, websocket_subprotocol=SUBPROTOCOL)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for verifier in workers:
                await verifier.aclose()

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/favicon.ico", favicon),
            Route("/status", status),
            Mount("/api", app=_RoundRobin([(api(v), v) for v in workers])),
            Mount(
                "/wink",
                routes=[
                    Route("/demo/sign-in", sign_in, methods=["POST"]),
                    Mount("/", app=emulator),
                ],
            ),
        ],
        lifespan=lifespan,
    )
    return Demo(app, emulator, workers[0], workers)


class _RoundRobin:
    """Hands each request to the next worker, like a load balancer, and labels the answer."""

    def __init__(self, workers: Sequence[tuple[ASGIApp, AsyncWinkVerifier]]) -> None:
        self._workers = workers
        self._turn = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # HTTP requests take the workers in turn; the page's websocket stays with the first, so
        # that opening it does not shift which worker answers the next call.
        number = next(self._turn) % len(self._workers) if scope["type"] == "http" else 0
        app, verifier = self._workers[number]
        before = verifier.stats.as_dict()

        async def labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                source = _answered_from(before, verifier.stats.as_dict())
                headers = [
                    *message.get("headers", []),
                    (b"x-demo-worker", str(number + 1).encode()),
                    (b"x-demo-answered-from", source.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, labelled)


# Which counter moved during a request says where the verifier found its answer. The demo serves
# one person, so requests rarely overlap; when they do, a label may name the other's source.
_SOURCES = (
    ("wink_calls", "wink"),
    ("shared_hits", "fleet cache"),
    ("hits", "local cache"),
    ("negative_hits", "local cache"),
    ("local_rejections", "local check"),
)


def _answered_from(before: dict[str, object], after: dict[str, object]) -> str:
    for counter, source in _SOURCES:
        if after[counter] != before[counter]:
            return source
    return "none"


@contextmanager
def run_demo(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Clock | None = None,
    redis_url: str | None = None,
) -> Iterator[tuple[str, Demo]]:
    """Serve the demo in a background thread; yield its URL and parts; stop it on exit.

    Raises ``OSError`` if the port is taken.
    """
    sock = bind(host, port)
    try:
        base_url = url_of(sock)
        demo = build_demo(base_url, clock=clock, redis_url=redis_url)
        server = ServerThread(demo.app, sock)
    except BaseException:
        sock.close()
        raise
    try:
        server.start()
        yield base_url, demo
    finally:
        server.stop()
