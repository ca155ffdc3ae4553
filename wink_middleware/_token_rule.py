"""The token rule: what a bearer token may look like, wherever it comes from.

Routing's extractor applies it to every source (header, cookie, subprotocol, query) and the engine
to ``verify()`` and to a cache miss; it sits below both so that neither imports the other.
"""

from __future__ import annotations

import re

from wink_middleware._exceptions import InvalidRequest

__all__ = ["check_token"]

_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")


def check_token(raw: bytes, max_length: int, what: str = "bearer token") -> bytes:
    """The token rule, for every source and for ``verify()``: RFC 6750 ``b64token``, bounded length.

    Raises :class:`InvalidRequest` naming ``what`` (e.g. ``"session cookie"``) when ``raw`` is empty,
    longer than ``max_length`` bytes, or not a b64token; returns ``raw`` otherwise.
    """
    if not raw:
        raise InvalidRequest(f"the {what} is empty")
    if len(raw) > max_length:
        raise InvalidRequest(f"the {what} is longer than {max_length} bytes")
    if _B64TOKEN.fullmatch(raw) is None:
        raise InvalidRequest(f"the {what} is malformed")
    return raw
