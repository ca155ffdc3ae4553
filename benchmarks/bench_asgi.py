"""Cache-hit overhead in-process: a trivial Starlette route bare, behind a hand-written
``AuthenticationMiddleware`` (sha256 + dict lookup), and behind ``WinkMiddleware`` on a warm cache.

A minimal driver calls the ASGI app with a prepared scope and no-op ``receive``/``send``: no sockets,
no server, so the figures are the middleware's own cost per request.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
    SimpleUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Scope

from benchmarks._harness import FastWink, Row, alternate, jwt, overhead_rows
from wink_middleware import WinkMiddleware

__all__ = ["DictBackend", "Variant", "http_scope", "run", "starlette_app"]

TOKEN_PADDING = 400  # a token of about 1 KB
#: One benchmarked variant: ``async run(n) -> seconds`` for ``n`` requests.
Variant = Callable[[int], Awaitable[float]]


class DictBackend(AuthenticationBackend):
    """The best hand-written alternative: sha256 the bearer token, look the user up in a dict."""

    def __init__(self, users: dict[str, BaseUser]) -> None:
        self.users = users

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The user of a known token, ``None`` without a bearer token; raise for an unknown one."""
        header = conn.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        user = self.users.get(hashlib.sha256(token.encode()).hexdigest())
        if user is None:
            raise AuthenticationError("unknown token")
        return AuthCredentials(["authenticated"]), user


async def _hello(request: Request) -> Response:
    return PlainTextResponse("hello")


def starlette_app(middleware: list[Middleware] | None = None) -> Starlette:
    """A one-route Starlette app, optionally behind ``middleware``."""
    return Starlette(routes=[Route("/hello", _hello)], middleware=middleware)


def http_scope(token: str) -> Scope:
    """A GET /hello scope as uvicorn builds it, with a bearer token."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 51000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": "/hello",
        "raw_path": b"/hello",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"bench/1.0"),
            (b"accept", b"*/*"),
            (b"accept-encoding", b"gzip, deflate"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "state": {},
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class _Statuses:
    """A no-op ``send`` that remembers the last status, to prove every variant answered 200."""

    def __init__(self) -> None:
        self.last = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.last = message["status"]


def driver(app: ASGIApp, scope: Scope) -> Variant:
    """``async run(n) -> seconds``: call ``app`` ``n`` times with a fresh copy of ``scope``."""
    send = _Statuses()

    async def run(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await app(dict(scope), _receive, send)
        elapsed = time.perf_counter() - started
        if send.last != 200:
            raise RuntimeError(f"the benchmarked app answered {send.last}, not 200")
        return elapsed

    return run


async def build(token: str) -> dict[str, Variant]:
    """The three variants, with the hand-written backend knowing ``token`` and Wink's cache warm."""
    users: dict[str, BaseUser] = {hashlib.sha256(token.encode()).hexdigest(): SimpleUser("ada")}
    verifier = FastWink().verifier()
    await verifier.verify(token)  # warm the cache through the public API
    scope = http_scope(token)
    return {
        "bare": driver(starlette_app(), scope),
        "reference": driver(
            starlette_app([Middleware(AuthenticationMiddleware, backend=DictBackend(users))]),
            scope,
        ),
        "wink": driver(starlette_app([Middleware(WinkMiddleware, verifier=verifier)]), scope),
    }


async def run(*, rounds: int, n: int) -> list[Row]:
    """Measure and return the table rows of the ASGI cache-hit benchmark."""
    token = jwt(padding=TOKEN_PADDING)
    timings = await alternate(await build(token), rounds=rounds, n=n)
    section = f"ASGI cache hit ({len(token)} B JWT, {rounds}x{n} req, median)"
    return overhead_rows(
        section,
        timings,
        (
            "bare Starlette route",
            "+ AuthenticationMiddleware (sha256 + dict)",
            "+ WinkMiddleware, warm cache",
        ),
    )
