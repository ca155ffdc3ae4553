"""The engine's decisions, each tested once, on the I/O-free VerifierCore with a fake clock.

Pre-check, the token rule, classification of Wink's answers, cache lifetimes, negative caching,
stale-if-error and the circuit breaker are decided by :class:`VerifierCore` for both verifiers, so
they are tested here, on the core: :func:`ask` drives the real cold-verification flow
(``_engine/flow.py``, the one both twins drive) through one verification, with Wink's answer given
as an ``httpx.Response`` or a transport error. A decision that needs the twins' retry loop or
their counters of misses is tested through one twin, the sync one, whose backoff moves the fake clock.
The twins' own files test only their I/O and concurrency.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import httpx
import pytest

from tests.helpers import NOW, FakeClock, config, iso, make_token, profile_json
from tests.stub import WinkStub, sync_verifier
from wink_middleware import (
    AuthenticationFailed,
    InvalidRequest,
    TokenRejected,
    WinkBadResponse,
    WinkProfile,
    WinkUnavailable,
)
from wink_middleware._engine.client import translate
from wink_middleware._engine.core import ColdToken, VerifierCore, token_bytes
from wink_middleware._engine.flow import Post, Sleep, Step, cold_verification, run

TOKEN = make_token()
OK = httpx.Response(200, json=profile_json())
# The token lives an hour; with cache_ttl=60 and stale_if_error=120 the entry is fresh 60 s and
# usable 120 s more if Wink is down.
LONG_LIVED = profile_json(expiryTime=iso(NOW + 3600))

WinkAnswer = httpx.Response | Exception


def core(clock: FakeClock | None = None, **options: Any) -> VerifierCore:
    """A core on a fake clock, with the tests' config."""
    return VerifierCore(config(**options), clock=clock or FakeClock(), threads=False)


def miss(engine: VerifierCore, token: str = TOKEN) -> ColdToken:
    found = engine.lookup(token.encode())
    assert isinstance(found, ColdToken)
    return found


def ask(engine: VerifierCore, token: str = TOKEN, answer: WinkAnswer = OK) -> WinkProfile:
    """One verification through the real flow, every attempt answered with ``answer``.

    ``answer`` is what Wink (or the transport) gives back if the core decides to ask; whether it
    did shows in ``engine.stats.wink_calls``. A backoff moves the fake clock.
    """
    found = engine.lookup(token.encode())
    if not isinstance(found, ColdToken):
        return found

    def take(step: Step) -> Any:
        if isinstance(step, Sleep):
            engine.clock.advance(step.seconds)  # type: ignore[attr-defined]
            return None
        assert isinstance(step, Post), step
        if isinstance(answer, Exception):
            raise translate(answer)  # as the client module raises it
        body = answer.content if 200 <= answer.status_code < 300 else None
        return answer.status_code, answer.headers, body

    return run(cold_verification(engine, found), take)


def fail_times(engine: VerifierCore, n: int, answer: WinkAnswer, prefix: str = "down") -> None:
    for i in range(n):
        with pytest.raises(WinkUnavailable):
            ask(engine, make_token(sub=f"{prefix}-{i}"), answer)


# -- classifying Wink's answer ------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_definitive_statuses_reject_the_token(status: int) -> None:
    with pytest.raises(TokenRejected) as info:
        core().judge(miss(core()), status, httpx.Headers(), None, 0.0)
    assert info.value.status_code == 401


def test_403_is_logged_apart_as_a_possible_firewall(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "wink_middleware")
    engine = core()
    with pytest.raises(TokenRejected):
        engine.judge(miss(engine), 403, httpx.Headers(), None, 0.0)
    assert any(
        "firewall" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records
    )


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_transient_statuses_mean_wink_unavailable(status: int) -> None:
    engine = core()
    with pytest.raises(WinkUnavailable) as info:
        engine.judge(miss(engine), status, httpx.Headers(), None, 0.0)
    assert info.value.status_code == 503
    assert info.value.retry_after >= 1


