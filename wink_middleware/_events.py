"""Events out of the engine and the request gate, and the observers that receive them.

The engine reports what it did as :class:`WinkEvent` values; an *observer* turns them into metrics,
spans or logs. Each event name below lists what ``outcome`` and ``tier`` mean for it; a field an
event does not use stays ``None``. Values come only from these closed vocabularies, never from a
token, a digest, a user or a path, and new event names may be added later, so an observer ignores
names it does not know.

``request`` (:data:`REQUEST`)
    One request handled by an adapter. ``outcome``: ``authenticated``, ``anonymous`` (optional path,
    no token), ``missing``, ``invalid`` (malformed request), ``rejected``, ``unavailable``,
    ``bad_response``, ``public`` (public path, nothing verified) or ``preflight`` (CORS preflight).
``cache`` (:data:`CACHE`)
    One cache lookup. ``tier``: ``local`` (this process) or ``shared`` (Redis). ``outcome``: ``hit``,
    ``negative_hit`` (a cached rejection), ``revoked``, ``miss`` or ``error`` (the tier failed).
``wink_call`` (:data:`WINK_CALL`)
    One HTTP attempt at Wink's Verify Client endpoint (each retry is its own event). ``outcome``:
    ``valid``, ``rejected``, ``unavailable`` or ``bad_response``; ``duration_s``: how long it took;
    ``status_code``: Wink's HTTP status, ``None`` when no answer came; ``error_type``: ``"timeout"``,
    ``"connect"``, ``"http_503"`` or an exception class name, never a message.
``singleflight`` (:data:`SINGLEFLIGHT`)
    A cold token joined a single-flight. ``tier``: the scope, ``process`` or ``fleet``; ``outcome``:
    ``leader`` (asks Wink) or ``follower`` (waits for the leader).
``stale_served`` (:data:`STALE_SERVED`)
    Wink was unavailable and a cached profile past its freshness was served.
``breaker`` (:data:`BREAKER`)
    A circuit breaker changed state. ``tier``: ``wink`` or ``redis``; ``outcome``: the new state,
    ``open``, ``half_open`` or ``closed``.
``invalidation`` (:data:`INVALIDATION`)
    A cache entry was dropped on purpose. ``tier``: the origin, ``local`` (this process called
    ``invalidate``/``revoke``) or ``remote`` (a message from another process); ``outcome``:
    ``invalidate`` or ``revoke``.
``integrity_failure`` (:data:`INTEGRITY_FAILURE`)
    A shared-tier entry failed to decrypt or parse and was treated as a miss.
``redis_op`` (:data:`REDIS_OP`)
    One Redis command of the shared tier. ``tier``: the operation, ``get``, ``set``, ``delete``,
    ``publish``, ``lease``, ``release`` or ``subscribe``; ``outcome``: ``ok``, ``error`` or
    ``timeout``; ``duration_s``: how long it took.
``session`` (:data:`SESSION`)
    One Wink sign-in session asked for (``create_session`` or the session route). ``outcome``:
    ``created``, ``invalid`` (the route refused the request's URLs), ``rate_limited`` (the route's
    ``session_rate`` was spent), ``rejected`` (Wink refused the client's credentials),
    ``unavailable`` or ``bad_response``.
``jwks_fetch`` (:data:`JWKS_FETCH`)
    One fetch of the realm's signing keys for the signature pre-filter (``jwks_url``). ``outcome``:
    ``ok`` or ``error`` (unreachable, not 200, or no usable key); ``duration_s``: how long it took.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wink_middleware._logging import logger

if TYPE_CHECKING:
    from wink_middleware._config import WinkConfig

__all__ = [
    "BREAKER",
    "CACHE",
    "CACHE_EVENTS",
    "INTEGRITY_FAILURE",
    "INVALIDATION",
    "JWKS_FETCH",
    "REDIS_OP",
    "REQUEST",
    "REQUEST_EVENTS",
    "SESSION",
    "SESSION_OUTCOMES",
    "SINGLEFLIGHT",
    "STALE_SERVED",
    "WINK_CALL",
    "Observer",
    "ObserverSet",
    "WinkEvent",
]


REQUEST = "request"
CACHE = "cache"
WINK_CALL = "wink_call"
SINGLEFLIGHT = "singleflight"
STALE_SERVED = "stale_served"
BREAKER = "breaker"
INVALIDATION = "invalidation"
INTEGRITY_FAILURE = "integrity_failure"
REDIS_OP = "redis_op"
SESSION = "session"
JWKS_FETCH = "jwks_fetch"

# The closed vocabularies, in the order an exporter lists them.
REQUEST_OUTCOMES = (
    "authenticated",
    "anonymous",
    "missing",
    "invalid",
    "rejected",
    "unavailable",
    "bad_response",
    "public",
    "preflight",
)
CACHE_TIERS = ("local", "shared")
CACHE_OUTCOMES = ("hit", "negative_hit", "revoked", "miss", "error")
WINK_CALL_OUTCOMES = ("valid", "rejected", "unavailable", "bad_response")
SINGLEFLIGHT_SCOPES = ("process", "fleet")
SINGLEFLIGHT_ROLES = ("leader", "follower")
BREAKERS = ("wink", "redis")
BREAKER_STATES = ("open", "half_open", "closed")
INVALIDATION_ORIGINS = ("local", "remote")
INVALIDATION_KINDS = ("invalidate", "revoke")
REDIS_OPS = ("get", "set", "delete", "publish", "lease", "release", "subscribe")
REDIS_OUTCOMES = ("ok", "error", "timeout")
SESSION_OUTCOMES = ("created", "invalid", "rate_limited", "rejected", "unavailable", "bad_response")

#: What an exporter writes instead of a value outside its closed vocabulary.
OTHER = "other"


@dataclass(frozen=True, slots=True)
class WinkEvent:
    """Something the engine did; see the module docstring for each ``name`` and its fields."""

    name: str
    outcome: str | None = None
    tier: str | None = None
    duration_s: float | None = None
    error_type: str | None = None
    status_code: int | None = None


# An event is immutable, so the hot path can emit these shared instances instead of building one per
# request (building a frozen slotted dataclass costs ~0.7 µs; a dict lookup ~0.03 µs).
#: The ``request`` event of each outcome, prebuilt.
REQUEST_EVENTS: Mapping[str, WinkEvent] = MappingProxyType(
    {outcome: WinkEvent(REQUEST, outcome=outcome) for outcome in REQUEST_OUTCOMES}
)
#: The ``cache`` event of each ``(tier, outcome)``, prebuilt.
CACHE_EVENTS: Mapping[tuple[str, str], WinkEvent] = MappingProxyType(
    {
        (tier, outcome): WinkEvent(CACHE, outcome=outcome, tier=tier)
        for tier in CACHE_TIERS
        for outcome in CACHE_OUTCOMES
    }
)


@runtime_checkable
class Observer(Protocol):
    """Receives the engine's events: pass instances as ``WinkConfig(observers=[...])``.

    ``on_event`` is called synchronously on the request's thread or event loop, so it must be quick
    and must not block; it should ignore event names it does not know. An observer may also define
    ``bind(config: WinkConfig) -> None``, called once when a verifier is built with it (the
    OpenTelemetry observer learns Wink's host and port there), and ``event_names``, the set of
    event names it wants (without it, all): events nobody wants are never built. Both are optional, so
    not part of this Protocol: the verifier looks them up with ``getattr``.
    """

    def on_event(self, event: WinkEvent) -> None:
        """Record one event."""


class ObserverSet:
    """The observers of one verifier, called in order by :meth:`emit`.

    An observer that raises never breaks the caller: its exception is swallowed, and logged once
    (a warning naming the observer and the exception type) the first time that observer fails.
    An empty set is false, so the engine can test it before building an event: with no observer,
    a cache hit pays one truth test and nothing else. Building no event in that case is the
    engine's job, not this class's; when it does emit, :data:`REQUEST_EVENTS` and
    :data:`CACHE_EVENTS` spare it building the per-request ones.
    """

    __slots__ = ("_failed", "_lock", "_observers")

    def __init__(self, observers: Iterable[Observer] = ()) -> None:
        self._observers: tuple[Observer, ...] = tuple(observers)
        self._failed: set[int] = set()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._observers)

    def __len__(self) -> int:
        return len(self._observers)

    def __repr__(self) -> str:
        return f"ObserverSet({list(self._observers)!r})"

    def bind(self, config: WinkConfig) -> None:
        """Call ``bind(config)`` on each observer that has one; its errors propagate (startup, not a request)."""
        for observer in self._observers:
            binder = getattr(observer, "bind", None)
            if binder is not None:
                binder(config)

    def emitter(self, name: str) -> Callable[[WinkEvent], None] | None:
        """How to emit events named ``name``: ``None`` when no observer wants them.

        An observer may say which names it wants in an ``event_names`` attribute (a set of names);
        one without it wants them all. So a hot path binds ``emitter(REQUEST)`` once and pays a
        ``None`` test when nobody listens (the OpenTelemetry observer wants only ``wink_call``).
        """
        wanting = tuple(o for o in self._observers if _wants(o, name))
        report = self._report  # one record of failures for every emitter of this set
        if not wanting:
            return None
        if len(wanting) > 1:

            def emit_each(event: WinkEvent) -> None:
                for observer in wanting:
                    try:
                        observer.on_event(event)
                    except Exception as exc:
                        report(observer, exc)

            return emit_each
        observer = wanting[0]
        on_event = observer.on_event

        def emit_one(event: WinkEvent) -> None:
            try:
                on_event(event)
            except Exception as exc:
                report(observer, exc)

        return emit_one

    def emit(self, event: WinkEvent) -> None:
        """Hand ``event`` to every observer; an observer's exception is logged once and swallowed."""
        for observer in self._observers:
            try:
                observer.on_event(event)
            except Exception as exc:
                self._report(observer, exc)

    def _report(self, observer: Observer, exc: Exception) -> None:
        with self._lock:
            if id(observer) in self._failed:
                return
            self._failed.add(id(observer))
        logger.warning(
            "observer %s raised %s; ignored (further errors from it are not logged)",
            type(observer).__qualname__,
            type(exc).__name__,
        )


def _wants(observer: Observer, name: str) -> bool:
    names = getattr(observer, "event_names", None)
    return names is None or name in names
