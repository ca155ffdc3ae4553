"""What both middlewares set up the same way: config, verifier, path policy and token rules."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from wink_middleware._config import REQUEST_OPTIONS, WinkConfig, WinkOptions, resolve_config
from wink_middleware._engine.core import VerifierBase
from wink_middleware._events import REQUEST, SESSION
from wink_middleware._exceptions import WinkConfigError
from wink_middleware._routing.policy import PathPolicy
from wink_middleware._routing.tokens import TokenExtractor
from wink_middleware._session_route import SessionRoute

__all__ = ["Adapter"]

V = TypeVar("V", bound=VerifierBase)


class Adapter(Generic[V]):
    """Validates and precomputes, once, everything a middleware reads per request."""

    def __init__(
        self,
        config: WinkConfig | None,
        verifier: V | None,
        options: WinkOptions,
        verifier_type: type[V],
    ) -> None:
        if verifier is not None:
            if not isinstance(verifier, verifier_type):
                raise WinkConfigError(f"verifier must be a {verifier_type.__name__}")
            config = _beside_verifier(verifier.config, config, options)
        else:
            config = resolve_config(config, options)
        self.config = config
        self.verifier: V = verifier if verifier is not None else verifier_type(config)
        self._policy = PathPolicy(
            config.public_paths,
            config.optional_paths,
            protect_preflight=config.protect_preflight,
            anonymous_on_invalid=config.anonymous_on_invalid,
        )
        self._tokens = TokenExtractor(config)
        # Bound once: the per-request path reads them (a cache hit is the verifier's lookup alone).
        self._access = self._policy.access
        self._protects_every_path = self._policy.protects_every_path
        self._continues_anonymous = self._policy.continues_anonymous
        self._extract = self._tokens.extract
        self._lookup = self.verifier.lookup
        self._emit = self.verifier.emitter(REQUEST)
        self._read_cookies = config.cookie_name is not None
        self._read_query = config.query_param is not None
        self._read_subprotocols = config.websocket_subprotocol is not None
        #: ``None`` without ``session_path``: then no request's path equals it.
        self._session_path = config.session_path
        self._session_route = (
            None
            if config.session_path is None
            else SessionRoute(config, self.verifier.clock, self.verifier.emitter(SESSION))
        )


def _beside_verifier(base: WinkConfig, config: WinkConfig | None, options: Any) -> WinkConfig:
    """The config of a middleware given ``verifier=``: the verifier's, with request options over it."""
    if config is not None:
        raise WinkConfigError(
            "pass verifier= or config=, not both: the verifier carries its config"
        )
    not_for_requests = sorted(set(options) - REQUEST_OPTIONS)
    if not_for_requests:
        raise WinkConfigError(
            f"{', '.join(not_for_requests)}: a verifier option cannot be passed next to verifier= "
            "(set it on the verifier's WinkConfig); only request options can: "
            + ", ".join(sorted(REQUEST_OPTIONS))
        )
    return base.replace(**options) if options else base
