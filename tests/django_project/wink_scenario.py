"""Drive the test project through WinkAuthenticationMiddleware and print what happened, as JSON.

Run as ``python -W error -m tests.django_project.wink_scenario`` (tests/test_django.py does): a
fresh interpreter, so these settings never meet another test's. Wink is the package's emulator,
served over HTTP; the same requests go through Django's sync ``Client``, its ``AsyncClient`` and
uvicorn over a socket, and the error cases through ``WinkWSGIMiddleware`` too, as the reference.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import django
import httpx
from django.conf import settings
from django.core.management import call_command

from tests.django_project import settings as project_settings
from tests.servers import serve_asgi
from wink_middleware import WinkConfig, WinkWSGIMiddleware
from wink_middleware.testing import WinkEmulator

CLIENT_ID = "django-client"
CLIENT_SECRET = "django-secret"
PREFLIGHT = {"Origin": "http://app.example", "Access-Control-Request-Method": "GET"}
KEPT = ("www-authenticate", "retry-after", "cache-control", "content-type", "content-length")
KEPT_PREFLIGHT = (*KEPT, "access-control-allow-origin")

#: name -> (method, path, headers, what to do just before sending)
Plan = dict[str, tuple[str, str, dict[str, str], Callable[[], None] | None]]
Send = Callable[[str, str, dict[str, str]], dict[str, Any]]
AsyncSend = Callable[[str, str, dict[str, str]], Awaitable[dict[str, Any]]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def answer(status: int, content: bytes, headers: Any, method: str) -> dict[str, Any]:
    """What a test compares of a response."""
    try:
        body: Any = json.loads(content)
    except ValueError:
        body = None
    kept = KEPT_PREFLIGHT if method == "OPTIONS" else KEPT
    return {
        "status": status,
        "raw": content.decode("latin-1"),
        "body": body,
        "headers": {name: headers[name] for name in kept if name in headers},
    }


def error_plan(wink: WinkEmulator) -> Plan:
    """The refusals, the same for the Django middleware and the reference."""
    revoked = wink.issue_token()
    wink.revoke(revoked)
    return {
        "missing": ("GET", "/whoami", {}, None),
        "malformed": ("GET", "/whoami", {"Authorization": "Bearer %%%"}, None),
        "two_headers": ("GET", "/whoami", {"Authorization": "Bearer a, Bearer b"}, None),
        "rejected": ("GET", "/whoami", bearer(revoked), None),
        "outage": ("GET", "/whoami", bearer(wink.issue_token()), lambda: outage(wink)),
        "head": ("HEAD", "/whoami", {}, None),
        "preflight": ("OPTIONS", "/whoami", PREFLIGHT, None),
    }


def outage(wink: WinkEmulator) -> None:
    wink.fail_next(1, 503, headers={"Retry-After": "7"})


def plan(wink: WinkEmulator, who: str) -> Plan:
    """Every request a transport sends; ``who`` names its user (the winkToken)."""
    user = bearer(wink.issue_token(wink_token=who))
    revoked = wink.issue_token()
    wink.revoke(revoked)
    return {
        **error_plan(wink),
        "ok": ("GET", "/whoami", user, None),
        "async_view": ("GET", "/awhoami", user, None),
        "public": ("GET", "/health", {}, None),
        "public_with_token": ("GET", "/health", user, None),
        "optional": ("GET", "/feed", {}, None),
        "optional_with_token": ("GET", "/feed", user, None),
        "optional_rejected": ("GET", "/feed", bearer(revoked), None),
        "optional_outage": ("GET", "/feed", bearer(wink.issue_token()), lambda: outage(wink)),
        "preflight_cors": ("OPTIONS", "/cors", PREFLIGHT, None),
        "drf": ("GET", "/api/me", user, None),
        "drf_public": ("GET", "/api/public/me", user, None),
        "drf_missing": ("GET", "/api/public/me", {}, None),
        "drf_strict_missing": ("GET", "/api/public/strict/me", {}, None),
        "drf_rejected": ("GET", "/api/public/me", bearer(revoked), None),
        "drf_strict_rejected": ("GET", "/api/public/strict/me", bearer(revoked), None),
        "drf_outage": (
            "GET",
            "/api/public/me",
            bearer(wink.issue_token()),
            lambda: outage(wink),
        ),
        "drf_strict_outage": (
            "GET",
            "/api/public/strict/me",
            bearer(wink.issue_token()),
            lambda: outage(wink),
        ),
    }


def drive(send: Send, requests: Plan) -> dict[str, Any]:
    seen = {}
    for name, (method, path, headers, before) in requests.items():
        if before is not None:
            before()
        seen[name] = send(method, path, headers)
    return seen


async def adrive(send: AsyncSend, requests: Plan) -> dict[str, Any]:
    seen = {}
    for name, (method, path, headers, before) in requests.items():
        if before is not None:
            before()
        seen[name] = await send(method, path, headers)
    return seen


def django_send() -> Send:
    from django.test import Client

    client = Client()

    def send(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
        response = client.generic(method, path, headers=headers)
        return answer(response.status_code, response.content, response.headers, method)

    return send


def django_asend() -> AsyncSend:
    from django.test import AsyncClient

    client = AsyncClient()

    async def send(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
        response = await client.generic(method, path, headers=headers)
        return answer(response.status_code, response.content, response.headers, method)

    return send


def httpx_send(client: httpx.Client) -> Send:
    def send(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
        response = client.request(method, path, headers=headers)
        return answer(response.status_code, response.content, response.headers, method)

    return send


def reference(wink: WinkEmulator, config: WinkConfig) -> dict[str, Any]:
    """The error plan through WinkWSGIMiddleware (the framework-agnostic core), same options."""

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"content"]

    middleware = WinkWSGIMiddleware(app, config=config)
    transport = httpx.WSGITransport(app=middleware)
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        seen = drive(httpx_send(client), error_plan(wink))
    middleware.close()
    return seen


def sync_response(request: Any) -> Any:
    return None


async def async_response(request: Any) -> Any:
    return None


def calls_for(wink: WinkEmulator, send: Send, requests: list[tuple[str, str]]) -> list[int]:
    """The Wink calls each request made, each with a token never seen before."""
    calls = []
    for method, path in requests:
        wink.reset()
        send(method, path, bearer(wink.issue_token()))
        calls.append(wink.calls)
    return calls


def main() -> dict[str, Any]:
    """Set Django up, send the requests, return the observations."""
    from django.test import override_settings

    wink = WinkEmulator(CLIENT_ID, CLIENT_SECRET)
    with wink.serve() as wink_url, tempfile.TemporaryDirectory() as tmp:
        options: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "base_url": wink_url,
            "public_paths": ["/health", "/api/public/*"],
            "optional_paths": ["/feed"],
            "retries": 0,
            "breaker_threshold": 1000,
        }
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
                # A file: the ASGI paths reach the database from other threads.
                "DATABASES": {
                    "default": {
                        "ENGINE": "django.db.backends.sqlite3",
                        "NAME": str(Path(tmp) / "db.sqlite3"),
                    }
                },
                "WINK": options,
            }
        )
        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        from django.contrib.auth.models import User
        from django.core.asgi import get_asgi_application

        import wink_middleware.django as wink_django
        from wink_middleware.django.middleware import _wink

        seen: dict[str, Any] = {"reference": reference(wink, WinkConfig(**options))}
        seen["sync"] = drive(django_send(), plan(wink, "sync-user"))
        seen["async"] = asyncio.run(adrive(django_asend(), plan(wink, "async-user")))
        with (
            serve_asgi(get_asgi_application(), lifespan="off") as url,
            httpx.Client(base_url=url) as client,
        ):
            seen["uvicorn"] = drive(httpx_send(client), plan(wink, "uvicorn-user"))
        seen["async_capable"] = [
            asyncio.iscoroutinefunction(wink_django.WinkAuthenticationMiddleware(get_response))
            for get_response in (sync_response, async_response)
        ]
        seen["users"] = sorted(User.objects.values_list("username", flat=True))

        # Without a cache every verification is a Wink call: one call per request proves that
        # WinkAuthentication reused the middleware's answer.
        no_cache = override_settings(WINK={**options, "cache_size": 0})
        with no_cache:
            seen["calls"] = calls_for(
                wink,
                django_send(),
                [("GET", "/whoami"), ("GET", "/api/me"), ("GET", "/api/public/me")],
            )
        with override_settings(WINK={**options, "anonymous_on_invalid": True}):
            seen["anonymous_on_invalid"] = drive(django_send(), plan(wink, "sync-user"))
        with override_settings(WINK={**options, "remote_user": False}):
            requests = plan(wink, "nobody")
            seen["no_remote_user"] = drive(django_send(), {n: requests[n] for n in ("ok", "drf")})
        seen["users_after"] = sorted(User.objects.values_list("username", flat=True))
        _wink().close()
    return seen


if __name__ == "__main__":
    print(json.dumps(main()))
