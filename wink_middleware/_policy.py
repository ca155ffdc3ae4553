"""Path policy: is a request public, optional or protected? Patterns compiled once."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

__all__ = ["Access", "PathPolicy"]


class Access(IntEnum):
    """What a path asks of a request."""

    PROTECTED = 0  # a valid token is required
    OPTIONAL = 1  # no token means anonymous; a bad token is still refused
    PUBLIC = 2  # no authentication at all


# Module constants: reading an enum member through its class costs ~70 ns on Python 3.11.
_PROTECTED = Access.PROTECTED
_OPTIONAL = Access.OPTIONAL
_PUBLIC = Access.PUBLIC


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
    """Matches a path (without ``root_path``) against public and optional patterns.

    A pattern is an exact path (``"/health"``) or a prefix ending in ``*`` that matches at a segment
    boundary: ``"/docs*"`` (same as ``"/docs/*"``) matches ``/docs``, ``/docs/`` and ``/docs/x``, never
    ``/docsecret``. Public wins over optional; everything else is protected.
    """

    def __init__(self, public: Iterable[str], optional: Iterable[str]) -> None:
        self._public = _Patterns(public)
        self._optional = _Patterns(optional)
        #: No public or optional pattern: every path is protected (adapters skip path matching).
        self.all_protected = not (
            self._public.exact
            or self._public.prefixes
            or self._optional.exact
            or self._optional.prefixes
        )

    def access(self, path: str) -> Access:
        """The access rule for ``path``."""
        if self.all_protected:
            return _PROTECTED
        if self._public.match(path):
            return _PUBLIC
        if self._optional.match(path):
            return _OPTIONAL
        return _PROTECTED
