"""Cache-hit cost in-process: a bare WSGI "hello" app side by side with the same app behind
``WinkWSGIMiddleware`` on a warm cache; then, for scale, the same pair with a Flask "hello" route.

A minimal driver does what a WSGI server does per request, minus the socket: copy a prepared
environ, call the app with a no-op ``start_response``, iterate the body, close it. The variants run
in alternating rounds (the order rotates each round) and the medians are compared.

Run it from the repository root (seconds, not minutes; not part of pytest):

    .venv/bin/python -m benchmarks.bench_wsgi [--rounds 9] [-n 20000]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import httpx
from flask import Flask

from benchmarks._harness import Row, jwt, median, profile_body, wink_config
from wink_middleware import WinkVerifier, WinkWSGIMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["flask_hello", "hello", "run", "wsgi_environ"]

TOKEN_PADDING = 400  # a token of about 1 KB, like a Keycloak access token with a few roles
TARGET = 0.80  # the wrapped app keeps at least this share of the bare app's rate


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The bare app: a constant greeting."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def flask_hello() -> Flask:
    """The same greeting as a one-route Flask app."""
    app = Flask(__name__)

    @app.get("/hello")
    def greet() -> str:
        return "hello"

    return app


def wsgi_environ(token: str) -> dict[str, Any]:
    """A GET /hello environ as gunicorn or wsgiref builds it, with a bearer token."""
    return {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/hello",
        "QUERY_STRING": "",
        "RAW_URI": "/hello",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "51000",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_ACCEPT": "*/*",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": None,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }


class _Statuses:
    """A no-op ``start_response`` that remembers the last status, to prove every variant said 200."""

    def __init__(self) -> None:
        self.last = ""

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.last = status
        return None


def driver(app: WSGIApplication, environ: dict[str, Any]) -> Callable[[int], float]:
    """``run(n) -> seconds``: serve ``n`` requests to ``app`` as a server would, minus the socket."""
    start_response = _Statuses()

    def run(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            body = app(environ.copy(), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        elapsed = time.perf_counter() - started
        if start_response.last != "200 OK":
            raise RuntimeError(f"the benchmarked app answered {start_response.last!r}, not 200")
        return elapsed

    return run


class _Wink(httpx.BaseTransport):
    """Wink's Verify Client, in-process: any token is valid (only the warm-up reaches it)."""

    def __init__(self) -> None:
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        body = profile_body("4b15e1bc-d098-4555-bd12-4e904775a413", time.time() + 3600)
        return httpx.Response(200, headers={"content-type": "application/json"}, content=body)


def alternate(
    variants: dict[str, Callable[[int], float]], *, rounds: int, n: int
) -> dict[str, list[float]]:
    """Each variant's seconds per request, one figure per round, the order rotating each round."""
    names = list(variants)
    timings: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up: first-call paths, lazy imports
        variants[name](max(1, n // 10))
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            timings[name].append(variants[name](n) / n)
    return timings


def run(*, rounds: int, n: int) -> list[Row]:
    """Measure and return the table rows of the WSGI cache-hit benchmark."""
    token = jwt(padding=TOKEN_PADDING)
    wink = _Wink()
    verifier = WinkVerifier(wink_config(), client=httpx.Client(transport=wink))
    verifier.verify(token)  # warm the cache through the public API
    environ = wsgi_environ(token)
    flask = flask_hello()
    timings = alternate(
        {
            "bare": driver(hello, environ),
            "wink": driver(WinkWSGIMiddleware(hello, verifier=verifier), environ),
        },
        rounds=rounds,
        n=n,
    )
    # A Flask request costs some 100x the bare app: fewer of them give as steady a median.
    flask_n = max(1, n // 10)
    flask_timings = alternate(
        {
            "bare": driver(flask, environ),
            "wink": driver(WinkWSGIMiddleware(flask.wsgi_app, verifier=verifier), environ),
        },
        rounds=rounds,
        n=flask_n,
    )
    verifier.close()
    if wink.calls != 1:
        raise RuntimeError(f"the cache was not warm: Wink was called {wink.calls} times")
    return [
        *_rows(
            f"WSGI cache hit ({len(token)} B JWT, {rounds}x{n} req, median)",
            "WSGI hello",
            timings,
            goal=True,
        ),
        *_rows(
            f"For scale: Flask ({rounds}x{flask_n} req, median)",
            "Flask hello route",
            flask_timings,
            goal=False,
        ),
    ]


def _rows(section: str, app: str, timings: dict[str, list[float]], *, goal: bool) -> list[Row]:
    bare, wrapped = median(timings["bare"]), median(timings["wink"])
    ratio = bare / wrapped
    per_round = sorted(b / w for b, w in zip(timings["bare"], timings["wink"], strict=True))
    return [
        Row(section, f"(a) bare {app}", f"{1 / bare:,.0f} req/s ({bare * 1e6:.2f} µs/req)"),
        Row(
            section,
            "(b) + WinkWSGIMiddleware, warm cache",
            f"{1 / wrapped:,.0f} req/s ({wrapped * 1e6:.2f} µs/req, +{(wrapped - bare) * 1e6:.2f})",
        ),
        Row(
            section,
            "rate ratio (b)/(a)",
            f"{ratio:.2f} (rounds {per_round[0]:.2f}..{per_round[-1]:.2f})",
            f"≥ {TARGET:.2f}" if goal else "",
            (ratio >= TARGET) if goal else None,
        ),
    ]


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("-n", type=int, default=20_000, help="requests per variant per round")
    args = parser.parse_args()
    section = ""
    for row in run(rounds=args.rounds, n=args.n):
        if row.section != section:
            section = row.section
            print(section)
        verdict = f"  [{row.goal}: {row.verdict}]" if row.goal else ""
        print(f"  {row.measure:<40} {row.value}{verdict}")


if __name__ == "__main__":
    main()
