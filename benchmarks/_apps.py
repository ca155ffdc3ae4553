"""The apps ``bench_server`` serves with uvicorn (``--factory``): a bare route, the same behind
the hand-written sha256 + dict AuthenticationMiddleware, and behind WinkMiddleware.

The wrapped app's verifier talks to an in-process stand-in for Wink that accepts any token, so the
server needs nothing else; its first request warms the cache and wrk's requests are all hits.
"""

from __future__ import annotations

import hashlib
import os

from starlette.applications import Starlette
from starlette.authentication import BaseUser, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware

from benchmarks._harness import FastWink
from benchmarks.bench_asgi import DictBackend, starlette_app
from wink_middleware import WinkMiddleware

__all__ = ["bare", "handwritten", "wrapped"]


def bare() -> Starlette:
    """The one-route Starlette app."""
    return starlette_app()


def wrapped() -> Starlette:
    """The same app behind WinkMiddleware."""
    return starlette_app([Middleware(WinkMiddleware, verifier=FastWink().verifier())])


def handwritten() -> Starlette:
    """The same app behind AuthenticationMiddleware with a sha256 + dict backend.

    The backend knows the one token named by ``WINK_BENCH_TOKEN`` (``bench_server`` sets it).
    """
    token = os.environ["WINK_BENCH_TOKEN"]
    users: dict[str, BaseUser] = {hashlib.sha256(token.encode()).hexdigest(): SimpleUser("ada")}
    return starlette_app([Middleware(AuthenticationMiddleware, backend=DictBackend(users))])