def test_retry_after_from_wink_is_passed_on() -> None:
    engine = core()
    with pytest.raises(WinkUnavailable) as info:
        engine.judge(miss(engine), 429, httpx.Headers({"Retry-After": "12"}), None, 0.0)
    assert info.value.retry_after == 12


@pytest.mark.parametrize("status", [204, 301, 302, 405, 409, 418])
def test_unexpected_statuses_are_a_bad_response(status: int) -> None:
    engine = core()
    with pytest.raises(WinkBadResponse):
        engine.judge(miss(engine), status, httpx.Headers(), None, 0.0)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Gateway</body></html>",
        b'{"firstName": "Ada", "winkTo',
        httpx.Response(200, json=[profile_json()]).content,
        httpx.Response(200, json=profile_json(email=42)).content,
        httpx.Response(200, json=profile_json(winkToken="")).content,
        httpx.Response(200, json=profile_json(winkToken=None)).content,
        b"",
        b"\xff\xfe\x00",
        b"[" * 100_000,
        httpx.Response(200, json=profile_json(pad="x" * 70_000)).content,
        b" " * 10_000_000,
        None,
    ],
    ids=[
        "html",
        "truncated",
        "list",
        "wrong-type",
        "no-wink-token",
        "null-wink-token",
        "empty",
        "binary",
        "deep",
        "over-64k",
        "10mb",
        "not-read",
    ],
)
def test_unusable_2xx_bodies_are_a_bad_response(body: bytes | None) -> None:
    engine = core()
    for _ in range(2):
        found = miss(engine)  # a bad response is never cached
        with pytest.raises(WinkBadResponse) as info:
            engine.judge(found, 200, httpx.Headers(), body, 0.0)
        assert info.value.status_code == 502
        with pytest.raises(WinkBadResponse):
            engine.failed(found, info.value)
    assert len(engine.cache) == 0


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>"),
        httpx.Response(204),
        httpx.Response(302, headers={"Location": "https://elsewhere.test/"}),
        httpx.DecodingError("gzip"),
    ],
    ids=["html", "204", "redirect", "decoding-error"],
)
def test_unusable_answers_are_a_bad_response_and_never_cached(answer: WinkAnswer) -> None:
    engine = core()
    for _ in range(2):
        with pytest.raises(WinkBadResponse) as info:
            ask(engine, TOKEN, answer)
        assert info.value.status_code == 502
    assert engine.stats.wink_calls == 2
    assert engine.breaker.state == "closed", "Wink answered: it is up, if confused"


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("dropped"),
        httpx.WriteError("broken pipe"),
        httpx.PoolTimeout("busy"),
        OSError("network down"),
    ],
)
def test_transport_errors_mean_wink_unavailable(error: Exception) -> None:
    engine = core()
    with pytest.raises(WinkUnavailable) as info:
        ask(engine, TOKEN, error)
    assert isinstance(info.value.__cause__, type(error))
    assert engine.stats.wink_failures["unavailable"] == 1


def test_decoding_error_is_a_bad_response() -> None:
    engine = core()
    with pytest.raises(WinkBadResponse):
        engine.io_failed(miss(engine), translate(httpx.DecodingError("gzip")), 0.0)
    assert engine.breaker.state == "closed"


# -- retries (the twins' loop, on the core's plan) ------------------------------------------------


def test_transient_failure_is_retried_once_by_default() -> None:
    stub = WinkStub(httpx.Response(503), OK)
    wink = sync_verifier(stub, retries=1)
    assert wink.verify(TOKEN).wink_tag == ";ada"
    assert stub.calls == 2


def test_retries_stop_after_the_configured_count() -> None:
    stub = WinkStub(httpx.Response(502))
    with pytest.raises(WinkUnavailable):
        sync_verifier(stub, retries=2).verify(TOKEN)
    assert stub.calls == 3


