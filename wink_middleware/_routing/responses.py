"""Render an AuthenticationFailed as the HTTP answer RFC 6750 asks for (status, headers, JSON body)."""

from __future__ import annotations

import functools
import json

from wink_middleware._events import REQUEST_EVENTS, WinkEvent
from wink_middleware._exceptions import (
    AuthenticationFailed,
    InvalidRequest,
    MissingToken,
    RateLimited,
    TokenRejected,
    WinkBadResponse,
    WinkUnavailable,
)

__all__ = ["ErrorResponse", "json_response", "outcome_event", "render", "websocket_close_code"]


class ErrorResponse:
    """A ready-to-send answer (an error, or the session route's): ``status``, ``headers`` as text
    pairs and as ASGI byte pairs, ``body``."""

    __slots__ = ("asgi_headers", "body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.asgi_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


def json_response(
    status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()
) -> ErrorResponse:
    """A JSON answer the middleware gives itself (``no-store``: it is never cached)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return ErrorResponse(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *headers,
        ],
        body,
    )


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render(exc: AuthenticationFailed, realm: str) -> ErrorResponse:
    """The response for ``exc``: its status, the RFC 6750 challenge (400, 401, 403), the JSON body
    and, for an outage or a rate limit, ``Retry-After``."""
    retry_after = exc.retry_after if isinstance(exc, WinkUnavailable | RateLimited) else None
    return _render(exc.status_code, exc.error, exc.description, retry_after, realm)


@functools.lru_cache(maxsize=256)
def _render(
    status: int, error: str | None, description: str, retry_after: int | None, realm: str
) -> ErrorResponse:
    body = json.dumps(
        {"error": error or "missing_token", "error_description": description},
        separators=(",", ":"),
    ).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    if status in (400, 401, 403):
        challenge = f"Bearer realm={_quoted(realm)}"
        if error is not None:
            challenge += f", error={_quoted(error)}, error_description={_quoted(description)}"
        headers.append(("WWW-Authenticate", challenge))
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return ErrorResponse(status, headers, body)


def websocket_close_code(exc: AuthenticationFailed) -> int:
    """1008 (policy violation) for a refused token, 1013 (try again later) when Wink failed."""
    return 1013 if exc.status_code >= 500 else 1008


_OUTCOMES = (
    (MissingToken, "missing"),
    (InvalidRequest, "invalid"),
    (TokenRejected, "rejected"),
    (WinkUnavailable, "unavailable"),
    (WinkBadResponse, "bad_response"),
)


def outcome_event(exc: AuthenticationFailed) -> WinkEvent:
    """The ``request`` event of a refused request (observers count requests by outcome)."""
    for kind, outcome in _OUTCOMES:
        if isinstance(exc, kind):
            return REQUEST_EVENTS[outcome]
    return REQUEST_EVENTS["rejected"]
