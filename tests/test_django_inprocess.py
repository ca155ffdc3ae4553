"""wink_middleware.django in the test process, for the fast loop: the request gate's events, the
lazy Django user, refusals, preflights and DRF, through Django's own test clients.

Django's settings are configured once per process, here, by the ``django_site`` fixture; no other
module of the suite configures Django in this process (``test_django.py`` drives the same project
in a fresh interpreter, and over uvicorn too). Each test sets ``WINK`` with ``override_settings``;
the Wink emulator answers over loopback HTTP from a thread (Django builds its verifiers from the
settings, so they reach Wink as in production).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest

from tests.django_project import settings as project_settings
from wink_middleware import WinkConfig, WinkEvent, WinkMiddleware, WinkWSGIMiddleware
from wink_middleware.testing import WinkEmulator

CLIENT_ID = "django-client"
CLIENT_SECRET = "django-secret"
PREFLIGHT = {"Origin": "http://app.example", "Access-Control-Request-Method": "GET"}


class Recorder:
    """An observer that keeps the outcome of every ``request`` event."""

    def __init__(self) -> None:
        self.outcomes: list[str | None] = []

    def on_event(self, event: WinkEvent) -> None:
        if event.name == "request":
            self.outcomes.append(event.outcome)


@pytest.fixture(scope="module")
def wink() -> Iterator[tuple[WinkEmulator, str]]:
    emulator = WinkEmulator(CLIENT_ID, CLIENT_SECRET)
    with emulator.serve() as url:
        yield emulator, url


@pytest.fixture(scope="module")
def django_site(
    wink: tuple[WinkEmulator, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Django configured (once per process) with the test project under the Wink middleware."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    assert not settings.configured, "another module configured Django in this process"
    base = {n: getattr(project_settings, n) for n in dir(project_settings) if n.isupper()}
    settings.configure(
        **{
            **base,
            "INSTALLED_APPS": [*base["INSTALLED_APPS"], "rest_framework"],
            "MIDDLEWARE": [
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "wink_middleware.django.WinkAuthenticationMiddleware",
            ],
            "AUTHENTICATION_BACKENDS": ["wink_middleware.django.WinkBackend"],
            "ROOT_URLCONF": "tests.django_project.wink_urls",
            # A file: the async client reaches the database from another thread.
            "DATABASES": {
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": str(tmp_path_factory.mktemp("django") / "db.sqlite3"),
                }
            },
            "WINK": {},
        }
    )
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    return options(wink[1])


def options(url: str, **over: Any) -> dict[str, Any]:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": url,
        "public_paths": ["/health", "/api/public/*"],
        "optional_paths": ["/feed"],
        "retries": 0,
        "breaker_threshold": 1000,
        **over,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


Send = Callable[[str, str, dict[str, str]], httpx.Response | Any]


def django_sync(wink_options: dict[str, Any]) -> Callable[[list[Any]], list[Any]]:
    """Send requests through Django's sync test client under ``WINK=wink_options``."""
    from django.test import Client, override_settings

    def run(requests: list[Any]) -> list[Any]:
        with override_settings(WINK=wink_options):
            client = Client()
            return [client.generic(m, p, headers=h) for m, p, h in requests]

    return run


def django_async(wink_options: dict[str, Any]) -> Callable[[list[Any]], list[Any]]:
    """The same through Django's ``AsyncClient`` (the middleware's async path)."""
    from django.test import AsyncClient, override_settings

    async def each(requests: list[Any]) -> list[Any]:
        from wink_middleware.django.middleware import _wink

        client = AsyncClient()
        try:
            return [await client.generic(m, p, headers=h) for m, p, h in requests]
        finally:
            # This loop's verifier: its client would outlive asyncio.run() unclosed.
            await _wink().async_gate()[0].aclose()

    def run(requests: list[Any]) -> list[Any]:
        with override_settings(WINK=wink_options):
            return asyncio.run(each(requests))

    return run


def wsgi_reference(wink_options: dict[str, Any]) -> Callable[[list[Any]], list[Any]]:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Access-Control-Allow-Origin", "http://app.example")])
        return [b"content"]

    def run(requests: list[Any]) -> list[Any]:
        middleware = WinkWSGIMiddleware(app, config=WinkConfig(**wink_options))
        transport = httpx.WSGITransport(app=middleware)
        with httpx.Client(transport=transport, base_url="http://testserver") as client:
            answers = [client.request(m, p, headers=h) for m, p, h in requests]
        middleware.close()
        return answers

    return run