@pytest.mark.parametrize("reply", [httpx.Response(401), httpx.Response(200, text="<html>")])
def test_definitive_answers_are_not_retried(reply: httpx.Response) -> None:
    stub = WinkStub(reply)
    with pytest.raises(AuthenticationFailed):
        sync_verifier(stub, retries=3).verify(TOKEN)
    assert stub.calls == 1


def test_retries_count_towards_the_threshold_and_stop_when_it_opens() -> None:
    stub = WinkStub(httpx.Response(503))
    wink = sync_verifier(stub, retries=5, breaker_threshold=3)
    with pytest.raises(WinkUnavailable, match="circuit breaker"):
        wink.verify(make_token())
    assert stub.calls == 3


def test_a_retry_plan_stops_at_the_retries_or_the_deadline() -> None:
    clock = FakeClock()
    engine = core(clock, retries=3, timeout=1.0)
    plan = engine.retry_plan()
    assert plan.attempt_timeout() == 1.0
    delays = [plan.next_delay() for _ in range(4)]
    assert all(d is not None and 0.05 <= d <= 0.6 for d in delays[:3])
    assert delays[3] is None
    late = engine.retry_plan()
    clock.advance(3.96)  # 0.04 s left of the 4 s deadline: not worth another attempt
    assert late.attempt_timeout() == pytest.approx(0.04)
    assert late.next_delay() is None


# -- the token rule and the pre-check -------------------------------------------------------------


@pytest.mark.parametrize(
    "token", ["", "a b", "tok\n", "é", "=abc", "x" * 4097, "ü" * 4, "x" * 5000, "abc,def", 42]
)
def test_verify_refuses_ill_formed_tokens_locally(token: Any) -> None:
    # Both twins' verify() is lookup(token_bytes(token)).
    engine = core()
    with pytest.raises(InvalidRequest):
        engine.lookup(token_bytes(token))
    assert engine.stats.wink_calls == 0


@pytest.mark.parametrize(
    "token", ["a b", "tok\n", "é", "=abc", "abc=def", make_token(azp="x") + "!"]
)
def test_lookup_refuses_a_malformed_token_on_a_miss_before_anything_else(token: str) -> None:
    # The middleware leaves the syntax check to the miss: a hit proves it, since only checked
    # tokens are cached. So a malformed token must never be pre-checked, cached or sent to Wink.
    engine = core()
    for _ in range(2):
        with pytest.raises(InvalidRequest, match="malformed"):
            engine.lookup(token.encode("utf-8"))
    assert engine.stats.wink_calls == 0
    assert len(engine.cache) == 0
    stats = engine.stats
    assert stats.local_rejections == stats.negative_hits == stats.misses == 0


@pytest.mark.parametrize("exp", [NOW - 10, NOW - 1])
def test_precheck_rejects_an_expired_jwt_without_calling_wink(exp: float) -> None:
    engine = core()
    with pytest.raises(TokenRejected, match="expired"):
        ask(engine, make_token(exp=exp))
    assert engine.stats.wink_calls == 0
    assert engine.stats.local_rejections == 1


def test_precheck_counts_a_token_expiring_within_leeway_as_expired() -> None:
    engine = core(leeway=5)
    with pytest.raises(TokenRejected, match="expired"):
        ask(engine, make_token(exp=NOW + 5))
    assert engine.stats.wink_calls == 0


def test_precheck_rejects_a_token_issued_to_another_client() -> None:
    engine = core()
    with pytest.raises(TokenRejected, match="another client"):
        ask(engine, make_token(azp="someone-else"))
    assert engine.stats.wink_calls == 0


def test_precheck_never_accepts_on_unverified_claims() -> None:
    engine = core()
    with pytest.raises(TokenRejected):
        ask(engine, make_token(exp=NOW + 3600), httpx.Response(401))
    assert engine.stats.wink_calls == 1


