"""WinkConfig: every option of the middleware, validated once, and read from the environment."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, TypedDict

from wink_middleware._exceptions import WinkConfigError
from wink_middleware._session_urls import Origin, UrlError, check_url, origin_of, parse_origin

__all__ = [
    "ENVIRONMENTS",
    "REQUEST_OPTIONS",
    "WinkConfig",
    "WinkOptions",
    "resolve_config",
]

ENVIRONMENTS: Mapping[str, str] = {
    "production": "https://api.winklogin.com",
    "stage": "https://stagelogin-api.winkapis.com",
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: The shared tier's master key, when given, must hold at least this many bytes.
MIN_REDIS_SECRET_BYTES = 32

ErrorHandler = Callable[[Any, Any], Any]

# What a field's metadata says of it (see _meta): the tables below the class derive from it.
_ENV = "env"  # read from WINK_<NAME>, then from these other names (Wink's templates' own)
_REQUEST = "request"  # a request option: a middleware given verifier= may still take it
_HIDDEN = "hidden"  # a secret: never echoed in a message, not even stripped into one


def _meta(*names: str, env: bool = True, request: bool = False, secret: bool = False) -> Any:
    """A field's metadata: its environment variables (``WINK_<NAME>`` first, then ``names``) unless
    ``env`` is false, whether it is a request option, whether it is a secret."""
    return {_ENV: names if env else None, _REQUEST: request, _HIDDEN: secret}


_NO_ENV = _meta(env=False)
_REQUEST_ONLY = _meta(env=False, request=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class WinkConfig:
    """Every option of wink_middleware. Immutable and validated when built.

    Build it directly, or with :meth:`from_env`. ``repr`` and ``str`` never show the secret.
    """

    client_id: str = field(metadata=_meta("WINK_IDENTITY_CLIENT_ID"))
    client_secret: str = field(repr=False, metadata=_meta("WINK_IDENTITY_SECRET", secret=True))
    environment: Literal["production", "stage"] | str = field(
        default="production", metadata=_meta()
    )
    base_url: str | None = field(default=None, metadata=_meta("WINK_IDENTITY_BASE_URL"))
    timeout: float = field(default=5.0, metadata=_meta())
    retries: int = field(default=1, metadata=_meta())
    cache_size: int = field(default=10_000, metadata=_meta())
    cache_ttl: float = field(default=300.0, metadata=_meta())
    negative_ttl: float = field(default=30.0, metadata=_meta())
    leeway: float = field(default=5.0, metadata=_meta())
    stale_if_error: float = field(default=0.0, metadata=_meta())
    breaker_threshold: int = field(default=5, metadata=_meta())
    breaker_cooldown: float = field(default=10.0, metadata=_meta())
    precheck: bool = field(default=True, metadata=_NO_ENV)
    public_paths: Sequence[str] = field(default=(), metadata=_REQUEST_ONLY)
    optional_paths: Sequence[str] = field(default=(), metadata=_REQUEST_ONLY)
    protect_preflight: bool = field(default=False, metadata=_REQUEST_ONLY)
    cookie_name: str | None = field(default=None, metadata=_REQUEST_ONLY)
    query_param: str | None = field(default=None, metadata=_REQUEST_ONLY)
    max_token_length: int = field(default=4096, metadata=_REQUEST_ONLY)
    realm: str = field(default="wink", metadata=_REQUEST_ONLY)
    on_error: ErrorHandler | None = field(default=None, compare=False, metadata=_REQUEST_ONLY)
    remote_user: bool = field(default=True, metadata=_REQUEST_ONLY)
    max_pending: int = field(default=256, metadata=_meta())
    anonymous_on_invalid: bool = field(default=False, metadata=_REQUEST_ONLY)
    websocket_subprotocol: str | None = field(default=None, metadata=_REQUEST_ONLY)
    redis_url: str | None = field(default=None, repr=False, metadata=_meta())
    redis_cluster: bool = field(default=False, metadata=_meta())
    redis_prefix: str = field(default="wink:", metadata=_meta())
    redis_secret: str | None = field(default=None, repr=False, metadata=_meta(secret=True))
    redis_timeout: float = field(default=0.25, metadata=_meta())
    local_ttl: float = field(default=5.0, metadata=_meta())
    share_negative: bool = field(default=False, metadata=_NO_ENV)
    observers: Sequence[Any] = field(default=(), compare=False, metadata=_NO_ENV)
    session_path: str | None = field(default=None, metadata=_REQUEST_ONLY)
    session_return_url: str | None = field(default=None, metadata=_meta(request=True))
    session_cancel_url: str | None = field(default=None, metadata=_meta(request=True))
    session_origins: Sequence[str] | None = field(default=None, metadata=_REQUEST_ONLY)
    session_rate: float = field(default=10.0, metadata=_meta(request=True))
    jwks_url: str | None = field(default=None, metadata=_meta())
    issuer: str | None = field(default=None, metadata=_meta())
    jwks_cooldown: float = field(default=10.0, metadata=_meta())
    jwks_ttl: float = field(default=600.0, metadata=_meta())

    def __post_init__(self) -> None:
        for name in ("client_id", "client_secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise WinkConfigError(f"{name} is required and must be a non-empty string")
        if any(c.isspace() for c in self.client_id):
            raise WinkConfigError("client_id must not contain whitespace")
        if self.environment not in ENVIRONMENTS:
            raise WinkConfigError(
                f"environment must be one of {sorted(ENVIRONMENTS)}, not {self.environment!r}"
            )
        base_url = ENVIRONMENTS[self.environment] if self.base_url is None else self.base_url
        if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
            raise WinkConfigError("base_url must be an http:// or https:// URL")
        object.__setattr__(self, "base_url", base_url.rstrip("/"))

        for name in sorted(_INT_OPTIONS):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise WinkConfigError(f"{name} must be a whole number >= 0, not {value!r}")
        for name in sorted(_FLOAT_OPTIONS):
            value = getattr(self, name)
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 0
            ):
                raise WinkConfigError(f"{name} must be a finite number >= 0, not {value!r}")
            object.__setattr__(self, name, float(value))
        for name in sorted(_BOOL_OPTIONS):
            if not isinstance(getattr(self, name), bool):
                raise WinkConfigError(f"{name} must be True or False")
        if self.timeout <= 0:
            raise WinkConfigError("timeout must be > 0 seconds")
        if self.max_token_length < 1:
            raise WinkConfigError("max_token_length must be >= 1")
        if self.breaker_threshold < 1:
            raise WinkConfigError("breaker_threshold must be >= 1")
        if self.max_pending < 1:
            raise WinkConfigError("max_pending must be >= 1")
        for name in ("public_paths", "optional_paths"):
            object.__setattr__(self, name, _path_patterns(name, getattr(self, name)))
        for name in ("cookie_name", "query_param", "websocket_subprotocol"):
            value = getattr(self, name)
            if value is not None and not _is_simple_name(value):
                raise WinkConfigError(
                    f"{name} must be a non-empty ASCII name without spaces, quotes, ';', '=' or ','"
                )
        if not isinstance(self.realm, str) or not (
            self.realm.isascii() and self.realm.isprintable()
        ):
            raise WinkConfigError("realm must be a printable ASCII string")
        if self.on_error is not None and not callable(self.on_error):
            raise WinkConfigError("on_error must be callable")
        if self.redis_url is not None and (
            not isinstance(self.redis_url, str) or not self.redis_url.startswith(_REDIS_SCHEMES)
        ):
            raise WinkConfigError("redis_url must be a redis://, rediss:// or unix:// URL")
        if not isinstance(self.redis_prefix, str) or not _is_key_prefix(self.redis_prefix):
            raise WinkConfigError("redis_prefix must be printable ASCII without spaces")
        if self.redis_secret is not None and (
            not isinstance(self.redis_secret, str)
            or len(self.redis_secret.encode()) < MIN_REDIS_SECRET_BYTES
        ):
            raise WinkConfigError(
                f"redis_secret must be a string of at least {MIN_REDIS_SECRET_BYTES} bytes"
            )
        if self.redis_timeout <= 0:
            raise WinkConfigError("redis_timeout must be > 0 seconds")
        if isinstance(self.observers, str | bytes):
            raise WinkConfigError("observers must be a list of observers")
        try:
            observers = tuple(self.observers)
        except TypeError:
            raise WinkConfigError("observers must be a list of observers") from None
        for observer in observers:
            if not callable(getattr(observer, "on_event", None)):
                raise WinkConfigError(
                    f"observers: {type(observer).__name__} has no on_event(event) method"
                )
        object.__setattr__(self, "observers", observers)
        self._check_sessions()
        self._check_jwks()

    def _check_jwks(self) -> None:
        url = self.jwks_url
        if url is not None and (
            not isinstance(url, str)
            or not url.startswith(("https://", "http://"))
            or not (url.isascii() and url.isprintable())
            or " " in url
        ):
            raise WinkConfigError("jwks_url must be an http:// or https:// URL")
        if self.issuer is not None and (not isinstance(self.issuer, str) or not self.issuer):
            raise WinkConfigError("issuer must be a non-empty string")
        if self.jwks_ttl <= 0:
            raise WinkConfigError("jwks_ttl must be > 0 seconds")
        if url is not None:
            try:
                import joserfc  # noqa: F401
            except ImportError:
                raise WinkConfigError(
                    "jwks_url needs a JOSE library: pip install 'wink-middleware[jwt]'"
                ) from None

    def _check_sessions(self) -> None:
        path = self.session_path
        if path is not None and (
            not isinstance(path, str)
            or not path.startswith("/")
            or "*" in path
            or not (path.isascii() and path.isprintable())
            or " " in path
        ):
            raise WinkConfigError(
                "session_path must be an exact path starting with '/' (printable ASCII, no '*')"
            )
        try:
            for name in ("session_return_url", "session_cancel_url"):
                value = getattr(self, name)
                if value is not None:
                    check_url(value, name)
            if self.session_origins is not None:
                if isinstance(self.session_origins, str):
                    raise UrlError("session_origins must be a list of origins, not one string")
                try:
                    origins = tuple(self.session_origins)
                except TypeError:
                    raise UrlError("session_origins must be a list of origins") from None
                for entry in origins:
                    parse_origin(entry, "session_origins")
                object.__setattr__(self, "session_origins", origins)
        except UrlError as exc:
            raise WinkConfigError(str(exc)) from None
        if self.session_rate <= 0:
            raise WinkConfigError("session_rate must be > 0 sessions per second")

    @property
    def session_allowed_origins(self) -> frozenset[Origin]:
        """The origins a front end may name in ``returnUrl`` / ``cancelUrl``: ``session_origins``,
        else those of ``session_return_url`` and ``session_cancel_url``."""
        if self.session_origins is not None:
            return frozenset(parse_origin(o, "session_origins") for o in self.session_origins)
        return frozenset(
            origin_of(url, "url")
            for url in (self.session_return_url, self.session_cancel_url)
            if url is not None
        )

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_OPTIONS:
                value = "'***'" if value is not None else "None"
            elif f.name == "redis_url":
                value = repr(_redact_url(value))
            else:
                value = repr(value)
            parts.append(f"{f.name}={value}")
        return f"WinkConfig({', '.join(parts)})"

    __str__ = __repr__

    @property
    def verify_url(self) -> str:
        """The Verify Client endpoint this configuration calls."""
        return f"{self.base_url}/api/ConfidentialClient/verify-client"

    @property
    def session_url(self) -> str:
        """Wink's session endpoint (``create_session``)."""
        return f"{self.base_url}/wink/v1/session"

    def replace(self, **changes: Any) -> WinkConfig:
        """Return a copy with some options changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WinkConfig:
        """Build a config from environment variables, then apply ``overrides``.

        Reads ``WINK_CLIENT_ID`` / ``WINK_IDENTITY_CLIENT_ID``, ``WINK_CLIENT_SECRET`` /
        ``WINK_IDENTITY_SECRET``, ``WINK_BASE_URL`` / ``WINK_IDENTITY_BASE_URL``, ``WINK_ENVIRONMENT``
        and the numeric options (``WINK_TIMEOUT``, ``WINK_CACHE_TTL``, ...). Numbers are parsed
        strictly: a bad value raises :class:`WinkConfigError` naming the variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for option, names in _ENV_NAMES.items():
            if option in overrides:
                continue
            for name in names:
                raw = env.get(name)
                if raw is None or raw.strip() == "":
                    continue
                values[option] = _parse_env(option, name, raw)
                break
        values.update(overrides)
        missing = [opt for opt in ("client_id", "client_secret") if not values.get(opt)]
        if missing:
            wanted = " and ".join(f"{_ENV_NAMES[o][0]} (or {_ENV_NAMES[o][1]})" for o in missing)
            raise WinkConfigError(f"missing Wink configuration: set {wanted}")
        return cls(**values)


