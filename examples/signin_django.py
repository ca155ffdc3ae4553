"""Sign in with Wink, offline, from Django: ``WinkAuthenticationMiddleware`` answers the session route
(``"session_path"`` in ``settings.WINK``), and the same page (signin.html) signs in with keycloak-js
26 against the local Wink emulator; views get ``request.wink`` and ``request.user``, and the logout
view revokes the request's token with ``get_verifier(request)``.

Run it, from the repository root (no Wink account, no network):

    wink-middleware emulator                  # terminal 1: the emulator, sign-in included
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    python examples/signin_django.py runserver 8001           # terminal 2
    # then open http://127.0.0.1:8001/ and press "Sign in with Wink"

The users' table lives in a SQLite file in the temporary directory (``DJANGO_DB`` names another).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from wink_middleware import get_access_token, get_verifier
from wink_middleware.testing import KEYCLOAK_JS

APP_URL = os.environ.get("APP_URL", "http://127.0.0.1:8001")
AUTH_URL = os.environ.get("WINK_AUTH_URL", os.environ.get("WINK_BASE_URL", ""))
PAGE = Path(__file__).with_name("signin.html")

WINK = {
    "public_paths": ["/", "/keycloak.js", "/silent-check-sso.html", "/settings.json"],
    # GET /api/session: a Wink session for the page, which sends the user back to APP_URL.
    "session_path": "/api/session",
    "session_return_url": f"{APP_URL}/",
    "session_cancel_url": f"{APP_URL}/",
}

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        WSGI_APPLICATION=f"{__name__}.application",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "wink_middleware.django.WinkAuthenticationMiddleware",
        ],
        AUTHENTICATION_BACKENDS=["wink_middleware.django.WinkBackend"],
        WINK=WINK,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ.get(
                    "DJANGO_DB", str(Path(tempfile.gettempdir()) / "wink_django_signin.sqlite3")
                ),
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )


def page(request: HttpRequest) -> FileResponse:
    return FileResponse(PAGE.open("rb"), content_type="text/html; charset=utf-8")


def keycloak_js(request: HttpRequest) -> FileResponse:
    return FileResponse(KEYCLOAK_JS.open("rb"), content_type="text/javascript")


def silent_check(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<script>parent.postMessage(location.href, location.origin)</script>")


def wink_settings(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"authUrl": AUTH_URL, "realm": "wink", "clientId": os.environ.get("WINK_CLIENT_ID", "")}
    )


def me(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user_id": request.wink.user_id, "name": request.wink.display_name})


def logout(request: HttpRequest) -> JsonResponse:
    token = get_access_token(request)  # the token this request was verified with
    if token is not None:
        get_verifier(request).revoke(token)  # refused from now on, in every worker
    return JsonResponse({"signed_out": True})


urlpatterns = [
    path("", page),
    path("keycloak.js", keycloak_js),
    path("silent-check-sso.html", silent_check),
    path("settings.json", wink_settings),
    path("api/me", me),
    # A bearer token, not a cookie, authenticates the call: no CSRF to guard against.
    path("api/logout", csrf_exempt(require_POST(logout))),
]

application = get_wsgi_application()
call_command("migrate", verbosity=0)  # the users' table

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