@pytest.mark.parametrize(
    "token",
    [
        "opaque-token",
        "a.b.c",
        "a.e30.c.d",
        "e30.W10.x",
        "a.eyJleHAiOiAiYSJ9.c",
        "a..c",
        "x.bnVsbA.y",
    ],
)
def test_precheck_does_not_judge_tokens_it_cannot_decode(token: str) -> None:
    engine = core()
    ask(engine, token)
    assert engine.stats.wink_calls == 1


def test_precheck_off_sends_everything_to_wink() -> None:
    engine = core(precheck=False)
    with pytest.raises(TokenRejected):
        ask(engine, make_token(exp=NOW - 10), httpx.Response(401))
    assert engine.stats.wink_calls == 1


def test_local_rejections_are_negative_cached() -> None:
    engine = core()
    token = make_token(azp="other")
    for _ in range(2):
        with pytest.raises(TokenRejected):
            ask(engine, token)
    assert engine.stats.local_rejections == 1
    assert engine.stats.negative_hits == 1


# -- the cache ----------------------------------------------------------------------------------


def test_second_verify_is_a_cache_hit() -> None:
    # Through a twin: it counts the misses.
    stub = WinkStub()
    wink = sync_verifier(stub)
    first = wink.verify(TOKEN)
    assert wink.verify(TOKEN) is first
    assert stub.calls == 1
    assert (wink.stats.misses, wink.stats.hits, wink.stats.wink_calls) == (1, 1, 1)


def test_cache_is_keyed_by_sha256_never_the_raw_token() -> None:
    engine = core()
    ask(engine)
    assert len(engine.cache) == 1
    assert engine.cache.get(hashlib.sha256(TOKEN.encode()).digest()) is not None
    assert engine.cache.get(TOKEN.encode()) is None


@pytest.mark.parametrize("options", [{"leeway": 5}, {}], ids=["leeway-5", "default-leeway"])
def test_positive_entry_ends_at_expiry_minus_leeway(options: dict[str, Any]) -> None:
    clock = FakeClock()
    engine = core(clock, **options)
    assert engine.config.leeway == 5
    expiring = httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 60)))
    token = make_token(ttl=3600)
    ask(engine, token, expiring)
    clock.advance(54.9)
    ask(engine, token, expiring)
    assert engine.stats.wink_calls == 1
    clock.advance(0.1)
    with pytest.raises(TokenRejected):  # past expiry - leeway the pre-check is not fooled either
        ask(engine, make_token(ttl=60), expiring)
    ask(engine, token, expiring)
    assert engine.stats.wink_calls == 2


def test_positive_entry_ends_after_cache_ttl_for_long_lived_tokens() -> None:
    clock = FakeClock()
    engine = core(clock, cache_ttl=300)
    answer = httpx.Response(200, json=LONG_LIVED)
    token = make_token(ttl=3600)
    ask(engine, token, answer)
    clock.advance(299)
    ask(engine, token, answer)
    assert engine.stats.wink_calls == 1
    clock.advance(1)
    ask(engine, token, answer)
    assert engine.stats.wink_calls == 2


def test_jwt_exp_bounds_the_entry_when_wink_sends_no_expiry() -> None:
    clock = FakeClock()
    engine = core(clock, leeway=5)
    answer = httpx.Response(200, json=profile_json(expiryTime=None))
    token = make_token(ttl=100)
    ask(engine, token, answer)
    clock.advance(94)
    ask(engine, token, answer)
    assert engine.stats.wink_calls == 1
    clock.advance(1)
    with pytest.raises(TokenRejected, match="expired"):
        ask(engine, token, answer)


def test_earlier_of_profile_expiry_and_jwt_exp_bounds_the_entry() -> None:
    clock = FakeClock()
    engine = core(clock, leeway=0, precheck=False)
    answer = httpx.Response(200, json=LONG_LIVED)
    token = make_token(ttl=50)
    ask(engine, token, answer)
    clock.advance(50)
    ask(engine, token, answer)
    assert engine.stats.wink_calls == 2


