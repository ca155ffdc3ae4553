"""``WinkBackend``: Django users for Wink, a ``RemoteUserBackend`` built on first access."""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["WinkBackend"]  # noqa: F822 (built on first access: see __getattr__)


@functools.cache
def _backend() -> type:
    # django.contrib.auth.backends reads the user model when imported, so it needs the app
    # registry; importing wink_middleware.django must not.
    from django.contrib.auth.backends import RemoteUserBackend

    class WinkBackend(RemoteUserBackend):  # type: ignore[misc, unused-ignore]
        """Django users for Wink: ``authenticate(request, remote_user=<winkToken>)`` returns the
        user whose username is the winkToken, created on first sight.

        Put ``"wink_middleware.django.WinkBackend"`` in ``AUTHENTICATION_BACKENDS`` after
        ``"django.contrib.auth.backends.ModelBackend"`` (kept first, so that password logins, the
        admin's included, still work: this backend only answers ``remote_user``). Subclass it
        and override ``configure_user(request, user, created)`` to fill in names from
        ``request.wink``; set ``create_unknown_user = False`` to admit known users only.
        """

    WinkBackend.__module__ = "wink_middleware.django"  # its public path, as documented
    WinkBackend.__qualname__ = "WinkBackend"
    return WinkBackend


def __getattr__(name: str) -> Any:
    if name == "WinkBackend":
        return _backend()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
