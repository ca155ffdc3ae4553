"""Routing's decisions as tables, with no app and no server: the request view of a WSGI environ,
the path policy, the token extractor, the RFC 6750 answers and the request gate.

The adapters' own tests (``test_asgi.py``, ``test_wsgi.py``, ``test_adapters.py``) check that each
server's request reaches these decisions; the decisions themselves are checked here, once.
"""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from tests.helpers import config
from wink_middleware import (
    AuthenticationFailed,
    InvalidRequest,
    MissingToken,
    TokenRejected,
    WinkBadResponse,
    WinkEvent,
    WinkProfile,
    WinkUnavailable,
)
from wink_middleware._adapters.wsgi import environ_view
from wink_middleware._routing.gate import (
    ANONYMOUS,
    PENDING,
    PREFLIGHT,
    PUBLIC,
    REFUSED,
    Outcome,
    RequestGate,
)
from wink_middleware._routing.policy import Access, PathPolicy
from wink_middleware._routing.responses import render, websocket_close_code
from wink_middleware._routing.tokens import TokenExtractor
from wink_middleware._routing.view import RequestView
from wink_middleware._token_rule import check_token

TOKEN = b"abc.DEF-123_~+/="

# -- the request view of a WSGI environ (Django's request.META too) --------------------------------


@pytest.mark.parametrize(
    ("environ", "path", "method", "authorization", "preflight"),
    [
        ({}, "/", "GET", [], False),
        ({"PATH_INFO": "/a", "REQUEST_METHOD": "POST"}, "/a", "POST", [], False),
        ({"PATH_INFO": "/caf\xc3\xa9"}, "/café", "GET", [], False),  # PEP 3333 latin-1 of UTF-8
        ({"PATH_INFO": "/\xff"}, "/\xff", "GET", [], False),  # not UTF-8: kept as it came
        ({"PATH_INFO": 42}, "/", "GET", [], False),
        ({"HTTP_AUTHORIZATION": "Bearer x"}, "/", "GET", [b"Bearer x"], False),
        ({"HTTP_AUTHORIZATION": "Bearer \xe9"}, "/", "GET", [b"Bearer \xe9"], False),
        ({"HTTP_AUTHORIZATION": "Bearer \udcff"}, "/", "GET", [b"Bearer \x7f"], False),
        ({"HTTP_AUTHORIZATION": b"Bearer x"}, "/", "GET", [b"Bearer \x7f"], False),
        (
            {
                "REQUEST_METHOD": "OPTIONS",
                "HTTP_ORIGIN": "o",
                "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET",
            },
            "/",
            "OPTIONS",
            [],
            True,
        ),
        ({"REQUEST_METHOD": "OPTIONS", "HTTP_ORIGIN": "o"}, "/", "OPTIONS", [], False),
        ({"HTTP_ORIGIN": "o", "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET"}, "/", "GET", [], False),
    ],
    ids=[
        "empty",
        "path-and-method",
        "utf8-path",
        "latin1-path",
        "non-text-path",
        "authorization",
        "latin1-authorization",
        "unencodable-authorization",
        "non-text-authorization",
        "preflight",
        "options-without-request-method",
        "cors-headers-on-get",
    ],
)
def test_the_view_of_an_environ(
    environ: dict[str, Any], path: str, method: str, authorization: list[bytes], preflight: bool
) -> None:
    view = environ_view(environ, read_cookies=False, read_query=False)
    assert (view.path, view.method, view.authorization, view.preflight) == (
        path,
        method,
        authorization,
        preflight,
    )
    assert (view.cookies, view.query) == (None, "")


@pytest.mark.parametrize(
    ("environ", "cookies", "query"),
    [
        ({}, None, ""),
        ({"HTTP_COOKIE": "a=1; b=2", "QUERY_STRING": "t=x"}, ["a=1; b=2"], "t=x"),
        ({"HTTP_COOKIE": 7, "QUERY_STRING": 7}, None, ""),
    ],
    ids=["absent", "present", "not-text"],
)
def test_the_view_reads_cookies_and_the_query_only_when_asked(
    environ: dict[str, Any], cookies: list[str] | None, query: str
) -> None:
    view = environ_view(environ, read_cookies=True, read_query=True)
    assert (view.cookies, view.query) == (cookies, query)


# -- the path policy -------------------------------------------------------------------------------

PUBLIC_PATHS = ["/health", "/docs*", "/static/*"]
OPTIONAL_PATHS = ["/feed", "/health", "/blog/*"]


