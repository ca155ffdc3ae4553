"""OpenTelemetry spans and metrics for calls to Wink: ``pip install "wink-middleware[otel]"``.

Only ``opentelemetry-api`` is needed here; the application owns the SDK and the exporter. Without a
configured SDK the API's no-op providers make every call free.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:
    raise ImportError(
        'wink_middleware.otel needs opentelemetry-api: pip install "wink-middleware[otel]"'
    ) from exc

from wink_middleware._events import OTHER, WINK_CALL, WINK_CALL_OUTCOMES, WinkEvent
from wink_middleware._version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider
    from opentelemetry.util.types import AttributeValue

    from wink_middleware._config import WinkConfig

__all__ = ["SPAN_NAME", "OpenTelemetryObserver"]

#: The name of the span of each call to Wink (HTTP client semantic conventions: method and route).
SPAN_NAME = "POST /api/ConfidentialClient/verify-client"

_ERROR_OUTCOMES = frozenset({"unavailable", "bad_response"})
# error.type is "timeout", "http_503" or an exception class name: anything else is written as "other".
_ERROR_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,63}")
_DEFAULT_PORTS = {"https": 443, "http": 80}


class OpenTelemetryObserver:
    """An observer that turns each call to Wink into a CLIENT span and a duration measurement.

    Per ``wink_call`` event: a span named ``POST /api/ConfidentialClient/verify-client`` spanning the
    call (it is created when the call has ended, from the event's ``duration_s``), with attributes
    ``http.request.method``, ``server.address``, ``server.port`` (learned in :meth:`bind`),
    ``http.response.status_code`` (when Wink answered), ``error.type`` (when the call failed) and
    ``wink.outcome``; status ERROR when Wink was unavailable or answered badly. The histogram
    ``wink.verify.duration`` (unit ``s``) records the same duration with ``wink.outcome`` and
    ``http.response.status_code``. Other events are ignored.

    ``tracer_provider`` and ``meter_provider`` default to the global providers.
    """

    #: The only events it records: the verifier never builds the others for it.
    event_names = frozenset({WINK_CALL})

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(
            "wink_middleware", __version__, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter("wink_middleware", __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "wink.verify.duration", unit="s", description="Duration of each call to Wink."
        )
        self._server: dict[str, AttributeValue] = {}

    def bind(self, config: WinkConfig) -> None:
        """Learn Wink's host and port from ``config.base_url`` (called once per verifier)."""
        url = urlsplit(config.base_url or "")
        server: dict[str, AttributeValue] = {}
        if url.hostname:
            server["server.address"] = url.hostname
            port = url.port or _DEFAULT_PORTS.get(url.scheme)
            if port is not None:
                server["server.port"] = port
        self._server = server

    def on_event(self, event: WinkEvent) -> None:
        """Record a ``wink_call`` event; any other name returns at once."""
        if event.name != WINK_CALL:
            return
        end = time.time_ns()
        duration = event.duration_s if event.duration_s is not None else 0.0
        outcome = event.outcome if event.outcome in WINK_CALL_OUTCOMES else OTHER
        measured: dict[str, AttributeValue] = {"wink.outcome": outcome}
        if event.status_code is not None:
            measured["http.response.status_code"] = event.status_code
        attributes: dict[str, AttributeValue] = {
            "http.request.method": "POST",
            **self._server,
            **measured,
        }
        if event.error_type is not None:
            attributes["error.type"] = (
                event.error_type if _ERROR_TYPE.fullmatch(event.error_type) else OTHER
            )
        span = self._tracer.start_span(
            SPAN_NAME,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=end - int(duration * 1e9),
        )
        if outcome in _ERROR_OUTCOMES:
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)
        if event.duration_s is not None:
            self._duration.record(event.duration_s, measured)
