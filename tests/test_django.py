"""wink_middleware.django: WinkAuthenticationMiddleware, WinkBackend and DRF's WinkAuthentication.

The project in ``tests/django_project`` (``wink_urls.py``) runs in its own interpreter
(``wink_scenario.py``): Django's settings are configured once per process. The same requests go
through Django's sync ``Client``, its ``AsyncClient`` and uvicorn over a socket; the refusals also
go through ``WinkWSGIMiddleware`` with the same options, the reference every answer must equal.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRANSPORTS = ["sync", "async", "uvicorn"]
REFUSALS = ["missing", "malformed", "two_headers", "rejected", "outage", "head", "preflight"]
COMPARED = ("www-authenticate", "retry-after", "cache-control", "content-type")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    """What the Django project answered, driven in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "tests.django_project.wink_scenario"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def shape(answer: dict[str, Any]) -> tuple[int, str, dict[str, str]]:
    """Status, body bytes and the RFC 6750 headers of an answer."""
    headers = answer["headers"]
    return answer["status"], answer["raw"], {h: headers[h] for h in COMPARED if h in headers}


def test_the_middleware_is_sync_and_async_capable(seen: dict[str, Any]) -> None:
    # Built over a sync get_response it is a plain callable; over an async one, a coroutine function.
    assert seen["async_capable"] == [False, True]


# -- the middleware --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_verified_request_has_the_django_user_named_by_the_wink_token(
    seen: dict[str, Any], transport: str
) -> None:
    ok = seen[transport]["ok"]
    assert ok["status"] == 200
    assert ok["body"] == {
        "authenticated": True,
        "username": f"{transport}-user",
        "wink": f"{transport}-user",
        "get_profile": f"{transport}-user",
        "wink_error": None,
    }


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_async_view_gets_the_same_user_from_auser(seen: dict[str, Any], transport: str) -> None:
    assert seen[transport]["async_view"]["body"] == seen[transport]["ok"]["body"]


def test_backend_creates_each_wink_user_once(seen: dict[str, Any]) -> None:
    assert seen["users"] == ["async-user", "sync-user", "uvicorn-user"]


@pytest.mark.parametrize("refusal", REFUSALS)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refusals_are_the_wsgi_middlewares_answers(
    seen: dict[str, Any], transport: str, refusal: str
) -> None:
    assert shape(seen[transport][refusal]) == shape(seen["reference"][refusal])


def test_reference_refusals_are_rfc_6750_answers(seen: dict[str, Any]) -> None:
    reference = seen["reference"]
    assert (reference["missing"]["status"], reference["missing"]["body"]["error"]) == (
        401,
        "missing_token",
    )
    assert reference["missing"]["headers"]["www-authenticate"] == 'Bearer realm="wink"'
    assert (reference["malformed"]["status"], reference["malformed"]["body"]["error"]) == (
        400,
        "invalid_request",
    )
    assert reference["two_headers"]["status"] == 400
    assert reference["rejected"]["body"]["error"] == "invalid_token"
    assert reference["outage"]["status"] == 503
    assert reference["outage"]["headers"]["retry-after"] == "7"
    assert (reference["head"]["status"], reference["head"]["raw"]) == (401, "")
    assert shape(reference["preflight"]) == shape(reference["missing"])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_public_path_is_not_checked(seen: dict[str, Any], transport: str) -> None:
    anonymous = {
        "authenticated": False,
        "username": "",
        "wink": None,
        "get_profile": None,
        "wink_error": None,
    }
    for name in ("public", "public_with_token"):
        assert (seen[transport][name]["status"], seen[transport][name]["body"]) == (200, anonymous)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_optional_path_is_anonymous_without_a_token_only(
    seen: dict[str, Any], transport: str
) -> None:
    answers = seen[transport]
    assert answers["optional"]["status"] == 200
    assert answers["optional"]["body"]["authenticated"] is False
    assert answers["optional"]["body"]["wink"] is None
    assert answers["optional_with_token"]["body"]["username"] == f"{transport}-user"
    assert shape(answers["optional_rejected"]) == shape(seen["reference"]["rejected"])
    assert answers["optional_outage"]["status"] == 503


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_preflight_passes_only_a_cors_answer_without_its_body(
    seen: dict[str, Any], transport: str
) -> None:
    cors = seen[transport]["preflight_cors"]
    assert cors["status"] == 200
    assert cors["raw"] == ""
    assert cors["headers"]["access-control-allow-origin"] == "http://app.example"
    assert cors["headers"]["content-length"] == "0"
    # A view that does not answer CORS would serve its content: the token-less 401 instead.
    assert shape(seen[transport]["preflight"]) == shape(seen["reference"]["missing"])