_FIELDS = fields(WinkConfig)
#: Option -> environment variables, first one found wins (ours first, then Wink's templates' names).
_ENV_NAMES: dict[str, tuple[str, ...]] = {
    f.name: (f"WINK_{f.name.upper()}", *f.metadata[_ENV])
    for f in _FIELDS
    if f.metadata[_ENV] is not None
}
_SECRET_OPTIONS = frozenset(f.name for f in _FIELDS if f.metadata[_HIDDEN])
#: Options that shape how a middleware treats requests, not how tokens are verified: a middleware
#: given ``verifier=`` may still take these, so apps sharing one verifier keep their own policy.
REQUEST_OPTIONS = frozenset(f.name for f in _FIELDS if f.metadata[_REQUEST])
# How a value is checked and read from the environment: by the field's annotation.
_INT_OPTIONS = frozenset(f.name for f in _FIELDS if f.type == "int")
_FLOAT_OPTIONS = frozenset(f.name for f in _FIELDS if f.type == "float")
_BOOL_OPTIONS = frozenset(f.name for f in _FIELDS if f.type == "bool")


class WinkOptions(TypedDict, total=False):
    """The fields of :class:`WinkConfig` as keyword options of the middlewares (typed for mypy)."""

    client_id: str
    client_secret: str
    environment: str
    base_url: str | None
    timeout: float
    retries: int
    cache_size: int
    cache_ttl: float
    negative_ttl: float
    leeway: float
    stale_if_error: float
    breaker_threshold: int
    breaker_cooldown: float
    precheck: bool
    public_paths: Iterable[str]
    optional_paths: Iterable[str]
    protect_preflight: bool
    cookie_name: str | None
    query_param: str | None
    max_token_length: int
    realm: str
    on_error: ErrorHandler | None
    remote_user: bool
    max_pending: int
    anonymous_on_invalid: bool
    websocket_subprotocol: str | None
    redis_url: str | None
    redis_cluster: bool
    redis_prefix: str
    redis_secret: str | None
    redis_timeout: float
    local_ttl: float
    share_negative: bool
    observers: Sequence[Any]
    session_path: str | None
    session_return_url: str | None
    session_cancel_url: str | None
    session_origins: Sequence[str] | None
    session_rate: float
    jwks_url: str | None
    issuer: str | None
    jwks_cooldown: float
    jwks_ttl: float


