"""Observers through the public API: each decision of a real verification becomes one event.

Unit tests of the two exporters live in test_prometheus.py and test_otel.py; here the middlewares and
verifiers emit, with the emulator as Wink and (for the shared tier) a real redis-server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.redis_server import free_port
from wink_middleware import (
    TokenRejected,
    WinkMiddleware,
    WinkUnavailable,
)
from wink_middleware._events import WinkEvent
from wink_middleware.otel import OpenTelemetryObserver
from wink_middleware.prometheus import PrometheusObserver
from wink_middleware.testing import WinkEmulator

ROOT = Path(__file__).resolve().parent.parent


class Recorder:
    """An observer that keeps every event."""

    def __init__(self) -> None:
        self.events: list[WinkEvent] = []

    def on_event(self, event: WinkEvent) -> None:
        self.events.append(event)

    def count(self, name: str, outcome: str | None = None, tier: str | None = None) -> int:
        return sum(
            1
            for e in self.events
            if e.name == name
            and (outcome is None or e.outcome == outcome)
            and (tier is None or e.tier == tier)
        )


async def ok(request: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


def asgi_app(emulator: WinkEmulator, **options: Any) -> WinkMiddleware:
    verifier = emulator.async_verifier(retries=0, **options)
    return WinkMiddleware(
        Starlette(routes=[Route("/{path:path}", ok)]),
        verifier=verifier,
        public_paths=["/health"],
        optional_paths=["/home"],
    )


async def get(app: Any, path: str, token: str | None = None) -> int:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return (await client.get(path, headers=headers)).status_code


def test_every_request_outcome_and_cache_result_is_an_event() -> None:
    emulator = WinkEmulator(client_id="c", client_secret="s")
    recorder = Recorder()
    app = asgi_app(emulator, observers=[recorder])
    token = emulator.issue_token()

    async def scenario() -> None:
        assert await get(app, "/api", token) == 200
        assert await get(app, "/api", token) == 200
        assert await get(app, "/api") == 401
        assert await get(app, "/api", "not-known-to-wink") == 401
        assert await get(app, "/api", "bad token") == 400  # not a b64token: invalid request
        assert await get(app, "/health") == 200
        assert await get(app, "/home") == 200
        emulator.fail_next(1, 503)
        assert await get(app, "/api", emulator.issue_token()) == 503

    asyncio.run(scenario())
    assert recorder.count("request", "authenticated") == 2
    assert recorder.count("request", "missing") == 1
    assert recorder.count("request", "rejected") == 1
    assert recorder.count("request", "invalid") == 1
    assert recorder.count("request", "public") == 1
    assert recorder.count("request", "anonymous") == 1
    assert recorder.count("request", "unavailable") == 1
    assert recorder.count("cache", "hit", "local") == 1
    assert recorder.count("cache", "miss", "local") == 3
    assert recorder.count("singleflight", "leader", "process") == 3
    calls = [e for e in recorder.events if e.name == "wink_call"]
    assert [c.outcome for c in calls] == ["valid", "rejected", "unavailable"]
    assert [c.status_code for c in calls] == [200, 401, 503]
    assert calls[2].error_type == "http_503"
    assert all(c.duration_s is not None and c.duration_s >= 0 for c in calls)


def test_breaker_transitions_and_stale_serves_are_events() -> None:
    emulator = WinkEmulator(client_id="c", client_secret="s")
    recorder = Recorder()
    verifier = emulator.verifier(
        retries=0, breaker_threshold=2, breaker_cooldown=0.05, observers=[recorder]
    )
    emulator.fail_next(2, 503)
    for i in range(2):
        with pytest.raises(WinkUnavailable):
            verifier.verify(emulator.issue_token(wink_token=f"u{i}"))
    time.sleep(0.06)
    verifier.verify(emulator.issue_token())
    assert [e.outcome for e in recorder.events if e.name == "breaker"] == [
        "open",
        "half_open",
        "closed",
    ]
    assert {e.tier for e in recorder.events if e.name == "breaker"} == {"wink"}


def test_an_observer_that_raises_never_breaks_a_request_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def on_event(self, event: WinkEvent) -> None:
            raise RuntimeError("observer bug")

    emulator = WinkEmulator(client_id="c", client_secret="s")
    recorder = Recorder()
    app = asgi_app(emulator, observers=[Broken(), recorder])
    token = emulator.issue_token()
    caplog.set_level(logging.WARNING, logger="wink_middleware")

    async def scenario() -> list[int]:
        return [await get(app, "/api", token) for _ in range(3)]

    assert asyncio.run(scenario()) == [200, 200, 200]
    assert recorder.count("request", "authenticated") == 3  # the next observer still hears all
    assert sum("Broken" in r.getMessage() for r in caplog.records) == 1


def test_prometheus_series_from_real_requests_hold_no_token_digest_user_or_path() -> None:
    emulator = WinkEmulator(client_id="c", client_secret="s")
    registry = CollectorRegistry()
    app = asgi_app(emulator, observers=[PrometheusObserver(registry=registry)])
    token = emulator.issue_token(wink_token="user-secret-id")

    async def scenario() -> None:
        for _ in range(3):
            await get(app, "/api/private-path", token)
        await get(app, "/api/private-path", "unknown-token-value")

    asyncio.run(scenario())
    text = generate_latest(registry).decode()
    assert 'wink_auth_requests_total{outcome="authenticated"} 3.0' in text
    assert 'wink_auth_requests_total{outcome="rejected"} 1.0' in text
    assert 'wink_cache_requests_total{result="hit",tier="local"} 2.0' in text
    assert 'wink_verify_requests_total{result="valid"} 1.0' in text
    assert "wink_verify_duration_seconds_count 2.0" in text
    for secret in (token, "unknown-token-value", "user-secret-id", "private-path", token[:8]):
        assert secret not in text


@pytest.mark.slow
def test_prometheus_counts_the_shared_tier(redis_url: str) -> None:
    emulator = WinkEmulator(client_id="c", client_secret="s")
    registry = CollectorRegistry()
    observer = PrometheusObserver(registry=registry)
    workers = [emulator.verifier(redis_url=redis_url, observers=[observer]) for _ in range(2)]
    token = emulator.issue_token()
    try:
        for worker in workers:
            worker.verify(token)
        deadline = time.monotonic() + 5
        while workers[1].health()["listener"] != "up":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert workers[0].revoke(token) is True
        while True:  # until the revocation message reached the other worker
            try:
                workers[1].verify(token)
            except TokenRejected:
                break
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        for worker in workers:
            worker.close()
    text = generate_latest(registry).decode()
    assert 'wink_cache_requests_total{result="hit",tier="shared"} 1.0' in text
    assert 'wink_singleflight_total{role="leader",scope="fleet"} 1.0' in text
    assert 'wink_invalidations_total{kind="revoke",origin="local"} 1.0' in text
    assert 'wink_invalidations_total{kind="revoke",origin="remote"} 0.0' not in text
    assert 'wink_redis_operations_total{op="get",result="ok"}' in text
    assert 'wink_redis_operations_total{op="set",result="ok"}' in text


def test_opentelemetry_spans_one_client_span_per_wink_call_with_the_host_and_port() -> None:
    emulator = WinkEmulator(client_id="c", client_secret="s")
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    observer = OpenTelemetryObserver(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    with emulator.serve() as base_url:
        verifier = emulator.verifier(base_url=base_url, retries=0, observers=[observer])
        verifier.verify(emulator.issue_token())
        with pytest.raises(TokenRejected):
            verifier.verify("unknown-token")
        verifier.close()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["POST /api/ConfidentialClient/verify-client"] * 2
    port = int(base_url.rsplit(":", 1)[1])
    for span, status, outcome in zip(spans, (200, 401), ("valid", "rejected"), strict=True):
        attributes = span.attributes or {}
        assert span.kind is SpanKind.CLIENT
        assert attributes["http.request.method"] == "POST"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["server.port"] == port
        assert attributes["http.response.status_code"] == status
        assert attributes["wink.outcome"] == outcome
    data = reader.get_metrics_data()
    assert data is not None
    names = {m.name for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert "wink.verify.duration" in names


def test_log_records_carry_the_fingerprint_and_the_outcome(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = WinkEmulator(client_id="c", client_secret="s")
    verifier = emulator.verifier(retries=0)
    caplog.set_level(logging.DEBUG, logger="wink_middleware")
    token = emulator.issue_token(ttl=-30)
    with pytest.raises(TokenRejected):
        verifier.verify(token)
    emulator.fail_next(1, 503)
    with pytest.raises(WinkUnavailable):
        verifier.verify(emulator.issue_token())
    records = [r for r in caplog.records if r.name == "wink_middleware"]
    assert records
    for record in records:
        assert hasattr(record, "wink_fingerprint") and hasattr(record, "wink_outcome")
    outcomes = Counter(getattr(r, "wink_outcome", None) for r in records)
    assert outcomes["rejected"] >= 1 and outcomes["unavailable"] >= 1
    import hashlib

    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:8]
    assert any(getattr(r, "wink_fingerprint", None) == fingerprint for r in records)


@pytest.mark.slow
def test_prometheus_under_gunicorn_two_workers_in_multiprocess_mode(tmp_path: Path) -> None:
    emulator = WinkEmulator(client_id="c", client_secret="s")
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with emulator.serve() as base_url:
        port = free_port()
        env = {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "WINK_CLIENT_ID": "c",
            "WINK_CLIENT_SECRET": "s",
            "WINK_BASE_URL": base_url,
            "WINK_RETRIES": "0",
        }
        command = [
            sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
            "tests.metrics_app:app",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                try:
                    httpx.get(f"{url}/metrics", timeout=0.5)
                    break
                except httpx.HTTPError:
                    assert time.monotonic() < deadline and process.poll() is None
                    time.sleep(0.1)
            tokens = [emulator.issue_token() for _ in range(10)]
            pids = set()
            for token in tokens:
                for _ in range(3):
                    answer = httpx.get(f"{url}/me", headers={"Authorization": f"Bearer {token}"})
                    assert answer.status_code == 200
                    pids.add(answer.text)
            assert len(pids) == 2, "both workers answered"
            text = httpx.get(f"{url}/metrics").text
        finally:
            process.terminate()
            process.wait(10)
    # Summed over the two workers by prometheus_client's MultiProcessCollector.
    assert 'wink_auth_requests_total{outcome="authenticated"} 30.0' in text
    assert 'wink_auth_requests_total{outcome="public"}' in text


def test_events_no_observer_wants_are_never_emitted() -> None:
    emulator = WinkEmulator(client_id="c", client_secret="s")
    bare = emulator.async_verifier()
    tracing = emulator.async_verifier(observers=[OpenTelemetryObserver()])
    counting = emulator.async_verifier(observers=[Recorder()])
    assert bare.emitter("request") is None and bare.emit is None
    # The OpenTelemetry observer wants only wink_call: a request pays nothing for it.
    assert tracing.emitter("request") is None and tracing.emitter("cache") is None
    assert tracing.emitter("wink_call") is not None
    assert counting.emitter("request") is not None
