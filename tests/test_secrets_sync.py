"""The sync verifier, the WSGI middleware and the emulator never leak.

Every log record of every logger is captured at DEBUG over the success path and every failure path
(Wink's answers in-process, then real sockets: the emulator served, raw TCP faults, refused
connections). The client secret and the raw token never appear in logs, reprs, exception messages
(with their whole ``__cause__`` chain where the cause is a real I/O error) or response bodies and
headers; the user's email, phone and names never appear in logs.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.helpers import (
    CLIENT_SECRET,
    NOW,
    FakeClock,
    config,
    make_token,
    open_when_all_wait,
    profile_json,
    run_threads,
)
from tests.raw_tcp import hang, raw_server, reset_mid_body, trickle_body
from tests.stub import WinkStub
from wink_middleware import (
    AuthenticationFailed,
    WinkProfile,
    WinkVerifier,
    WinkWSGIMiddleware,
    _cli,
    get_profile,
)
from wink_middleware._cli import main
from wink_middleware.testing import VERIFY_PATH, WinkEmulator

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from wink_middleware.testing._server import ServerThread

TOKEN = make_token(padding=40)
# Distinctive values, so a hit cannot be a coincidence.
PERSONAL = {
    "firstName": "Marguerite",
    "lastName": "Perey-Quantrill",
    "contactNo": "(555) 017-4242",
    "email": "marguerite.pq@example.org",
}
PROFILE = profile_json(**PERSONAL, clientSecret=CLIENT_SECRET)
SECRETS = (CLIENT_SECRET, TOKEN)


def log_text(records: Iterable[logging.LogRecord]) -> str:
    """Everything a handler could write for these records: message, arguments, tracebacks."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(f"{formatter.format(r)} {r.args!r}" for r in records)


def assert_no_leak(text: str, *, personal: bool = False) -> None:
    for secret in SECRETS:
        assert secret not in text
    if personal:
        for value in PERSONAL.values():
            assert value not in text


