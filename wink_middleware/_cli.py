"""The ``wink-middleware`` console script (also ``python -m wink_middleware``).

```
wink-middleware emulator [--host H] [--port P] [--client-id ID] [--client-secret S] [--ttl SECONDS]
                         [--realm NAME] [--web-origin ORIGIN ...]
wink-middleware token --emulator URL [--ttl SECONDS] [--first-name TEXT] [--wink-token TEXT] ...
wink-middleware demo [--host H] [--port P] [--redis URL]
wink-middleware verify [--redis URL] [-v] [TOKEN]   # the token is read from stdin when omitted
wink-middleware session [--return-url URL] [--cancel-url URL] [-v]
```

Every failure is one line on stderr and an exit code, never a traceback: 0 success (and Ctrl-C on a
server), 1 the token was refused or a server could not run, 2 bad arguments or configuration (and
credentials Wink refused), 3 Wink was unavailable or answered nonsense, 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

import httpx

from wink_middleware._config import WinkConfig
from wink_middleware._engine.client import make_sync_client
from wink_middleware._engine.sync_verifier import WinkVerifier
from wink_middleware._exceptions import (
    AuthenticationFailed,
    InvalidRequest,
    TokenRejected,
    WinkBadResponse,
    WinkConfigError,
    WinkCredentialsRejected,
    WinkUnavailable,
)
from wink_middleware._version import __version__

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from wink_middleware.testing._server import ServerThread

__all__ = ["main"]

PROG = "wink-middleware"
DEFAULT_EMULATOR_PORT = 8765
DEFAULT_DEMO_PORT = 8000
DEFAULT_CLIENT_ID = "demo-client"
DEFAULT_CLIENT_SECRET = "demo-secret"  # noqa: S105 - the emulator's documented default, not a real secret
#: Where `session` asks Wink to send the user when neither the option nor WINK_SESSION_* names a URL:
#: the session is a credentials check and is never used.
DEFAULT_SESSION_URL = "http://localhost/"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130

# `token` options -> the emulator's issue_token() keywords (its TOKENS_PATH endpoint's JSON fields).
TOKEN_FIELDS = (
    "first_name",
    "last_name",
    "contact_no",
    "email",
    "wink_tag",
    "wink_token",
    "date_of_birth",
)


class CliError(Exception):
    """A failure to report as one line on stderr, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see {self.prog} --help)", EXIT_USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        command: Callable[[argparse.Namespace], int] = args.command
        # SIGTERM is Ctrl-C from the first line on: one that arrives while a server starts (before
        # it serves) stops it as cleanly as one that arrives later.
        with _sigterm_as_interrupt():
            return command(args)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK


