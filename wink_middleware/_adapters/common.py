"""What both middlewares set up the same way: config, verifier and the request gate."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from wink_middleware._config import REQUEST_OPTIONS, WinkConfig, WinkOptions, resolve_config
from wink_middleware._engine.core import ColdToken, VerifierBase
from wink_middleware._events import REQUEST, SESSION
from wink_middleware._exceptions import WinkConfigError
from wink_middleware._routing.gate import RequestGate
from wink_middleware._routing.session import SessionRoute

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
        # Each middleware has its own session route, and so its own rate bucket.
        session = (
            None
            if config.session_path is None
            else SessionRoute(config, self.verifier.clock, self.verifier.emitter(SESSION))
        )
        self._gate = gate = RequestGate(
            config, self.verifier.lookup, ColdToken, self.verifier.emitter(REQUEST), session
        )
        # Bound once: the per-request path reads them.
        self._decide = gate.decide
        self._failed = gate.failed
        self._resolved = gate.resolved
        self._extract = gate.tokens.extract
        self._read_cookies = config.cookie_name is not None
        self._read_query = config.query_param is not None
        self._read_subprotocols = config.websocket_subprotocol is not None
        #: The session route's path (``None``: no route); its requests need their query read.
        self._session_path = config.session_path


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
