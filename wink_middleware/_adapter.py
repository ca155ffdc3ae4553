"""What both middlewares set up the same way: config, verifier, path policy and token rules."""

from __future__ import annotations

from typing import Generic, TypeVar

from wink_middleware._config import WinkConfig, WinkOptions, resolve_config
from wink_middleware._engine import VerifierBase
from wink_middleware._exceptions import WinkConfigError
from wink_middleware._policy import PathPolicy
from wink_middleware._tokens import TokenExtractor

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
            if config is not None or options:
                raise WinkConfigError("pass verifier= alone: its config is the middleware's")
            if not isinstance(verifier, verifier_type):
                raise WinkConfigError(f"verifier must be a {verifier_type.__name__}")
            config = verifier.config
        self.config = resolve_config(config, options)
        self.verifier: V = verifier if verifier is not None else verifier_type(self.config)
        self._policy = PathPolicy(self.config.public_paths, self.config.optional_paths)
        self._all_protected = self._policy.all_protected
        self._tokens = TokenExtractor(self.config)
        self._read_cookies = self.config.cookie_name is not None
        self._read_query = self.config.query_param is not None
        self._preflight_passes = not self.config.protect_preflight