def asgi_reference(wink_options: dict[str, Any]) -> Callable[[list[Any]], list[Any]]:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"access-control-allow-origin", b"http://app.example")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"content"})

    async def each(requests: list[Any]) -> list[Any]:
        middleware = WinkMiddleware(app, config=WinkConfig(**wink_options))
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            answers = [await client.request(m, p, headers=h) for m, p, h in requests]
        await middleware.aclose()
        return answers

    def run(requests: list[Any]) -> list[Any]:
        return asyncio.run(each(requests))

    return run


ADAPTERS = {
    "django_sync": django_sync,
    "django_async": django_async,
    "wsgi": wsgi_reference,
    "asgi": asgi_reference,
}


def event_plan(emulator: WinkEmulator) -> list[tuple[str, str, dict[str, str]]]:
    revoked = emulator.issue_token()
    emulator.revoke(revoked)
    user = bearer(emulator.issue_token(wink_token="events-user"))
    return [
        ("GET", "/whoami", user),  # a miss: resolved, then admitted
        ("GET", "/whoami", user),  # a cache hit
        ("GET", "/whoami", {}),
        ("GET", "/whoami", {"Authorization": "Bearer %%%"}),
        ("GET", "/whoami", bearer(revoked)),
        ("GET", "/health", {}),
        ("GET", "/feed", {}),
        ("OPTIONS", "/cors", PREFLIGHT),
    ]


EXPECTED_OUTCOMES = [
    "authenticated",
    "authenticated",
    "missing",
    "invalid",
    "rejected",
    "public",
    "anonymous",
    "preflight",
]


def test_importing_without_django_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "django", None)
    monkeypatch.delitem(sys.modules, "wink_middleware.django", raising=False)
    with pytest.raises(ImportError, match="pip install django"):
        import wink_middleware.django  # noqa: F401


def test_the_package_names_what_it_has(django_site: dict[str, Any]) -> None:
    import wink_middleware.django as wink_django

    assert wink_django.WinkBackend.__module__ == "wink_middleware.django"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = wink_django.Nope


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_every_adapter_emits_one_request_event_per_request_with_the_same_outcomes(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str], adapter: str
) -> None:
    recorder = Recorder()
    send = ADAPTERS[adapter]({**django_site, "observers": [recorder]})
    answers = send(event_plan(wink[0]))
    assert [a.status_code for a in answers] == [200, 200, 401, 400, 401, 200, 200, 200]
    assert recorder.outcomes == EXPECTED_OUTCOMES


def test_a_verified_request_whose_view_ignores_the_user_makes_no_database_query(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str]
) -> None:
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    user = bearer(wink[0].issue_token(wink_token="lazy-user"))
    with override_settings(WINK=django_site):
        client = Client()
        with CaptureQueriesContext(connection) as queries:
            first = client.get("/profile", headers=user)  # verified with Wink
            cached = client.get("/profile", headers=user)  # a cache hit
        assert (first.json(), cached.json()) == ({"wink": "lazy-user"}, {"wink": "lazy-user"})
        assert len(queries) == 0
        with CaptureQueriesContext(connection) as queries:
            seen = client.get("/whoami", headers=user).json()
        assert seen["username"] == "lazy-user"
        assert len(queries) > 0, "reading request.user looks the user up"


@pytest.mark.parametrize("runner", [django_sync, django_async], ids=["sync", "async"])
def test_the_django_user_is_looked_up_only_when_a_view_reads_it(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str], runner: Any
) -> None:
    from django.contrib.auth.models import User

    name = f"lazy-{runner.__name__}"
    token = bearer(wink[0].issue_token(wink_token=name))
    send = runner(django_site)
    assert send([("GET", "/profile", token)])[0].json() == {"wink": name}
    assert not User.objects.filter(username=name).exists(), "WinkBackend was not asked"
    # The async view awaits request.auser(); the sync one reads request.user.
    seen = send([("GET", "/awhoami" if runner is django_async else "/whoami", token)])[0].json()
    assert (seen["username"], seen["authenticated"]) == (name, True)
    assert User.objects.filter(username=name).count() == 1


# -- refusals, preflights and options, through the sync and the async path -------------------------

RUNNERS = {"sync": django_sync, "async": django_async}


