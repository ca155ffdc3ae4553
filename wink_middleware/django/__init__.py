"""Django and Django REST framework: ``WinkAuthenticationMiddleware``, ``WinkBackend``,
``WinkAuthentication``.

```python
# settings.py
MIDDLEWARE = [
    ...,
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "wink_middleware.django.WinkAuthenticationMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",  # first: passwords (the admin login) keep working
    "wink_middleware.django.WinkBackend",
]
WINK = {"public_paths": ["/health", "/admin/*"]}  # WinkConfig fields, over WINK_* variables
```

The middleware makes the decisions of :class:`~wink_middleware.WinkWSGIMiddleware` and
:class:`~wink_middleware.WinkMiddleware` with the same path policy, token rules, verifier API and
error rendering: a refused request gets the same status, ``WWW-Authenticate`` challenge, JSON body
and ``Retry-After``. It runs sync (WSGI) or async (ASGI, never blocking the event loop). A verified
request gets ``request.wink`` (the :class:`~wink_middleware.WinkProfile`; also what
``get_profile(request)`` returns) and ``request.user``, the Django user whose username is the
winkToken, found or created by :class:`WinkBackend` for this request only (no session login: a
bearer token is sent with every request). An anonymous request (a path without a token, see
``optional_paths``) gets ``request.wink = None`` and, on an optional path, ``AnonymousUser``; a
public path (and a CORS preflight) leaves ``request.user`` as the session made it.

``WinkAuthentication`` is a DRF authentication class over the same settings and verifier.
"""

from __future__ import annotations

try:
    import django  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "wink_middleware.django needs Django, which is not installed: pip install django"
    ) from exc

from typing import Any

from wink_middleware.django.backends import _backend
from wink_middleware.django.middleware import WinkAuthenticationMiddleware
from wink_middleware.django.rest_framework import (
    WinkAPIException,
    WinkAuthentication,
    exception_handler,
)

__all__ = [
    "WinkAPIException",
    "WinkAuthentication",
    "WinkAuthenticationMiddleware",
    "WinkBackend",
    "exception_handler",
]


def __getattr__(name: str) -> Any:
    if name == "WinkBackend":
        return _backend()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