def _build_parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description="Wink Login for ASGI and WSGI apps: a local Wink emulator, a demo, and a token checker.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    emulator = commands.add_parser(
        "emulator",
        help="serve a Wink emulator (Verify Client, sessions and the sign-in) over HTTP",
        description=(
            "Serve an emulated Wink: Verify Client, the session API and the sign-in a front end "
            "uses (OpenID Connect, as Wink's SDK and keycloak-js speak it). It prints a ready token "
            "for the sample user, a curl line, and the AUTH_URL, realm and client id a front end "
            "needs; point WINK_BASE_URL at it to run your app or the examples against it."
        ),
    )
    _add_listen_options(emulator, DEFAULT_EMULATOR_PORT)
    emulator.add_argument(
        "--client-id",
        default=os.environ.get("WINK_CLIENT_ID") or DEFAULT_CLIENT_ID,
        help=f"the ClientID the emulator accepts (default: $WINK_CLIENT_ID, else {DEFAULT_CLIENT_ID})",
    )
    emulator.add_argument(
        "--client-secret",
        default=None,
        help=(
            "the secret the emulator accepts (default: $WINK_CLIENT_SECRET, else "
            f"{DEFAULT_CLIENT_SECRET}); never printed"
        ),
    )
    emulator.add_argument(
        "--ttl",
        type=_seconds,
        default=3600,
        help="lifetime of the printed token in seconds (default: 3600)",
    )
    emulator.add_argument(
        "--realm",
        default="wink",
        help="the sign-in's realm, as the front end names it (default: wink, as Wink's)",
    )
    emulator.add_argument(
        "--web-origin",
        action="append",
        default=None,
        metavar="ORIGIN",
        help=(
            "an origin (scheme://host[:port]) the sign-in sends users back to and answers CORS for; "
            "repeat for several (default: any localhost, 127.0.0.1 or [::1] origin)"
        ),
    )
    emulator.set_defaults(command=_run_emulator)

    token = commands.add_parser(
        "token",
        help="print a fresh token from a running emulator",
        description=(
            "Ask a running emulator (`wink-middleware emulator`, or the demo's at URL/wink) for a "
            "token and print it alone on stdout, e.g. "
            '`curl -H "Authorization: Bearer $(wink-middleware token --emulator URL)" ...`. '
            "Profile fields not given are the sample user's; each token gets a fresh Wink Token."
        ),
    )
    token.add_argument(
        "--emulator",
        required=True,
        metavar="URL",
        help="the emulator's base URL, as `wink-middleware emulator` prints it",
    )
    token.add_argument(
        "--ttl",
        type=_signed_seconds,
        default=300,
        help="lifetime in seconds (default: 300); negative: a token already expired, to try a 401",
    )
    for field in TOKEN_FIELDS:
        token.add_argument(f"--{field.replace('_', '-')}", dest=field, metavar="TEXT")
    token.set_defaults(command=_run_token)

    demo = commands.add_parser(
        "demo",
        help="run the demo: emulator + protected API + browser page on 127.0.0.1",
        description="Serve a protected Starlette API, the Wink emulator and a page to try them, at http://HOST:PORT/.",
    )
    _add_listen_options(demo, DEFAULT_DEMO_PORT)
    demo.add_argument(
        "--redis",
        metavar="URL",
        help=(
            "run two API workers with verifiers sharing this Redis (needs the [redis] extra): "
            "each token is verified once for both"
        ),
    )
    demo.set_defaults(command=_run_demo)

    verify = commands.add_parser(
        "verify",
        help="verify one token with the Wink configured by WINK_* variables",
        description=(
            "Verify an access token with Wink's Verify Client, configured like the middleware "
            "(WINK_CLIENT_ID, WINK_CLIENT_SECRET, WINK_BASE_URL or WINK_ENVIRONMENT, ...), and print "
            "the profile as JSON. A failure names the URL called, Wink's HTTP status and, when the "
            "status points at the configuration rather than the token, what to check. Exit 1 if "
            "Wink refuses the token, 2 on bad configuration, 3 if Wink is unavailable."
        ),
    )
    verify.add_argument(
        "--redis",
        metavar="URL",
        help=(
            "use the shared tier on this Redis (needs the [redis] extra; default: $WINK_REDIS_URL) "
            "and say whether the answer came from the fleet cache"
        ),
    )
    verify.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show the library's own log lines on stderr",
    )
    verify.add_argument("token", nargs="?", help="the access token (default: read from stdin)")
    verify.set_defaults(command=_run_verify)

    session = commands.add_parser(
        "session",
        help="ask the Wink configured by WINK_* variables for a sign-in session (checks credentials)",
        description=(
            "Create one Wink sign-in session with the configured credentials (WINK_CLIENT_ID, "
            "WINK_CLIENT_SECRET, WINK_BASE_URL or WINK_ENVIRONMENT) and print its id: a check of "
            "the client id, secret and environment that needs no token. A failure names the URL "
            "called, Wink's HTTP status and what to check. Exit 2 if Wink refuses the credentials "
            "or on bad arguments or configuration, 3 if Wink is unavailable or answers nonsense."
        ),
    )
    session.add_argument(
        "--return-url",
        metavar="URL",
        help=f"where Wink sends the user after signing in (default: $WINK_SESSION_RETURN_URL, else {DEFAULT_SESSION_URL})",
    )
    session.add_argument(
        "--cancel-url",
        metavar="URL",
        help=f"where Wink sends the user after cancelling (default: $WINK_SESSION_CANCEL_URL, else {DEFAULT_SESSION_URL})",
    )
    session.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also show the library's own log lines on stderr",
    )
    session.set_defaults(command=_run_session)
    return parser


def _add_listen_options(parser: argparse.ArgumentParser, port: int) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=_port, default=port, help=f"port to listen on, 0 for any (default: {port})"
    )


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _seconds(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 366 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds >= 1")
    return int(text)


def _signed_seconds(text: str) -> int:
    digits = text[1:] if text.startswith("-") else text
    if not digits.isdigit() or not int(digits) <= 366 * 86400:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number of seconds (negative: already expired)"
        )
    return int(text)


# -- serving ----------------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    from wink_middleware.testing._server import bind

    try:
        return bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CliError(
                f"port {port} on {host} is already in use: stop what runs there or pick another --port"
            ) from None
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _start(app: ASGIApp, sock: socket.socket) -> ServerThread:
    from wink_middleware.testing._server import ServerThread

    try:
        server = ServerThread(app, sock, access_log=True)
    except RuntimeError as exc:
        sock.close()
        raise CliError(str(exc)) from None
    _serving.set()  # from now on a signal stops the server through the serving loop
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        raise CliError(str(exc)) from None
    except KeyboardInterrupt:  # a signal handler of the caller's, outside main()
        server.stop()
        raise
    return server


