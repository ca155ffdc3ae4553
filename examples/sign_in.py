"""Signing users in: the one option that gives each framework Wink's session route.

Wink's front-end SDK needs a single-use ``sessionId`` before ``winkLogin()``, and only the back end
may ask Wink for one (it takes the client secret). With ``session_path`` set, the middleware answers
``GET /api/wink/session`` itself with ``{"sessionId": ...}``: no token needed, nothing to write.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    export WINK_SESSION_RETURN_URL=http://localhost:8001/ WINK_SESSION_CANCEL_URL=http://localhost:8001/
    uvicorn examples.sign_in:starlette_app --port 8001        # or examples.sign_in:fastapi_app
    curl http://127.0.0.1:8001/api/wink/session

Flask: ``flask --app examples.sign_in:flask_app run --port 8001``. Django and DRF: ``WINK`` below
is the ``settings.WINK`` of a project (``examples/django_app.py`` shows the rest).
"""

from __future__ import annotations

from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wink_middleware import WinkMiddleware, WinkWSGIMiddleware, require_profile


async def me(request: Request) -> JSONResponse:
    return JSONResponse({"name": require_profile(request).display_name})


# Starlette: where Wink sends the user back comes from WINK_SESSION_RETURN_URL / _CANCEL_URL.
starlette_app = Starlette(
    routes=[Route("/me", me)],
    middleware=[Middleware(WinkMiddleware, session_path="/api/wink/session")],
)

# FastAPI
fastapi_app = FastAPI()
fastapi_app.add_middleware(WinkMiddleware, session_path="/api/wink/session")

# Flask
flask_app = Flask(__name__)
flask_app.wsgi_app = WinkWSGIMiddleware(  # type: ignore[method-assign]
    flask_app.wsgi_app, session_path="/api/wink/session"
)

# Django and Django REST framework (settings.py): the middleware answers, DRF views included.
WINK = {
    "session_path": "/api/wink/session",
    "session_return_url": "https://app.example/signed-in",
    "session_cancel_url": "https://app.example/",
    # Other origins a front end may name in ?returnUrl= (the two above are allowed already).
    "session_origins": ["https://app.example", "https://admin.app.example"],
}
