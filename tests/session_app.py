"""A WSGI app with the session route, configured by WINK_* variables, for gunicorn in
test_session_servers.py: ``/api/wink/session`` is the route, every other path is protected."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from wink_middleware import WinkWSGIMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def _app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the app"]


app = WinkWSGIMiddleware(_app, session_path="/api/wink/session")