@pytest.mark.parametrize(
    ("path", "preflight", "protect_preflight", "access"),
    [
        ("/health", False, False, Access.PUBLIC),  # public wins over optional
        ("/health", True, False, Access.PUBLIC),
        ("/docs", False, False, Access.PUBLIC),
        ("/docs/", False, False, Access.PUBLIC),
        ("/docs/x/y", False, False, Access.PUBLIC),
        ("/docsecret", False, False, Access.PROTECTED),
        ("/static", False, False, Access.PUBLIC),
        ("/staticx", False, False, Access.PROTECTED),
        ("/feed", False, False, Access.OPTIONAL),
        ("/feed/", False, False, Access.PROTECTED),  # exact means exact
        ("/blog/post", False, False, Access.OPTIONAL),
        ("/me", False, False, Access.PROTECTED),
        ("/me", True, False, Access.PREFLIGHT),
        ("/me", True, True, Access.PROTECTED),
        ("/feed", True, False, Access.PREFLIGHT),
        ("/feed", True, True, Access.OPTIONAL),
    ],
)
def test_what_a_request_must_show(
    path: str, preflight: bool, protect_preflight: bool, access: Access
) -> None:
    policy = PathPolicy(PUBLIC_PATHS, OPTIONAL_PATHS, protect_preflight=protect_preflight)
    view = RequestView(path, "OPTIONS" if preflight else "GET", [])
    view.cors(preflight, preflight)
    assert policy.access(view) is access


@pytest.mark.parametrize(
    ("preflight", "access"), [(False, Access.PROTECTED), (True, Access.PREFLIGHT)]
)
def test_without_patterns_every_path_is_protected(preflight: bool, access: Access) -> None:
    policy = PathPolicy([], [])
    assert policy.protects_every_path
    view = RequestView("/anything", "OPTIONS", [])
    view.cors(preflight, preflight)
    assert policy.access(view) is access


@pytest.mark.parametrize(
    ("access", "error", "anonymous_on_invalid", "continues"),
    [
        (Access.OPTIONAL, MissingToken(), False, True),
        (Access.OPTIONAL, TokenRejected("no"), False, False),
        (Access.OPTIONAL, TokenRejected("no"), True, True),
        (Access.OPTIONAL, InvalidRequest("bad"), True, True),
        (Access.OPTIONAL, WinkUnavailable("down"), True, False),  # an outage never signs out
        (Access.OPTIONAL, WinkBadResponse("odd"), True, False),
        (Access.PROTECTED, MissingToken(), True, False),
        (Access.PROTECTED, TokenRejected("no"), True, False),
    ],
)
def test_whether_a_failed_request_goes_on_anonymous(
    access: Access, error: AuthenticationFailed, anonymous_on_invalid: bool, continues: bool
) -> None:
    policy = PathPolicy([], ["/feed"], anonymous_on_invalid=anonymous_on_invalid)
    assert policy.continues_anonymous(access, error) is continues


# -- the token extractor ---------------------------------------------------------------------------

SOURCES = {"cookie_name": "session", "query_param": "access_token", "websocket_subprotocol": "wb"}


def view(
    authorization: list[bytes] | None = None,
    cookies: list[str] | None = None,
    query: str = "",
    subprotocols: list[str] | None = None,
) -> RequestView:
    made = RequestView("/", "GET", authorization or [])
    made.cookies, made.query, made.subprotocols = cookies, query, subprotocols
    return made


