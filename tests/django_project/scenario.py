"""Drive the test project through WinkWSGIMiddleware and print what happened, as JSON.

Run as ``python -W error -m tests.django_project.scenario`` (tests/test_wsgi_frameworks.py does):
a fresh interpreter, so these settings never meet another test's. Wink is a stub that answers
every token with a profile whose winkToken is the token's ``sub`` claim.
"""

from __future__ import annotations

import json
from typing import Any
from wsgiref.validate import validator

import django
import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application

from tests.django_project import settings as project_settings
from tests.helpers import FakeClock, config, make_token, profile_json
from tests.stub import WinkStub
from wink_middleware import WinkVerifier, WinkWSGIMiddleware, get_profile
from wink_middleware._engine.protocol import unverified_claims

ALICE = "0a6c1f3e-alice-wink-token"
BOB = "7d2b9e40-bob-wink-token"


def _profile_of(request: httpx.Request) -> httpx.Response:
    claims = unverified_claims(json.loads(request.content)["AccessToken"].encode()) or {}
    sub = str(claims.get("sub"))
    return httpx.Response(200, json=profile_json(winkToken=sub, winkTag=f";{sub[:5]}"))


def _answer(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return {"status": response.status_code, "body": body}


def main() -> dict[str, Any]:
    """Set Django up, send the requests, return the observations."""
    settings.configure(
        **{
            name: getattr(project_settings, name)
            for name in dir(project_settings)
            if name.isupper()
        }
    )
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth.models import User
    from django.http import HttpRequest

    stub = WinkStub(_profile_of)
    verifier = WinkVerifier(
        config(public_paths=("/health",)), client=stub.sync_client(), clock=FakeClock()
    )
    middleware = WinkWSGIMiddleware(validator(get_wsgi_application()), verifier=verifier)
    app = validator(middleware)
    alice, bob = make_token(sub=ALICE), make_token(sub=BOB)

    seen: dict[str, Any] = {}
    transport = httpx.WSGITransport(app=app)
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        seen["alice"] = _answer(client.get("/whoami", headers={"Authorization": f"Bearer {alice}"}))
        seen["alice_again"] = _answer(
            client.get("/whoami", headers={"Authorization": f"Bearer {alice}"})
        )
        seen["bob"] = _answer(client.get("/whoami", headers={"Authorization": f"Bearer {bob}"}))
        seen["missing"] = _answer(client.get("/whoami"))
        seen["public_after_login"] = _answer(client.get("/health"))
    seen["users"] = sorted(User.objects.values_list("username", flat=True))
    seen["wink_calls"] = stub.calls

    request = HttpRequest()
    request.META["wink.profile"] = verifier.verify(alice)
    profile = get_profile(request)
    seen["plain_request_profile"] = None if profile is None else profile.wink_token
    middleware.close()
    return seen


if __name__ == "__main__":
    print(json.dumps(main()))
