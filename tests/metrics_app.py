"""A WSGI app with PrometheusObserver in gunicorn's multiprocess mode, for test_observability.py.

Run with ``PROMETHEUS_MULTIPROC_DIR`` set and WINK_* variables; ``/metrics`` sums every worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from wink_middleware import WinkWSGIMiddleware
from wink_middleware.prometheus import PrometheusObserver

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def _app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/metrics":
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call, unused-ignore]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [generate_latest(registry)]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


app = WinkWSGIMiddleware(_app, public_paths=["/metrics"], observers=[PrometheusObserver()])
