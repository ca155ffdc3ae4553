"""The public surface: names exported from wink_middleware, sorted and documented."""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, request
from starlette.requests import Request
from werkzeug.wrappers import Request as WerkzeugRequest

import wink_middleware
from wink_middleware import (
    AuthenticationFailed,
    InvalidRequest,
    MissingToken,
    RateLimited,
    TokenRejected,
    WinkBadResponse,
    WinkConfigError,
    WinkCredentialsRejected,
    WinkError,
    WinkProfile,
    WinkSession,
    WinkUnavailable,
    WinkWSGIMiddleware,
    require_profile,
)
from wink_middleware.testing import SAMPLE_PROFILE, WinkEmulator


def test_all_is_sorted_and_complete() -> None:
    names = wink_middleware.__all__
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(wink_middleware, name), name
    # Submodules (testing, the optional integrations) appear once imported: they are not re-exports.
    public = {
        n
        for n in dir(wink_middleware)
        if not n.startswith(("_", "@")) and not inspect.ismodule(getattr(wink_middleware, n))
    }
    assert public <= set(names)


def test_public_names_have_docstrings() -> None:
    for name in wink_middleware.__all__:
        obj = getattr(wink_middleware, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name


def test_version_is_a_string() -> None:
    assert isinstance(wink_middleware.__version__, str)
    assert wink_middleware.__version__.count(".") == 2


def test_exception_tree_matches_the_design() -> None:
    assert issubclass(WinkConfigError, WinkError)
    assert issubclass(AuthenticationFailed, WinkError)
    table = [
        (MissingToken, 401, None),
        (InvalidRequest, 400, "invalid_request"),
        (TokenRejected, 401, "invalid_token"),
        (WinkUnavailable, 503, "temporarily_unavailable"),
        (WinkBadResponse, 502, "bad_gateway"),
        (WinkCredentialsRejected, 502, "bad_gateway"),
        (RateLimited, 429, "too_many_requests"),
    ]
    assert issubclass(WinkCredentialsRejected, WinkBadResponse)
    for cls, status, error in table:
        assert issubclass(cls, AuthenticationFailed)
        assert cls.status_code == status
        assert cls.error == error


def test_exceptions_carry_a_description() -> None:
    exc = WinkUnavailable("Wink is down", retry_after=7)
    assert exc.description == str(exc) == "Wink is down"
    assert exc.retry_after == 7
    assert repr(exc) == "WinkUnavailable('Wink is down')"
    assert MissingToken().description == "a bearer token is required"
    limited = RateLimited("slow down", retry_after=3)
    assert (limited.retry_after, limited.description) == (3, "slow down")


def test_sign_in_names_are_exported() -> None:
    for name in ("WinkSession", "WinkCredentialsRejected", "RateLimited"):
        assert name in wink_middleware.__all__
    session = WinkSession("id", "https://a.example/", "https://a.example/c")
    assert dataclasses.is_dataclass(session)
    assert [f.name for f in dataclasses.fields(session)] == [
        "session_id",
        "return_url",
        "cancel_url",
    ]
    assert inspect.iscoroutinefunction(wink_middleware.AsyncWinkVerifier.create_session)
    assert not inspect.iscoroutinefunction(wink_middleware.WinkVerifier.create_session)


def test_keyword_options_name_every_config_field() -> None:
    import dataclasses

    from wink_middleware._config import WinkOptions

    assert set(WinkOptions.__annotations__) == {
        f.name for f in dataclasses.fields(wink_middleware.WinkConfig)
    }


# -- require_profile: get_profile's strict twin, typed WinkProfile ------------------------------

PROFILE = WinkProfile.from_wink({**SAMPLE_PROFILE, "winkToken": "user-42"})
SCOPE: dict[str, Any] = {"type": "http", "headers": [], "wink": PROFILE}
ENVIRON: dict[str, Any] = {"wsgi.version": (1, 0), "wink.profile": PROFILE}


@pytest.mark.parametrize(
    "obj",
    [SCOPE, Request(SCOPE), ENVIRON, WerkzeugRequest(ENVIRON)],
    ids=["asgi-scope", "starlette-request", "wsgi-environ", "werkzeug-request"],
)
def test_require_profile_returns_the_profile_get_profile_finds(obj: Any) -> None:
    profile: WinkProfile = require_profile(obj)
    assert profile is PROFILE is wink_middleware.get_profile(obj)


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "http", "wink": None},
        {"wsgi.version": (1, 0), "wink.profile": None},
        {"wsgi.version": (1, 0)},
        {"type": "http", "wink": "forged"},
    ],
    ids=["anonymous-scope", "anonymous-environ", "middleware-never-ran", "not-a-profile"],
)
def test_require_profile_raises_missing_token_where_get_profile_gives_none(obj: Any) -> None:
    with pytest.raises(MissingToken) as raised:
        require_profile(obj)
    assert raised.value.status_code == 401


def test_require_profile_refuses_unknown_objects_like_get_profile() -> None:
    with pytest.raises(TypeError, match="get_profile"):
        require_profile(42)


def test_require_profile_types_a_flask_view_without_an_assert(wink_emulator: WinkEmulator) -> None:
    app = Flask(__name__)

    @app.get("/me")
    def me() -> dict[str, str]:
        # mypy --strict checks this file: the profile is a WinkProfile, no `assert` needed.
        return {"name": require_profile(request).display_name}

    wsgi = WinkWSGIMiddleware(app.wsgi_app, verifier=wink_emulator.verifier())
    token = wink_emulator.issue_token(first_name="Grace")
    transport = httpx.WSGITransport(app=wsgi)
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        response = client.get("/me", headers={"Authorization": f"Bearer {token}"})
        assert response.json() == {"name": "Grace Lovelace"}
        assert client.get("/me").status_code == 401


def test_the_classifiers_name_exactly_the_pythons_the_matrix_tests() -> None:
    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    claimed = sorted(
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    matrix = re.search(r"\{WINK_PYTHONS:-([0-9. ]+)\}", (root / "scripts" / "matrix").read_text())
    assert matrix is not None
    assert claimed == sorted(matrix.group(1).split())
    assert project["requires-python"] == f">={claimed[0]}"


def test_keyword_options_are_typed_as_the_config_fields() -> None:
    import dataclasses

    from wink_middleware._config import WinkOptions

    # A keyword option may take more than the field keeps (any iterable of patterns, any
    # environment name, validated when the config is built); every other type is the field's.
    wider = {
        "public_paths": "Iterable[str]",
        "optional_paths": "Iterable[str]",
        "environment": "str",
    }
    for f in dataclasses.fields(wink_middleware.WinkConfig):
        declared = WinkOptions.__annotations__[f.name].__forward_arg__
        assert declared == wider.get(f.name, f.type), f.name