def exception_text(exc: BaseException, *, chain: bool) -> str:
    """What reaches a log or an error page from ``exc``: its message, repr, description, args,
    and with ``chain`` the whole formatted traceback with its causes."""
    parts = [str(exc), repr(exc), repr(exc.args), str(getattr(exc, "description", ""))]
    if chain:
        parts.append("".join(traceback.format_exception(exc)))
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def every_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """DEBUG on every logger; at the end, no record anywhere holds a secret or personal data."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    records = [r for when in ("setup", "call") for r in caplog.get_records(when)]
    assert_no_leak(log_text(records), personal=True)


@pytest.fixture
def no_sleep() -> None:
    """The verifiers here run on a FakeClock, whose sleep moves the clock instead of waiting."""


def wsgi_app(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    profile = get_profile(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"anonymous" if profile is None else profile.wink_tag.encode()]


def through_wsgi(verifier: WinkVerifier, headers: dict[str, str]) -> httpx.Response:
    middleware = WinkWSGIMiddleware(wsgi_app, verifier=verifier)
    transport = httpx.WSGITransport(app=middleware)
    with httpx.Client(transport=transport, base_url="http://app") as client:
        response = client.get("/", headers=headers)
    assert_no_leak(repr(middleware) + repr(middleware.config) + str(middleware.config))
    return response


def assert_clean_response(response: httpx.Response) -> None:
    text = response.text + repr(response.headers.multi_items())
    assert_no_leak(text, personal=response.status_code != 200)


# -- every answer Wink can give, in-process -----------------------------------------------------

REPLIES: list[Any] = [
    pytest.param(httpx.Response(200, json=PROFILE), id="success"),
    pytest.param(
        httpx.Response(200, json={**PROFILE, "expiryTime": "2001-01-01T00:00:00Z"}),
        id="success-already-expired",
    ),
    *[pytest.param(httpx.Response(s), id=str(s)) for s in (400, 401, 403, 404)],
    *[
        pytest.param(httpx.Response(s, headers={"Retry-After": "3"}), id=str(s))
        for s in (408, 429, 500, 502, 503, 504)
    ],
    pytest.param(httpx.Response(302, headers={"Location": f"/x?t={TOKEN}"}), id="302"),
    pytest.param(httpx.Response(418, text=f"echo {CLIENT_SECRET}"), id="418-echoing-the-secret"),
    pytest.param(httpx.Response(200, text="<html>"), id="html"),
    pytest.param(httpx.Response(200, text='{"email": "marguerite.pq@exa'), id="truncated"),
    pytest.param(httpx.Response(200, json=[PROFILE]), id="list"),
    pytest.param(httpx.Response(200, json={**PROFILE, "winkToken": None}), id="no-wink-token"),
    pytest.param(httpx.Response(200, json={**PROFILE, "email": 42}), id="email-a-number"),
    pytest.param(
        httpx.Response(200, json={**PROFILE, "expiryTime": PERSONAL["email"]}),
        id="expiry-holds-personal-data",
    ),
    pytest.param(
        httpx.Response(200, json={**PROFILE, "firstName": PERSONAL["firstName"] * 9000}),
        id="over-64k",
    ),
    pytest.param(httpx.ConnectError(f"failed for {TOKEN} {CLIENT_SECRET}"), id="connect-error"),
    pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
    pytest.param(httpx.RemoteProtocolError("peer closed"), id="protocol-error"),
    pytest.param(httpx.DecodingError("bad gzip"), id="decoding-error"),
]


@pytest.mark.parametrize("reply", REPLIES)
def test_no_secret_or_token_leaks_from_the_sync_verifier_on_any_answer(
    reply: Any, no_sleep: None
) -> None:
    stub = WinkStub(reply)
    verifier = WinkVerifier(config(retries=1), client=stub.sync_client(), clock=FakeClock())
    outcome: object
    try:
        outcome = verifier.verify(TOKEN)
    except AuthenticationFailed as exc:
        outcome = exc
        # The synthetic cause of connect-error holds both on purpose: only our own text is judged.
        assert_no_leak(exception_text(exc, chain=False), personal=True)
    assert_no_leak(repr(outcome) + repr(verifier) + repr(verifier.config) + str(verifier.stats))
    if isinstance(outcome, WinkProfile):
        assert_no_leak(repr(outcome), personal=True)
        assert CLIENT_SECRET not in repr(outcome.extra), "Wink's clientSecret is dropped"


@pytest.mark.parametrize("reply", REPLIES)
def test_no_secret_or_token_leaks_from_the_wsgi_middleware_on_any_answer(
    reply: Any, no_sleep: None
) -> None:
    stub = WinkStub(reply)
    verifier = WinkVerifier(config(retries=1), client=stub.sync_client(), clock=FakeClock())
    response = through_wsgi(verifier, {"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code in (200, 401, 502, 503)
    assert_clean_response(response)


@pytest.mark.parametrize("reply", REPLIES)
def test_no_secret_leaks_from_create_session_or_the_session_route_on_any_answer(
    reply: Any, no_sleep: None
) -> None:
    import base64

    basic = base64.b64encode(f"{config().client_id}:{CLIENT_SECRET}".encode()).decode()
    stub = WinkStub(reply)
    verifier = WinkVerifier(config(retries=1), client=stub.sync_client(), clock=FakeClock())
    texts = [repr(verifier)]
    try:
        session = verifier.create_session("https://app.example/in", "https://app.example/out")
    except AuthenticationFailed as exc:
        texts.append(exception_text(exc, chain=False))
    else:
        texts.append(repr(session))
    middleware = WinkWSGIMiddleware(
        wsgi_app,
        verifier=verifier,
        session_path="/session",
        session_return_url="https://app.example/in",
        session_cancel_url="https://app.example/out",
    )
    with httpx.Client(
        transport=httpx.WSGITransport(app=middleware), base_url="http://app"
    ) as client:
        response = client.get("/session")
    assert response.status_code in (200, 502, 503)
    texts += [response.text, repr(response.headers.multi_items()), repr(middleware.config)]
    for text in texts:
        assert_no_leak(text)
        assert basic not in text


# -- paths that never reach Wink, and the cache ------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": f"Bearer {make_token(exp=NOW - 60)}"}, id="expired"),
        pytest.param({"Authorization": f"Bearer {make_token(azp='other-app')}"}, id="other-azp"),
        pytest.param({"Authorization": f"Bearer {TOKEN}!"}, id="malformed"),
        pytest.param({"Authorization": f"Bearer {TOKEN}{'a' * 9000}"}, id="too-long"),
        pytest.param({"Authorization": f"Bearer {TOKEN}, Bearer {TOKEN}"}, id="repeated"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="other-scheme"),
    ],
)
def test_local_refusals_leak_nothing(headers: dict[str, str]) -> None:
    stub = WinkStub()
    verifier = WinkVerifier(config(), client=stub.sync_client(), clock=FakeClock())
    response = through_wsgi(verifier, headers)
    assert response.status_code in (400, 401)
    assert stub.calls == 0
    assert_clean_response(response)
    for value in headers.values():
        token = value.split(" ", 1)[1]
        assert token not in response.text + repr(response.headers.multi_items())


def test_cache_hits_negative_hits_invalidate_and_stale_leak_nothing() -> None:
    clock = FakeClock()
    rejected = make_token(sub="rejected")
    stub = WinkStub(httpx.Response(200, json=PROFILE), httpx.Response(401), httpx.Response(503))
    verifier = WinkVerifier(
        config(cache_ttl=10, stale_if_error=300), client=stub.sync_client(), clock=clock
    )
    verifier.verify(TOKEN)
    verifier.verify(TOKEN)
    with pytest.raises(AuthenticationFailed) as info:
        verifier.verify(rejected)
    with pytest.raises(AuthenticationFailed):
        verifier.verify(rejected)
    clock.advance(11)
    assert verifier.verify(TOKEN).email == PERSONAL["email"]
    assert verifier.stats.stale_served == 1
    verifier.invalidate(TOKEN)
    assert_no_leak(exception_text(info.value, chain=True) + repr(verifier.stats.as_dict()))


def test_an_open_breaker_leaks_nothing(no_sleep: None) -> None:
    stub = WinkStub(httpx.Response(503))
    verifier = WinkVerifier(
        config(breaker_threshold=1), client=stub.sync_client(), clock=FakeClock()
    )
    for _ in range(2):
        with pytest.raises(AuthenticationFailed) as info:
            verifier.verify(TOKEN)
        assert_no_leak(exception_text(info.value, chain=True))
    response = through_wsgi(verifier, {"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert_clean_response(response)


def test_threads_sharing_a_failed_call_get_exceptions_that_leak_nothing() -> None:
    gate = threading.Event()
    stub = WinkStub(httpx.ConnectError("refused"), gate=gate)
    verifier = WinkVerifier(config(retries=0), client=stub.sync_client(), clock=FakeClock())
    opener = threading.Thread(target=open_when_all_wait, args=(verifier, 7, gate))
    opener.start()
    results = run_threads(8, lambda: verifier.verify(TOKEN))
    opener.join()
    assert all(isinstance(r, AuthenticationFailed) for r in results)
    for result in results:
        assert_no_leak(exception_text(result, chain=True))


# -- real sockets: the emulator served, raw TCP faults, nothing listening ----------------------

EMULATOR_SECRET = "emulator-secret-never-shown"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[WinkEmulator, str]]:
    emulator = WinkEmulator("leak-client", EMULATOR_SECRET)
    with emulator.serve() as url:
        yield emulator, url


def verify_for_real(verifier: WinkVerifier, token: str) -> object:
    """Verify over a real socket and through WSGI; check the exception chain and the response."""
    try:
        outcome: object = verifier.verify(token)
    except AuthenticationFailed as exc:
        outcome = exc
        text = exception_text(exc, chain=True)
        assert EMULATOR_SECRET not in text and token not in text
        assert CLIENT_SECRET not in text
    verifier.invalidate(token)
    response = through_wsgi(verifier, {"Authorization": f"Bearer {token}"})
    dump = response.text + repr(response.headers.multi_items())
    assert EMULATOR_SECRET not in dump and token not in dump
    return outcome


EMULATOR_FAULTS: list[Any] = [
    pytest.param(lambda e: None, id="success"),
    pytest.param(lambda e: e.fail_next(2, 503), id="503"),
    pytest.param(
        lambda e: e.fail_next(2, 500, f"<html>{EMULATOR_SECRET}</html>".encode()), id="500"
    ),
    pytest.param(lambda e: e.drop_next(2), id="dropped"),
    pytest.param(lambda e: e.malformed_next(2), id="truncated-json"),
    pytest.param(lambda e: setattr(e, "latency", 1.0), id="slow"),
]


@pytest.mark.slow
@pytest.mark.parametrize("fault", EMULATOR_FAULTS)
def test_nothing_leaks_over_real_http_to_the_served_emulator(
    fault: Callable[[WinkEmulator], object],
    served: tuple[WinkEmulator, str],
    every_log: pytest.LogCaptureFixture,
) -> None:
    emulator, url = served
    emulator.reset()
    token = emulator.issue_token(first_name=PERSONAL["firstName"], email=PERSONAL["email"])
    fault(emulator)
    verifier = WinkVerifier(emulator.wink_config(base_url=url, timeout=0.2, retries=0))
    try:
        verify_for_real(verifier, token)
    finally:
        verifier.close()
        emulator.reset()
    text = log_text(every_log.records)
    assert EMULATOR_SECRET not in text and token not in text


@pytest.mark.slow
def test_a_wrong_secret_and_a_revoked_token_leak_nothing(
    served: tuple[WinkEmulator, str], every_log: pytest.LogCaptureFixture
) -> None:
    emulator, url = served
    emulator.reset()
    revoked = emulator.issue_token()
    emulator.revoke(revoked)
    with WinkVerifier(emulator.wink_config(base_url=url, retries=0)) as verifier:
        verify_for_real(verifier, revoked)
    wrong = config(base_url=url, client_id="leak-client", retries=0)
    with WinkVerifier(wrong) as verifier:
        verify_for_real(verifier, emulator.issue_token())
    text = log_text(every_log.records)
    assert EMULATOR_SECRET not in text and revoked not in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(hang, id="hang"),
        pytest.param(trickle_body(0.05), id="trickle"),
        pytest.param(reset_mid_body, id="reset-mid-body"),
        pytest.param(None, id="refused"),
    ],
)
def test_nothing_leaks_when_the_socket_fails(handler: Any) -> None:
    if handler is None:
        with raw_server(hang) as server:
            pass
        url = server.url
        verifier = WinkVerifier(config(base_url=url, timeout=0.2, retries=0))
        verify_for_real(verifier, TOKEN)
        verifier.close()
        return
    with raw_server(handler) as server:
        verifier = WinkVerifier(config(base_url=server.url, timeout=0.2, retries=0))
        verify_for_real(verifier, TOKEN)
        verifier.close()


# -- the emulator and the CLI ------------------------------------------------------------------


def test_the_emulator_repr_config_and_verifier_never_show_its_secret() -> None:
    emulator = WinkEmulator("leak-client", EMULATOR_SECRET)
    emulator.issue_token()
    texts = [
        repr(emulator),
        str(emulator),
        repr(emulator.wink_config()),
        str(emulator.wink_config()),
        repr(emulator.verifier()),
        repr(emulator.async_verifier()),
    ]
    assert all(EMULATOR_SECRET not in t for t in texts)


@pytest.mark.slow
def test_the_emulator_command_never_prints_or_logs_its_secret(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    every_log: pytest.LogCaptureFixture,
) -> None:
    answers: list[int] = []

    def exercise(server: ServerThread) -> None:
        verify = f"{server.url}{VERIFY_PATH}"
        good = {"ClientId": "cli", "AccessToken": "x.y.z", "ClientSecret": EMULATOR_SECRET}
        for body in [good, {**good, "ClientSecret": "wrong"}, {"ClientSecret": EMULATOR_SECRET}]:
            answers.append(httpx.post(verify, json=body, timeout=5).status_code)
        answers.append(httpx.post(verify, content=EMULATOR_SECRET.encode(), timeout=5).status_code)

    def run_then_stop(server: ServerThread) -> None:
        exercise(server)
        server.stop()

    monkeypatch.setattr(_cli, "_wait", run_then_stop)
    assert (
        main(["emulator", "--port", "0", "--client-id", "cli", "--client-secret", EMULATOR_SECRET])
        == 0
    )
    assert answers == [401, 401, 400, 400]
    captured = capsys.readouterr()
    assert EMULATOR_SECRET not in captured.out + captured.err
    assert any("POST" in r.getMessage() for r in every_log.records), "the access log was captured"
    assert EMULATOR_SECRET not in log_text(every_log.records)


@pytest.mark.slow
def test_the_verify_command_never_prints_the_secret_or_the_token(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    served: tuple[WinkEmulator, str],
) -> None:
    emulator, url = served
    emulator.reset()
    monkeypatch.setenv("WINK_BASE_URL", url)
    monkeypatch.setenv("WINK_CLIENT_ID", "leak-client")
    monkeypatch.setenv("WINK_CLIENT_SECRET", EMULATOR_SECRET)
    monkeypatch.setenv("WINK_RETRIES", "0")
    monkeypatch.setenv("WINK_TIMEOUT", "0.3")
    good = emulator.issue_token()
    revoked = emulator.issue_token()
    emulator.revoke(revoked)
    assert main(["verify", good]) == 0
    outputs = [capsys.readouterr()]
    for token, arm in [(revoked, None), (emulator.issue_token(), 503), (f"{good}!", None)]:
        if arm:
            emulator.fail_next(1, arm)
        assert main(["verify", token]) != 0
        captured = capsys.readouterr()
        assert token not in captured.out + captured.err
        outputs.append(captured)
    emulator.reset()
    for captured in outputs:
        assert EMULATOR_SECRET not in captured.out + captured.err
