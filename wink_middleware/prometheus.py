"""Prometheus metrics for the verifier's events: ``pip install "wink-middleware[prometheus]"``.

:class:`PrometheusObserver` keeps real ``Counter`` and ``Histogram`` objects from prometheus_client,
so it works in gunicorn's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), where custom collectors
do not. Every label takes its value from a closed vocabulary (``wink_middleware._events``); anything
else is written as ``"other"``, so no label can ever hold a token, a digest, a user or a path.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
except ImportError as exc:
    raise ImportError(
        'wink_middleware.prometheus needs prometheus-client: pip install "wink-middleware[prometheus]"'
    ) from exc

from wink_middleware._events import (
    BREAKER,
    BREAKER_STATES,
    BREAKERS,
    CACHE,
    CACHE_EVENTS,
    CACHE_OUTCOMES,
    CACHE_TIERS,
    INTEGRITY_FAILURE,
    INVALIDATION,
    INVALIDATION_KINDS,
    INVALIDATION_ORIGINS,
    OTHER,
    REDIS_OP,
    REDIS_OPS,
    REDIS_OUTCOMES,
    REQUEST,
    REQUEST_EVENTS,
    REQUEST_OUTCOMES,
    SESSION,
    SESSION_OUTCOMES,
    SINGLEFLIGHT,
    SINGLEFLIGHT_ROLES,
    SINGLEFLIGHT_SCOPES,
    STALE_SERVED,
    WINK_CALL,
    WINK_CALL_OUTCOMES,
    WinkEvent,
)

__all__ = ["PrometheusObserver"]


def _closed(value: str | None, vocabulary: Sequence[str]) -> str:
    return value if value is not None and value in vocabulary else OTHER


class _LabelledCounter:
    """A counter with one or two closed labels, its known children built up front (series at 0)."""

    __slots__ = ("_counter", "_vocabularies", "children")

    def __init__(self, counter: Counter, *vocabularies: Sequence[str]) -> None:
        self._counter = counter
        self._vocabularies = vocabularies
        # Keyed by the raw label values, so the hot path is one dict lookup and one inc().
        self.children: dict[object, Counter] = {}
        if len(vocabularies) == 1:
            for value in vocabularies[0]:
                self.children[value] = counter.labels(value)
        else:
            first, second = vocabularies
            for a in first:
                for b in second:
                    self.children[(a, b)] = counter.labels(a, b)

    def inc1(self, value: str | None) -> None:
        child = self.children.get(value)
        if child is None:
            child = self._counter.labels(_closed(value, self._vocabularies[0]))
        child.inc()

    def inc2(self, first: str | None, second: str | None) -> None:
        child = self.children.get((first, second))
        if child is None:
            child = self._counter.labels(
                _closed(first, self._vocabularies[0]), _closed(second, self._vocabularies[1])
            )
        child.inc()


class _Metrics:
    """The collectors of one (registry, namespace): registered once, shared by its observers."""

    def __init__(self, registry: CollectorRegistry, namespace: str) -> None:
        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(name, doc, labels, namespace=namespace, registry=registry)

        self.auth = _LabelledCounter(
            counter("auth_requests", "Requests handled, by outcome.", ["outcome"]),
            REQUEST_OUTCOMES,
        )
        self.cache = _LabelledCounter(
            counter("cache_requests", "Cache lookups, by tier and result.", ["tier", "result"]),
            CACHE_TIERS,
            CACHE_OUTCOMES,
        )
        self.verify = _LabelledCounter(
            counter(
                "verify_requests", "Calls to Wink's Verify Client endpoint, by result.", ["result"]
            ),
            WINK_CALL_OUTCOMES,
        )
        self.verify_duration = Histogram(
            "verify_duration_seconds",
            "Duration of each call to Wink's Verify Client endpoint.",
            namespace=namespace,
            registry=registry,
        )
        self.singleflight = _LabelledCounter(
            counter(
                "singleflight",
                "Cold tokens in a single-flight, by scope and role.",
                ["scope", "role"],
            ),
            SINGLEFLIGHT_SCOPES,
            SINGLEFLIGHT_ROLES,
        )
        self.stale_served = counter(
            "stale_served", "Stale profiles served while Wink was unavailable."
        )
        self.breaker = _LabelledCounter(
            counter(
                "breaker_transitions",
                "Circuit breaker transitions, by breaker and new state.",
                ["breaker", "to"],
            ),
            BREAKERS,
            BREAKER_STATES,
        )
        self.invalidations = _LabelledCounter(
            counter(
                "invalidations",
                "Cache entries dropped on purpose, by origin and kind.",
                ["origin", "kind"],
            ),
            INVALIDATION_ORIGINS,
            INVALIDATION_KINDS,
        )
        self.integrity_failures = counter(
            "cache_integrity_failures", "Shared-tier entries that failed to decrypt or parse."
        )
        self.redis = _LabelledCounter(
            counter(
                "redis_operations",
                "Redis commands of the shared tier, by operation and result.",
                ["op", "result"],
            ),
            REDIS_OPS,
            REDIS_OUTCOMES,
        )
        self.sessions = _LabelledCounter(
            counter("sessions", "Wink sign-in sessions asked for, by result.", ["result"]),
            SESSION_OUTCOMES,
        )


_shared: weakref.WeakKeyDictionary[CollectorRegistry, dict[str, _Metrics]] = (
    weakref.WeakKeyDictionary()
)
_shared_lock = threading.Lock()


def _metrics_for(registry: CollectorRegistry, namespace: str) -> _Metrics:
    with _shared_lock:
        by_namespace = _shared.setdefault(registry, {})
        metrics = by_namespace.get(namespace)
        if metrics is None:
            metrics = by_namespace[namespace] = _Metrics(registry, namespace)
        return metrics


class PrometheusObserver:
    """An observer that counts the verifier's events in Prometheus metrics.

    Series (with the default ``namespace="wink"``): ``wink_auth_requests_total{outcome}``,
    ``wink_cache_requests_total{tier,result}``, ``wink_verify_requests_total{result}``,
    ``wink_verify_duration_seconds`` (histogram), ``wink_singleflight_total{scope,role}``,
    ``wink_stale_served_total``, ``wink_breaker_transitions_total{breaker,to}``,
    ``wink_invalidations_total{origin,kind}``, ``wink_cache_integrity_failures_total``,
    ``wink_redis_operations_total{op,result}`` and ``wink_sessions_total{result}``.

    The collectors are registered in ``registry`` (default: prometheus_client's global ``REGISTRY``)
    once per registry and namespace: a second observer with the same registry and namespace shares
    them, so several verifiers in one process add up into the same series. Pass another
    ``registry`` (or ``namespace``) to keep a verifier's series apart.
    """

    def __init__(self, registry: CollectorRegistry | None = None, namespace: str = "wink") -> None:
        metrics = _metrics_for(REGISTRY if registry is None else registry, namespace)
        self._metrics = metrics
        self._handlers: dict[str, Callable[[WinkEvent], None]] = {
            REQUEST: lambda e: metrics.auth.inc1(e.outcome),
            CACHE: lambda e: metrics.cache.inc2(e.tier, e.outcome),
            WINK_CALL: self._on_wink_call,
            SINGLEFLIGHT: lambda e: metrics.singleflight.inc2(e.tier, e.outcome),
            STALE_SERVED: lambda e: metrics.stale_served.inc(),
            BREAKER: lambda e: metrics.breaker.inc2(e.tier, e.outcome),
            INVALIDATION: lambda e: metrics.invalidations.inc2(e.tier, e.outcome),
            INTEGRITY_FAILURE: lambda e: metrics.integrity_failures.inc(),
            REDIS_OP: lambda e: metrics.redis.inc2(e.tier, e.outcome),
            SESSION: lambda e: metrics.sessions.inc1(e.outcome),
        }
        # The hot path emits the prebuilt request and cache events (one each per request): find
        # their counters by the event's identity, without hashing its fields.
        self._prebuilt: dict[int, Callable[[], None]] = {}
        for outcome, event in REQUEST_EVENTS.items():
            if outcome in metrics.auth.children:
                self._prebuilt[id(event)] = metrics.auth.children[outcome].inc
        for (tier, outcome), event in CACHE_EVENTS.items():
            child = metrics.cache.children.get((tier, outcome))
            if child is not None:
                self._prebuilt[id(event)] = child.inc

    def on_event(self, event: WinkEvent) -> None:
        """Count ``event``; names this version does not know are ignored."""
        inc = self._prebuilt.get(id(event))
        if inc is not None:
            inc()
            return
        handler = self._handlers.get(event.name)
        if handler is not None:
            handler(event)

    def _on_wink_call(self, event: WinkEvent) -> None:
        self._metrics.verify.inc1(event.outcome)
        if event.duration_s is not None:
            self._metrics.verify_duration.observe(event.duration_s)
