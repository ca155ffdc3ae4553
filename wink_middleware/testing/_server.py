"""Serve an ASGI app (the emulator, the demo) with uvicorn in a background thread.

The socket is bound before the server starts, so a port in use is an ``OSError`` in the caller's
thread and ``port=0`` yields the real port. The HTTP protocol is uvicorn's h11 one, extended to
offer each request a way to close its socket without answering (the emulator's dropped connection).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

from wink_middleware.testing._emulator import DROP_CONNECTION_KEY

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

__all__ = ["ServerThread", "bind", "serve", "url_of"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``0``: a free port). Raises ``OSError`` if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every answer on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _protocol_class() -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DroppingH11Protocol(H11Protocol):
        """uvicorn's h11 protocol, offering each request a callable that closes its socket."""

        def handle_events(self) -> None:
            super().handle_events()
            cycle = getattr(self, "cycle", None)
            if cycle is not None:
                scope = cast(dict[str, Any], cycle.scope)
                scope.setdefault(DROP_CONNECTION_KEY, self.transport.close)

    return DroppingH11Protocol


class ServerThread:
    """uvicorn serving ``app`` on an already bound socket, in a daemon thread.

    Logs go to the ``uvicorn`` loggers (requests too with ``access_log``); their levels and handlers
    are left to the application. Websockets are served when ``websockets`` or ``wsproto`` is
    installed (uvicorn's ``ws="auto"``; the demo's greeting needs one).
    """

    def __init__(self, app: ASGIApp, sock: socket.socket, *, access_log: bool = False) -> None:
        try:
            import uvicorn
        except ImportError:
            raise RuntimeError(
                'serving over HTTP needs uvicorn and websockets: pip install "wink-middleware[demo]"'
            ) from None

        self.sock = sock
        self.url = url_of(sock)
        config = uvicorn.Config(
            app,
            http=_protocol_class(),
            ws="auto",
            lifespan="auto",
            log_config=None,
            log_level=None,  # leave logger levels to the application
            access_log=access_log,
            timeout_graceful_shutdown=2,
        )
        self._server: uvicorn.Server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="wink-server", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self.sock])
        except BaseException as exc:  # uvicorn reports a failed startup with sys.exit()
            self._error = exc

    def start(self) -> None:
        """Start serving; return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server did not start ({self._error!r})")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the server did not start in time")
            time.sleep(0.005)

    @property
    def running(self) -> bool:
        """Whether the server thread is still serving."""
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the server stops (or ``timeout`` passes)."""
        self._thread.join(timeout)

    def stop(self) -> None:
        """Ask the server to shut down, and wait for it."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(_STOP_TIMEOUT)
        self.sock.close()


@contextmanager
def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` on ``host:port`` in a background thread; yield the base URL; stop on exit."""
    sock = bind(host, port)
    try:
        server = ServerThread(app, sock)
    except BaseException:
        sock.close()
        raise
    try:
        server.start()
        yield server.url
    finally:
        server.stop()
