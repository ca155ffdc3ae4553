"""pytest fixtures for a real Redis (loaded by ``tests/conftest.py``'s ``pytest_plugins``).

- ``redis_server`` (session): one :class:`~tests.redis_server.RedisServer` for the whole run. Never
  kill it in a test: take ``fresh_redis_server`` instead.
- ``redis_url`` (function): that server's URL, emptied (``FLUSHALL``) before the test.
- ``fresh_redis_server`` (function): a server of the test's own, free to kill and restart.
- ``hanging_redis`` (function): a :class:`~tests.redis_server.HangingServer`.
- ``redis_cluster`` (session): a :class:`~tests.redis_cluster.LocalCluster` (three primaries, three
  replicas); ``redis_cluster_url`` (function) names one of its nodes, every primary emptied first.
  ``fresh_redis_cluster`` (function) is the test's own, free to kill primaries in.
- ``redis_sentinel`` (function): a :class:`~tests.redis_cluster.LocalSentinel` (primary, replica,
  three sentinels), the test's own, free to fail over.

Without ``redis-server`` these fixtures skip the test, naming ``scripts/install``; with
``WINK_REQUIRE_REDIS=1`` (set by ``.ci/run``) they fail it instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.redis_cluster import LocalCluster, LocalSentinel
from tests.redis_server import HangingServer, RedisServer

__all__ = [
    "fresh_redis_cluster",
    "fresh_redis_server",
    "hanging_redis",
    "redis_cluster",
    "redis_cluster_url",
    "redis_sentinel",
    "redis_server",
    "redis_url",
    "require_redis_server",
]

MISSING = (
    "redis-server is not installed: run scripts/install as root (it installs Debian's "
    "redis-server package), or install redis-server yourself"
)


def require_redis_server() -> str:
    """The path of ``redis-server``; skips the test without it (fails it under WINK_REQUIRE_REDIS=1)."""
    executable = shutil.which("redis-server")
    if executable is None:
        if os.environ.get("WINK_REQUIRE_REDIS") == "1":
            pytest.fail(f"{MISSING} (WINK_REQUIRE_REDIS=1 makes this a failure)")
        pytest.skip(MISSING)
    return executable


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One ``redis-server`` for the test session (never kill it: use ``fresh_redis_server``)."""
    with RedisServer(require_redis_server()) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied before this test."""
    if not redis_server.running:
        # A test killed the shared server by mistake: bring it back rather than fail the rest.
        redis_server.restart()
    redis_server.flushall()
    return redis_server.url


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A ``redis-server`` for this test alone: kill and restart it at will."""
    with RedisServer(require_redis_server()) as server:
        yield server


@pytest.fixture
def hanging_redis() -> Iterator[HangingServer]:
    """A "Redis" that accepts connections and never answers."""
    with HangingServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """One Redis Cluster for the session (never kill its nodes: use ``fresh_redis_cluster``)."""
    require_redis_server()
    with LocalCluster() as cluster:
        yield cluster


@pytest.fixture
def redis_cluster_url(redis_cluster: LocalCluster) -> str:
    """A node of the session cluster, as a URL for ``RedisCluster.from_url``; emptied first."""
    redis_cluster.flushall()
    return redis_cluster.url


@pytest.fixture
def fresh_redis_cluster() -> Iterator[LocalCluster]:
    """A Redis Cluster for this test alone: kill primaries at will."""
    require_redis_server()
    with LocalCluster() as cluster:
        yield cluster


@pytest.fixture
def redis_sentinel() -> Iterator[LocalSentinel]:
    """A primary, a replica and three sentinels for this test alone: fail over at will."""
    require_redis_server()
    with LocalSentinel() as sentinel:
        yield sentinel
