"""The wink-middleware console script: emulator, token, demo and verify; one-line failures, clean
stops, and failures of verify that say which URL was called and what Wink answered."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import cli_emulator, one_line
from wink_middleware import WinkVerifier, _cli
from wink_middleware._cli import main
from wink_middleware.testing import TOKENS_PATH, VERIFY_PATH, WinkEmulator
from wink_middleware.testing._server import ServerThread

SECRET = "cli-secret-never-printed"
CLIENT = "cli-client"
WINK_VARIABLES = [name for name in os.environ if name.startswith("WINK_")]
SCRIPT = Path(sys.executable).with_name("wink-middleware")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in WINK_VARIABLES:
        monkeypatch.delenv(name)


@pytest.fixture
def wink(monkeypatch: pytest.MonkeyPatch) -> Iterator[WinkEmulator]:
    """A real emulator server, and the environment pointing `verify` at it."""
    with cli_emulator(monkeypatch, CLIENT, SECRET) as emulator:
        yield emulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- arguments -----------------------------------------------------------------------------------


def test_help_lists_the_four_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("emulator", "token", "demo", "verify"):
        assert command in out


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from wink_middleware import __version__

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        ([], "required"),
        (["serve"], "invalid choice"),
        (["emulator", "--port", "99999"], "not a port number"),
        (["demo", "--port", "http"], "not a port number"),
        (["emulator", "--ttl", "0"], "seconds"),
        (["emulator", "--client-id", "has space"], "client-id"),
        (["emulator", "--client-secret", " "], "client-secret"),
        (["verify", "a", "b"], "unrecognized"),
        (["token"], "--emulator"),
        (["token", "--emulator", "ftp://127.0.0.1:1"], "http:// URL"),
        (["token", "--emulator", "http://127.0.0.1:1", "--ttl", "3.5"], "seconds"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], mentions: str
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith("wink-middleware: error:")
    assert mentions in line
    assert captured.out == ""


# -- verify --------------------------------------------------------------------------------------


def test_verify_without_configuration_names_the_variables_to_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["verify", "some.token.here"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "WINK_CLIENT_ID" in line
    assert "WINK_CLIENT_SECRET" in line


@pytest.mark.slow
def test_verify_prints_the_profile_as_json(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    token = wink.issue_token(first_name="Grace", wink_token="user-7")
    assert main(["verify", token]) == 0
    captured = capsys.readouterr()
    profile = json.loads(captured.out)
    assert profile["firstName"] == "Grace"
    assert profile["winkToken"] == "user-7"
    assert profile["expiryTime"].endswith("Z")
    assert SECRET not in captured.out + captured.err


@pytest.mark.slow
def test_verify_reads_the_token_from_stdin(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(wink.issue_token() + "\n"))
    assert main(["verify"]) == 0
    assert json.loads(capsys.readouterr().out)["lastName"] == "Lovelace"


def test_verify_with_empty_stdin_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["verify"]) == 2
    assert "no token" in one_line(capsys.readouterr().err)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make_token", "code", "reason"),
    [
        (lambda e: e.issue_token(ttl=-5), 1, "token rejected: the access token has expired"),
        (lambda e: "unknown.to.wink", 1, "token rejected"),
        (lambda e: "not a token", 1, "not a usable token"),
    ],
)
def test_verify_refused_token_exits_1_with_the_reason(
    wink: WinkEmulator,
    capsys: pytest.CaptureFixture[str],
    make_token: Callable[[WinkEmulator], str],
    code: int,
    reason: str,
) -> None:
    assert main(["verify", make_token(wink)]) == code
    captured = capsys.readouterr()
    assert reason in one_line(captured.err)
    assert captured.out == ""


@pytest.mark.slow
def test_verify_when_wink_answers_nonsense_exits_3(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    wink.malformed_next(body=b"<html>maintenance</html>", content_type="text/html")
    assert main(["verify", wink.issue_token()]) == 3
    assert "answered badly" in one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_verify_when_wink_is_down_exits_3(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    wink.fail_next(status=503)
    assert main(["verify", wink.issue_token()]) == 3
    assert "unavailable" in one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_verify_against_an_unreachable_host_is_one_line_exit_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("WINK_BASE_URL", base_url)
    monkeypatch.setenv("WINK_CLIENT_ID", CLIENT)
    monkeypatch.setenv("WINK_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("WINK_RETRIES", "0")
    assert main(["verify", "a.b.c"]) == 3
    line = one_line(capsys.readouterr().err)
    assert base_url in line
    assert "could not be reached" in line
    assert SECRET not in line


def test_verify_failure_names_the_url_called_and_that_wink_did_not_answer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("WINK_BASE_URL", base_url)
    monkeypatch.setenv("WINK_CLIENT_ID", CLIENT)
    monkeypatch.setenv("WINK_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("WINK_RETRIES", "0")
    assert main(["verify", "a.b.c"]) == 3
    line = one_line(capsys.readouterr().err)
    assert f"POST {base_url}{VERIFY_PATH}: no answer" in line


def test_verify_401_names_wink_status_and_hints_at_the_credentials(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINK_CLIENT_SECRET", "not-the-emulators-secret")
    base_url = os.environ["WINK_BASE_URL"]
    assert main(["verify", wink.issue_token()]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith("wink-middleware: error: token rejected:")
    assert f"POST {base_url}{VERIFY_PATH} answered 401" in line
    assert "if every token gets 401, check WINK_CLIENT_ID and WINK_CLIENT_SECRET" in line
    assert base_url.removeprefix("http://") in line
    assert "not-the-emulators-secret" not in line


def test_verify_404_hints_at_the_base_url(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = os.environ["WINK_BASE_URL"] + "/identity"
    monkeypatch.setenv("WINK_BASE_URL", wrong)
    # Wink answers some unknown tokens with 404, so the library counts it as a rejection.
    assert main(["verify", wink.issue_token()]) == 1
    line = one_line(capsys.readouterr().err)
    assert f"POST {wrong}{VERIFY_PATH} answered 404" in line
    assert "check the host and path of WINK_BASE_URL" in line


def test_verify_of_an_expired_token_says_wink_was_not_called(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", wink.issue_token(ttl=-5)]) == 1
    assert "decided locally; Wink was not called" in one_line(capsys.readouterr().err)
    assert wink.calls == 0


def test_verify_unavailable_names_wink_status(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    wink.fail_next(status=503)
    assert main(["verify", wink.issue_token()]) == 3
    assert "answered 503" in one_line(capsys.readouterr().err)


def test_verify_verbose_shows_the_library_log_lines(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    wink.fail_next(status=503)
    assert main(["verify", "-v", wink.issue_token()]) == 3
    err = capsys.readouterr().err
    assert "wink_middleware: WARNING:" in err
    assert err.strip().splitlines()[-1].startswith("wink-middleware: error:")


@pytest.mark.slow
def test_verify_with_redis_says_whether_the_fleet_cache_answered(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], redis_url: str
) -> None:
    token = wink.issue_token(first_name="Grace")
    assert main(["verify", "--redis", redis_url, token]) == 0
    first = capsys.readouterr()
    assert json.loads(first.out)["firstName"] == "Grace"
    assert "verified with Wink" in one_line(first.err)
    assert "answered 200); now in the fleet cache" in first.err

    assert main(["verify", "--redis", redis_url, token]) == 0
    second = capsys.readouterr()
    assert json.loads(second.out)["firstName"] == "Grace"
    assert one_line(second.err) == "answered from the fleet cache (Redis): Wink was not called"
    assert wink.calls == 1
    assert SECRET not in first.err + second.err


def test_verify_with_an_unreachable_redis_still_verifies_and_says_so(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["verify", "--redis", f"redis://127.0.0.1:{free_port()}/0", wink.issue_token()]) == 0
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out)["firstName"] == "Ada"
    assert one_line(captured.err).startswith("Redis was unavailable: verified with Wink directly")


def test_verify_with_a_bad_redis_url_is_a_usage_error(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--redis", "http://127.0.0.1:6379", "a.b.c"]) == 2
    assert "redis_url must be" in one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_verify_against_an_unreachable_host_prints_one_line_as_a_real_process() -> None:
    env = child_env() | {
        "WINK_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "WINK_CLIENT_ID": CLIENT,
        "WINK_CLIENT_SECRET": SECRET,
    }
    result = subprocess.run(
        [sys.executable, "-m", "wink_middleware", "verify", "a.b.c"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 3
    assert "could not be reached" in one_line(result.stderr)


# -- token ---------------------------------------------------------------------------------------


def test_token_prints_a_fresh_token_from_a_running_emulator(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    base_url = os.environ["WINK_BASE_URL"]
    argv = ["token", "--emulator", base_url + "/", "--ttl", "60", "--first-name", "Grace"]
    assert main([*argv, "--wink-token", "user-7", "--email", "grace@example.com"]) == 0
    captured = capsys.readouterr()
    token = one_line(captured.out)
    assert captured.err == ""
    assert main(["verify", token]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert (profile["firstName"], profile["winkToken"]) == ("Grace", "user-7")
    assert profile["email"] == "grace@example.com"
    assert wink.calls == 1  # minting is not a Verify Client call


@pytest.mark.parametrize("ttl", ["-1", "--ttl=-60"])
def test_token_with_a_negative_ttl_is_already_expired(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], ttl: str
) -> None:
    argv = ["token", "--emulator", os.environ["WINK_BASE_URL"]]
    argv += ["--ttl", ttl] if not ttl.startswith("--") else [ttl]
    assert main(argv) == 0
    token = one_line(capsys.readouterr().out)
    assert main(["verify", token]) == 1  # refused: expired
    assert "expired" in capsys.readouterr().err


@pytest.mark.parametrize("ttl", ["soon", "1.5", "--1", str(367 * 86400)])
def test_token_refuses_a_ttl_that_is_not_a_whole_number_of_seconds(
    capsys: pytest.CaptureFixture[str], ttl: str
) -> None:
    assert main(["token", "--emulator", "http://127.0.0.1:1", f"--ttl={ttl}"]) == 2
    assert "is not a whole number of seconds" in one_line(capsys.readouterr().err)


def test_token_options_are_the_emulators_profile_fields() -> None:
    from wink_middleware.testing._emulator import PROFILE_FIELDS

    assert tuple(PROFILE_FIELDS) == _cli.TOKEN_FIELDS


def test_token_from_an_unreachable_emulator_is_one_line_exit_3(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["token", "--emulator", url]) == 3
    line = one_line(capsys.readouterr().err)
    assert f"no emulator answered at {url}" in line


def test_token_from_something_that_is_not_an_emulator_is_one_line_exit_3(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Something answered, but nonsense: 3, as the README's exit codes say (1 is a refused token).
    url = os.environ["WINK_BASE_URL"] + "/elsewhere"
    assert main(["token", "--emulator", url]) == 3
    line = one_line(capsys.readouterr().err)
    assert f"POST {url}{TOKENS_PATH} answered 404" in line


def test_token_refused_by_the_emulator_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(url: str, **kwargs: Any) -> httpx.Response:
        return httpx.Response(400, json={"error": "ttl must be a number of seconds"})

    monkeypatch.setattr(httpx, "post", refused)
    assert main(["token", "--emulator", "http://127.0.0.1:1"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.endswith("the emulator refused: ttl must be a number of seconds")


@pytest.mark.slow
def test_verify_prompts_for_the_token_on_a_terminal(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(wink.issue_token()))
    assert main(["verify"]) == 0
    captured = capsys.readouterr()
    assert "paste the access token" in captured.err
    assert json.loads(captured.out)["firstName"] == "Ada"


@pytest.mark.slow
def test_ctrl_c_during_verify_exits_130_without_traceback(
    wink: WinkEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: Any, token: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(WinkVerifier, "verify", interrupted)
    assert main(["verify", "a.b.c"]) == 130
    assert "interrupted" in one_line(capsys.readouterr().err)


# -- emulator and demo, in-process -----------------------------------------------------------


def stop_after(check: Callable[[ServerThread], None]) -> Callable[[ServerThread], None]:
    """A stand-in for the CLI's wait: run ``check`` against the live server, then 'press Ctrl-C'."""

    def wait(server: ServerThread) -> None:
        check(server)
        raise KeyboardInterrupt

    return wait


