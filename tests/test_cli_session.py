"""``wink-middleware session``: the quickest credentials check: the id on
stdout, every failure one line naming the URL, Wink's status and a hint; exit codes as ``verify``."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from tests.helpers import cli_emulator, one_line
from wink_middleware._cli import main
from wink_middleware.testing import SESSION_PATH, WinkEmulator

SECRET = "cli-session-secret-never-printed"
CLIENT = "cli-session-client"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("WINK_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def wink(monkeypatch: pytest.MonkeyPatch) -> Iterator[WinkEmulator]:
    with cli_emulator(monkeypatch, CLIENT, SECRET) as emulator:
        yield emulator


def test_help_lists_the_session_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "session" in capsys.readouterr().out


def test_session_prints_the_id_of_a_fresh_session(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["session"]) == 0
    captured = capsys.readouterr()
    session_id = captured.out.strip()
    assert captured.err == ""
    # Without options or WINK_SESSION_* the session points at localhost: it is only a check.
    assert wink.use_session(session_id) == ("http://localhost/", "http://localhost/")


def test_session_takes_the_urls_from_options_then_the_environment(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINK_SESSION_CANCEL_URL", "https://app.example/cancelled")
    assert main(["session", "--return-url", "https://app.example/in"]) == 0
    session_id = capsys.readouterr().out.strip()
    assert wink.use_session(session_id) == (
        "https://app.example/in",
        "https://app.example/cancelled",
    )


def test_refused_credentials_exit_2_naming_the_url_status_and_what_to_check(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINK_CLIENT_SECRET", "not-the-emulators-secret")
    base_url = os.environ["WINK_BASE_URL"]
    assert main(["session"]) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith("wink-middleware: error: Wink refused the credentials")
    assert f"POST {base_url}{SESSION_PATH} answered 401" in line
    assert "check WINK_CLIENT_ID and WINK_CLIENT_SECRET" in line
    assert "not-the-emulators-secret" not in captured.err + captured.out
    assert captured.out == ""


def test_a_wrong_base_url_hints_at_it(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = os.environ["WINK_BASE_URL"] + "/identity"
    monkeypatch.setenv("WINK_BASE_URL", wrong)
    assert main(["session"]) == 3
    line = one_line(capsys.readouterr().err)
    assert f"POST {wrong}{SESSION_PATH} answered 404" in line
    assert "no session API there: check the host and path of WINK_BASE_URL" in line


def test_wink_unavailable_exits_3(wink: WinkEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    wink.fail_next(status=503)
    assert main(["session"]) == 3
    line = one_line(capsys.readouterr().err)
    assert "unavailable" in line and "answered 503" in line


def test_wink_answering_nonsense_exits_3(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    wink.malformed_next(body=b'{"nope": 1}')
    assert main(["session"]) == 3
    assert "answered badly" in one_line(capsys.readouterr().err)


def test_an_unreachable_wink_is_one_line_exit_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("WINK_BASE_URL", base_url)
    monkeypatch.setenv("WINK_CLIENT_ID", CLIENT)
    monkeypatch.setenv("WINK_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("WINK_RETRIES", "0")
    assert main(["session"]) == 3
    line = one_line(capsys.readouterr().err)
    assert f"POST {base_url}{SESSION_PATH}: no answer" in line
    assert SECRET not in line


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        (["session", "--return-url", "http://app.example/"], "--return-url"),
        (["session", "--cancel-url", "javascript:x"], "--cancel-url"),
        (["session", "--return-url"], "expected one argument"),
    ],
)
def test_bad_urls_are_a_usage_error_and_wink_is_not_called(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], argv: list[str], mentions: str
) -> None:
    assert main(argv) == 2
    assert mentions in one_line(capsys.readouterr().err)
    assert wink.session_calls == 0


def test_without_configuration_names_the_variables_to_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["session"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "WINK_CLIENT_ID" in line and "WINK_CLIENT_SECRET" in line


def test_verbose_shows_the_library_log_lines_without_the_secret(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["session", "-v"]) == 0
    captured = capsys.readouterr()
    assert "wink_middleware: INFO: Wink session" in captured.err
    assert SECRET not in captured.err and captured.out.strip() not in captured.err
