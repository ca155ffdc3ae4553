"""WSGI cache-hit overhead against the best hand-written alternative, as ``bench_asgi`` does for ASGI.

Reuses ``bench_wsgi``'s app, environ, driver and alternating rounds, and adds the middle variant:
a WSGI middleware that only sha256-hashes the bearer token and looks the user up in a dict. The
figure is the overhead ratio (c-a)/(b-a) of WinkWSGIMiddleware to that middleware.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import httpx

from benchmarks._harness import Row, jwt, overhead_rows, wink_config
from benchmarks.bench_wsgi import TOKEN_PADDING, alternate, driver, hello, wsgi_environ
from wink_middleware import WinkVerifier, WinkWSGIMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["DictAuth", "run"]


class DictAuth:
    """The hand-written alternative: sha256 the bearer token, look the user up in a dict."""

    def __init__(self, app: WSGIApplication, users: dict[str, str]) -> None:
        self.app = app
        self.users = users

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Set ``REMOTE_USER`` for a known token; 401 for an unknown one."""
        header = environ.get("HTTP_AUTHORIZATION")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer":
                user = self.users.get(hashlib.sha256(token.encode()).hexdigest())
                if user is None:
                    start_response("401 Unauthorized", [("Content-Length", "0")])
                    return [b""]
                environ["REMOTE_USER"] = user
        return self.app(environ, start_response)


class _Wink(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from benchmarks._harness import profile_body

        body = profile_body("4b15e1bc-d098-4555-bd12-4e904775a413", time.time() + 3600)
        return httpx.Response(200, headers={"content-type": "application/json"}, content=body)


def run(*, rounds: int, n: int) -> list[Row]:
    """Measure and return the table rows."""
    token = jwt(padding=TOKEN_PADDING)
    verifier = WinkVerifier(wink_config(), client=httpx.Client(transport=_Wink()))
    verifier.verify(token)  # warm the cache through the public API
    users = {hashlib.sha256(token.encode()).hexdigest(): "ada"}
    environ = wsgi_environ(token)
    timings = alternate(
        {
            "bare": driver(hello, environ),
            "reference": driver(DictAuth(hello, users), environ),
            "wink": driver(WinkWSGIMiddleware(hello, verifier=verifier), environ),
        },
        rounds=rounds,
        n=n,
    )
    verifier.close()
    section = f"WSGI cache-hit overhead ({len(token)} B JWT, {rounds}x{n} req, median)"
    return overhead_rows(
        section,
        timings,
        (
            "bare WSGI hello",
            "+ hand-written WSGI middleware (sha256 + dict)",
            "+ WinkWSGIMiddleware, warm cache",
        ),
    )
