"""The real-Redis test fixtures: a server that answers, dies, comes back, and one that hangs."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.redis_fixtures import require_redis_server
from tests.redis_server import HangingServer, RedisServer, RedisServerError, free_port

# Real redis-server subprocesses and sockets.
pytestmark = pytest.mark.slow


def client(url: str, timeout: float = 2.0) -> redis.Redis:
    """A client that tries once: the tests time the failures."""
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def test_the_server_answers(redis_url: str) -> None:
    with client(redis_url) as r:
        assert r.ping() is True
        assert r.set("k", b"v", px=10_000) is True
        assert r.get("k") == b"v"


def test_redis_url_empties_the_server_before_each_test(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    with client(redis_server.url) as r:
        r.set("left-over", b"1")
    url = request.getfixturevalue("redis_url")
    with client(url) as r:
        assert r.dbsize() == 0


def test_the_server_persists_nothing(fresh_redis_server: RedisServer) -> None:
    with client(fresh_redis_server.url) as r:
        assert r.config_get("save") == {"save": ""}
        assert r.config_get("appendonly") == {"appendonly": "no"}
        assert r.config_get("bind") == {"bind": "127.0.0.1"}


def test_kill_makes_connections_fail(fresh_redis_server: RedisServer) -> None:
    with client(fresh_redis_server.url) as r:
        assert r.ping() is True
        fresh_redis_server.kill()
        assert not fresh_redis_server.running
        with pytest.raises(redis.ConnectionError):
            r.ping()
    with client(fresh_redis_server.url) as r, pytest.raises(redis.ConnectionError):
        r.ping()


def test_restart_brings_it_back_empty_on_the_same_port(fresh_redis_server: RedisServer) -> None:
    port = fresh_redis_server.port
    with client(fresh_redis_server.url) as r:
        r.set("k", b"v")
        fresh_redis_server.kill()
        fresh_redis_server.restart()
        assert fresh_redis_server.port == port
        assert r.ping() is True  # the pooled connection reconnects to the new process
        assert r.get("k") is None


def test_restart_of_a_running_server_replaces_it(fresh_redis_server: RedisServer) -> None:
    with client(fresh_redis_server.url) as r:
        pid = r.info("server")["process_id"]
        fresh_redis_server.restart()
        assert r.info("server")["process_id"] != pid


def test_a_hanging_server_times_a_client_out(hanging_redis: HangingServer) -> None:
    with client(hanging_redis.url, timeout=0.2) as r:
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            r.ping()
        elapsed = time.monotonic() - started
    assert 0.18 <= elapsed < 1.0
    assert hanging_redis.connections == 1


def test_a_closed_hanging_server_refuses_connections() -> None:
    server = HangingServer()
    with client(server.url, timeout=0.5) as r:
        with pytest.raises(redis.TimeoutError):
            r.ping()
        server.close()
        with pytest.raises(redis.ConnectionError):
            r.ping()
    server.close()


def test_a_server_that_exits_at_startup_is_a_clear_error() -> None:
    with pytest.raises(RedisServerError, match="exited during startup"):
        RedisServer("/bin/false").start()


def test_a_server_that_never_answers_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "silent-redis"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    server = RedisServer(str(script), startup_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(RedisServerError, match=r"did not answer .* within 0.3 s"):
        server.start()
    assert time.monotonic() - started < 3
    assert not server.running


def test_a_taken_port_is_a_clear_error_on_restart(fresh_redis_server: RedisServer) -> None:
    fresh_redis_server.kill()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", fresh_redis_server.port))
        squatter.listen()
        with pytest.raises(RedisServerError, match="Address already in use"):
            fresh_redis_server.restart()


def test_start_moves_to_another_port_when_its_port_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    ports = iter([squatter.getsockname()[1], free_port()])
    monkeypatch.setattr("tests.redis_server.free_port", lambda: next(ports))
    with squatter, RedisServer(require_redis_server()) as server:
        assert server.port != squatter.getsockname()[1]
        with client(server.url) as r:
            assert r.ping() is True


def test_without_redis_server_the_fixtures_skip_naming_scripts_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("WINK_REQUIRE_REDIS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="scripts/install"):
        require_redis_server()


def test_without_redis_server_the_fixtures_fail_when_redis_is_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("WINK_REQUIRE_REDIS", "1")
    with pytest.raises(pytest.fail.Exception, match="scripts/install"):
        require_redis_server()
