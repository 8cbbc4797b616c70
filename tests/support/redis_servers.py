"""Real servers standing in for Redis in the reliability tests (never the shared one on 6379).

- `ClosingServer`: a TCP server that accepts every connection and closes it at once (what a
  TCP or TLS proxy does while the Redis behind it is down), or never answers (`silent`).
- `OwnRedis` (tests/support/ratelimit.py): a private redis-server; here with
  `persistent=False` and extra arguments such as `--maxclients`.
- `RedisClusterServers`: a real Redis Cluster of three masters (Debian's redis-server in
  cluster mode on free loopback ports, joined by `redis-cli --cluster create`).
- `IdleSockets`: plain connections that hold a Redis's client slots and say nothing.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis as redis_lib

from devtools.servers import OUTPUT_DIR, free_port


class ClosingServer:
    """A TCP server on 127.0.0.1:<free port> that accepts connections and closes them at
    once (`silent=False`) or keeps them open without ever answering (`silent=True`)."""

    def __init__(self, *, silent: bool = False):
        self.silent = silent
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> ClosingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=5)
        for conn in self._held:
            conn.close()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            if self.silent:
                self._held.append(conn)
            else:
                conn.close()


class IdleSockets:
    """`count` connections to a Redis that never send a command: they hold its client slots."""

    def __init__(self, port: int, count: int):
        self.sockets = [socket.create_connection(("127.0.0.1", port), timeout=2) for _ in range(count)]

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


class RedisClusterServers:
    """Three redis-server masters in cluster mode on free loopback ports, every slot covered.

    `url` names the first node (`REDIS_CLUSTER=1` makes the gateway find the others).
    Each node's cluster bus gets its own free port (`cluster-port`), so none collides.
    """

    def __init__(self, masters: int = 3):
        self.ports = [free_port() for _ in range(masters)]
        self.bus_ports = [free_port() for _ in range(masters)]
        self.dir = Path(tempfile.mkdtemp(prefix="pgw-cluster-"))
        self.procs: list[subprocess.Popen] = []
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> RedisClusterServers:
        OUTPUT_DIR.mkdir(exist_ok=True)
        for port, bus in zip(self.ports, self.bus_ports, strict=True):
            node_dir = self.dir / str(port)
            node_dir.mkdir()
            with open(OUTPUT_DIR / f"redis-cluster-{port}.log", "ab") as log:  # the child keeps its own descriptor
                self.procs.append(
                    subprocess.Popen(
                        [
                            "redis-server",
                            "--port",
                            str(port),
                            "--bind",
                            "127.0.0.1",
                            "--cluster-enabled",
                            "yes",
                            "--cluster-port",
                            str(bus),
                            "--cluster-config-file",
                            str(node_dir / "nodes.conf"),
                            "--cluster-node-timeout",
                            "2000",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--dir",
                            str(node_dir),
                        ],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        for port in self.ports:
            _wait_for_ping(f"redis://127.0.0.1:{port}/0")
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(_cluster_ok(port) for port in self.ports):
                return self
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> redis_lib.RedisCluster:
        return redis_lib.RedisCluster.from_url(self.url)

    def node_of(self, key: str) -> int:
        """The port of the master that serves `key`'s slot."""
        client = self.client()
        try:
            return client.get_node_from_key(key).port
        finally:
            client.close()


def _wait_for_ping(url: str, timeout: float = 10.0) -> None:
    client = redis_lib.Redis.from_url(url, socket_connect_timeout=0.2)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server at {url} did not start")
    finally:
        client.close()


def _cluster_ok(port: int) -> bool:
    client = redis_lib.Redis(port=port, socket_timeout=1)
    try:
        return client.cluster("info")["cluster_state"] == "ok"
    except redis_lib.RedisError:
        return False
    finally:
        client.close()
