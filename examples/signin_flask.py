"""Sign in with Wink, offline, from Flask: WinkWSGIMiddleware answers the session route, and the
same page (signin.html) signs in with keycloak-js 26 against the local Wink emulator.

Run it, from the repository root (no Wink account, no network):

    wink-middleware emulator                  # terminal 1: the emulator, sign-in included
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    flask --app examples.signin_flask run --port 8001         # terminal 2
    # then open http://127.0.0.1:8001/ and press "Sign in with Wink"
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, request, send_file

from wink_middleware import (
    WinkConfig,
    WinkVerifier,
    WinkWSGIMiddleware,
    get_access_token,
    require_profile,
)
from wink_middleware.testing import KEYCLOAK_JS

APP_URL = os.environ.get("APP_URL", "http://127.0.0.1:8001")
AUTH_URL = os.environ.get("WINK_AUTH_URL", os.environ.get("WINK_BASE_URL", ""))
PAGE = Path(__file__).with_name("signin.html")

config = WinkConfig.from_env()
verifier = WinkVerifier(config)
app = Flask(__name__)


@app.get("/")
def page() -> Any:
    return send_file(PAGE)


@app.get("/keycloak.js")
def keycloak_js() -> Any:
    return send_file(KEYCLOAK_JS, mimetype="text/javascript")


@app.get("/silent-check-sso.html")
def silent_check() -> str:
    return "<script>parent.postMessage(location.href, location.origin)</script>"


@app.get("/settings.json")
def settings() -> dict[str, Any]:
    return {"authUrl": AUTH_URL, "realm": "wink", "clientId": config.client_id}


@app.get("/api/me")
def me() -> dict[str, Any]:
    profile = require_profile(request)
    return {"user_id": profile.user_id, "name": profile.display_name}


@app.post("/api/logout")
def logout() -> dict[str, Any]:
    token = get_access_token(request)  # the token this request was verified with
    if token is not None:
        verifier.revoke(token)  # refused from now on, in every worker sharing the tier
    return {"signed_out": True}


app.wsgi_app = WinkWSGIMiddleware(  # type: ignore[method-assign]
    app.wsgi_app,
    verifier=verifier,
    public_paths=["/", "/keycloak.js", "/silent-check-sso.html", "/settings.json"],
    # GET /api/session: a Wink session for the page, which sends the user back to APP_URL.
    session_path="/api/session",
    session_return_url=f"{APP_URL}/",
    session_cancel_url=f"{APP_URL}/",
)
