"""Property-based tests: hostile Authorization headers and arbitrary Wink answers never cause a 500."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import MutableMapping
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import FakeClock, config, make_token, profile_json
from tests.stub import WinkStub
from wink_middleware import AsyncWinkVerifier, WinkBadResponse, WinkMiddleware, WinkProfile

B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

header_values = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda s: s.encode("utf-8")),
    st.builds(
        lambda scheme, sep, cred: scheme + sep + cred,
        st.sampled_from(
            [b"Bearer", b"bearer", b"BEARER", b"Basic", b"Token", b"", b"Bearer\t", b"Bear"]
        ),
        st.sampled_from([b" ", b"  ", b"\t", b"", b" \t "]),
        st.one_of(
            st.from_regex(B64TOKEN, fullmatch=True).map(
                lambda s: s if isinstance(s, bytes) else s.encode()
            ),
            st.binary(max_size=100),
            st.just(make_token().encode()),
            st.just(b"A" * 5000),
        ),
    ),
)


def run_middleware(headers: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    stub = WinkStub()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wink = AsyncWinkVerifier(config(), client=stub.client(), clock=FakeClock())
    middleware = WinkMiddleware(app, verifier=wink)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
    }
    asyncio.run(middleware(scope, receive, send))
    return sent[0]["status"], stub.calls


def well_formed(value: bytes) -> bool:
    scheme, _, credential = value.strip(b" \t").partition(b" ")
    credential = credential.strip(b" ")
    return (
        scheme.lower() == b"bearer"
        and len(credential) <= 4096
        and bool(B64TOKEN.fullmatch(credential))
    )


@SETTINGS
@given(value=header_values)
def test_any_single_authorization_header_gets_200_400_or_401(value: bytes) -> None:
    status, calls = run_middleware([(b"authorization", value)])
    assert status in (200, 400, 401)
    if calls:
        assert well_formed(value), "Wink is asked only about a well-formed b64token"
    if not well_formed(value):
        assert calls == 0
        assert status in (400, 401)


@SETTINGS
@given(values=st.lists(header_values, min_size=2, max_size=4))
def test_repeated_authorization_headers_are_refused_without_calling_wink(
    values: list[bytes],
) -> None:
    status, calls = run_middleware([(b"authorization", v) for v in values])
    assert status == 400
    assert calls == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
profile_like = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(profile_json(), json_values),
).map(lambda d: {**d, "extraKey": 1})


@SETTINGS
@given(data=st.one_of(json_values, profile_like))
def test_any_json_from_wink_gives_a_profile_or_bad_response(data: Any) -> None:
    try:
        profile = WinkProfile.from_wink(data)
    except WinkBadResponse:
        return
    assert isinstance(profile, WinkProfile)
    assert profile.wink_token.strip()


@SETTINGS
@given(body=st.one_of(st.binary(max_size=500), json_values.map(lambda v: json.dumps(v).encode())))
def test_any_body_from_wink_gives_a_profile_or_bad_response_through_the_verifier(
    body: bytes,
) -> None:
    stub = WinkStub(httpx.Response(200, content=body))

    async def verify() -> object:
        wink = AsyncWinkVerifier(config(), client=stub.client(), clock=FakeClock())
        try:
            return await wink.verify(make_token())
        except WinkBadResponse as exc:
            return exc

    outcome = asyncio.run(verify())
    # The verifier agrees with the profile parser: a profile exactly when the body is one.
    try:
        expected: WinkProfile | None = WinkProfile.from_wink(json.loads(body))
    except (ValueError, RecursionError, WinkBadResponse):
        expected = None
    if expected is None:
        assert isinstance(outcome, WinkBadResponse)
        assert outcome.status_code == 502
    else:
        assert outcome == expected
    assert stub.calls == 1


def test_unicode_whitespace_around_the_header_is_not_trimmed_into_a_token() -> None:
    status, calls = run_middleware([(b"authorization", b"\x85Bearer abc")])
    assert (status, calls) == (401, 0)
