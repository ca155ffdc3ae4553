"""The demo: a protected Starlette API, the Wink emulator and a browser page, in one ASGI app.

```
/                    the page (public): signs in with keycloak-js, the way Wink's SDK does
/keycloak.js         keycloak-js 26, shipped with the package (public)
/silent-check-sso.html  the page keycloak-js's silent check lands on (public)
/status              public: API workers, calls the emulated Wink received, client id and realm
/wink/...            the emulator (public): Verify Client and sessions for the middleware (its
                     base_url), the sign-in (/wink/realms/wink/...) for the page
/api/session         the middleware's session route: a Wink session for the next sign-in
/api/profile         protected: the verified profile as Wink's JSON
/api/sign-out        protected: revokes the token in the verifier, for every worker (logout); the
                     page then leaves through Wink's logout, which ends the sign-in session
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
import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, Router, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from wink_middleware._adapters.asgi import WinkMiddleware
from wink_middleware._clock import Clock
from wink_middleware._engine.async_verifier import AsyncWinkVerifier
from wink_middleware._exceptions import MissingToken
from wink_middleware._get_profile import get_access_token, require_profile
from wink_middleware.testing import KEYCLOAK_JS
from wink_middleware.testing._emulator import WinkEmulator
from wink_middleware.testing._server import ServerThread, bind, url_of

__all__ = ["DEMO_CLIENT_ID", "Demo", "build_demo", "run_demo"]

DEMO_CLIENT_ID = "demo-client"
_SILENT_CHECK = (
    "<!doctype html><html><body><script>"
    "parent.postMessage(location.href, location.origin);</script></body></html>"
)
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


def build_demo(
    base_url: str,
    *,
    clock: Clock | None = None,
    redis_url: str | None = None,
    access_ttl: float = 300,
    refresh_ttl: float = 1800,
) -> Demo:
    """The demo app, for a server reachable at ``base_url`` (its own emulator lives under /wink).

    ``redis_url`` runs two API workers sharing that Redis; it needs the ``[redis]`` extra
    (:class:`~wink_middleware.WinkConfigError` otherwise). ``access_ttl`` and ``refresh_ttl`` are
    the sign-in's token lifetimes (Wink's: 5 and 30 minutes).
    """
    # Nobody has to type this secret: the emulator and the middleware share it in-process.
    secret = secrets.token_urlsafe(24)
    emulator = WinkEmulator(
        client_id=DEMO_CLIENT_ID,
        client_secret=secret,
        clock=clock,
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
    )
    home = _home(base_url)
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
            {
                "workers": len(workers),
                "wink_calls": emulator.calls,
                "client_id": DEMO_CLIENT_ID,
                "realm": emulator.realm,
                "auth_path": "/wink",
            },
            headers=_NO_STORE,
        )

    async def keycloak_js(request: Request) -> Response:
        return FileResponse(KEYCLOAK_JS, media_type="text/javascript")

    async def silent_check(request: Request) -> Response:
        return HTMLResponse(_SILENT_CHECK, headers=_NO_STORE)

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
            # Logout: refused from now on, here and in every worker sharing the tier. (Wink's
            # side ends when the page goes through Wink's logout next.)
            reached_fleet = await verifier.revoke(token)
            return JSONResponse({"signed_out": True, "reached_fleet": reached_fleet})

        routes = [
            Route("/profile", profile),
            Route("/sign-out", sign_out, methods=["POST"]),
            WebSocketRoute("/echo", echo),
        ]
        return WinkMiddleware(
            Router(routes),
            verifier=verifier,
            websocket_subprotocol=SUBPROTOCOL,
            session_path="/session",
            session_return_url=home,
            session_cancel_url=home,
        )

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
            Route("/keycloak.js", keycloak_js),
            Route("/silent-check-sso.html", silent_check),
            Route("/favicon.ico", favicon),
            Route("/status", status),
            Mount("/api", app=_RoundRobin([(api(v), v) for v in workers])),
            Mount("/wink", app=emulator),
        ],
        lifespan=lifespan,
    )
    return Demo(app, emulator, workers[0], workers)


def _home(base_url: str) -> str:
    """Where Wink sends the user back: the demo's page. A wildcard bind (``0.0.0.0``, ``[::]``) is
    no address a browser opens, and the session URL rule allows ``http://`` on loopback only."""
    for wildcard in ("//0.0.0.0:", "//[::]:"):
        base_url = base_url.replace(wildcard, "//localhost:", 1)
    return f"{base_url.rstrip('/')}/"


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
    access_ttl: float = 300,
    refresh_ttl: float = 1800,
) -> Iterator[tuple[str, Demo]]:
    """Serve the demo in a background thread; yield its URL and parts; stop it on exit.

    Raises ``OSError`` if the port is taken.
    """
    sock = bind(host, port)
    try:
        base_url = url_of(sock)
        demo = build_demo(
            base_url,
            clock=clock,
            redis_url=redis_url,
            access_ttl=access_ttl,
            refresh_ttl=refresh_ttl,
        )
        server = ServerThread(demo.app, sock)
    except BaseException:
        sock.close()
        raise
    try:
        server.start()
        yield base_url, demo
    finally:
        server.stop()
