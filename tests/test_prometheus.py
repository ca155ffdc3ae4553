"""PrometheusObserver: the series, closed label values, and gunicorn-style multiprocess mode."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from wink_middleware._events import (
    BREAKER,
    CACHE,
    INTEGRITY_FAILURE,
    INVALIDATION,
    REDIS_OP,
    REQUEST,
    SESSION,
    SESSION_OUTCOMES,
    SINGLEFLIGHT,
    STALE_SERVED,
    WINK_CALL,
    WinkEvent,
)
from wink_middleware.prometheus import PrometheusObserver

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

ROOT = Path(__file__).resolve().parent.parent


def scrape(registry: CollectorRegistry) -> Samples:
    """The registry's exposition, parsed: (sample name, labels) -> value."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def observer(registry: CollectorRegistry) -> PrometheusObserver:
    return PrometheusObserver(registry=registry)


def test_importing_without_prometheus_client_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "wink_middleware.prometheus")
    with pytest.raises(ImportError) as info:
        importlib.import_module("wink_middleware.prometheus")
    assert str(info.value) == (
        'wink_middleware.prometheus needs prometheus-client: pip install "wink-middleware[prometheus]"'
    )


@pytest.mark.parametrize(
    ("event", "name", "labels"),
    [
        (WinkEvent(REQUEST, outcome="authenticated"), "wink_auth_requests_total", {"outcome": "authenticated"}),
        (WinkEvent(REQUEST, outcome="preflight"), "wink_auth_requests_total", {"outcome": "preflight"}),
        (WinkEvent(CACHE, tier="local", outcome="hit"), "wink_cache_requests_total", {"tier": "local", "result": "hit"}),
        (WinkEvent(CACHE, tier="shared", outcome="error"), "wink_cache_requests_total", {"tier": "shared", "result": "error"}),
        (WinkEvent(WINK_CALL, outcome="rejected"), "wink_verify_requests_total", {"result": "rejected"}),
        (WinkEvent(SINGLEFLIGHT, tier="fleet", outcome="follower"), "wink_singleflight_total", {"scope": "fleet", "role": "follower"}),
        (WinkEvent(STALE_SERVED), "wink_stale_served_total", {}),
        (WinkEvent(BREAKER, tier="redis", outcome="half_open"), "wink_breaker_transitions_total", {"breaker": "redis", "to": "half_open"}),
        (WinkEvent(INVALIDATION, tier="remote", outcome="revoke"), "wink_invalidations_total", {"origin": "remote", "kind": "revoke"}),
        (WinkEvent(INTEGRITY_FAILURE), "wink_cache_integrity_failures_total", {}),
        (WinkEvent(REDIS_OP, tier="lease", outcome="timeout", duration_s=0.2), "wink_redis_operations_total", {"op": "lease", "result": "timeout"}),
    ],
)  # fmt: skip
def test_each_event_counts_in_its_series(
    registry: CollectorRegistry,
    observer: PrometheusObserver,
    event: WinkEvent,
    name: str,
    labels: dict[str, str],
) -> None:
    observer.on_event(event)
    observer.on_event(event)
    assert value(scrape(registry), name, **labels) == 2


def test_the_closed_label_sets_exist_at_zero(
    registry: CollectorRegistry, observer: PrometheusObserver
) -> None:
    samples = scrape(registry)
    expected = {
        "wink_auth_requests_total": 9,
        "wink_cache_requests_total": 10,
        "wink_verify_requests_total": 4,
        "wink_singleflight_total": 4,
        "wink_stale_served_total": 1,
        "wink_breaker_transitions_total": 6,
        "wink_invalidations_total": 4,
        "wink_cache_integrity_failures_total": 1,
        "wink_redis_operations_total": 21,
    }
    for name, count in expected.items():
        series = {labels: v for (n, labels), v in samples.items() if n == name}
        assert len(series) == count, name
        assert set(series.values()) == {0.0}, name
    assert value(samples, "wink_verify_duration_seconds_count") == 0


