"""What a session's ``returnUrl`` / ``cancelUrl`` may be, and its origin: one rule for the config
(checked at construction) and for the query of the session route (checked per request).

Whoever picks the ``returnUrl`` receives the user's authorization code, so the rule is strict and
reads a URL the way a browser would: absolute ``https://`` (or ``http://`` on a loopback host),
no user info, a plain host name or IP literal, printable ASCII only. Anything a browser and Python
could read differently (a backslash, whitespace, a control character) is refused outright.
"""

from __future__ import annotations

import re
from typing import cast

__all__ = ["MAX_URL_BYTES", "Origin", "UrlError", "check_url", "origin_of", "parse_origin"]

#: A longer URL is refused (query and config alike).
MAX_URL_BYTES = 2048
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "[::1]"})
_DEFAULT_PORTS = {"https": 443, "http": 80}
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)", re.S)
_HOST = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::(?P<port>[0-9]{1,5}))?"
)
# The path, query and fragment: printable ASCII without space or backslash.
_REST = re.compile(r"(?:[/?#][!-\[\]-~]*)?")

#: ``(scheme, host, port)``, lower-cased, the port explicit.
Origin = tuple[str, str, int]


class UrlError(ValueError):
    """Why a URL is not acceptable (a message naming no secret, safe to send back)."""


def check_url(value: object, what: str) -> str:
    """``value`` if it is an acceptable return or cancel URL; else :class:`UrlError` naming ``what``."""
    origin_of(value, what)
    return cast(str, value)  # origin_of() refused anything but a str


def origin_of(value: object, what: str) -> Origin:
    """The origin of an acceptable URL (its port explicit); :class:`UrlError` naming ``what`` when
    it is not one."""
    if not isinstance(value, str):
        raise UrlError(f"{what} must be a URL string")
    if not value.isascii():
        raise UrlError(f"{what} must be ASCII (percent-encode other characters)")
    if len(value) > MAX_URL_BYTES:
        raise UrlError(f"{what} is longer than {MAX_URL_BYTES} bytes")
    match = _URL.fullmatch(value)
    if match is None:
        raise UrlError(f"{what} must be an absolute https:// URL")
    scheme = match["scheme"].lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlError(f"{what} must be an absolute https:// URL")
    authority = match["authority"]
    if "@" in authority:
        raise UrlError(f"{what} must not hold user info")
    host, port = _host_port(authority, what)
    if scheme == "http" and host not in _LOOPBACK:
        raise UrlError(f"{what} must use https:// (http:// only on localhost, 127.0.0.1 or [::1])")
    if _REST.fullmatch(match["rest"]) is None:
        raise UrlError(f"{what} holds characters a URL must not (space, backslash, control)")
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def parse_origin(entry: object, what: str) -> Origin:
    """An allow-list entry ``scheme://host[:port]``; :class:`UrlError` naming ``what`` otherwise."""
    if not isinstance(entry, str):
        raise UrlError(f"{what}: {entry!r} is not an origin (scheme://host[:port])")
    match = _URL.fullmatch(entry) if entry.isascii() else None
    if match is None or match["rest"] or match["scheme"].lower() not in _DEFAULT_PORTS:
        raise UrlError(
            f"{what}: {entry!r} is not an origin (http:// or https://, host, optional port, no path)"
        )
    if "@" in match["authority"]:
        raise UrlError(f"{what}: {entry!r} must not hold user info")
    scheme = match["scheme"].lower()
    host, port = _host_port(match["authority"], f"{what}: {entry!r}")
    return scheme, host, port or _DEFAULT_PORTS[scheme]


def _host_port(authority: str, what: str) -> tuple[str, int]:
    match = _HOST.fullmatch(authority)
    if match is None:
        raise UrlError(f"{what} has no valid host")
    port = 0 if match["port"] is None else int(match["port"])
    if match["port"] is not None and not 1 <= port <= 65535:
        raise UrlError(f"{what} has an invalid port")
    return match["host"].lower(), port
