"""A misbehaving HTTP server on 127.0.0.1 built on raw sockets: it hangs, trickles, resets or floods.

Each accepted connection runs ``handler(conn, stop)`` in a thread after the request has been read;
``stop`` is set when the server shuts down, so handlers wait on it instead of sleeping.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

Handler = Callable[[socket.socket, threading.Event], None]


class RawServer:
    """What a :func:`raw_server` saw: how many requests reached it, and their bytes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.calls = 0
        self.requests: list[bytes] = []


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP/1.1 request with a Content-Length body (what httpx sends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@contextmanager
def raw_server(handler: Handler, port: int = 0) -> Iterator[RawServer]:
    """Serve ``handler`` on ``127.0.0.1:port``; yield the server; stop and join everything on exit."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    server = RawServer(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()
    lock = threading.Lock()
    connections: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        with suppress(OSError):
            request = read_request(conn)
            if request:
                with lock:
                    server.calls += 1
                    server.requests.append(request)
                handler(conn, stop)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with lock:
                if stop.is_set():
                    conn.close()
                    return
                connections.append(conn)
                thread = threading.Thread(target=handle, args=(conn,), daemon=True)
                threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        stop.set()
        with suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        acceptor.join(5)
        with lock:
            for conn in connections:
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
        for thread in threads:
            thread.join(5)


# -- behaviours ---------------------------------------------------------------------------------


def hang(conn: socket.socket, stop: threading.Event) -> None:
    """Accept the request and never answer."""
    stop.wait()


def slow_headers(step: float) -> Handler:
    """Send the status line and headers one byte per ``step`` seconds, then hang, never ending them.

    Each byte comes well within any read timeout longer than ``step``; only an overall deadline cuts
    it. (A client without one is held for about ``50 * step`` seconds, then for its read timeout.)
    """

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padding: a":
            conn.sendall(bytes([byte]))
            if stop.wait(step):
                return
        stop.wait()

    return handler


def trickle_body(step: float) -> Handler:
    """Send the headers at once, then the body one byte per ``step`` seconds, never finishing it."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
        )
        while not stop.wait(step):
            conn.sendall(b" ")

    return handler


def reset_mid_body(conn: socket.socket, stop: threading.Event) -> None:
    """Send the headers and part of the body, then reset the connection (RST, not FIN)."""
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
        b'{"winkToken": "ab'
    )
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def chunked_flood(size: int) -> Handler:
    """A 200 whose chunked body (no Content-Length) runs to ``size`` bytes of JSON-ish filler."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"[" + b"1," * 32767 + b"1"
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        while sent < size and not stop.is_set():
            conn.sendall(frame)
            sent += len(chunk)
        conn.sendall(b"0\r\n\r\n")

    return handler


def answer(status: int, body: bytes, content_type: str = "application/json") -> Handler:
    """Answer once, properly, and close."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    return handler
