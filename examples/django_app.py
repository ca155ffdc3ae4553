"""Django in one file: the middleware wraps the WSGI application; views call
``require_profile(request)``.

With ``remote_user`` (on by default) the middleware also sets ``REMOTE_USER`` to the user's
winkToken, so Django's ``RemoteUserMiddleware`` can map it to a ``User`` when you use ``auth``.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    python examples/django_app.py runserver 8000              # terminal 2
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:8000/me
"""

from __future__ import annotations

import os
import sys

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

from wink_middleware import WinkWSGIMiddleware, require_profile

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        WSGI_APPLICATION=f"{__name__}.application",  # what `runserver` serves
        MIDDLEWARE=[],
    )


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


def me(request: HttpRequest) -> JsonResponse:
    profile = require_profile(request)  # the middleware only lets verified requests reach here
    return JsonResponse(
        {
            "user_id": profile.user_id,
            "name": profile.display_name,
            "remote_user": request.META["REMOTE_USER"],
        }
    )


urlpatterns = [path("health", health), path("me", me)]

# Options over WINK_* environment variables (WinkConfig.from_env()).
application = WinkWSGIMiddleware(get_wsgi_application(), public_paths=["/health"])

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