def _configure_logging() -> None:
    # Requests and the middleware's decisions (tokens only as fingerprints); not uvicorn's chatter.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)


# Set by Ctrl-C or SIGTERM while a server runs (see _sigterm_as_interrupt); a server command
# waits on it. A KeyboardInterrupt raised inside Thread.join() can leave the server thread marked
# stopped while it still runs (CPython 3.11), so that the process exits in the middle of uvicorn's
# shutdown and prints a CancelledError traceback: while serving, a signal only sets this.
_stop_requested = threading.Event()
_serving = threading.Event()


def _wait(server: ServerThread) -> None:
    """Block until the server stops or Ctrl-C / SIGTERM asks it to."""
    while server.running and not _stop_requested.wait(0.2):
        pass


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Let SIGTERM (and Ctrl-C) stop a server cleanly: while a server runs they ask the serving
    loop to stop it; before that they are a ``KeyboardInterrupt``, as Ctrl-C always is."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if _serving.is_set():
            _stop_requested.set()
            return
        raise KeyboardInterrupt

    _stop_requested.clear()
    _serving.clear()
    try:
        previous = {signum: signal.signal(signum, interrupt) for signum in _STOP_SIGNALS}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _serving.clear()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _serve_until_interrupted(server: ServerThread) -> int:
    try:
        _wait(server)
    except KeyboardInterrupt:  # a signal handler of the caller's, outside main()
        _stop_requested.set()
    finally:
        if _stop_requested.is_set():
            print("stopping...", file=sys.stderr, flush=True)
        server.stop()
    return EXIT_OK


def _run_emulator(args: argparse.Namespace) -> int:
    from wink_middleware.testing._emulator import VERIFY_PATH, WinkEmulator

    client_id: str = args.client_id
    secret_option: str | None = args.client_secret
    secret_env = os.environ.get("WINK_CLIENT_SECRET")
    secret = secret_option or secret_env or DEFAULT_CLIENT_SECRET
    if not client_id.strip() or any(c.isspace() for c in client_id):
        raise CliError("--client-id must be a non-empty name without spaces", EXIT_USAGE)
    if not secret.strip():
        raise CliError("--client-secret must not be empty", EXIT_USAGE)

    web_origins: list[str] | None = args.web_origin
    try:
        emulator = WinkEmulator(
            client_id=client_id, client_secret=secret, realm=args.realm, web_origins=web_origins
        )
    except ValueError as exc:
        option = "--realm" if "realm" in str(exc) else "--web-origin"
        raise CliError(f"{option}: {str(exc).removeprefix('web_origins: ')}", EXIT_USAGE) from None
    sock = _listen(args.host, args.port)
    _configure_logging()
    server = _start(emulator, sock)
    token = emulator.issue_token(ttl=args.ttl)
    url = server.url
    origins = (
        "any http://localhost, 127.0.0.1 or [::1] origin (--web-origin to set them)"
        if web_origins is None
        else ", ".join(web_origins)
    )
    users = ", ".join(f"{u.display_name} ({u.wink_tag})" for u in emulator.users)
    prefix = json.dumps({"ClientId": client_id, "AccessToken": token}, separators=(",", ":"))
    if secret_option is None and secret_env is None:
        shown_secret = DEFAULT_CLIENT_SECRET
        curl_body = shlex.quote(prefix[:-1] + f',"ClientSecret":"{DEFAULT_CLIENT_SECRET}"}}')
        curl_note = ""
    else:
        # A secret someone chose is never printed: the curl line reads it from the environment.
        shown_secret = "<the secret you set>"  # noqa: S105 - a placeholder
        curl_body = (
            shlex.quote(prefix[:-1] + ',"ClientSecret":"')
            + '"$WINK_CLIENT_SECRET"'
            + shlex.quote('"}')
        )
        curl_note = " (with WINK_CLIENT_SECRET set to your secret)"
    print(
        f"Wink emulator listening on {url} (client id: {client_id})\n"
        f"\n"
        f"Point the middleware, an example app or `{PROG} verify` at it:\n"
        f"  export WINK_BASE_URL={url} WINK_CLIENT_ID={shlex.quote(client_id)} "
        f"WINK_CLIENT_SECRET={shown_secret}\n"
        f"\n"
        f"A token for the sample user, valid {args.ttl} s:\n"
        f"  {token}\n"
        f"\n"
        f"Try it{curl_note}:\n"
        f"  curl -s {url}{VERIFY_PATH} -H 'Content-Type: application/json' -d {curl_body}\n"
        f"\n"
        f"A fresh token at any time (e.g. for an app on port 8001):\n"
        f'  curl -H "Authorization: Bearer $({PROG} token --emulator {url})" '
        f"http://127.0.0.1:8001/me\n"
        f"\n"
        f"Sign a front end in against it (Wink's SDK or keycloak-js 26):\n"
        f"  AUTH_URL: {url}\n"
        f"  realm:    {args.realm}\n"
        f"  clientId: {client_id}\n"
        f"  issuer:   {url}/realms/{args.realm}\n"
        f"  origins:  {origins}\n"
        f"  users:    {users}\n"
        f"\n"
        f"Press Ctrl-C to stop.",
        flush=True,
    )
    return _serve_until_interrupted(server)


