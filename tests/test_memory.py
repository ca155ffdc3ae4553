"""Requests leave nothing behind: no exception instance outlives the request that raised it.

An exception object raised twice keeps every frame it passed through (each raise appends to its
``__traceback__``), so one shared instance on a request path pins the frames, scopes and environs
of every request that ever raised it: memory grows without bound on ordinary anonymous traffic.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.helpers import BASE_URL, CLIENT_ID, CLIENT_SECRET
from wink_middleware import WinkMiddleware, WinkWSGIMiddleware

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 100_000
WARM_UP = 2_000
# Growth allowed over REQUESTS once warm: far below one traceback entry per request (~100 bytes
# each, plus the frames they pin), far above tracemalloc's own noise.
ALLOWED_GROWTH = 256 * 1024


WALK_SCRIPT = """
import importlib, pkgutil
from django.conf import settings

# wink_middleware.django's DRF part reads Django's settings when it is imported.
settings.configure(INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"])
import django

django.setup()
import wink_middleware

names = [wink_middleware.__name__]
names += [info.name for info in pkgutil.walk_packages(wink_middleware.__path__, "wink_middleware.")]
for name in names:
    module = importlib.import_module(name)
    print("module", name)
    for attribute, value in vars(module).items():
        if isinstance(value, BaseException):
            print("shared", f"{name}.{attribute}")
"""


def test_no_module_holds_an_exception_instance() -> None:
    # Every module of the package, the optional integrations too (the dev extra has them all), in
    # a fresh interpreter with Django configured.
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(WALK_SCRIPT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.split(" ", 1) for line in done.stdout.splitlines()]
    modules = {name for kind, name in lines if kind == "module"}
    assert {
        "wink_middleware.django",
        "wink_middleware.prometheus",
        "wink_middleware.otel",
    } <= modules
    assert [name for kind, name in lines if kind == "shared"] == []


def test_the_module_walk_finds_a_shared_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    # The walk above can fail: a module-level instance is what it reports.
    from wink_middleware import _exceptions

    monkeypatch.setattr(_exceptions, "_SHARED", _exceptions.MissingToken(), raising=False)
    found = [name for name, value in vars(_exceptions).items() if isinstance(value, BaseException)]
    assert found == ["_SHARED"]


def growth_over(run: Callable[[int], None]) -> int:
    """Bytes still allocated after REQUESTS calls of ``run``, measured once warm."""
    run(WARM_UP)
    # Cyclic garbage not yet collected is not a leak (a few hundred KB of it on 3.12): collect
    # before both readings, so only what is still reachable counts.
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run(REQUESTS)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


async def _asgi_ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _wsgi_ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


OPTIONS: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "base_url": BASE_URL,
    "optional_paths": ["/page"],
}


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/me", "/page"], ids=["protected", "optional"])
def test_token_less_requests_leave_asgi_memory_flat(path: str) -> None:
    middleware = WinkMiddleware(_asgi_ok, **OPTIONS)
    statuses: set[int] = set()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async def requests(count: int) -> None:
        for _ in range(count):
            scope = {
                "type": "http",
                "method": "GET",
                "path": path,
                "raw_path": path.encode(),
                "root_path": "",
                "query_string": b"",
                "headers": [(b"host", b"api.test")],
            }
            await middleware(scope, receive, send)

    assert growth_over(lambda count: asyncio.run(requests(count))) < ALLOWED_GROWTH
    assert statuses == ({401} if path == "/me" else {200})


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/me", "/page"], ids=["protected", "optional"])
def test_token_less_requests_leave_wsgi_memory_flat(path: str) -> None:
    middleware = WinkWSGIMiddleware(_wsgi_ok, **OPTIONS)
    statuses: set[str] = set()

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        statuses.add(status)
        return None

    def requests(count: int) -> None:
        for _ in range(count):
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": path,
                "SCRIPT_NAME": "",
                "QUERY_STRING": "",
                "HTTP_HOST": "api.test",
                "wsgi.url_scheme": "http",
            }
            for chunk in middleware(environ, start_response):
                assert chunk is not None

    assert growth_over(requests) < ALLOWED_GROWTH
    assert statuses == ({"401 Unauthorized"} if path == "/me" else {"200 OK"})


DJANGO_SCRIPT = """
import asyncio, gc, sys, tracemalloc
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    AUTHENTICATION_BACKENDS=[
        "django.contrib.auth.backends.ModelBackend",
        "wink_middleware.django.WinkBackend",
    ],
    WINK={
        "client_id": "c", "client_secret": "s3cret", "base_url": "https://wink.test",
        "optional_paths": ["/page"],
    },
)
django.setup()
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import RequestFactory
from wink_middleware.django import WinkAuthenticationMiddleware

PATH, MODE, REQUESTS, WARM_UP = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
factory = RequestFactory()
statuses = set()

def view(request):
    return HttpResponse("ok")

async def async_view(request):
    return HttpResponse("ok")

if MODE == "sync":
    middleware = WinkAuthenticationMiddleware(view)
    def run(count):
        for _ in range(count):
            request = factory.get(PATH)
            request.user = AnonymousUser()
            statuses.add(middleware(request).status_code)
else:
    middleware = WinkAuthenticationMiddleware(async_view)
    async def requests(count):
        for _ in range(count):
            request = factory.get(PATH)
            request.user = AnonymousUser()
            statuses.add((await middleware(request)).status_code)
    def run(count):
        asyncio.run(requests(count))

run(WARM_UP)
gc.collect()
tracemalloc.start()
before = tracemalloc.get_traced_memory()[0]
run(REQUESTS)
gc.collect()
print(tracemalloc.get_traced_memory()[0] - before, sorted(statuses))
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("path", ["/me", "/page"], ids=["protected", "optional"])
def test_token_less_requests_leave_django_memory_flat(path: str, mode: str) -> None:
    # Django's settings are per process: a fresh interpreter per case. Django requests cost ~10x
    # a bare middleware call, so a fifth of the requests (the leak was ~1 KB per request).
    counts = [str(REQUESTS // 5), str(WARM_UP)]
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(DJANGO_SCRIPT), path, mode, *counts],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    growth, statuses = done.stdout.split(" ", 1)
    assert int(growth) < ALLOWED_GROWTH
    assert statuses.strip() == ("[401]" if path == "/me" else "[200]")
