"""Cost of the observers per event: ``python -m benchmarks.bench_observers``.

Prints the best-of-rounds microseconds per call of each step a request pays: the engine's guard on an
empty ObserverSet, building a WinkEvent, PrometheusObserver.on_event of a request event (and the bare
``Counter.inc()`` it wraps), and OpenTelemetryObserver.on_event of a request (a name check) and of a
Wink call (a span and a histogram record with the SDK, exporting nowhere).
"""

from __future__ import annotations

import timeit
from collections.abc import Callable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter

from wink_middleware._events import REQUEST, REQUEST_EVENTS, WINK_CALL, ObserverSet, WinkEvent
from wink_middleware.otel import OpenTelemetryObserver
from wink_middleware.prometheus import PrometheusObserver


def best_us(fn: Callable[[], object], number: int, rounds: int = 7) -> float:
    """Microseconds per call of ``fn``, the best of ``rounds`` runs of ``number`` calls."""
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e6


def rows(number: int = 200_000) -> list[tuple[str, float]]:
    """(step, microseconds per call) for each measured step."""
    request = WinkEvent(REQUEST, outcome="authenticated")
    call = WinkEvent(WINK_CALL, outcome="valid", duration_s=0.05, status_code=200)
    empty = ObserverSet()
    prometheus = PrometheusObserver(registry=CollectorRegistry())
    with_prometheus = ObserverSet([prometheus])
    child = Counter("bare", "bare", ["outcome"], registry=CollectorRegistry()).labels("x")
    otel = OpenTelemetryObserver(tracer_provider=TracerProvider(), meter_provider=MeterProvider())

    def guarded_no_observer() -> None:
        if empty:
            empty.emit(WinkEvent(REQUEST, outcome="authenticated"))

    return [
        ("empty ObserverSet: `if observers:` guard", best_us(guarded_no_observer, number)),
        ("WinkEvent(REQUEST, outcome=...)", best_us(lambda: WinkEvent(REQUEST, outcome="x"), number)),
        ("REQUEST_EVENTS[outcome] (prebuilt)", best_us(lambda: REQUEST_EVENTS["authenticated"], number)),
        ("prometheus_client Counter child .inc()", best_us(child.inc, number)),
        ("PrometheusObserver.on_event(request)", best_us(lambda: prometheus.on_event(request), number)),
        ("ObserverSet([prometheus]).emit(request)", best_us(lambda: with_prometheus.emit(request), number)),
        ("OpenTelemetryObserver.on_event(request)", best_us(lambda: otel.on_event(request), number)),
        ("OpenTelemetryObserver.on_event(wink_call), SDK", best_us(lambda: otel.on_event(call), number // 20)),
    ]  # fmt: skip


def main() -> None:
    """Print the table."""
    for step, us in rows():
        print(f"{us:8.3f} µs  {step}")


if __name__ == "__main__":
    main()
