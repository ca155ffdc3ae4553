"""URLs and views of the test project under WinkAuthenticationMiddleware (see ``wink_scenario.py``).

Function views (sync and async) show what Django sees; DRF views use ``WinkAuthentication``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from rest_framework.permissions import (
    IsAuthenticated,
)
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from wink_middleware import get_profile
from wink_middleware.django import WinkAuthentication, exception_handler


def _seen(request: HttpRequest, user: Any) -> JsonResponse:
    profile = get_profile(request)
    error = getattr(request, "wink_error", None)
    return JsonResponse(
        {
            "authenticated": user.is_authenticated,
            "username": user.get_username(),
            "wink": None if request.wink is None else request.wink.wink_token,
            "get_profile": None if profile is None else profile.wink_token,
            "wink_error": None if error is None else error.error,
        }
    )


def whoami(request: HttpRequest) -> JsonResponse:
    """The Django user and the Wink profile of this request."""
    return _seen(request, request.user)


async def awhoami(request: HttpRequest) -> JsonResponse:
    """The same, from an async view through ``await request.auser()``."""
    return _seen(request, await request.auser())


def profile_only(request: HttpRequest) -> JsonResponse:
    """A view that reads the Wink profile and never the Django user."""
    return JsonResponse({"wink": None if request.wink is None else request.wink.wink_token})


def cors(request: HttpRequest) -> JsonResponse:
    """A method-agnostic view that answers CORS (and serves content to any method)."""
    response = JsonResponse({"secret": "content"})
    response["Access-Control-Allow-Origin"] = "http://app.example"
    return response


class Me(APIView):  # type: ignore[misc, unused-ignore]
    """A DRF view for signed-in users only."""

    authentication_classes = (WinkAuthentication,)
    permission_classes = (IsAuthenticated,)

    def get(self, request: Request) -> Response:
        user = request.user  # a WinkProfile with remote_user=False
        return Response(
            {"username": getattr(user, "username", None), "wink": request.auth.wink_token}
        )


class StrictMe(Me):
    """The same view, answering errors with ``wink_middleware.django.exception_handler``."""

    def get_exception_handler(self) -> Any:
        return exception_handler


urlpatterns = [
    path("whoami", whoami),
    path("awhoami", awhoami),
    path("health", whoami),
    path("feed", whoami),
    path("cors", cors),
    path("profile", profile_only),
    path("api/me", Me.as_view()),
    path("api/public/me", Me.as_view()),
    path("api/public/strict/me", StrictMe.as_view()),
]