def _run_token(args: argparse.Namespace) -> int:
    from wink_middleware.testing._emulator import TOKENS_PATH

    base: str = args.emulator.strip().rstrip("/")
    if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
        raise CliError(f"--emulator must be an http:// URL, not {args.emulator!r}", EXIT_USAGE)
    endpoint = base + TOKENS_PATH
    fields = {name: getattr(args, name) for name in TOKEN_FIELDS if getattr(args, name) is not None}
    try:
        response = httpx.post(
            endpoint, json={"ttl": args.ttl, **fields}, timeout=10, trust_env=False
        )
    except httpx.HTTPError as exc:
        raise CliError(
            f"no emulator answered at {base} ({_describe(exc)}): is `{PROG} emulator` running?",
            EXIT_UNAVAILABLE,
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code == 200 and isinstance(answer, dict) and "access_token" in answer:
        print(answer["access_token"])
        return EXIT_OK
    if response.status_code == 400 and isinstance(answer, dict):
        raise CliError(f"the emulator refused: {answer.get('error')}", EXIT_USAGE)
    raise CliError(
        f"POST {endpoint} answered {response.status_code}: {base} is not a Wink emulator "
        f"(the demo's is at http://HOST:PORT/wink)",
        EXIT_UNAVAILABLE,  # something answered, but nonsense: as the README's exit codes say
    )


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _run_demo(args: argparse.Namespace) -> int:
    from wink_middleware.testing._demo import build_demo
    from wink_middleware.testing._server import url_of

    sock = _listen(args.host, args.port)
    url = url_of(sock)
    try:
        demo = build_demo(url, redis_url=args.redis)
    except WinkConfigError as exc:
        sock.close()
        raise CliError(str(exc), EXIT_USAGE) from None
    _configure_logging()
    server = _start(demo.app, sock)
    fleet = (
        "  two API workers, one verifier each, sharing Redis: each token is verified once\n"
        if len(demo.workers) > 1
        else ""
    )
    print(
        f"Wink middleware demo: open {url}/ in a browser\n"
        f"  emulated Wink (Verify Client, sessions, sign-in): {url}/wink\n"
        f"  protected API:                                    {url}/api/profile\n"
        f"{fleet}"
        f"Press Ctrl-C to stop.",
        flush=True,
    )
    return _serve_until_interrupted(server)


# -- verify -------------------------------------------------------------------------------------


@dataclass
class _Exchange:
    """The last call the verifier made to Wink: its URL, and Wink's status once it answered."""

    url: str | None = None
    status: int | None = None

    def on_request(self, request: httpx.Request) -> None:
        self.url = str(request.url)
        self.status = None

    def on_response(self, response: httpx.Response) -> None:
        self.status = response.status_code

    def describe(self) -> str:
        if self.url is None:
            return "decided locally; Wink was not called"
        if self.status is None:
            return f"POST {self.url}: no answer"
        return f"POST {self.url} answered {self.status}"


@contextmanager
def _library_logs(verbose: bool) -> Iterator[None]:
    """The library's log lines on stderr with ``--verbose``; otherwise none (the CLI says it all)."""
    logger = logging.getLogger("wink_middleware")
    saved = logger.handlers[:], logger.propagate, logger.level
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
        # setLevel, not an assignment: the logger caches isEnabledFor() until setLevel clears it.
        logger.handlers = [handler]
        logger.setLevel(logging.DEBUG)
    else:
        logger.handlers = [logging.NullHandler()]
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


def _run_verify(args: argparse.Namespace) -> int:
    token: str | None = args.token
    if token is None:
        if sys.stdin is None or sys.stdin.isatty():
            print("paste the access token, then press Enter and Ctrl-D:", file=sys.stderr)
        token = sys.stdin.read() if sys.stdin is not None else ""
    token = token.strip()
    if not token:
        raise CliError("no token given: pass it as an argument or on stdin", EXIT_USAGE)
    overrides = {} if args.redis is None else {"redis_url": args.redis}
    exchange = _Exchange()
    with _library_logs(args.verbose):
        try:
            config = WinkConfig.from_env(**overrides)
            client = make_sync_client(config)
            client.event_hooks = {
                "request": [exchange.on_request],
                "response": [exchange.on_response],
            }
            with client, WinkVerifier(config, client=client) as verifier:
                profile = verifier.verify(token)
                stats = verifier.stats
        except WinkConfigError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        except TokenRejected as exc:
            raise CliError(
                f"token rejected: {exc.description} ({exchange.describe()}){_hint(exchange, config)}"
            ) from None
        except InvalidRequest as exc:
            raise CliError(f"not a usable token: {exc.description}") from None
        except WinkUnavailable as exc:
            raise CliError(
                f"Wink at {config.base_url} is unavailable: {exc.description} "
                f"({exchange.describe()}){_hint(exchange, config)}",
                EXIT_UNAVAILABLE,
            ) from None
        except (WinkBadResponse, AuthenticationFailed) as exc:
            raise CliError(
                f"Wink at {config.base_url} answered badly: {exc.description} "
                f"({exchange.describe()}){_hint(exchange, config)}",
                EXIT_UNAVAILABLE,
            ) from None
    print(json.dumps(profile.to_wink(), indent=2))
    if config.redis_url is not None:
        print(_fleet_summary(exchange, stats.shared_hits, stats.shared_errors), file=sys.stderr)
    return EXIT_OK


def _run_session(args: argparse.Namespace) -> int:
    exchange = _Exchange()
    with _library_logs(args.verbose):
        try:
            config = WinkConfig.from_env()
            return_url: str = args.return_url or config.session_return_url or DEFAULT_SESSION_URL
            cancel_url: str = args.cancel_url or config.session_cancel_url or DEFAULT_SESSION_URL
            client = make_sync_client(config)
            client.event_hooks = {
                "request": [exchange.on_request],
                "response": [exchange.on_response],
            }
            with client, WinkVerifier(config, client=client) as verifier:
                session = verifier.create_session(return_url, cancel_url)
        except WinkConfigError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        except InvalidRequest as exc:
            # The URL rule names return_url / cancel_url: here they are options.
            raise CliError("--" + exc.description.replace("_url", "-url", 1), EXIT_USAGE) from None
        except WinkCredentialsRejected as exc:
            raise CliError(
                f"Wink refused the credentials: {exc.description} ({exchange.describe()})"
                f"{_hint(exchange, config, sessions=True)}",
                EXIT_USAGE,
            ) from None
        except WinkUnavailable as exc:
            raise CliError(
                f"Wink at {config.base_url} is unavailable: {exc.description} "
                f"({exchange.describe()})",
                EXIT_UNAVAILABLE,
            ) from None
        except AuthenticationFailed as exc:
            raise CliError(
                f"Wink at {config.base_url} answered badly: {exc.description} "
                f"({exchange.describe()}){_hint(exchange, config, sessions=True)}",
                EXIT_UNAVAILABLE,
            ) from None
    print(session.session_id)
    return EXIT_OK


def _hint(exchange: _Exchange, config: WinkConfig, *, sessions: bool = False) -> str:
    """What to check, when Wink's status points at the configuration rather than the request."""
    host = urlsplit(config.base_url or "").netloc
    if exchange.status == 401 or (sessions and exchange.status == 403):
        check = (
            "check WINK_CLIENT_ID and WINK_CLIENT_SECRET, and that they belong to the Wink "
            f"environment of {host}"
        )
        return f"; {check}" if sessions else f"; if every token gets 401, {check}"
    if exchange.status in (404, 405):
        endpoint = "session API" if sessions else "Verify Client"
        return (
            f"; {exchange.status} means no {endpoint} there: check the host and path of "
            f"WINK_BASE_URL ({config.base_url}), which should be Wink's root URL"
        )
    return ""


def _fleet_summary(exchange: _Exchange, shared_hits: int, shared_errors: int) -> str:
    if shared_hits:
        return "answered from the fleet cache (Redis): Wink was not called"
    if shared_errors:
        return f"Redis was unavailable: verified with Wink directly ({exchange.describe()})"
    return f"verified with Wink ({exchange.describe()}); now in the fleet cache for the other processes"