@pytest.mark.parametrize("transport", RUNNERS)
def test_refusals_are_the_wsgi_middlewares_answers(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str], transport: str
) -> None:
    revoked = wink[0].issue_token()
    wink[0].revoke(revoked)
    plan = [
        ("GET", "/whoami", {}),
        ("GET", "/whoami", {"Authorization": "Bearer %%%"}),
        ("GET", "/whoami", bearer(revoked)),
        ("HEAD", "/whoami", {}),
        ("OPTIONS", "/whoami", PREFLIGHT),  # a preflight the view does not answer with CORS
    ]
    got = RUNNERS[transport](django_site)(plan)
    expected = wsgi_reference({**django_site, "public_paths": ["/cors"]})(
        [(m, "/cors" if m == "OPTIONS" else p, h) for m, p, h in plan[:4]]
        + [("GET", "/whoami", {})]  # the reference of a failed preflight: the token-less 401
    )
    for (method, _, _), answer, reference in zip(plan, got, expected, strict=True):
        assert answer.status_code == reference.status_code
        assert answer.content == (b"" if method == "HEAD" else reference.content)
        for header in ("WWW-Authenticate", "Cache-Control", "Content-Type"):
            assert answer.headers.get(header) == reference.headers.get(header)


@pytest.mark.parametrize("transport", RUNNERS)
def test_a_cors_preflight_gets_only_the_views_cors_answer_without_its_body(
    django_site: dict[str, Any], transport: str
) -> None:
    (answer,) = RUNNERS[transport](django_site)([("OPTIONS", "/cors", PREFLIGHT)])
    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["Content-Length"] == "0"
    assert answer.headers["Access-Control-Allow-Origin"] == "http://app.example"


@pytest.mark.parametrize("transport", RUNNERS)
def test_public_and_optional_paths(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str], transport: str
) -> None:
    revoked = wink[0].issue_token()
    wink[0].revoke(revoked)
    user = bearer(wink[0].issue_token(wink_token=f"paths-{transport}"))
    answers = RUNNERS[transport]({**django_site, "anonymous_on_invalid": True})(
        [
            ("GET", "/health", user),  # public: not checked, the session's user kept
            ("GET", "/feed", {}),
            ("GET", "/feed", user),
            ("GET", "/feed", bearer(revoked)),
        ]
    )
    public, anonymous, signed_in, refused = (a.json() for a in answers)
    assert (public["wink"], public["authenticated"]) == (None, False)
    assert (anonymous["wink"], anonymous["authenticated"], anonymous["wink_error"]) == (
        None,
        False,
        None,
    )
    assert (signed_in["wink"], signed_in["username"]) == (f"paths-{transport}",) * 2
    assert (refused["wink"], refused["authenticated"]) == (None, False)
    assert refused["wink_error"] == "invalid_token"  # anonymous_on_invalid: the page can say why


@pytest.mark.parametrize("transport", RUNNERS)
def test_without_remote_user_only_request_wink_is_set(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str], transport: str
) -> None:
    user = bearer(wink[0].issue_token(wink_token=f"nobody-{transport}"))
    answers = RUNNERS[transport]({**django_site, "remote_user": False})(
        [("GET", "/whoami", user), ("GET", "/feed", {}), ("GET", "/api/me", user)]
    )
    whoami, feed, drf = (a.json() for a in answers)
    assert (whoami["wink"], whoami["authenticated"]) == (f"nobody-{transport}", False)
    assert feed["authenticated"] is False
    assert drf == {"username": None, "wink": f"nobody-{transport}"}  # request.user: the profile


@pytest.mark.parametrize("transport", RUNNERS)
def test_on_error_answers_a_refusal_when_it_returns_a_response(
    django_site: dict[str, Any], transport: str
) -> None:
    from django.http import HttpResponse

    seen: list[str | None] = []

    def on_error(request: Any, exc: Any) -> Any:
        seen.append(exc.error)
        return HttpResponse("custom", status=418) if request.path == "/whoami" else None

    answers = RUNNERS[transport]({**django_site, "on_error": on_error})(
        [("GET", "/whoami", {}), ("GET", "/profile", {})]
    )
    assert (answers[0].status_code, answers[0].content) == (418, b"custom")
    assert answers[1].status_code == 401  # on_error returned None: the middleware's answer
    assert seen == [None, None]


def test_settings_wink_may_be_a_winkconfig_and_must_be_a_mapping_otherwise(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str]
) -> None:
    from django.test import Client, override_settings

    from wink_middleware import WinkConfigError

    token = bearer(wink[0].issue_token(wink_token="configured"))
    with override_settings(WINK=WinkConfig(**django_site)):
        assert Client().get("/profile", headers=token).json() == {"wink": "configured"}
    with override_settings(WINK=["not", "a", "mapping"]), pytest.raises(WinkConfigError):
        Client().get("/profile")