def test_every_wink_call_is_observed_in_the_duration_histogram(
    registry: CollectorRegistry, observer: PrometheusObserver
) -> None:
    observer.on_event(WinkEvent(WINK_CALL, outcome="valid", duration_s=0.03, status_code=200))
    observer.on_event(
        WinkEvent(WINK_CALL, outcome="unavailable", duration_s=2.0, error_type="timeout")
    )
    observer.on_event(WinkEvent(WINK_CALL, outcome="bad_response"))
    samples = scrape(registry)
    assert value(samples, "wink_verify_duration_seconds_count") == 2
    assert value(samples, "wink_verify_duration_seconds_sum") == pytest.approx(2.03)
    assert value(samples, "wink_verify_duration_seconds_bucket", le="0.05") == 1
    assert value(samples, "wink_verify_duration_seconds_bucket", le="2.5") == 2
    assert value(samples, "wink_verify_requests_total", result="bad_response") == 1


HOSTILE = [
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
    "q1w2e3r4t5y6u7i8o9p0a1s2d3f4g5h6j7k8l9z0x1c",
    "/api/users/42?token=abc",
    "alice@example.com",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_no_label_ever_holds_a_value_outside_the_vocabulary(
    registry: CollectorRegistry, observer: PrometheusObserver, hostile: str
) -> None:
    for name in (REQUEST, CACHE, WINK_CALL, SINGLEFLIGHT, BREAKER, INVALIDATION, REDIS_OP):
        observer.on_event(WinkEvent(name, outcome=hostile, tier=hostile, error_type=hostile))
        observer.on_event(WinkEvent(name, outcome="hit", tier=hostile))
        observer.on_event(WinkEvent(name, outcome=hostile, tier="local"))
    text = generate_latest(registry).decode()
    assert hostile not in text
    samples = scrape(registry)
    assert value(samples, "wink_auth_requests_total", outcome="other") == 3
    assert value(samples, "wink_cache_requests_total", tier="other", result="other") == 1
    assert value(samples, "wink_cache_requests_total", tier="other", result="hit") == 1
    assert value(samples, "wink_cache_requests_total", tier="local", result="other") == 1
    assert value(samples, "wink_redis_operations_total", op="other", result="other") == 3


def test_missing_labels_count_as_other(
    registry: CollectorRegistry, observer: PrometheusObserver
) -> None:
    observer.on_event(WinkEvent(REQUEST))
    observer.on_event(WinkEvent(CACHE, outcome="miss"))
    samples = scrape(registry)
    assert value(samples, "wink_auth_requests_total", outcome="other") == 1
    assert value(samples, "wink_cache_requests_total", tier="other", result="miss") == 1


def test_unknown_event_names_are_ignored(
    registry: CollectorRegistry, observer: PrometheusObserver
) -> None:
    before = scrape(registry)
    observer.on_event(WinkEvent("added_in_a_later_version", outcome="authenticated", tier="local"))
    after = scrape(registry)
    assert {k: v for k, v in after.items() if not k[0].endswith("_created")} == {
        k: v for k, v in before.items() if not k[0].endswith("_created")
    }


def test_observers_on_one_registry_share_its_series(registry: CollectorRegistry) -> None:
    first = PrometheusObserver(registry=registry)
    second = PrometheusObserver(registry=registry)
    first.on_event(WinkEvent(REQUEST, outcome="rejected"))
    second.on_event(WinkEvent(REQUEST, outcome="rejected"))
    assert value(scrape(registry), "wink_auth_requests_total", outcome="rejected") == 2


def test_two_observers_on_the_default_registry_do_not_clash() -> None:
    from prometheus_client import REGISTRY

    before = REGISTRY.get_sample_value("wink_auth_requests_total", {"outcome": "missing"}) or 0.0
    PrometheusObserver().on_event(WinkEvent(REQUEST, outcome="missing"))
    PrometheusObserver().on_event(WinkEvent(REQUEST, outcome="missing"))
    after = REGISTRY.get_sample_value("wink_auth_requests_total", {"outcome": "missing"})
    assert after == before + 2


def test_separate_registries_or_namespaces_keep_series_apart(registry: CollectorRegistry) -> None:
    other = CollectorRegistry()
    PrometheusObserver(registry=registry).on_event(WinkEvent(REQUEST, outcome="public"))
    PrometheusObserver(registry=other).on_event(WinkEvent(REQUEST, outcome="anonymous"))
    PrometheusObserver(registry=registry, namespace="api2").on_event(
        WinkEvent(REQUEST, outcome="anonymous")
    )
    mine, theirs = scrape(registry), scrape(other)
    assert value(mine, "wink_auth_requests_total", outcome="public") == 1
    assert value(mine, "wink_auth_requests_total", outcome="anonymous") == 0
    assert value(mine, "api2_auth_requests_total", outcome="anonymous") == 1
    assert value(theirs, "wink_auth_requests_total", outcome="anonymous") == 1
    assert value(theirs, "wink_auth_requests_total", outcome="public") == 0


WORKER = textwrap.dedent(
    """
    import sys
    from wink_middleware._events import CACHE, REQUEST, WINK_CALL, WinkEvent
    from wink_middleware.prometheus import PrometheusObserver

    observer = PrometheusObserver()
    n = int(sys.argv[1])
    for _ in range(n):
        observer.on_event(WinkEvent(REQUEST, outcome="authenticated"))
        observer.on_event(WinkEvent(CACHE, tier="local", outcome="hit"))
    observer.on_event(WinkEvent(WINK_CALL, outcome="valid", duration_s=0.25, status_code=200))
    """
)


@pytest.mark.slow
def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(n)], cwd=ROOT, env=env) for n in (3, 5)
    ]
    assert [worker.wait(timeout=60) for worker in workers] == [0, 0]
    assert len(list(tmp_path.glob("counter_*.db"))) == 2

    registry = CollectorRegistry()
    # prometheus_client.multiprocess has no annotations.
    MultiProcessCollector(registry, path=str(tmp_path))  # type: ignore[no-untyped-call, unused-ignore]
    samples = scrape(registry)
    assert value(samples, "wink_auth_requests_total", outcome="authenticated") == 8
    assert value(samples, "wink_auth_requests_total", outcome="rejected") == 0
    assert value(samples, "wink_cache_requests_total", tier="local", result="hit") == 8
    assert value(samples, "wink_verify_requests_total", result="valid") == 2
    assert value(samples, "wink_verify_duration_seconds_count") == 2
    assert value(samples, "wink_verify_duration_seconds_sum") == pytest.approx(0.5)


