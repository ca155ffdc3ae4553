"""The request gate: every adapter's one decision about a request, written once and free of I/O.

The decision order is fixed:

1. **public** path: pass, unchecked;
2. CORS **preflight** (unless ``protect_preflight``): pass anonymous, fail-closed;
3. the **session route** (``session_path``, HTTP only): decided on the path before the public/
   optional/protected policy (a session path that is also public or protected is still the route,
   and needs no token), after the preflight rule (a preflight there follows it); before any token
   is read. So the gate looks at it first and lets only such a preflight go on to 1 and 2. The
   route answers itself (:data:`SESSION_ANSWER`: 405, 400, 429) or asks the adapter to create a session
   (:data:`CREATE_SESSION`, the route's only I/O);
4. **extract** the token (header, cookie, subprotocol, query);
5. **lookup**: a cached profile, a cached or local rejection, or a miss;
6. **resolve** a miss: the only step with I/O, done by the adapter (awaited or not) between
   :meth:`RequestGate.decide` and :meth:`RequestGate.resolved` / :meth:`RequestGate.failed`;
7. a failure is **refused**, or **anonymous** on an optional path;
8. **admit**.

The gate emits the ``request`` event of every outcome (the session route its ``session`` events
instead); an adapter only does its server's I/O
around it: read the request into a :class:`RequestView`, resolve a miss, write the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, final

from wink_middleware._config import WinkConfig
from wink_middleware._events import REQUEST_EVENTS, WinkEvent
from wink_middleware._exceptions import AuthenticationFailed, MissingToken
from wink_middleware._profile import WinkProfile
from wink_middleware._routing.policy import Access, PathPolicy
from wink_middleware._routing.responses import ErrorResponse, outcome_event
from wink_middleware._routing.session import CreateSession, SessionRoute
from wink_middleware._routing.tokens import TokenExtractor
from wink_middleware._routing.view import RequestView
from wink_middleware._session import WinkSession

__all__ = [
    "ANONYMOUS",
    "CREATE_SESSION",
    "PENDING",
    "PREFLIGHT",
    "PUBLIC",
    "REFUSED",
    "SESSION_ANSWER",
    "Outcome",
    "RequestGate",
]

#: The kinds of :class:`Outcome` (compared by identity).
PUBLIC: Final = "public"
PREFLIGHT: Final = "preflight"
PENDING: Final = "pending"
REFUSED: Final = "refused"
ANONYMOUS: Final = "anonymous"
SESSION_ANSWER: Final = "session_answer"
CREATE_SESSION: Final = "create_session"

_PROTECTED = Access.PROTECTED
_PUBLIC = Access.PUBLIC
_PREFLIGHT = Access.PREFLIGHT
_PUBLIC_EVENT = REQUEST_EVENTS["public"]
_PREFLIGHT_EVENT = REQUEST_EVENTS["preflight"]
_ANONYMOUS_EVENT = REQUEST_EVENTS["anonymous"]
_AUTHENTICATED_EVENT = REQUEST_EVENTS["authenticated"]


@final
class Outcome:
    """A request the gate did not admit (yet): what the adapter must do with it.

    ``kind`` is one of :data:`PUBLIC`, :data:`PREFLIGHT` (call the app unchecked, or fail-closed),
    :data:`PENDING` (resolve ``miss``, then hand the answer to :meth:`RequestGate.resolved` or the
    error to :meth:`RequestGate.failed`), :data:`REFUSED` (answer ``error``) or :data:`ANONYMOUS`
    (call the app without a user; ``error`` is the refused token's error under
    ``anonymous_on_invalid``, ``None`` when there was no token), :data:`SESSION_ANSWER` (the session
    route's ``answer``, to send as is) or :data:`CREATE_SESSION` (run ``command`` with the
    verifier's ``create_session``, then send :meth:`RequestGate.session_created` or
    :meth:`RequestGate.session_failed`).
    """

    __slots__ = ("access", "answer", "command", "error", "kind", "miss")

    def __init__(
        self,
        kind: str,
        error: AuthenticationFailed | None = None,
        miss: Any = None,
        access: Access = _PROTECTED,
        answer: ErrorResponse | None = None,
        command: CreateSession | None = None,
    ) -> None:
        self.kind = kind
        self.error = error
        self.miss = miss
        self.access = access
        self.answer = answer
        self.command = command

    def __repr__(self) -> str:
        return f"Outcome({self.kind!r}, error={self.error!r})"


_PUBLIC_OUTCOME = Outcome(PUBLIC)
_PREFLIGHT_OUTCOME = Outcome(PREFLIGHT)
_ANONYMOUS_OUTCOME = Outcome(ANONYMOUS)


class RequestGate:
    """The decision of one request, for one config and one verifier's ``lookup``.

    ``lookup(token)`` returns a profile or a miss handle of type ``miss_type`` (or raises an
    :class:`AuthenticationFailed`); ``emit`` takes the ``request`` events, ``None`` when nobody
    listens. ``session`` is the session route the gate answers on its path (``None``: no route).
    :meth:`decide` returns the admitted :class:`WinkProfile` or an :class:`Outcome`.
    """

    __slots__ = (
        "_access",
        "_continues_anonymous",
        "_emit",
        "_extract",
        "_lookup",
        "_miss_type",
        "_protects_every_path",
        "_session_path",
        "policy",
        "session",
        "tokens",
    )

    def __init__(
        self,
        config: WinkConfig,
        lookup: Callable[[bytes], Any],
        miss_type: type,
        emit: Callable[[WinkEvent], None] | None,
        session: SessionRoute | None = None,
    ) -> None:
        self.policy = PathPolicy(
            config.public_paths,
            config.optional_paths,
            protect_preflight=config.protect_preflight,
            anonymous_on_invalid=config.anonymous_on_invalid,
        )
        self.tokens = TokenExtractor(config)
        # Bound once: the per-request path reads them (a cache hit is the verifier's lookup alone).
        self._access = self.policy.access
        self._protects_every_path = self.policy.protects_every_path
        self._continues_anonymous = self.policy.continues_anonymous
        self._extract = self.tokens.extract
        self._lookup = lookup
        self._miss_type = miss_type
        self._emit = emit
        self.session = session
        #: ``None`` without a route: then no request's path equals it.
        self._session_path = None if session is None else session.path

    def decide(self, view: RequestView) -> WinkProfile | Outcome:
        """Steps 1-5, 7 and 8 of the decision order for ``view``; a miss is left :data:`PENDING`."""
        if view.path == self._session_path and not view.websocket:
            routed = self._route(view)
            if routed is not None:
                return routed
        # Not a preflight: without any pattern the policy's answer is known (saves a call).
        if self._protects_every_path and not view.preflight:
            access = _PROTECTED
        else:
            access = self._access(view)
            if access is _PUBLIC:
                if self._emit is not None:
                    self._emit(_PUBLIC_EVENT)
                return _PUBLIC_OUTCOME
            if access is _PREFLIGHT:
                if self._emit is not None:
                    self._emit(_PREFLIGHT_EVENT)
                return _PREFLIGHT_OUTCOME
        try:
            found = self._lookup(self._extract(view))
        except AuthenticationFailed as exc:
            return self.failed(access, exc)
        if type(found) is self._miss_type:
            return Outcome(PENDING, miss=found, access=access)
        if self._emit is not None:
            self._emit(_AUTHENTICATED_EVENT)
        return found  # type: ignore[no-any-return]

    def _route(self, view: RequestView) -> Outcome | None:
        """Step 3: the session route's decision; ``None`` for a preflight the rule passes on."""
        assert self.session is not None  # the path equals session_path, which is set
        decision = self.session.decide(view.method, view.query, preflight=view.preflight)
        if decision is None:
            return None
        if isinstance(decision, CreateSession):
            return Outcome(CREATE_SESSION, command=decision)
        return Outcome(SESSION_ANSWER, answer=decision)

    def session_created(self, session: WinkSession) -> ErrorResponse:
        """The answer after ``create_session`` gave ``session`` (200 ``{"sessionId": ...}``)."""
        assert self.session is not None
        return self.session.created(session)

    def session_failed(self, error: AuthenticationFailed) -> ErrorResponse:
        """The answer after ``create_session`` raised ``error`` (502, 503, ...)."""
        assert self.session is not None
        return self.session.failed(error)

    def resolved(self, profile: WinkProfile) -> WinkProfile:
        """Step 8 after a resolved miss: admit ``profile``."""
        if self._emit is not None:
            self._emit(_AUTHENTICATED_EVENT)
        return profile

    def failed(self, access: Access, exc: AuthenticationFailed) -> Outcome:
        """Step 7: refuse a failed request, or let it on anonymous.

        No token on an optional path is anonymous; with ``anonymous_on_invalid`` a refused token
        there is too. An outage (5xx) never is: it would silently sign a user out.
        """
        # A refusal is a decision, not a fault: its traceback would tie the adapter's frame (which
        # holds the outcome) into a cycle with this request's frames, freed only by the collector.
        exc.__traceback__ = None
        if not self._continues_anonymous(access, exc):
            if self._emit is not None:
                self._emit(outcome_event(exc))
            return Outcome(REFUSED, exc)
        if self._emit is not None:
            self._emit(_ANONYMOUS_EVENT)
        if type(exc) is MissingToken:
            return _ANONYMOUS_OUTCOME
        return Outcome(ANONYMOUS, exc)