def test_anonymous_on_invalid_lets_a_refused_token_in_on_an_optional_path(
    seen: dict[str, Any],
) -> None:
    answers = seen["anonymous_on_invalid"]
    assert answers["optional_rejected"]["status"] == 200
    assert answers["optional_rejected"]["body"]["wink"] is None
    assert answers["optional_rejected"]["body"]["authenticated"] is False
    assert answers["optional_rejected"]["body"]["wink_error"] == "invalid_token"
    # Never on a protected path, and an outage is never anonymous.
    assert shape(answers["rejected"]) == shape(seen["reference"]["rejected"])
    assert answers["optional_outage"]["status"] == 503


def test_without_remote_user_only_request_wink_is_set(seen: dict[str, Any]) -> None:
    ok = seen["no_remote_user"]["ok"]["body"]
    assert (ok["wink"], ok["authenticated"]) == ("nobody", False)
    assert "nobody" not in seen["users_after"]
    # DRF's request.user is then the WinkProfile itself.
    assert seen["no_remote_user"]["drf"]["body"] == {"username": None, "wink": "nobody"}


# -- Django REST framework -------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_drf_view_gets_the_wink_user_and_profile(seen: dict[str, Any], transport: str) -> None:
    expected = {"username": f"{transport}-user", "wink": f"{transport}-user"}
    # /api/me: the middleware verified; /api/public/me: a public path, WinkAuthentication did.
    for name in ("drf", "drf_public"):
        assert (seen[transport][name]["status"], seen[transport][name]["body"]) == (200, expected)


def test_drf_reuses_the_middlewares_verification(seen: dict[str, Any]) -> None:
    # Without a cache each verification is a Wink call: /whoami (the middleware alone), /api/me
    # (the middleware, then WinkAuthentication), /api/public/me (WinkAuthentication alone).
    assert seen["calls"] == [1, 1, 1]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_drf_without_a_token_is_401_with_the_bearer_challenge_not_403(
    seen: dict[str, Any], transport: str
) -> None:
    missing = seen[transport]["drf_missing"]
    assert missing["status"] == 401
    assert missing["headers"]["www-authenticate"] == 'Bearer realm="wink"'
    assert missing["body"] == {"detail": "Authentication credentials were not provided."}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_drf_refusal_has_the_middlewares_status_body_and_challenge(
    seen: dict[str, Any], transport: str
) -> None:
    for drf, reference in (("drf_rejected", "rejected"), ("drf_outage", "outage")):
        answer, expected = seen[transport][drf], seen["reference"][reference]
        assert answer["status"] == expected["status"]
        assert answer["body"] == expected["body"]
        for header in ("www-authenticate", "retry-after"):
            assert answer["headers"].get(header) == expected["headers"].get(header)
    assert seen[transport]["drf_outage"]["headers"]["retry-after"] == "7"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_drf_exception_handler_answers_exactly_as_the_middleware(
    seen: dict[str, Any], transport: str
) -> None:
    for name in ("missing", "rejected", "outage"):
        assert shape(seen[transport][f"drf_strict_{name}"]) == shape(seen["reference"][name])
