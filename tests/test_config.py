"""WinkConfig: options, defaults, validation and the environment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import CLIENT_ID, CLIENT_SECRET
from wink_middleware import WinkConfig, WinkConfigError

ENV = {"WINK_CLIENT_ID": CLIENT_ID, "WINK_CLIENT_SECRET": CLIENT_SECRET}


def test_defaults_match_the_design() -> None:
    config = WinkConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert config.environment == "production"
    assert config.base_url == "https://api.winklogin.com"
    assert (config.timeout, config.retries) == (5.0, 1)
    assert (config.cache_size, config.cache_ttl, config.negative_ttl) == (10_000, 300.0, 30.0)
    assert (config.leeway, config.stale_if_error) == (5.0, 0.0)
    assert config.precheck is True
    assert config.public_paths == () and config.optional_paths == ()
    assert config.protect_preflight is False
    assert config.cookie_name is None and config.query_param is None
    assert config.max_token_length == 4096
    assert config.realm == "wink"
    assert config.on_error is None
    assert config.remote_user is True


def test_stage_environment_picks_the_stage_host() -> None:
    config = WinkConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, environment="stage")
    assert config.base_url == "https://stagelogin-api.winkapis.com"


def test_base_url_overrides_environment_and_drops_trailing_slash() -> None:
    config = WinkConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        environment="stage",
        base_url="https://stage-api.winklogin.com/",
    )
    assert config.base_url == "https://stage-api.winklogin.com"
    assert (
        config.verify_url == "https://stage-api.winklogin.com/api/ConfidentialClient/verify-client"
    )


def test_repr_and_str_mask_the_secret() -> None:
    config = WinkConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    for text in (repr(config), str(config), f"{config}", repr([config])):
        assert CLIENT_SECRET not in text
        assert "client_secret='***'" in text


def test_config_is_frozen() -> None:
    config = WinkConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with pytest.raises(AttributeError):
        config.timeout = 1.0  # type: ignore[misc]


def test_replace_validates_again() -> None:
    config = WinkConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    assert config.replace(timeout=2).timeout == 2.0
    with pytest.raises(WinkConfigError):
        config.replace(timeout=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client_id": ""}, "client_id is required"),
        ({"client_id": "a b"}, "whitespace"),
        ({"client_secret": " "}, "client_secret is required"),
        ({"environment": "dev"}, "environment must be one of"),
        ({"base_url": "ftp://wink"}, "base_url"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"timeout": -1}, "timeout must be a finite number"),
        ({"timeout": float("nan")}, "timeout must be a finite number"),
        ({"timeout": True}, "timeout must be a finite number"),
        ({"retries": -1}, "retries must be a whole number"),
        ({"retries": 1.5}, "retries must be a whole number"),
        ({"cache_size": "10"}, "cache_size must be a whole number"),
        ({"negative_ttl": float("inf")}, "negative_ttl"),
        ({"max_token_length": 0}, "max_token_length"),
        ({"breaker_threshold": 0}, "breaker_threshold"),
        ({"precheck": "yes"}, "precheck must be True or False"),
        ({"public_paths": "/health"}, "not a single string"),
        ({"public_paths": ["health"]}, "must start with '/'"),
        ({"optional_paths": ["/a*b"]}, "'*' only at its end"),
        ({"public_paths": 5}, "list of path patterns"),
        ({"cookie_name": "a;b"}, "cookie_name"),
        ({"query_param": ""}, "query_param"),
        ({"realm": "wi\nnk"}, "realm"),
        ({"on_error": "not callable"}, "on_error must be callable"),
    ],
)
def test_invalid_options_raise_config_error(changes: dict[str, Any], message: str) -> None:
    options: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **changes}
    with pytest.raises(WinkConfigError, match=message) as info:
        WinkConfig(**options)
    assert CLIENT_SECRET not in str(info.value)


def test_path_patterns_accept_any_iterable() -> None:
    config = WinkConfig(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, public_paths=["/health", "/docs*"]
    )
    assert config.public_paths == ("/health", "/docs*")


def test_from_env_reads_our_variable_names() -> None:
    config = WinkConfig.from_env(
        {
            **ENV,
            "WINK_ENVIRONMENT": "stage",
            "WINK_TIMEOUT": "2.5",
            "WINK_RETRIES": "3",
            "WINK_CACHE_SIZE": "100",
            "WINK_CACHE_TTL": "60",
            "WINK_NEGATIVE_TTL": "0",
            "WINK_LEEWAY": "1",
            "WINK_STALE_IF_ERROR": "30",
        }
    )
    assert config.client_id == CLIENT_ID and config.client_secret == CLIENT_SECRET
    assert config.base_url == "https://stagelogin-api.winkapis.com"
    assert (config.timeout, config.retries, config.cache_size) == (2.5, 3, 100)
    assert (config.cache_ttl, config.negative_ttl, config.leeway) == (60.0, 0.0, 1.0)
    assert config.stale_if_error == 30.0


def test_from_env_reads_winks_own_template_names() -> None:
    config = WinkConfig.from_env(
        {
            "WINK_IDENTITY_CLIENT_ID": "tmpl-client",
            "WINK_IDENTITY_SECRET": "tmpl-secret",
            "WINK_IDENTITY_BASE_URL": "https://stage-api.winklogin.com",
        }
    )
    assert config.client_id == "tmpl-client"
    assert config.client_secret == "tmpl-secret"
    assert config.base_url == "https://stage-api.winklogin.com"


def test_from_env_prefers_our_names_over_winks() -> None:
    config = WinkConfig.from_env(
        {**ENV, "WINK_IDENTITY_CLIENT_ID": "other", "WINK_BASE_URL": "http://127.0.0.1:1"}
    )
    assert config.client_id == CLIENT_ID
    assert config.base_url == "http://127.0.0.1:1"


def test_from_env_overrides_win_over_the_environment() -> None:
    config = WinkConfig.from_env({**ENV, "WINK_TIMEOUT": "9"}, timeout=1.0, realm="api")
    assert config.timeout == 1.0 and config.realm == "api"


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WINK_CLIENT_ID", "from-os")
    monkeypatch.setenv("WINK_CLIENT_SECRET", "os-secret")
    assert WinkConfig.from_env().client_id == "from-os"


def test_from_env_names_the_missing_variables() -> None:
    with pytest.raises(WinkConfigError) as info:
        WinkConfig.from_env({})
    message = str(info.value)
    assert "WINK_CLIENT_ID" in message and "WINK_IDENTITY_CLIENT_ID" in message
    assert "WINK_CLIENT_SECRET" in message and "WINK_IDENTITY_SECRET" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WINK_TIMEOUT", "fast"),
        ("WINK_TIMEOUT", "inf"),
        ("WINK_RETRIES", "1.5"),
        ("WINK_CACHE_SIZE", "lots"),
        ("WINK_CACHE_TTL", "5m"),
        ("WINK_NEGATIVE_TTL", "nan"),
        ("WINK_LEEWAY", "-"),
        ("WINK_STALE_IF_ERROR", "a"),
    ],
)
def test_bad_numbers_in_the_environment_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(WinkConfigError, match=name):
        WinkConfig.from_env({**ENV, name: value})


def test_negative_number_in_the_environment_is_refused() -> None:
    with pytest.raises(WinkConfigError, match="retries"):
        WinkConfig.from_env({**ENV, "WINK_RETRIES": "-2"})


def test_blank_environment_values_count_as_unset() -> None:
    config = WinkConfig.from_env({**ENV, "WINK_TIMEOUT": "  "})
    assert config.timeout == 5.0


def test_secret_is_never_echoed_by_environment_errors() -> None:
    with pytest.raises(WinkConfigError) as info:
        WinkConfig.from_env({**ENV, "WINK_ENVIRONMENT": "nowhere"})
    assert CLIENT_SECRET not in str(info.value)
