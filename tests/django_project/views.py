"""Views that show what Django sees: its own user (from RemoteUserMiddleware) and the Wink profile."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from wink_middleware import get_profile


def whoami(request: HttpRequest) -> JsonResponse:
    """The Django user and the Wink profile of this request."""
    profile = get_profile(request)
    return JsonResponse(
        {
            "authenticated": request.user.is_authenticated,
            "username": request.user.get_username(),
            "user_pk": request.user.pk,
            "wink_tag": None if profile is None else profile.wink_tag,
            "remote_user": request.META.get("REMOTE_USER"),
        }
    )
