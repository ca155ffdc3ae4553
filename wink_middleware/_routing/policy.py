"""Path policy: is a request public, optional or protected? Patterns compiled once."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from wink_middleware._exceptions import AuthenticationFailed, MissingToken
from wink_middleware._routing.view import RequestView

__all__ = ["Access", "PathPolicy"]


class Access(IntEnum):
    """What a request must show."""

    PROTECTED = 0  # a valid token is required
    OPTIONAL = 1  # no token means anonymous; a bad token is still refused
    PUBLIC = 2  # no authentication at all
    PREFLIGHT = 3  # a CORS preflight: anonymous, and only a CORS answer may come back


# Module constants: reading an enum member through its class costs ~70 ns on Python 3.11.
_PROTECTED = Access.PROTECTED
_OPTIONAL = Access.OPTIONAL
_PUBLIC = Access.PUBLIC
_PREFLIGHT = Access.PREFLIGHT


class _Patterns:
    __slots__ = ("exact", "prefixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        for pattern in patterns:
            if pattern.endswith("*"):
                # "/docs*" and "/docs/*" both mean /docs, /docs/ and below, never /docsecret.
                base = pattern[:-1].rstrip("/")
                exact.update((base or "/", base + "/"))
                prefixes.append(base + "/")
            else:
                exact.add(pattern)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)

    def match(self, path: str) -> bool:
        return path in self.exact or (bool(self.prefixes) and path.startswith(self.prefixes))


class PathPolicy:
    """Decides what a request must show: its path (without ``root_path``) against the public and
    optional patterns, whether a CORS preflight passes without a token, and whether a request whose
    token failed goes on anonymous.

    A pattern is an exact path (``"/health"``) or a prefix ending in ``*`` that matches at a segment
    boundary: ``"/docs*"`` (same as ``"/docs/*"``) matches ``/docs``, ``/docs/`` and ``/docs/x``, never
    ``/docsecret``. Public wins over optional; everything else is protected.
    """

    def __init__(
        self,
        public: Iterable[str],
        optional: Iterable[str],
        *,
        protect_preflight: bool = False,
        anonymous_on_invalid: bool = False,
    ) -> None:
        self._anonymous_on_invalid = anonymous_on_invalid
        self._public = _Patterns(public)
        self._optional = _Patterns(optional)
        self._preflight_passes = not protect_preflight
        #: No pattern at all: every request but a passing preflight is protected, whatever its path.
        self.protects_every_path = self._all_protected = not (
            self._public.exact
            or self._public.prefixes
            or self._optional.exact
            or self._optional.prefixes
        )

    def access(self, view: RequestView) -> Access:
        """What ``view`` must show."""
        if not self._all_protected and self._public.match(view.path):
            return _PUBLIC
        if view.preflight and self._preflight_passes:
            return _PREFLIGHT
        if not self._all_protected and self._optional.match(view.path):
            return _OPTIONAL
        return _PROTECTED

    def continues_anonymous(self, access: Access, exc: AuthenticationFailed) -> bool:
        """Whether a request whose token failed goes on anonymous; else it is refused.

        No token on an optional path is anonymous; with ``anonymous_on_invalid``, a refused or
        malformed token there is too. An outage (5xx) never is: it would silently sign a user out.
        """
        if access is not _OPTIONAL:
            return False
        return type(exc) is MissingToken or (self._anonymous_on_invalid and exc.status_code < 500)