def test_cache_ttl_bounds_an_opaque_token_without_expiry() -> None:
    clock = FakeClock()
    engine = core(clock, cache_ttl=10)
    answer = httpx.Response(200, json=profile_json(expiryTime=None))
    ask(engine, "opaque", answer)
    clock.advance(9.9)
    ask(engine, "opaque", answer)
    assert engine.stats.wink_calls == 1
    clock.advance(0.1)
    ask(engine, "opaque", answer)
    assert engine.stats.wink_calls == 2


def test_profile_already_past_expiry_is_returned_but_not_cached() -> None:
    engine = core(leeway=5, precheck=False)
    answer = httpx.Response(200, json=profile_json(expiryTime=iso(NOW + 2)))
    token = make_token(ttl=3600)
    assert ask(engine, token, answer).wink_tag == ";ada"
    ask(engine, token, answer)
    assert engine.stats.wink_calls == 2
    assert len(engine.cache) == 0


def test_rejection_is_remembered_for_negative_ttl() -> None:
    clock = FakeClock()
    engine = core(clock, negative_ttl=30)
    for _ in range(3):
        with pytest.raises(TokenRejected):
            ask(engine, TOKEN, httpx.Response(401))
    assert engine.stats.wink_calls == 1
    assert engine.stats.negative_hits == 2
    clock.advance(30)
    with pytest.raises(TokenRejected):
        ask(engine, make_token(ttl=3600), httpx.Response(401))
    assert engine.stats.wink_calls == 2


def test_negative_ttl_zero_disables_negative_caching() -> None:
    engine = core(negative_ttl=0)
    for _ in range(2):
        with pytest.raises(TokenRejected):
            ask(engine, TOKEN, httpx.Response(401))
    assert engine.stats.wink_calls == 2


def test_transient_failures_are_never_cached() -> None:
    engine = core()
    with pytest.raises(WinkUnavailable):
        ask(engine, TOKEN, httpx.Response(503))
    assert ask(engine, TOKEN, OK).wink_tag == ";ada"
    assert engine.stats.wink_calls == 2


def test_cache_holds_at_most_cache_size_entries_lru_first() -> None:
    engine = core(cache_size=2)
    tokens = [make_token(sub=f"user-{i}") for i in range(3)]
    ask(engine, tokens[0])
    ask(engine, tokens[1])
    ask(engine, tokens[0])  # touch 0: 1 is now least recently used
    ask(engine, tokens[2])
    assert len(engine.cache) == 2
    ask(engine, tokens[0])
    assert engine.stats.wink_calls == 3
    ask(engine, tokens[1])
    assert engine.stats.wink_calls == 4


def test_cache_size_zero_disables_caching() -> None:
    engine = core(cache_size=0)
    ask(engine)
    ask(engine)
    assert engine.stats.wink_calls == 2
    assert len(engine.cache) == 0


def test_invalidate_drops_the_entry() -> None:
    stub = WinkStub()
    wink = sync_verifier(stub)
    wink.verify(TOKEN)
    assert wink.invalidate(TOKEN) is False  # no shared tier: this process only
    wink.invalidate(make_token(sub="never-seen"))
    wink.verify(TOKEN)
    assert stub.calls == 2


# -- stale-if-error -----------------------------------------------------------------------------


def test_stale_if_error_serves_a_cached_profile_while_wink_is_down() -> None:
    clock = FakeClock()
    engine = core(clock, cache_ttl=60, stale_if_error=120)
    token = make_token(ttl=3600)
    ask(engine, token, httpx.Response(200, json=LONG_LIVED))
    clock.advance(100)
    assert ask(engine, token, httpx.Response(503)).wink_tag == ";ada"
    assert engine.stats.stale_served == 1
    clock.advance(81)  # 181 s: past cache_ttl + stale_if_error
    with pytest.raises(WinkUnavailable):
        ask(engine, token, httpx.Response(503))


