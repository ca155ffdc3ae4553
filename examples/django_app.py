"""Django in one file: ``WinkAuthenticationMiddleware`` verifies the token; views get ``request.user``
(the Django user named by the winkToken, which ``WinkBackend`` creates on first sight) and
``request.wink`` (the Wink profile). It runs under WSGI (``runserver``, gunicorn) and ASGI alike.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    python examples/django_app.py runserver 8001              # terminal 2
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8001/me

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
from django.http import HttpRequest, JsonResponse
from django.urls import path

from wink_middleware import get_access_token, get_verifier

# The three settings wink_middleware needs (a project's settings.py holds the same lines).
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "wink_middleware.django.WinkAuthenticationMiddleware",  # after AuthenticationMiddleware
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",  # first: passwords (the admin login) keep working
    "wink_middleware.django.WinkBackend",
]
WINK = {"public_paths": ["/health"]}  # WinkConfig fields, over the WINK_* environment variables

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        WSGI_APPLICATION=f"{__name__}.application",  # what `runserver` serves
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
        ],
        MIDDLEWARE=MIDDLEWARE,
        AUTHENTICATION_BACKENDS=AUTHENTICATION_BACKENDS,
        WINK=WINK,
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ.get(
                    "DJANGO_DB", str(Path(tempfile.gettempdir()) / "wink_django_example.sqlite3")
                ),
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


def me(request: HttpRequest) -> JsonResponse:
    # The middleware only lets verified requests reach here.
    return JsonResponse(
        {
            "user_id": request.wink.user_id,
            "name": request.wink.display_name,
            "username": request.user.get_username(),
        }
    )


def logout(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    # The token this request was verified with, refused from now on (by every worker, with the
    # shared tier).
    everywhere = get_verifier(request).revoke(get_access_token(request))
    return JsonResponse({"signed_out": True, "every_worker": everywhere})


urlpatterns = [path("health", health), path("me", me), path("logout", logout)]

application = get_wsgi_application()
call_command("migrate", verbosity=0)  # the users' table

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