def test_sessions_count_by_result(
    observer: PrometheusObserver, registry: CollectorRegistry
) -> None:
    # Every result exists at zero, then counts; an outcome outside the vocabulary is "other".
    for outcome in SESSION_OUTCOMES:
        assert value(scrape(registry), "wink_sessions_total", result=outcome) == 0
    for outcome in ("created", "created", "rate_limited", "invalid", "rejected", "nonsense"):
        observer.on_event(WinkEvent(SESSION, outcome=outcome))
    samples = scrape(registry)
    assert value(samples, "wink_sessions_total", result="created") == 2
    assert value(samples, "wink_sessions_total", result="rate_limited") == 1
    assert value(samples, "wink_sessions_total", result="other") == 1
    assert value(samples, "wink_sessions_total", result="unavailable") == 0


def test_the_session_route_counts_in_wink_sessions_total(registry: CollectorRegistry) -> None:
    import httpx

    from wink_middleware import WinkWSGIMiddleware
    from wink_middleware.testing import FakeClock, WinkEmulator

    emulator = WinkEmulator("c", "s")
    verifier = emulator.verifier(
        clock=FakeClock(), observers=[PrometheusObserver(registry=registry)]
    )

    def app(environ: object, start_response: object) -> list[bytes]:
        return []

    middleware = WinkWSGIMiddleware(
        app,
        verifier=verifier,
        session_path="/session",
        session_return_url="https://a.example/",
        session_cancel_url="https://a.example/",
        session_rate=1,
    )
    with httpx.Client(transport=httpx.WSGITransport(app=middleware), base_url="http://t") as client:
        statuses = [client.get("/session").status_code for _ in range(3)]
        statuses.append(client.get("/session?returnUrl=https://b.example/").status_code)
    assert statuses == [200, 200, 429, 400]
    samples = scrape(registry)
    assert value(samples, "wink_sessions_total", result="created") == 2
    assert value(samples, "wink_sessions_total", result="rate_limited") == 1
    assert value(samples, "wink_sessions_total", result="invalid") == 1