@pytest.mark.parametrize(
    ("age", "served"),
    [(60, True), (120, True), (179.9, True), (180, False), (600, False)],
)
def test_stale_is_served_within_the_grace_after_cache_ttl_and_not_after(
    age: float, served: bool
) -> None:
    clock = FakeClock()
    engine = core(clock, cache_ttl=60, stale_if_error=120)
    token = make_token(ttl=3600)
    ask(engine, token, httpx.Response(200, json=LONG_LIVED))
    clock.advance(age)
    if served:
        assert ask(engine, token, httpx.Response(503)).wink_tag == ";ada"
        assert engine.stats.stale_served == 1
    else:
        with pytest.raises(WinkUnavailable):
            ask(engine, token, httpx.Response(503))
        assert engine.stats.stale_served == 0
    assert engine.stats.wink_calls == 2, "a stale entry is served only after asking Wink"


@pytest.mark.parametrize("expiry", ["profile", "jwt"])
@pytest.mark.parametrize(("age", "served"), [(94.9, True), (95, False), (96, False), (200, False)])
def test_stale_is_never_served_past_the_tokens_expiry(
    expiry: str, age: float, served: bool
) -> None:
    # Expiry at NOW + 100, leeway 5: usable until NOW + 95 whatever stale_if_error says.
    if expiry == "profile":
        body, token = profile_json(expiryTime=iso(NOW + 100)), make_token(ttl=3600)
    else:
        body, token = profile_json(expiryTime=None), make_token(ttl=100)
    clock = FakeClock()
    engine = core(clock, cache_ttl=30, stale_if_error=3600, leeway=5, precheck=False)
    ask(engine, token, httpx.Response(200, json=body))
    clock.advance(age)
    if served:
        assert ask(engine, token, httpx.Response(503)).wink_tag == ";ada"
    else:
        with pytest.raises(WinkUnavailable):
            ask(engine, token, httpx.Response(503))
        assert engine.stats.stale_served == 0


@pytest.mark.parametrize(
    ("answer", "error", "age"),
    [
        (httpx.Response(401), TokenRejected, 61),
        (httpx.Response(401), TokenRejected, 90),
        (httpx.Response(403), TokenRejected, 90),
        (httpx.Response(200, text="<html>"), WinkBadResponse, 90),
    ],
)
def test_stale_is_served_only_for_an_outage_never_when_wink_answers(
    answer: httpx.Response, error: type[Exception], age: float
) -> None:
    clock = FakeClock()
    engine = core(clock, cache_ttl=60, stale_if_error=600)
    token = make_token(ttl=3600)
    ask(engine, token, httpx.Response(200, json=LONG_LIVED))
    clock.advance(age)
    with pytest.raises(error):
        ask(engine, token, answer)
    assert engine.stats.stale_served == 0


def test_a_rejection_replaces_the_stale_entry() -> None:
    clock = FakeClock()
    engine = core(clock, cache_ttl=60, stale_if_error=120)
    token = make_token(ttl=3600)
    ask(engine, token, httpx.Response(200, json=LONG_LIVED))
    clock.advance(90)
    with pytest.raises(TokenRejected):
        ask(engine, token, httpx.Response(401))
    with pytest.raises(TokenRejected):
        ask(engine, token, httpx.Response(503))
    assert engine.stats.wink_calls == 2, "the rejection is remembered; the old profile is gone"


def test_without_stale_if_error_an_outage_is_a_503_even_for_a_known_user() -> None:
    clock = FakeClock()
    engine = core(clock, cache_ttl=60)
    token = make_token(ttl=3600)
    ask(engine, token, httpx.Response(200, json=LONG_LIVED))
    clock.advance(61)
    with pytest.raises(WinkUnavailable):
        ask(engine, token, httpx.Response(503))


# -- the circuit breaker ------------------------------------------------------------------------


