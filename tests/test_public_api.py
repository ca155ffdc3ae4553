"""The public surface: names exported from wink_middleware, sorted and documented (DESIGN §3)."""

from __future__ import annotations

import inspect

import wink_middleware
from wink_middleware import (
    AuthenticationFailed,
    InvalidRequest,
    MissingToken,
    TokenRejected,
    WinkBadResponse,
    WinkConfigError,
    WinkError,
    WinkUnavailable,
)


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
    ]
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


def test_keyword_options_name_every_config_field() -> None:
    import dataclasses

    from wink_middleware._config import WinkOptions

    assert set(WinkOptions.__annotations__) == {
        f.name for f in dataclasses.fields(wink_middleware.WinkConfig)
    }
