"""A real ``redis-server`` on a free 127.0.0.1 port that a test can kill and restart, and a Redis
that hangs (a TCP listener that accepts and never answers).

Needs only the ``redis-server`` binary (Debian's package; ``scripts/install`` installs it): readiness
is checked with a raw ``INFO server`` (the answering process must be ours), so this module does
not import redis-py.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

__all__ = ["HangingServer", "RedisServer", "RedisServerError", "free_port"]

_START_ATTEMPTS = 3
_PROCESS_ID = re.compile(rb"\r\nprocess_id:(\d+)\r\n")


class RedisServerError(RuntimeError):
    """``redis-server`` could not be started, or did not answer in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """A throwaway ``redis-server`` without persistence, in its own temporary directory.

    Started by :meth:`start` or ``with``; :meth:`kill` is the "Redis crashed" fault and
    :meth:`restart` brings it back, empty, on the same port.
    """

    def __init__(self, executable: str | None = None, *, startup_timeout: float = 10.0) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RedisServerError("redis-server is not installed (scripts/install installs it)")
        self.executable = found
        self.startup_timeout = startup_timeout
        self.port = 0
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive (it may still be starting)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> RedisServer:
        """Start on a free port and wait until it answers; on failure, leave nothing behind."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="wink-redis-"))
        attempts = 1
        while True:
            self.port = free_port()
            try:
                self._launch()
            except RedisServerError:
                # Another process can take the free port before redis binds it: try another one.
                if attempts >= _START_ATTEMPTS or not self._address_in_use():
                    self.stop()
                    raise
                attempts += 1
            else:
                return self

    def kill(self) -> None:
        """SIGKILL the server and wait for it: the "Redis crashed" fault. Data is lost."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def restart(self) -> None:
        """Start again on the same port (after :meth:`kill`, or killing it first) and wait for it."""
        self.kill()
        self._launch()

    def flushall(self) -> None:
        """Empty every database (``FLUSHALL``)."""
        reply = b""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(b"FLUSHALL\r\n")
            while not reply.endswith(b"\r\n"):
                chunk = conn.recv(64)
                if not chunk:
                    break
                reply += chunk
        if reply != b"+OK\r\n":
            raise RedisServerError(f"FLUSHALL answered {reply!r}")

    def stop(self) -> None:
        """Stop the server and remove its directory. Idempotent."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, running={self.running})"

    def _launch(self) -> None:
        assert self._dir is not None
        log = self._dir / "redis.log"
        log.write_bytes(b"")
        options = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",
            "appendonly": "no",
            "dir": str(self._dir),
            "daemonize": "no",
            "loglevel": "warning",
            "logfile": str(log),
        }
        command = [self.executable]
        for name, value in options.items():
            command += [f"--{name}", value]
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.startup_timeout
        # Ready when the server on the port is ours: another redis may hold a port we thought free.
        while _server_pid(self.port) != self._process.pid:
            if self._process.poll() is not None:
                self._process = None
                raise RedisServerError(
                    f"redis-server exited during startup on port {self.port}: {_tail(log)}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RedisServerError(
                    f"redis-server did not answer on port {self.port} within "
                    f"{self.startup_timeout} s: {_tail(log)}"
                )
            time.sleep(0.01)

    def _address_in_use(self) -> bool:
        return self._dir is not None and "in use" in _tail(self._dir / "redis.log")


class HangingServer:
    """The "Redis hangs" fault: accepts TCP connections on 127.0.0.1 and never answers."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="hanging-redis", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def connections(self) -> int:
        """How many connections it has accepted."""
        return len(self._connections)

    def close(self) -> None:
        """Stop accepting and close every connection (clients then see a reset). Idempotent."""
        self._stop.set()
        self._thread.join()
        self._listener.close()
        for conn in self._connections:
            conn.close()

    def __enter__(self) -> HangingServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            # Held open and never read: the client's command sits in the socket buffer.
            self._connections.append(conn)


def _server_pid(port: int) -> int | None:
    """The ``process_id`` of the Redis answering on ``port`` (from ``INFO server``), if any."""
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"INFO server\r\n")
            while (match := _PROCESS_ID.search(data)) is None:
                chunk = conn.recv(4096)
                if not chunk:
                    return None
                data += chunk
    except OSError:
        return None
    return int(match[1])


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-3:]) or "(empty log)"
