"""The session route (``session_path``): one decision, free of I/O, for every adapter.

``GET <session_path>?returnUrl=&cancelUrl=`` is answered by the middleware itself, before the path
policy and without a token. :meth:`SessionRoute.decide` reads the method, the path (without
``root_path``) and the query, and returns either an answer to send (405, 400 naming the parameter,
429) or a :class:`CreateSession` command; the adapter runs the command with its verifier's
``create_session`` and sends :meth:`SessionRoute.created` or :meth:`SessionRoute.failed`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from wink_middleware._clock import Clock
from wink_middleware._config import WinkConfig
from wink_middleware._events import SESSION, WinkEvent
from wink_middleware._exceptions import AuthenticationFailed, InvalidRequest, RateLimited
from wink_middleware._routing.responses import ErrorResponse, json_response, render
from wink_middleware._session import WinkSession
from wink_middleware._session_urls import MAX_URL_BYTES, Origin, UrlError, origin_of

__all__ = ["CreateSession", "SessionRoute", "TokenBucket"]

_METHOD_NOT_ALLOWED = json_response(
    405,
    {"error": "method_not_allowed", "error_description": "the session route answers GET only"},
    (("Allow", "GET"),),
)
_INVALID = WinkEvent(SESSION, outcome="invalid")
_RATE_LIMITED = WinkEvent(SESSION, outcome="rate_limited")


@dataclass(frozen=True, slots=True)
class CreateSession:
    """The route's command: ask Wink for a session with these two URLs."""

    return_url: str
    cancel_url: str


class TokenBucket:
    """``rate`` tokens a second, holding at most ``2 * rate``, starting full; thread-safe.

    Reads the monotonic clock of the project's :class:`Clock` seam, so tests move time instead of
    sleeping.
    """

    def __init__(self, rate: float, clock: Clock) -> None:
        self._rate = rate
        self._capacity = 2.0 * rate
        self._tokens = self._capacity
        self._clock = clock
        self._at = clock.monotonic()
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """Take one token: ``None`` when there was one, else the whole seconds until there is."""
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return max(1, math.ceil((1.0 - self._tokens) / self._rate))


class SessionRoute:
    """The decisions of one middleware's session route; each middleware has its own bucket.

    ``emit`` hands the ``session`` events the route decides (``invalid``, ``rate_limited``) to the
    observers; the verifier reports the others (``created``, ``rejected``, ...).
    """

    def __init__(
        self,
        config: WinkConfig,
        clock: Clock,
        emit: Callable[[WinkEvent], None] | None = None,
    ) -> None:
        self.path = config.session_path
        self._realm = config.realm
        self._defaults = {
            "returnUrl": config.session_return_url,
            "cancelUrl": config.session_cancel_url,
        }
        self._origins: frozenset[Origin] = config.session_allowed_origins
        self._preflight_passes = not config.protect_preflight
        self._bucket = TokenBucket(config.session_rate, clock)
        self._emit = emit

    def decide(
        self, method: str, query: str, *, preflight: bool = False
    ) -> ErrorResponse | CreateSession | None:
        """What to do with a request on ``session_path`` (the gate matched ``path``, without
        ``root_path``): ``None`` for a CORS preflight the preflight rule passes to the app, else
        the answer to send or the session to create. ``query`` is the raw query string.
        """
        if preflight and self._preflight_passes:
            return None
        if method != "GET":
            return _METHOD_NOT_ALLOWED
        try:
            given = _parameters(query)
            return_url = self._url(given, "returnUrl")
            cancel_url = self._url(given, "cancelUrl")
        except InvalidRequest as exc:
            if self._emit is not None:
                self._emit(_INVALID)
            return render(exc, self._realm)
        # Only a request that would reach Wink takes a token: a refused one costs nothing.
        retry_after = self._bucket.take()
        if retry_after is not None:
            if self._emit is not None:
                self._emit(_RATE_LIMITED)
            return render(
                RateLimited("too many sign-in sessions asked for", retry_after=retry_after),
                self._realm,
            )
        return CreateSession(return_url, cancel_url)

    def created(self, session: WinkSession) -> ErrorResponse:
        """The answer for a session Wink gave: 200 ``{"sessionId": ...}``, never cached."""
        return json_response(200, {"sessionId": session.session_id})

    def failed(self, error: AuthenticationFailed) -> ErrorResponse:
        """The answer when ``create_session`` failed (502, 503 with ``Retry-After``, ...)."""
        return render(error, self._realm)

    def _url(self, given: dict[str, str], name: str) -> str:
        value = given.get(name)
        if value is None:
            configured = self._defaults[name]
            if configured is None:
                raise InvalidRequest(f"{name} is required (none is configured)")
            return configured
        try:
            origin = origin_of(value, name)
        except UrlError as exc:
            raise InvalidRequest(str(exc)) from None
        if origin not in self._origins:
            raise InvalidRequest(f"{name} is not on an allowed origin (session_origins)")
        return value


def _parameters(query: str) -> dict[str, str]:
    """``returnUrl`` and ``cancelUrl`` from the query: empty means absent, twice is refused."""
    given: dict[str, str] = {}
    if not query:
        return given
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=64)
    except ValueError:
        raise InvalidRequest("the query string has too many parameters") from None
    for name, value in pairs:
        if name not in ("returnUrl", "cancelUrl") or not value:
            continue
        if name in given:
            raise InvalidRequest(f"{name} is given more than once")
        if len(value) > MAX_URL_BYTES:
            raise InvalidRequest(f"{name} is longer than {MAX_URL_BYTES} bytes")
        given[name] = value
    return given
