"""Django REST framework: ``WinkAuthentication``, ``WinkAPIException``, ``exception_handler``."""

from __future__ import annotations

import json
from typing import Any, cast

from django.contrib.auth import authenticate

try:
    from rest_framework.exceptions import (
        APIException as _APIException,
    )
    from rest_framework.exceptions import (
        NotAuthenticated as _NotAuthenticated,
    )
except ImportError:  # DRF is optional: only WinkAuthentication needs it, and DRF calls it
    _APIException = Exception
    _NotAuthenticated = None

from wink_middleware._engine.core import Miss
from wink_middleware._exceptions import AuthenticationFailed, MissingToken, WinkUnavailable
from wink_middleware._get_profile import WSGI_KEY
from wink_middleware._profile import WinkProfile
from wink_middleware._routing.responses import render
from wink_middleware.django.middleware import _anonymous_user, _http_response, _wink

__all__ = ["WinkAPIException", "WinkAuthentication", "exception_handler"]


class WinkAPIException(_APIException):  # type: ignore[misc, unused-ignore]
    """A Wink refusal as DRF answers it: the middleware's status, body and headers.

    ``detail`` is the middleware's JSON body (``{"error": ..., "error_description": ...}``), which
    DRF's default exception handler sends as is, with ``auth_header`` as ``WWW-Authenticate`` (400
    and 401) and ``wait`` as ``Retry-After`` (503). ``error`` is the :class:`AuthenticationFailed`.
    With :func:`exception_handler`, the answer is the middleware's byte for byte.
    """

    def __init__(self, error: AuthenticationFailed, realm: str) -> None:
        rendered = render(error, realm)
        super().__init__(json.loads(rendered.body), error.error or "missing_token")
        self.status_code = rendered.status
        self.error = error
        self.rendered = rendered
        headers = dict(rendered.headers)
        self.auth_header = headers.get("WWW-Authenticate")
        self.wait = error.retry_after if isinstance(error, WinkUnavailable) else None


class WinkAuthentication:
    """Django REST framework authentication with Wink bearer tokens.

    ``authentication_classes = [WinkAuthentication]`` (or ``DEFAULT_AUTHENTICATION_CLASSES``):
    ``authenticate()`` returns ``(user, profile)``, so ``request.user`` is the :class:`WinkBackend`
    user and ``request.auth`` the :class:`~wink_middleware.WinkProfile`. When
    :class:`WinkAuthenticationMiddleware` verified the request, its answer is reused; otherwise
    (a public path, no middleware) the token is verified here, with the same settings and verifier.
    No token: ``None`` (DRF's permissions then answer 401 with the ``Bearer`` challenge). A refused
    token or an outage raises :class:`WinkAPIException`.
    """

    def authenticate(self, request: Any) -> tuple[Any, WinkProfile] | None:
        """``(user, profile)``, ``None`` without a token, or raise :class:`WinkAPIException`."""
        django_request = getattr(request, "_request", request)
        wink = _wink()
        remote_user = wink.config.remote_user
        profile = getattr(django_request, "wink", None)
        if isinstance(profile, WinkProfile):
            return (django_request.user if remote_user else profile), profile
        if getattr(django_request, "wink_error", None) is not None:
            return None  # the middleware let a refused token in anonymous (anonymous_on_invalid)
        verifier = wink.verifier
        try:
            found = verifier.lookup(wink.tokens.extract(wink.view(django_request)))
            profile = verifier.resolve(found) if type(found) is Miss else cast(WinkProfile, found)
        except MissingToken:
            return None
        except AuthenticationFailed as exc:
            raise WinkAPIException(exc, wink.config.realm) from exc
        django_request.wink = django_request.META[WSGI_KEY] = profile
        if not remote_user:
            return profile, profile
        user = authenticate(django_request, remote_user=profile.wink_token)
        return (_anonymous_user() if user is None else user), profile

    def authenticate_header(self, request: Any) -> str:
        """The ``Bearer realm="..."`` challenge: DRF answers 401 (not 403) without credentials."""
        return _wink().challenge


def exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF exception handler that answers Wink's refusals exactly as the middleware does.

    ``REST_FRAMEWORK = {"EXCEPTION_HANDLER": "wink_middleware.django.exception_handler"}``: a
    :class:`WinkAPIException` gets the middleware's response byte for byte (``Cache-Control:
    no-store`` included), and DRF's "not authenticated" on a view whose first authentication
    class is :class:`WinkAuthentication` becomes the middleware's ``missing_token`` 401. Anything
    else goes to DRF's own handler.
    """
    from rest_framework.views import (
        exception_handler as drf_exception_handler,
    )
    from rest_framework.views import set_rollback

    if _NotAuthenticated is not None and isinstance(exc, _NotAuthenticated):
        authenticators = getattr(context.get("request"), "authenticators", None) or ()
        if authenticators and isinstance(authenticators[0], WinkAuthentication):
            exc = WinkAPIException(MissingToken(), _wink().config.realm)
    if isinstance(exc, WinkAPIException):
        set_rollback()  # as DRF's handler does (ATOMIC_REQUESTS)
        request = context.get("request")
        return _http_response(exc.rendered, head=getattr(request, "method", None) == "HEAD")
    return drf_exception_handler(exc, context)
