"""Django REST framework in one file: ``WinkAuthentication`` verifies the bearer token of each API
request; ``request.user`` is the Django user named by the winkToken (``WinkBackend``) and
``request.auth`` the Wink profile. Refusals get the middleware's RFC 6750 answers
(``exception_handler``). No middleware here: with ``WinkAuthenticationMiddleware`` too,
``WinkAuthentication`` reuses what it verified.

Run it against the local Wink emulator (no Wink account needed), from the repository root:

    wink-middleware emulator                  # terminal 1: prints a token for the sample user
    export WINK_BASE_URL=http://127.0.0.1:8765 WINK_CLIENT_ID=demo-client WINK_CLIENT_SECRET=demo-secret
    python examples/drf_app.py runserver 8001                 # terminal 2
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
from django.urls import path

from wink_middleware import get_access_token, get_verifier

# What DRF needs (a project's settings.py holds the same lines).
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",  # first: passwords (the admin login) keep working
    "wink_middleware.django.WinkBackend",
]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["wink_middleware.django.WinkAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Optional: DRF's answers become the middleware's, byte for byte.
    "EXCEPTION_HANDLER": "wink_middleware.django.exception_handler",
}
WINK: dict[str, object] = {}  # WinkConfig fields, over the WINK_* environment variables

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        WSGI_APPLICATION=f"{__name__}.application",  # what `runserver` serves
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "rest_framework"],
        MIDDLEWARE=[],
        AUTHENTICATION_BACKENDS=AUTHENTICATION_BACKENDS,
        REST_FRAMEWORK=REST_FRAMEWORK,
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

# DRF reads its settings when imported: after settings.configure().
from rest_framework.permissions import AllowAny  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402


class Me(APIView):  # type: ignore[misc, unused-ignore]
    def get(self, request: Request) -> Response:
        profile = request.auth  # the WinkProfile
        return Response(
            {
                "user_id": profile.user_id,
                "name": profile.display_name,
                "username": request.user.get_username(),
            }
        )


class Health(APIView):  # type: ignore[misc, unused-ignore]
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class Logout(APIView):  # type: ignore[misc, unused-ignore]
    def post(self, request: Request) -> Response:
        # The token this request was verified with, refused from now on (by every worker, with
        # the shared tier).
        everywhere = get_verifier(request).revoke(get_access_token(request))
        return Response({"signed_out": True, "every_worker": everywhere})


urlpatterns = [
    path("health", Health.as_view()),
    path("me", Me.as_view()),
    path("logout", Logout.as_view()),
]

application = get_wsgi_application()
call_command("migrate", verbosity=0)  # the users' table

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