def _is_key_prefix(value: str) -> bool:
    return value.isascii() and value.isprintable() and " " not in value


def _redact_url(url: str | None) -> str | None:
    """A Redis URL without its password (``redis://user:secret@host`` -> ``redis://user:***@host``)."""
    if url is None or "@" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    user, colon, _password = credentials.partition(":")
    return f"{scheme}{sep}{user}{':***' if colon else ''}@{host}"


def _is_simple_name(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and value.isascii()
        and value.isprintable()
        and not any(c in value for c in ' ;=,"')
    )


def resolve_config(config: WinkConfig | None, options: Mapping[str, Any]) -> WinkConfig:
    """The config of a middleware: ``config=``, or keyword options over the environment (not both)."""
    if config is not None:
        if options:
            raise WinkConfigError(
                f"pass either config= or options, not both (got {', '.join(sorted(options))})"
            )
        if not isinstance(config, WinkConfig):
            raise WinkConfigError("config must be a WinkConfig")
        return config
    unknown = sorted(set(options) - {f.name for f in fields(WinkConfig)})
    if unknown:
        raise WinkConfigError(f"unknown option(s): {', '.join(unknown)}")
    return WinkConfig.from_env(**options)


def _parse_env(option: str, name: str, raw: str) -> Any:
    text = raw.strip()
    if option in _INT_OPTIONS:
        try:
            return int(text, 10)
        except ValueError:
            raise WinkConfigError(f"{name} must be a whole number, not {text!r}") from None
    if option in _FLOAT_OPTIONS:
        try:
            value = float(text)
        except ValueError:
            raise WinkConfigError(f"{name} must be a number of seconds, not {text!r}") from None
        if not math.isfinite(value):
            raise WinkConfigError(f"{name} must be a finite number of seconds, not {text!r}")
        return value
    if option in _BOOL_OPTIONS:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise WinkConfigError(
            f"{name} must be one of 1/0, true/false, yes/no, on/off, not {text!r}"
        )
    if option in _SECRET_OPTIONS:
        return raw  # never echoed: not even stripped into a message
    return text


def _path_patterns(option: str, patterns: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(patterns, str):
        raise WinkConfigError(f"{option} must be a list of path patterns, not a single string")
    try:
        result = tuple(patterns)
    except TypeError:
        raise WinkConfigError(f"{option} must be a list of path patterns") from None
    for pattern in result:
        if not isinstance(pattern, str) or not pattern.startswith("/"):
            raise WinkConfigError(
                f"{option}: {pattern!r} is not a path pattern (it must start with '/')"
            )
        if "*" in pattern[:-1]:
            raise WinkConfigError(f"{option}: {pattern!r} may hold '*' only at its end")
    return result
