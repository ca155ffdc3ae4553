"""Flask: the middleware wraps ``app.wsgi_app``; views read the profile with
``require_profile(request)`` (typed ``WinkProfile``, never ``None``).

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    flask --app examples.flask_app run --port 8001            # terminal 2
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8001/me
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request

from wink_middleware import WinkWSGIMiddleware, get_access_token, get_verifier, require_profile

app = Flask(__name__)


@app.get("/health")
def health() -> dict[str, Any]:
    return {"ok": True}


@app.get("/me")
def me() -> dict[str, Any]:
    profile = require_profile(request)  # the middleware only lets verified requests reach here
    return {"user_id": profile.user_id, "name": profile.display_name}


@app.post("/logout")
def logout() -> dict[str, Any]:
    # The token this request was verified with, refused from now on (by every worker, with the
    # shared tier).
    everywhere = get_verifier(request).revoke(get_access_token(request))
    return {"signed_out": True, "every_worker": everywhere}


# Options over WINK_* environment variables (WinkConfig.from_env()).
app.wsgi_app = WinkWSGIMiddleware(app.wsgi_app, public_paths=["/health"])  # type: ignore[method-assign]
