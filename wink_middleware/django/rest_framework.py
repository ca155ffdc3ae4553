"""Django REST framework: ``WinkAuthentication``, ``WinkAPIException``, ``exception_handler``."""

from __future__ import annotations

import json
from typing import Any, cast

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

from wink_middleware._exceptions import AuthenticationFailed, MissingToken, WinkUnavailable
from wink_middleware._get_profile import TOKEN_KEY, VERIFIER_KEY, WSGI_KEY
from wink_middleware._profile import WinkProfile
from wink_middleware._routing.gate import ANONYMOUS, PENDING, Outcome
from wink_middleware._routing.responses import render
from wink_middleware.django.middleware import _http_response, _lazy_user, _wink

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
        # The middleware passed this request unchecked (a public path) and sent its `request`
        # event; without the middleware, this is the request's one decision and sends it.
        gate = wink.gate("drf_quiet" if hasattr(django_request, "wink") else "drf")
        view = wink.view(django_request)
        decided = gate.decide(view)
        if type(decided) is Outcome:
            outcome = decided
            if outcome.kind is PENDING:
                try:
                    decided = gate.resolved(wink.verifier.resolve(outcome.miss))
                except AuthenticationFailed as exc:
                    decided = gate.failed(outcome.access, exc)
            if type(decided) is Outcome:
                if decided.kind is ANONYMOUS:
                    return None
                error = cast(AuthenticationFailed, decided.error)
                raise WinkAPIException(error, wink.config.realm) from error
        django_request.wink = django_request.META[WSGI_KEY] = decided
        django_request.META[TOKEN_KEY] = (gate.tokens.extract, view)  # for get_access_token()
        django_request.META[VERIFIER_KEY] = wink.verifier  # for get_verifier()
        if not remote_user:
            return decided, decided
        _lazy_user(django_request, decided.wink_token)
        return django_request.user, decided

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