@pytest.mark.slow
def test_emulator_command_serves_and_prints_a_ready_token_and_curl_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def check(server: ServerThread) -> None:
        out = capsys.readouterr().out
        token = re.search(r"^  (ey\S+)$", out, re.MULTILINE)
        assert token is not None, out
        body = {"ClientId": CLIENT, "AccessToken": token.group(1), "ClientSecret": SECRET}
        seen["answer"] = httpx.post(f"{server.url}{VERIFY_PATH}", json=body, timeout=5)
        seen["out"] = out

    monkeypatch.setattr(_cli, "_wait", stop_after(check))
    code = main(["emulator", "--port", "0", "--client-id", CLIENT, "--client-secret", SECRET])
    assert code == 0
    assert seen["answer"].status_code == 200
    out: str = seen["out"]
    assert "curl -s http://127.0.0.1:" in out
    assert f"WINK_CLIENT_ID={CLIENT}" in out
    assert SECRET not in out + capsys.readouterr().err


def curl_line(out: str) -> str:
    found = re.search(r"^  (curl -s .*)$", out, re.MULTILINE)
    assert found is not None, out
    return found.group(1)


def run_shell(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", line], capture_output=True, text=True, timeout=30, check=False, env=env
    )


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_emulator_command_curl_line_works_as_printed_without_an_export(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def check(server: ServerThread) -> None:
        out = capsys.readouterr().out
        seen["out"] = out
        seen["curl"] = run_shell(curl_line(out), child_env())

    monkeypatch.setattr(_cli, "_wait", stop_after(check))
    assert main(["emulator", "--port", "0"]) == 0
    assert json.loads(seen["curl"].stdout)["firstName"] == "Ada"
    assert "token --emulator http://127.0.0.1:" in seen["out"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_emulator_command_curl_line_reads_a_chosen_secret_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def check(server: ServerThread) -> None:
        out = capsys.readouterr().out
        seen["out"] = out
        seen["curl"] = run_shell(curl_line(out), child_env() | {"WINK_CLIENT_SECRET": SECRET})

    monkeypatch.setattr(_cli, "_wait", stop_after(check))
    assert main(["emulator", "--port", "0", "--client-secret", SECRET]) == 0
    assert json.loads(seen["curl"].stdout)["lastName"] == "Lovelace"
    assert "with WINK_CLIENT_SECRET set to your secret" in seen["out"]
    assert SECRET not in seen["out"]


@pytest.mark.slow
def test_emulator_command_reads_credentials_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINK_CLIENT_ID", "env-client")
    monkeypatch.setenv("WINK_CLIENT_SECRET", SECRET)
    monkeypatch.setattr(_cli, "_wait", stop_after(lambda server: None))
    assert main(["emulator", "--port", "0", "--ttl", "60"]) == 0
    out = capsys.readouterr().out
    assert "client id: env-client" in out
    assert "valid 60 s" in out
    assert SECRET not in out


@pytest.mark.slow
def test_emulator_command_prints_what_a_front_end_needs_and_the_sign_in_answers_there(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def check(server: ServerThread) -> None:
        out = capsys.readouterr().out
        seen["out"] = out
        auth_url = re.search(r"^  AUTH_URL: (\S+)$", out, re.MULTILINE)
        realm = re.search(r"^  realm:    (\S+)$", out, re.MULTILINE)
        assert auth_url is not None and realm is not None, out
        discovery = f"{auth_url[1]}/realms/{realm[1]}/.well-known/openid-configuration"
        seen["discovery"] = httpx.get(discovery, timeout=5).json()
        token_url = seen["discovery"]["token_endpoint"]
        seen["cors"] = {
            origin: httpx.options(token_url, headers={"origin": origin}, timeout=5).status_code
            for origin in ("https://app.example", "http://localhost:3000")
        }

    monkeypatch.setattr(_cli, "_wait", stop_after(check))
    argv = ["emulator", "--port", "0", "--client-id", CLIENT, "--client-secret", SECRET]
    assert main([*argv, "--realm", "acme", "--web-origin", "https://app.example"]) == 0
    out: str = seen["out"]
    assert f"  clientId: {CLIENT}\n" in out
    assert "  origins:  https://app.example\n" in out
    assert "  users:    Ada Lovelace (;ada.lovelace)\n" in out
    assert seen["discovery"]["issuer"].endswith("/realms/acme")
    assert seen["cors"] == {"https://app.example": 200, "http://localhost:3000": 403}
    assert SECRET not in out


@pytest.mark.parametrize(
    ("option", "value"), [("--web-origin", "https://app.example/path"), ("--realm", "a b")]
)
def test_emulator_command_refuses_a_bad_origin_or_realm_in_one_line(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    assert main(["emulator", "--port", "0", option, value]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"{_cli.PROG}: error: {option}: ")
    assert "web_origins" not in line


@pytest.mark.slow
def test_demo_command_serves_the_page_and_the_protected_api(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, int] = {}

    def check(server: ServerThread) -> None:
        assert f"open {server.url}/ in a browser" in capsys.readouterr().out
        with httpx.Client(base_url=server.url, timeout=5) as client:
            seen["page"] = client.get("/").status_code
            token = one_line(_token_from(f"{server.url}/wink", capsys))
            auth = {"Authorization": f"Bearer {token}"}
            seen["with token"] = client.get("/api/profile", headers=auth).status_code
            seen["without"] = client.get("/api/profile").status_code
            seen["session"] = client.get("/api/session").status_code
            seen["keycloak.js"] = client.get("/keycloak.js").status_code

    monkeypatch.setattr(_cli, "_wait", stop_after(check))
    assert main(["demo", "--port", "0"]) == 0
    assert seen == {
        "page": 200,
        "with token": 200,
        "without": 401,
        "session": 200,
        "keycloak.js": 200,
    }


def test_demo_command_with_redis_serves_two_workers_that_verify_once_for_the_fleet(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    seen: dict[str, Any] = {}

    def check(server: ServerThread) -> None:
        assert "two API workers" in capsys.readouterr().out
        with httpx.Client(base_url=server.url, timeout=5) as client:
            token = one_line(
                _token_from(f"{server.url}/wink", capsys)
            )  # the demo's emulator mints through the token command too
            auth = {"Authorization": f"Bearer {token}"}
            answers = [client.get("/api/profile", headers=auth) for _ in range(2)]
            seen["answers"] = [
                (a.status_code, a.headers["x-demo-worker"], a.headers["x-demo-answered-from"])
                for a in answers
            ]
            seen["status"] = client.get("/status").json()
            seen["sign-out"] = client.post("/api/sign-out", headers=auth).json()

    monkeypatch.setattr(_cli, "_wait", stop_after(check))
    assert main(["demo", "--port", "0", "--redis", redis_url]) == 0
    assert seen["answers"] == [(200, "1", "wink"), (200, "2", "fleet cache")]
    assert seen["status"]["workers"] == 2
    assert seen["status"]["wink_calls"] == 1
    assert seen["sign-out"] == {"signed_out": True, "reached_fleet": True}


def _token_from(emulator_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["token", "--emulator", emulator_url]) == 0
    return capsys.readouterr().out


def test_demo_command_with_a_bad_redis_url_is_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--port", "0", "--redis", "localhost:6379"]) == 2
    assert "redis_url must be" in one_line(capsys.readouterr().err)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["emulator", "demo"])
def test_a_port_in_use_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([command, "--port", str(port)]) == 1
    line = one_line(capsys.readouterr().err)
    assert f"port {port} on 127.0.0.1 is already in use" in line


@pytest.mark.slow
def test_an_address_that_cannot_be_bound_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["emulator", "--host", "256.0.0.1", "--port", "0"]) == 1
    assert "cannot listen on 256.0.0.1:0" in one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_a_server_that_fails_to_start_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: ServerThread) -> None:
        raise RuntimeError("the server did not start (boom)")

    monkeypatch.setattr(ServerThread, "start", broken)
    assert main(["demo", "--port", "0"]) == 1
    assert "did not start" in one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_wait_returns_when_the_server_stops() -> None:
    server = ServerThread(WinkEmulator(client_id="a", client_secret="b"), _bind())
    server.start()
    threading.Timer(0.05, server.stop).start()
    _cli._wait(server)
    assert not server.running


def _bind() -> socket.socket:
    from wink_middleware.testing._server import bind

    return bind("127.0.0.1", 0)


def test_sigterm_stops_a_server_like_ctrl_c() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), _cli._sigterm_as_interrupt():
        signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


def test_python_m_runs_the_console_script(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import wink_middleware
    import wink_middleware.__main__ as module

    assert module.main is main
    monkeypatch.setattr(sys, "argv", ["wink_middleware", "--version"])
    with pytest.raises(SystemExit) as exited:
        # run_path, not run_module: pytest's assertion rewriter owns the package's loader here.
        runpy.run_path(
            str(Path(wink_middleware.__file__).with_name("__main__.py")), run_name="__main__"
        )
    assert exited.value.code == 0
    assert "wink-middleware" in capsys.readouterr().out


def test_sigterm_is_left_alone_outside_the_main_thread() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def in_thread() -> None:
        with _cli._sigterm_as_interrupt():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert seen == [before]


# -- as real processes ---------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("WINK_")}


def start(argv: list[str]) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=child_env(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def wait_for(lines: queue.Queue[str], pattern: str) -> re.Match[str]:
    while True:
        found = re.search(pattern, lines.get(timeout=20))
        if found:
            return found


def stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    return proc.returncode, err


@pytest.mark.slow
def test_python_m_emulator_serves_and_stops_cleanly_on_ctrl_c() -> None:
    proc, lines = start([sys.executable, "-m", "wink_middleware", "emulator", "--port", "0"])
    url = wait_for(lines, r"listening on (http://\S+)").group(1)
    token = wait_for(lines, r"^  (ey\S+)$").group(1)
    body = {"ClientId": "demo-client", "AccessToken": token, "ClientSecret": "demo-secret"}
    assert httpx.post(f"{url}{VERIFY_PATH}", json=body, timeout=5).status_code == 200
    code, err = stop(proc, signal.SIGINT)
    assert code in (0, 130)
    assert "Traceback" not in err


@pytest.mark.slow
def test_console_script_demo_stops_cleanly_on_sigterm() -> None:
    proc, lines = start([str(SCRIPT), "demo", "--port", "0"])
    url = wait_for(lines, r"open (http://\S+)/ in a browser").group(1)
    assert httpx.get(f"{url}/", timeout=5).status_code == 200
    code, err = stop(proc, signal.SIGTERM)
    assert code == 0, err
    assert "Traceback" not in err, err
    assert "timeout graceful shutdown exceeded" not in err, err


@pytest.mark.slow
def test_console_script_reports_bad_arguments_on_one_line() -> None:
    result = subprocess.run(
        [str(SCRIPT), "demo", "--port", "eighty"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=child_env(),
    )
    assert result.returncode == 2
    assert "not a port number" in one_line(result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_serving_stops_the_server_thread_before_main_returns(
    capsys: pytest.CaptureFixture[str], signum: int
) -> None:
    # A KeyboardInterrupt raised inside Thread.join() used to mark the server thread stopped while
    # it still ran (CPython 3.11): main() returned in the middle of uvicorn's shutdown, and the
    # exiting process printed a CancelledError traceback.
    main_thread = threading.get_ident()
    timer = threading.Timer(1.0, signal.pthread_kill, args=(main_thread, signum))
    timer.start()
    try:
        assert main(["emulator", "--port", "0"]) == 0
    finally:
        timer.cancel()
    assert [t for t in threading.enumerate() if t.name == "wink-server"] == []
    assert "stopping..." in capsys.readouterr().err