@pytest.mark.parametrize(
    ("request_view", "expected"),
    [
        (view([b"Bearer " + TOKEN]), TOKEN),
        (view([b"bearer " + TOKEN]), TOKEN),
        (view([b"BEARER   " + TOKEN + b"  "]), TOKEN),
        (view([b"  Bearer " + TOKEN]), TOKEN),
        (view(), MissingToken),
        (view([b"Basic dXNlcjpwdw=="]), MissingToken),
        (view([b"Bearer"]), InvalidRequest),
        (view([b"Bearer "]), InvalidRequest),
        # The common shape is cut by length alone: the token rule is the lookup's, on a miss.
        (view([b"Bearer a b"]), b"a b"),
        (view([b"Bearer " + b"x" * 101]), InvalidRequest),
        (view([b"Bearer a", b"Bearer b"]), InvalidRequest),
        (view([b"Bearer a, Bearer b"]), b"a, Bearer b"),
        (view([b"Basic x, Bearer b"]), InvalidRequest),
        (view([b"Bearer a,b"]), b"a,b"),
        (view([b"Bearer\ta"]), MissingToken),
        (view([b"Token x, Bearer a b"]), InvalidRequest),
        (view(cookies=["session=" + TOKEN.decode()]), TOKEN),
        (view(cookies=['a=1; session="' + TOKEN.decode() + '"']), TOKEN),
        (view(cookies=["session=a", "session=b"]), InvalidRequest),
        (view(cookies=["session=é"]), InvalidRequest),
        (view(cookies=["session="]), InvalidRequest),
        (view(cookies=["other=" + TOKEN.decode()]), MissingToken),
        (view(query="access_token=" + TOKEN.decode().replace("+", "%2B")), TOKEN),
        (view(query="access_token=a&access_token=b"), InvalidRequest),
        (view(query="other=x"), MissingToken),
        (view(subprotocols=["wb", TOKEN.decode()]), TOKEN),
        (view(subprotocols=["wb"]), InvalidRequest),
        (view(subprotocols=["chat"]), MissingToken),
        # The header wins over every other source; the cookie over the subprotocol and the query.
        (view([b"Bearer " + TOKEN], cookies=["session=other"]), TOKEN),
        (view(cookies=["session=" + TOKEN.decode()], query="access_token=other"), TOKEN),
    ],
)
def test_the_token_of_a_request(
    request_view: RequestView, expected: bytes | type[AuthenticationFailed]
) -> None:
    extractor = TokenExtractor(config(max_token_length=100, **SOURCES))
    if isinstance(expected, bytes):
        assert extractor.extract(request_view) == expected
    else:
        with pytest.raises(expected):
            extractor.extract(request_view)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (TOKEN, None),
        (b"x" * 100, None),
        (b"", "the bearer token is empty"),
        (b"x" * 101, "the bearer token is longer than 100 bytes"),
        (b"a b", "the bearer token is malformed"),
        (b"a,b", "the bearer token is malformed"),
        (b"=abc", "the bearer token is malformed"),
        (b"\xc3\xa9", "the bearer token is malformed"),
    ],
)
def test_the_token_rule(raw: bytes, error: str | None) -> None:
    if error is None:
        assert check_token(raw, 100) is raw
    else:
        with pytest.raises(InvalidRequest, match=f"^{error}$"):
            check_token(raw, 100)


def test_sources_not_configured_are_not_read() -> None:
    extractor = TokenExtractor(config())
    with pytest.raises(MissingToken):
        extractor.extract(view(cookies=["session=abc"], query="access_token=abc"))


# -- the RFC 6750 answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "challenge", "retry_after", "close_code"),
    [
        (MissingToken(), 401, 'Bearer realm="api"', None, 1008),
        (
            InvalidRequest("the bearer token is malformed"),
            400,
            'Bearer realm="api", error="invalid_request", '
            'error_description="the bearer token is malformed"',
            None,
            1008,
        ),
        (
            TokenRejected('a "quoted" \\ answer'),
            401,
            'Bearer realm="api", error="invalid_token", '
            'error_description="a \\"quoted\\" \\\\ answer"',
            None,
            1008,
        ),
        (WinkUnavailable("down", retry_after=7), 503, None, "7", 1013),
        (WinkBadResponse("odd"), 502, None, None, 1013),
    ],
    ids=["missing", "invalid", "rejected", "unavailable", "bad-response"],
)
def test_the_answer_to_a_refusal(
    error: AuthenticationFailed,
    status: int,
    challenge: str | None,
    retry_after: str | None,
    close_code: int,
) -> None:
    rendered = render(error, "api")
    headers = dict(rendered.headers)
    assert rendered.status == status
    assert headers.get("WWW-Authenticate") == challenge
    assert headers.get("Retry-After") == retry_after
    assert headers["Cache-Control"] == "no-store"
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(rendered.body))
    assert json.loads(rendered.body) == {
        "error": error.error or "missing_token",
        "error_description": error.description,
    }
    assert rendered.asgi_headers == [
        (name.lower().encode(), value.encode()) for name, value in rendered.headers
    ]
    assert websocket_close_code(error) == close_code


# -- the request gate ------------------------------------------------------------------------------

PROFILE = WinkProfile(wink_token="user-1")


class FakeMiss:
    """What a lookup hands back for a token it does not know."""


def lookup(token: bytes) -> WinkProfile | FakeMiss:
    """A cache that knows ``good``, has refused ``refused`` and has never seen anything else."""
    if token == b"good":
        return PROFILE
    if token == b"refused":
        raise TokenRejected("the access token was rejected by Wink")
    check_token(token, 4096)  # as the engine's lookup does on a miss
    return FakeMiss()


