"""A real local Redis Cluster and a real Sentinel setup, from Debian's ``redis-server``, on free ports.

- :class:`LocalCluster`: three primaries and three replicas (``--cluster-enabled yes``), created
  with ``redis-cli --cluster create ... --cluster-replicas 1``; :meth:`LocalCluster.kill_primary` is
  the "a primary crashed" fault (SIGKILL), after which its replica is promoted.
- :class:`LocalSentinel`: one primary, one replica and three ``redis-server --sentinel`` processes
  (quorum 2); :meth:`LocalSentinel.failover` is ``SENTINEL FAILOVER``.

Both use short timeouts (node timeout, ``down-after-milliseconds``) so a failover takes seconds, and
start and stop in well under 20 s. Admin commands go through redis-py (imported lazily).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.redis_server import RedisServerError

__all__ = ["SENTINEL_SERVICE", "LocalCluster", "LocalSentinel"]

#: The service name the sentinels monitor.
SENTINEL_SERVICE = "wink"
_NODE_TIMEOUT_MS = 1000
_START_ATTEMPTS = 3


def _admin(port: int, timeout: float = 1.0) -> Any:
    import redis

    return redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=timeout, socket_connect_timeout=timeout
    )


def _free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    probes = [socket.socket() for _ in range(n)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _wait(what: str, check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        except Exception as exc:  # redis-py errors while a node is still starting
            if type(exc).__module__.split(".")[0] != "redis":
                raise
        if time.monotonic() > deadline:
            raise RedisServerError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


class _Process:
    """One ``redis-server`` (or sentinel) process with a config file in its own directory."""

    def __init__(self, executable: str, directory: Path, port: int, config: str) -> None:
        self.port = port
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.config_file = directory / "redis.conf"
        self.config_file.write_text(config)
        self._command = [executable, str(self.config_file)]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self, *extra: str) -> None:
        self.process = subprocess.Popen(
            [*self._command, *extra],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def answers(self) -> bool:
        if not self.running:
            raise RedisServerError(f"redis on port {self.port} exited (port taken?)")
        return bool(_admin(self.port, 0.3).ping())


def _server_config(port: int, directory: Path, extra: str = "") -> str:
    return (
        f'port {port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir {directory}\n'
        f"daemonize no\nloglevel warning\nlogfile {directory / 'redis.log'}\n{extra}"
    )


def _executables() -> tuple[str, str]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise RedisServerError("redis-server and redis-cli are needed (scripts/install)")
    return server, cli


class _Setup:
    """A group of processes in one temporary directory, stopped together."""

    def __init__(self, prefix: str) -> None:
        self.server, self.cli = _executables()
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.processes: list[_Process] = []

    def stop(self) -> None:
        """Stop every process and remove the directory. Idempotent."""
        for process in self.processes:
            process.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _start_all(self) -> None:
        for process in self.processes:
            process.launch()
        for process in self.processes:
            _wait(f"redis on port {process.port} answering", process.answers, 10)


class LocalCluster(_Setup):
    """Three primaries and three replicas on 127.0.0.1 (cluster bus ports free too)."""

    def __init__(self) -> None:
        super().__init__("wink-cluster-")
        self._configure()

    def _configure(self) -> None:
        self.processes = []
        ports = _free_ports(12)
        for i in range(6):
            port, bus = ports[i], ports[i + 6]
            directory = self.root / f"node{i}"
            shutil.rmtree(directory, ignore_errors=True)
            extra = (
                f"cluster-enabled yes\ncluster-config-file {directory / 'nodes.conf'}\n"
                f"cluster-port {bus}\ncluster-node-timeout {_NODE_TIMEOUT_MS}\n"
                # A write to a dead primary's slots fails at once instead of waiting for promotion.
                "cluster-require-full-coverage no\n"
            )
            self.processes.append(
                _Process(self.server, directory, port, _server_config(port, directory, extra))
            )

    @property
    def ports(self) -> list[int]:
        """Every node's port, primaries and replicas."""
        return [p.port for p in self.processes]

    @property
    def url(self) -> str:
        """A ``redis://`` URL naming one live node (``RedisCluster.from_url`` finds the rest)."""
        live = next(p for p in self.processes if p.running)
        return f"redis://127.0.0.1:{live.port}"

    def start(self) -> LocalCluster:
        """Start the six nodes, create the cluster and wait until every node says ``ok``."""
        try:
            for attempt in range(_START_ATTEMPTS):
                try:
                    self._start_all()
                    break
                except RedisServerError:
                    # Another process took a port we thought free: try new ones.
                    for process in self.processes:
                        process.stop()
                    if attempt == _START_ATTEMPTS - 1:
                        raise
                    self._configure()
            subprocess.run(
                [self.cli, "--cluster", "create"]
                + [f"127.0.0.1:{port}" for port in self.ports]
                + ["--cluster-replicas", "1", "--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=30,
            )
            self.wait_ok()
            _wait("every replica in sync", self._replicas_synced, 15)
        except BaseException:
            self.stop()
            raise
        return self

    def _node_info(self, port: int) -> dict[str, Any]:
        info: dict[str, Any] = _admin(port).cluster("info")
        return info

    def _replicas_synced(self) -> bool:
        for process in self.processes:
            info = _admin(process.port).info("replication")
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def wait_ok(self, timeout: float = 15) -> float:
        """Wait until every live node reports ``cluster_state:ok`` with all 16384 slots served;
        return the seconds it took."""
        started = time.monotonic()

        def ok() -> bool:
            for process in self.processes:
                if not process.running:
                    continue
                info = self._node_info(process.port)
                if info["cluster_state"] != "ok" or int(info["cluster_slots_ok"]) != 16384:
                    return False
            return True

        _wait("cluster_state:ok", ok, timeout)
        return time.monotonic() - started

    def flushall(self) -> None:
        """Empty every primary (``FLUSHALL``; replicas follow)."""
        for port in self.primaries():
            _admin(port).flushall()

    def primaries(self) -> list[int]:
        """Ports of the live primaries."""
        return [
            p.port
            for p in self.processes
            if p.running and _admin(p.port).info("replication")["role"] == "master"
        ]

    def primary_for(self, key: str) -> int:
        """The port of the primary serving ``key``'s slot."""
        client = _admin(self.primaries()[0])
        slot = client.cluster("keyslot", key)
        for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return int(primary[1])
        raise RedisServerError(f"no primary serves slot {slot}")

    def kill_primary(self, port: int | None = None) -> int:
        """SIGKILL a primary (the first one unless ``port``); return its port."""
        port = port or self.primaries()[0]
        next(p for p in self.processes if p.port == port).kill()
        return port

    def restart_node(self, port: int) -> None:
        """Start a killed node again: it keeps its cluster identity and rejoins as a replica."""
        node = next(p for p in self.processes if p.port == port)
        node.launch()
        _wait(f"node {port} answering", node.answers, 10)

    def wait_promoted(self, timeout: float = 15) -> float:
        """After :meth:`kill_primary`: wait until a replica took over its slots (state ``ok``)."""
        started = time.monotonic()
        _wait("three live primaries", lambda: len(self.primaries()) == 3, timeout)
        self.wait_ok(timeout)
        return time.monotonic() - started

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalSentinel(_Setup):
    """One primary, one replica and three sentinels (quorum 2) monitoring :data:`SENTINEL_SERVICE`."""

    def __init__(self) -> None:
        super().__init__("wink-sentinel-")
        primary, replica, *sentinel_ports = _free_ports(5)
        for name, port, extra in (
            ("primary", primary, ""),
            ("replica", replica, f"replicaof 127.0.0.1 {primary}\n"),
        ):
            directory = self.root / name
            self.processes.append(
                _Process(self.server, directory, port, _server_config(port, directory, extra))
            )
        self.sentinels: list[_Process] = []
        for i, port in enumerate(sentinel_ports):
            directory = self.root / f"sentinel{i}"
            config = (
                f"port {port}\nbind 127.0.0.1\ndir {directory}\ndaemonize no\n"
                f"logfile {directory / 'sentinel.log'}\n"
                f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n"
                f"sentinel failover-timeout {SENTINEL_SERVICE} 5000\n"
                f"sentinel parallel-syncs {SENTINEL_SERVICE} 1\n"
            )
            self.sentinels.append(_Process(self.server, directory, port, config))
        self.processes += self.sentinels

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of the three sentinels, for ``redis.sentinel.Sentinel``."""
        return [("127.0.0.1", s.port) for s in self.sentinels]

    def start(self) -> LocalSentinel:
        """Start everything; wait until the replica is in sync and every sentinel knows the
        replica and the two other sentinels."""
        try:
            for process in self.processes[:2]:
                process.launch()
            for process in self.sentinels:
                process.launch("--sentinel")
            for process in self.processes:
                _wait(f"port {process.port} answering", process.answers, 10)
            replica = self.processes[1].port
            _wait(
                "the replica in sync",
                lambda: _admin(replica).info("replication").get("master_link_status") == "up",
                10,
            )
            _wait("the sentinels to know each other", self._sentinels_ready, 15)
        except BaseException:
            self.stop()
            raise
        return self

    def _sentinels_ready(self) -> bool:
        for sentinel in self.sentinels:
            admin = _admin(sentinel.port)
            replicas = admin.execute_command("SENTINEL", "REPLICAS", SENTINEL_SERVICE)
            others = admin.execute_command("SENTINEL", "SENTINELS", SENTINEL_SERVICE)
            if not replicas or len(others) < 2:
                return False
        return True

    def primary(self) -> int:
        """The port the sentinels name as primary now."""
        admin = _admin(self.sentinels[0].port)
        _host, port = admin.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE)
        return int(port)

    def failover(self, timeout: float = 30) -> float:
        """``SENTINEL FAILOVER``; wait until the old replica is the primary and the old primary
        follows it in sync (the sentinels convert it on their next ``INFO``, up to ~10 s later:
        that step also kills its client connections); return the seconds it took."""
        started = time.monotonic()
        old = self.primary()
        _admin(self.sentinels[0].port).execute_command("SENTINEL", "FAILOVER", SENTINEL_SERVICE)

        def done() -> bool:
            new = self.primary()
            if new == old or _admin(new).info("replication")["role"] != "master":
                return False
            info = _admin(old).info("replication")
            return bool(info["role"] == "slave" and info.get("master_link_status") == "up")

        _wait("the sentinel failover", done, timeout)
        return time.monotonic() - started

    def __enter__(self) -> LocalSentinel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
