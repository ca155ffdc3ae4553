"""Plain WSGI (PEP 3333): no framework, the profile read from the environ.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    python examples/plain_wsgi.py                             # terminal 2: serves on port 8001
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8001/
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wink_middleware import WinkWSGIMiddleware, get_access_token, get_verifier, require_profile

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    profile = require_profile(environ)  # every path is protected
    answer: dict[str, object] = {"hello": profile.display_name, "user_id": profile.user_id}
    if environ["PATH_INFO"] == "/logout" and environ["REQUEST_METHOD"] == "POST":
        # The token this request was verified with, refused from now on.
        everywhere = get_verifier(environ).revoke(get_access_token(environ))
        answer = {"signed_out": True, "every_worker": everywhere}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(answer).encode()]


# Configured by WINK_* environment variables.
app = WinkWSGIMiddleware(hello)

if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    with make_server("127.0.0.1", 8001, app) as server:
        print("serving on http://127.0.0.1:8001/ (Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            app.close()