def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    engine = core(breaker_threshold=5, breaker_cooldown=10)
    fail_times(engine, 5, httpx.Response(503))
    assert engine.stats.wink_calls == 5
    assert engine.breaker.state == "open"
    with pytest.raises(WinkUnavailable, match="circuit breaker") as info:
        ask(engine, make_token(sub="another"))
    assert engine.stats.wink_calls == 5, "an open breaker answers without calling Wink"
    assert info.value.retry_after == 10
    assert engine.stats.breaker_opened == 1
    assert engine.stats.breaker_short_circuits == 1


def test_circuit_breaker_stops_calling_wink_after_repeated_outages() -> None:
    clock = FakeClock()
    engine = core(clock, breaker_threshold=2, breaker_cooldown=10)
    for _ in range(2):
        with pytest.raises(WinkUnavailable):
            ask(engine, TOKEN, httpx.Response(503))
    assert engine.breaker.state == "open"
    with pytest.raises(WinkUnavailable, match="circuit breaker"):
        ask(engine, TOKEN, httpx.Response(503))
    assert engine.stats.wink_calls == 2
    clock.advance(10)
    assert ask(engine, TOKEN, OK).wink_tag == ";ada"
    assert engine.breaker.state == "closed"


@pytest.mark.parametrize(
    "errors",
    [
        [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")],
        [httpx.ConnectError("refused"), TimeoutError()],
    ],
)
def test_breaker_counts_transport_errors_and_timeouts_too(errors: list[Exception]) -> None:
    engine = core(breaker_threshold=2)
    for i, error in enumerate(errors):
        fail_times(engine, 1, error, prefix=f"down-{i}")
    assert engine.breaker.state == "open"


def test_retry_after_counts_down_the_cool_down() -> None:
    clock = FakeClock()
    engine = core(clock, breaker_threshold=1, breaker_cooldown=10)
    fail_times(engine, 1, httpx.Response(500))
    clock.advance(6.5)
    with pytest.raises(WinkUnavailable) as info:
        ask(engine, make_token(sub="x"))
    assert info.value.retry_after == 4


def test_breaker_counts_only_consecutive_failures() -> None:
    engine = core(breaker_threshold=5)
    fail_times(engine, 4, httpx.Response(503), "a")
    with pytest.raises(TokenRejected):
        ask(engine, make_token(sub="rejected"), httpx.Response(401))
    fail_times(engine, 4, httpx.Response(503), "b")
    assert engine.breaker.state == "closed"
    ask(engine, make_token(sub="fine"))
    assert engine.stats.wink_calls == 10


def test_one_probe_after_the_cool_down_closes_on_success() -> None:
    clock = FakeClock()
    engine = core(clock, breaker_threshold=3, breaker_cooldown=10)
    fail_times(engine, 3, httpx.Response(503))
    clock.advance(9.9)
    assert engine.breaker.state == "open"
    clock.advance(0.1)
    assert engine.breaker.state == "half-open"
    ask(engine, make_token(sub="probe"))
    assert engine.stats.wink_calls == 4
    assert engine.breaker.state == "closed"
    ask(engine, make_token(sub="after"))
    assert engine.stats.wink_calls == 5, "a closed breaker calls Wink again"


def test_a_failed_probe_opens_the_breaker_again() -> None:
    clock = FakeClock()
    engine = core(clock, breaker_threshold=2, breaker_cooldown=10)
    fail_times(engine, 2, httpx.Response(503))
    clock.advance(10)
    fail_times(engine, 1, httpx.Response(503), "probe")
    assert engine.stats.wink_calls == 3
    assert engine.breaker.state == "open"
    with pytest.raises(WinkUnavailable, match="circuit breaker"):
        ask(engine, make_token(sub="again"))
    assert engine.stats.wink_calls == 3
    assert engine.stats.breaker_opened == 2


def test_a_probe_answered_with_a_rejection_closes_the_breaker() -> None:
    clock = FakeClock()
    engine = core(clock, breaker_threshold=1, breaker_cooldown=10)
    fail_times(engine, 1, httpx.Response(503))
    clock.advance(10)
    with pytest.raises(TokenRejected):
        ask(engine, make_token(sub="probe"), httpx.Response(401))
    assert engine.breaker.state == "closed"


def test_a_probe_answered_with_nonsense_closes_the_breaker() -> None:
    clock = FakeClock()
    engine = core(clock, breaker_threshold=1, breaker_cooldown=10)
    fail_times(engine, 1, httpx.Response(503))
    clock.advance(10)
    with pytest.raises(WinkBadResponse):
        ask(engine, make_token(sub="probe"), httpx.Response(200, text="<html>"))
    assert engine.breaker.state == "closed", "Wink answered: it is up, if confused"
    assert ask(engine, make_token(sub="next")).wink_tag == ";ada"
    assert engine.stats.wink_calls == 3


def test_a_lost_probe_costs_one_cool_down_not_an_open_breaker_for_good() -> None:
    clock = FakeClock()
    engine = core(clock, breaker_threshold=1, breaker_cooldown=10)
    fail_times(engine, 1, httpx.Response(503))
    clock.advance(10)
    engine.breaker.check()  # a probe is let through, and its call never reports back
    with pytest.raises(WinkUnavailable, match="circuit breaker") as info:
        ask(engine, make_token(sub="meanwhile"))
    assert info.value.retry_after == 1, "a probe is in flight: try again soon"
    clock.advance(10)
    assert ask(engine, make_token(sub="next probe")).wink_tag == ";ada"
    assert engine.breaker.state == "closed"


def test_a_probe_lost_to_a_bug_costs_one_cool_down_not_an_open_breaker_for_good() -> None:
    # Through a twin: the bug is raised where the twin does its I/O.
    clock = FakeClock()
    stub = WinkStub(httpx.Response(503), ZeroDivisionError("bug"), OK)
    wink = sync_verifier(stub, clock, breaker_threshold=1, breaker_cooldown=10)
    with pytest.raises(WinkUnavailable):
        wink.verify(make_token(sub="down"))
    clock.advance(10)
    with pytest.raises(ZeroDivisionError):
        wink.verify(make_token(sub="probe"))
    with pytest.raises(WinkUnavailable, match="circuit breaker"):
        wink.verify(make_token(sub="meanwhile"))
    clock.advance(10)
    assert wink.verify(make_token(sub="next probe")).wink_tag == ";ada"
    assert wink.breaker_state == "closed"
    assert stub.calls == 3


def test_cached_users_are_served_while_the_breaker_is_open() -> None:
    engine = core(breaker_threshold=1, breaker_cooldown=60)
    cached = make_token(sub="cached")
    ask(engine, cached)
    fail_times(engine, 1, httpx.Response(503))
    assert engine.breaker.state == "open"
    assert ask(engine, cached).wink_tag == ";ada"
    assert engine.stats.hits == 1


def test_stale_profile_is_served_while_the_breaker_is_open() -> None:
    clock = FakeClock()
    engine = core(clock, breaker_threshold=1, breaker_cooldown=60, cache_ttl=30, stale_if_error=60)
    cached = make_token(sub="cached")
    ask(engine, cached)
    fail_times(engine, 1, httpx.Response(503))
    clock.advance(31)
    assert ask(engine, cached, httpx.Response(503)).wink_tag == ";ada"
    assert engine.stats.wink_calls == 2, "the stale profile came without a call"
    assert engine.stats.stale_served == 1


# -- bounded pending calls ----------------------------------------------------------------------


def test_admit_refuses_a_new_cold_token_at_max_pending() -> None:
    engine = core(max_pending=2)
    engine.admit(1)
    with pytest.raises(WinkUnavailable, match="too many") as info:
        engine.admit(2)
    assert info.value.retry_after == 1
    assert engine.stats.overloaded == 1