# -- Django REST framework -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", RUNNERS)
def test_drf_gets_the_wink_user_and_reuses_the_middlewares_answer(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str], transport: str
) -> None:
    name = f"drf-{transport}"
    token = bearer(wink[0].issue_token(wink_token=name))
    wink[0].reset()
    # No cache: every verification is a Wink call. /api/me: the middleware verified, DRF reused it;
    # /api/public/me: a public path, WinkAuthentication verified.
    answers = RUNNERS[transport]({**django_site, "cache_size": 0})(
        [("GET", "/api/me", token), ("GET", "/api/public/me", token)]
    )
    assert [a.json() for a in answers] == [{"username": name, "wink": name}] * 2
    assert wink[0].calls == 2


def test_drf_refusals(django_site: dict[str, Any], wink: tuple[WinkEmulator, str]) -> None:
    revoked = wink[0].issue_token()
    wink[0].revoke(revoked)
    send = django_sync(django_site)
    missing, rejected, strict_missing, strict_rejected = send(
        [
            ("GET", "/api/public/me", {}),
            ("GET", "/api/public/me", bearer(revoked)),
            ("GET", "/api/public/strict/me", {}),
            ("GET", "/api/public/strict/me", bearer(revoked)),
        ]
    )
    reference_missing, reference_rejected = wsgi_reference(django_site)(
        [("GET", "/me", {}), ("GET", "/me", bearer(revoked))]
    )
    # DRF's own handler: 401 with the Bearer challenge (not 403), and the middleware's body.
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="wink"'
    assert rejected.status_code == 401
    assert rejected.json() == reference_rejected.json()
    assert rejected.headers["WWW-Authenticate"] == reference_rejected.headers["WWW-Authenticate"]
    # exception_handler: the middleware's answers byte for byte.
    for answer, reference in (
        (strict_missing, reference_missing),
        (strict_rejected, reference_rejected),
    ):
        assert (answer.status_code, answer.content) == (reference.status_code, reference.content)
        assert answer.headers["Cache-Control"] == "no-store"


def test_drf_outage_is_a_503_with_retry_after(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str]
) -> None:
    token = bearer(wink[0].issue_token())
    wink[0].fail_next(2, 503, headers={"Retry-After": "7"})
    answers = django_sync(django_site)(
        [("GET", "/api/public/me", token), ("GET", "/api/public/strict/me", token)]
    )
    assert [(a.status_code, a.headers["Retry-After"]) for a in answers] == [(503, "7")] * 2


def test_drf_on_its_own_emits_the_request_event_and_after_the_middleware_does_not(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str]
) -> None:
    from django.conf import settings
    from django.test import Client, override_settings

    token = bearer(wink[0].issue_token(wink_token="drf-alone"))
    recorder = Recorder()
    without_wink = [m for m in settings.MIDDLEWARE if "wink_middleware" not in m]
    with override_settings(WINK={**django_site, "observers": [recorder]}):
        client = Client()
        assert client.get("/api/public/me", headers=token).status_code == 200
        assert recorder.outcomes == ["public"]  # the middleware decided: DRF's check is quiet
        with override_settings(MIDDLEWARE=without_wink):
            alone = Client()
            assert alone.get("/api/me", headers=token).json()["username"] == "drf-alone"
            assert alone.get("/api/me").status_code == 401
    assert recorder.outcomes == ["public", "authenticated", "anonymous"]


SESSION_OPTIONS = {
    "session_path": "/api/wink/session",
    "session_return_url": "https://app.example/signed-in",
    "session_cancel_url": "https://app.example/cancelled",
}
SESSION_BAD = [
    "returnUrl=https%3A%2F%2Fevil.example%2F",
    "returnUrl=javascript%3Aalert(1)",
    "cancelUrl=%2F%2Fevil.example%2F",
    "cancelUrl=https%3A%2F%2Fu%40app.example%2F",
    "returnUrl=%2Frelative",
    "returnUrl=https%3A%2F%2Fapp.example%2F%C3%A9",
    "returnUrl=https%3A%2F%2Fapp.example%2F" + "a" * 10_240,
]