def gate(**options: Any) -> tuple[RequestGate, list[str | None]]:
    events: list[str | None] = []

    def emit(event: WinkEvent) -> None:
        assert event.name == "request"
        events.append(event.outcome)

    options = {"public_paths": ["/health"], "optional_paths": ["/feed"], **options}
    return RequestGate(config(**options), lookup, FakeMiss, emit), events


def request(path: str, token: bytes | None = None, *, preflight: bool = False) -> RequestView:
    made = RequestView(path, "OPTIONS" if preflight else "GET", [])
    if token is not None:
        made.authorization = [b"Bearer " + token]
    made.cors(preflight, preflight)
    return made


@pytest.mark.parametrize(
    ("request_view", "options", "kind", "error", "event"),
    [
        (request("/health"), {}, PUBLIC, None, "public"),
        (request("/health", b"refused"), {}, PUBLIC, None, "public"),  # never read
        (request("/me", preflight=True), {}, PREFLIGHT, None, "preflight"),
        (
            request("/me", preflight=True),
            {"protect_preflight": True},
            REFUSED,
            MissingToken,
            "missing",
        ),
        (request("/me", b"good"), {}, "admitted", None, "authenticated"),
        (request("/me", b"cold"), {}, PENDING, None, None),  # the event waits for the answer
        (request("/me"), {}, REFUSED, MissingToken, "missing"),
        (request("/me", b"refused"), {}, REFUSED, TokenRejected, "rejected"),
        (request("/me", b"a b"), {}, REFUSED, InvalidRequest, "invalid"),
        (request("/feed"), {}, ANONYMOUS, None, "anonymous"),
        (request("/feed", b"refused"), {}, REFUSED, TokenRejected, "rejected"),
        (
            request("/feed", b"refused"),
            {"anonymous_on_invalid": True},
            ANONYMOUS,
            TokenRejected,
            "anonymous",
        ),
        (request("/feed", b"good"), {}, "admitted", None, "authenticated"),
    ],
)
def test_the_gate_decides_every_request_once_and_says_so(
    request_view: RequestView,
    options: dict[str, Any],
    kind: str,
    error: type[AuthenticationFailed] | None,
    event: str | None,
) -> None:
    the_gate, events = gate(**options)
    decided = the_gate.decide(request_view)
    if kind == "admitted":
        assert decided is PROFILE
    else:
        assert type(decided) is Outcome
        assert decided.kind == kind
        assert type(decided.error) is error if error else decided.error is None
    assert events == ([] if event is None else [event])


@pytest.mark.parametrize(
    ("path", "failure", "kind", "event"),
    [
        ("/me", None, "admitted", "authenticated"),
        ("/me", WinkUnavailable("down"), REFUSED, "unavailable"),
        ("/me", WinkBadResponse("odd"), REFUSED, "bad_response"),
        ("/me", TokenRejected("no"), REFUSED, "rejected"),
        ("/feed", TokenRejected("no"), REFUSED, "rejected"),
        ("/feed", WinkUnavailable("down"), REFUSED, "unavailable"),
    ],
)
def test_a_pending_request_is_admitted_or_refused_once_resolved(
    path: str, failure: AuthenticationFailed | None, kind: str, event: str
) -> None:
    the_gate, events = gate()
    pending = the_gate.decide(request(path, b"cold"))
    assert type(pending) is Outcome and pending.kind is PENDING
    assert type(pending.miss) is FakeMiss
    if failure is None:
        assert the_gate.resolved(PROFILE) is PROFILE
    else:
        outcome = the_gate.failed(pending.access, failure)
        assert (outcome.kind, outcome.error) == (kind, failure)
    assert events == [event]


def test_without_an_observer_the_gate_decides_the_same() -> None:
    the_gate = RequestGate(config(optional_paths=["/feed"]), lookup, FakeMiss, None)
    assert the_gate.decide(request("/me", b"good")) is PROFILE
    decided = the_gate.decide(request("/feed"))
    assert type(decided) is Outcome and decided.kind is ANONYMOUS


def test_a_refusal_leaves_no_reference_cycle() -> None:
    # The adapter's frame holds the outcome; the error's traceback would hold the gate's frames.
    the_gate, _ = gate()
    gc.collect()
    gc.disable()
    try:
        outcome = the_gate.decide(request("/me", b"refused"))
        assert type(outcome) is Outcome and outcome.error is not None
        assert outcome.error.__traceback__ is None
        del outcome
        assert gc.collect() == 0
    finally:
        gc.enable()
