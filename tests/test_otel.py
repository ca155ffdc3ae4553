"""OpenTelemetryObserver: one CLIENT span and one duration measurement per call to Wink."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.helpers import CLIENT_ID, CLIENT_SECRET
from wink_middleware import WinkConfig
from wink_middleware._events import CACHE, REQUEST, WINK_CALL, WinkEvent
from wink_middleware.otel import SPAN_NAME, OpenTelemetryObserver


@dataclass
class Telemetry:
    observer: OpenTelemetryObserver
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()

    def duration_points(self) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "wink.verify.duration"
            for point in metric.data.data_points
            if isinstance(point, HistogramDataPoint)
        ]


def config(base_url: str) -> WinkConfig:
    return WinkConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, base_url=base_url)


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    observer = OpenTelemetryObserver(tracer_provider=tracer_provider, meter_provider=meter_provider)
    observer.bind(config("https://api.winklogin.com"))
    yield Telemetry(observer, spans, reader)
    tracer_provider.shutdown()
    meter_provider.shutdown()


def test_importing_without_opentelemetry_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.delitem(sys.modules, "wink_middleware.otel")
    with pytest.raises(ImportError) as info:
        importlib.import_module("wink_middleware.otel")
    assert str(info.value) == (
        'wink_middleware.otel needs opentelemetry-api: pip install "wink-middleware[otel]"'
    )


def test_a_successful_call_is_a_client_span_over_its_duration(telemetry: Telemetry) -> None:
    before = time.time_ns()
    telemetry.observer.on_event(
        WinkEvent(WINK_CALL, outcome="valid", duration_s=0.25, status_code=200)
    )
    after = time.time_ns()
    (span,) = telemetry.finished()
    assert span.name == SPAN_NAME == "POST /api/ConfidentialClient/verify-client"
    assert span.kind is SpanKind.CLIENT
    assert span.start_time is not None
    assert span.end_time is not None
    assert before <= span.end_time <= after
    assert span.end_time - span.start_time == 250_000_000
    assert dict(span.attributes or {}) == {
        "http.request.method": "POST",
        "server.address": "api.winklogin.com",
        "server.port": 443,
        "http.response.status_code": 200,
        "wink.outcome": "valid",
    }
    assert span.status.status_code is StatusCode.UNSET
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "wink_middleware"


@pytest.mark.parametrize(
    ("base_url", "address", "port"),
    [
        ("https://api.winklogin.com", "api.winklogin.com", 443),
        ("http://127.0.0.1:8123", "127.0.0.1", 8123),
        ("http://wink.internal", "wink.internal", 80),
        ("https://stage.example:8443/prefix", "stage.example", 8443),
    ],
)
def test_bind_learns_the_server_from_base_url(
    telemetry: Telemetry, base_url: str, address: str, port: int
) -> None:
    telemetry.observer.bind(config(base_url))
    telemetry.observer.on_event(WinkEvent(WINK_CALL, outcome="valid", duration_s=0.01))
    (span,) = telemetry.finished()
    attributes = span.attributes or {}
    assert (attributes["server.address"], attributes["server.port"]) == (address, port)


def test_without_bind_the_span_has_no_server_attributes() -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    observer = OpenTelemetryObserver(
        tracer_provider=provider, meter_provider=MeterProvider(metric_readers=[])
    )
    observer.on_event(WinkEvent(WINK_CALL, outcome="rejected", duration_s=0.01, status_code=200))
    (span,) = spans.get_finished_spans()
    assert "server.address" not in (span.attributes or {})


@pytest.mark.parametrize(
    ("event", "error_type", "status"),
    [
        (
            WinkEvent(WINK_CALL, outcome="unavailable", duration_s=5.0, error_type="timeout"),
            "timeout",
            StatusCode.ERROR,
        ),
        (
            WinkEvent(
                WINK_CALL,
                outcome="unavailable",
                duration_s=0.1,
                error_type="http_503",
                status_code=503,
            ),
            "http_503",
            StatusCode.ERROR,
        ),
        (
            WinkEvent(
                WINK_CALL,
                outcome="bad_response",
                duration_s=0.1,
                error_type="JSONDecodeError",
                status_code=200,
            ),
            "JSONDecodeError",
            StatusCode.ERROR,
        ),
        (
            WinkEvent(WINK_CALL, outcome="rejected", duration_s=0.1, status_code=200),
            None,
            StatusCode.UNSET,
        ),
    ],
)
def test_failures_carry_error_type_and_an_error_status(
    telemetry: Telemetry, event: WinkEvent, error_type: str | None, status: StatusCode
) -> None:
    telemetry.observer.on_event(event)
    (span,) = telemetry.finished()
    attributes = span.attributes or {}
    assert attributes.get("error.type") == error_type
    assert attributes.get("http.response.status_code") == event.status_code
    assert attributes["wink.outcome"] == event.outcome
    assert span.status.status_code is status
    assert span.status.description is None


def test_attribute_values_stay_in_their_vocabulary(telemetry: Telemetry) -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0 sig"
    telemetry.observer.on_event(
        WinkEvent(WINK_CALL, outcome=token, duration_s=0.1, error_type=f"failed for {token}")
    )
    (span,) = telemetry.finished()
    attributes = span.attributes or {}
    assert attributes["wink.outcome"] == "other"
    assert attributes["error.type"] == "other"


def test_each_call_records_the_duration_histogram(telemetry: Telemetry) -> None:
    telemetry.observer.on_event(
        WinkEvent(WINK_CALL, outcome="valid", duration_s=0.2, status_code=200)
    )
    telemetry.observer.on_event(
        WinkEvent(WINK_CALL, outcome="valid", duration_s=0.4, status_code=200)
    )
    telemetry.observer.on_event(
        WinkEvent(WINK_CALL, outcome="unavailable", duration_s=1.0, error_type="connect")
    )
    points = {
        tuple(sorted((point.attributes or {}).items())): point
        for point in telemetry.duration_points()
    }
    valid = points[(("http.response.status_code", 200), ("wink.outcome", "valid"))]
    assert valid.count == 2
    assert valid.sum == pytest.approx(0.6)
    down = points[(("wink.outcome", "unavailable"),)]
    assert down.count == 1
    assert down.sum == pytest.approx(1.0)


def test_the_histogram_is_in_seconds(telemetry: Telemetry) -> None:
    telemetry.observer.on_event(WinkEvent(WINK_CALL, outcome="valid", duration_s=0.2))
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    assert (metric.name, metric.unit) == ("wink.verify.duration", "s")


@pytest.mark.parametrize(
    "event",
    [
        WinkEvent(REQUEST, outcome="authenticated"),
        WinkEvent(CACHE, tier="local", outcome="hit"),
        WinkEvent("added_in_a_later_version", outcome="valid", duration_s=1.0),
    ],
)
def test_other_events_are_ignored(telemetry: Telemetry, event: WinkEvent) -> None:
    telemetry.observer.on_event(event)
    assert telemetry.finished() == ()
    assert telemetry.duration_points() == []