def session_plan() -> list[tuple[str, str, dict[str, str]]]:
    path = SESSION_OPTIONS["session_path"]
    return [
        ("GET", path, {}),
        ("GET", path + "?returnUrl=https%3A%2F%2Fapp.example%2Fother", {}),
        ("GET", path, {"Authorization": "Bearer %%%"}),  # never read: the route needs no token
        ("POST", path, {}),
        ("HEAD", path, {}),
        *(("GET", f"{path}?{query}", {}) for query in SESSION_BAD),
        ("GET", "/whoami", {}),  # the rest stays protected
    ]


def session_shape(answer: Any) -> tuple[Any, ...]:
    """What every adapter must answer alike (the session id itself differs per call)."""
    body = answer.content
    if answer.status_code == 200:
        body = sorted(answer.json())
    headers = answer.headers
    return (
        answer.status_code,
        body,
        headers.get("content-type"),
        headers.get("cache-control"),
        headers.get("allow"),
    )


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_session_route_answers_alike_on_every_adapter(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str], adapter: str
) -> None:
    emulator = wink[0]
    reference = [
        session_shape(a) for a in wsgi_reference({**django_site, **SESSION_OPTIONS})(session_plan())
    ]
    emulator.reset()
    answers = ADAPTERS[adapter]({**django_site, **SESSION_OPTIONS})(session_plan())
    shapes = [session_shape(a) for a in answers]
    assert shapes == reference
    statuses = [s[0] for s in shapes]
    assert statuses == [200, 200, 200, 405, 405, *[400] * len(SESSION_BAD), 401]
    assert shapes[0][1] == ["sessionId"] and shapes[0][3] == "no-store"
    assert shapes[3][4] == "GET"
    # Three sessions created; every refused request reached no Wink at all.
    assert emulator.session_calls == 3
    assert emulator.use_session(answers[0].json()["sessionId"]) == (
        "https://app.example/signed-in",
        "https://app.example/cancelled",
    )
    assert emulator.use_session(answers[1].json()["sessionId"]) == (
        "https://app.example/other",
        "https://app.example/cancelled",
    )
    for answer in answers:
        assert CLIENT_SECRET.encode() not in answer.content


@pytest.mark.parametrize("adapter", ["django_sync", "django_async"])
def test_django_session_failures_are_the_middlewares_json(
    django_site: dict[str, Any], wink: tuple[WinkEmulator, str], adapter: str
) -> None:
    emulator = wink[0]
    emulator.reset()
    path = SESSION_OPTIONS["session_path"]
    emulator.fail_next(1, 503, headers={"Retry-After": "4"})
    emulator.fail_next(1, 401)
    # A bucket of 2 x 1.5 = 3 sessions (refilling one every 0.67 s, longer than these requests).
    send = ADAPTERS[adapter]({**django_site, **SESSION_OPTIONS, "session_rate": 1.5})
    unavailable, refused, created, limited = send([("GET", path, {})] * 4)
    assert (unavailable.status_code, unavailable.headers["retry-after"]) == (503, "4")
    assert refused.status_code == 502 and refused.json()["error"] == "bad_gateway"
    assert created.status_code == 200
    # Each of the three took a token, failed or not: the fourth is refused without a call.
    assert emulator.session_calls == 3
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"] == "too_many_requests"


@pytest.mark.parametrize("adapter", ["django_sync", "django_async"])
def test_the_readmes_django_settings_give_django_and_drf_the_route(
    django_site: dict[str, Any],
    wink: tuple[WinkEmulator, str],
    adapter: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib
    import sys

    # The example module builds its Flask app at import: it reads these.
    monkeypatch.setenv("WINK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("WINK_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("WINK_BASE_URL", wink[1])
    sys.modules.pop("examples.sign_in", None)
    example = importlib.import_module("examples.sign_in")
    example.flask_app.wsgi_app.close()
    emulator = wink[0]
    emulator.reset()
    path = example.WINK["session_path"]
    send = ADAPTERS[adapter]({**django_site, **example.WINK})
    default, admin, foreign, drf = send(
        [
            ("GET", path, {}),
            ("GET", path + "?returnUrl=https%3A%2F%2Fadmin.app.example%2Fback", {}),
            ("GET", path + "?returnUrl=https%3A%2F%2Fevil.example%2F", {}),
            ("GET", "/api/me", {}),  # a DRF view: still protected
        ]
    )
    assert emulator.use_session(default.json()["sessionId"]) == (
        "https://app.example/signed-in",
        "https://app.example/",
    )
    assert emulator.use_session(admin.json()["sessionId"]) == (
        "https://admin.app.example/back",
        "https://app.example/",
    )
    assert foreign.status_code == 400
    assert drf.status_code == 401
    assert emulator.session_calls == 2
