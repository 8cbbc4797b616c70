"""Fixtures and helpers for the fault, bad-input and security tests.

- `fault_sandbox` / `fault_gateway`: this feature's own sandbox and gateway (session
  scoped), with compressed Core API timeouts (`FAST_FAIL_ENV`) so a slow or dead upstream
  shows up in half a second, and both rate limits out of reach (limits have their own
  tests). The gateway writes its Redis keys under its own prefix, deleted at teardown.
- `fuzz_gateway`: a gateway (default timeouts) for the bad-input tests.
- `faults`: the demo users committed, a real OAuth token, the sandbox's knobs restored and
  the account's limiter keys emptied around each test.
- `call_tools` / `ToolOutcome`: tool calls through the real `mcp` SDK client, recorded
  with how long each took.
- `settled_log` / `requests_to`: the sandbox's request log once quiet, and its requests
  of one method and path.
- `DatabaseOutage`: a way to the test database that can be cut and restored while a
  gateway runs (a symlink for SQLite, a TCP proxy for PostgreSQL).
- `LogWatch`: what a server process wrote to its log since a point in time.
- `post_jsonrpc`: one raw JSON-RPC POST to an MCP endpoint.
- Hypothesis building blocks for bad input (`JUNK`, `to_json`, `mostly`, `FUZZ`) and
  `assert_no_traceback_logged`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis as redis_lib
from django.conf import settings as django_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from devtools.oauth_client import obtain_tokens
from devtools.servers import ServerProcess, database_url_of, free_port
from tests.support.mcp import OUT_OF_REACH, PASSWORDS, mcp_session
from tests.support.ratelimit import limiter_generation_key
from tests.support.sandbox import SandboxClient
from tests.support.servers import start_gateway

# A gateway that gives up on the Core API fast: 0.5 s per attempt, two retries where a
# retry is safe, short backoff; a down Redis is noticed in half a second too.
FAST_FAIL_ENV = {
    "CORE_API_TIMEOUT": "0.5",
    "CORE_API_CONNECT_TIMEOUT": "0.5",
    "CORE_API_MAX_RETRIES": "2",
    "CORE_API_BACKOFF_BASE": "0.05",
    "RATE_REDIS_TIMEOUT_SECONDS": "0.5",
    "RATE_LIMIT": OUT_OF_REACH,
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ACME_SITE = 14
PLANS_ARGS = {"site_id": ACME_SITE, "per_page": 1}  # a cheap read


def fault_prefix() -> str:
    """The Redis key prefix of this feature's gateways (inside the run's own prefix)."""
    return os.environ["REDIS_KEY_PREFIX"] + "faults:"


def delete_prefixed_keys(prefix: str, url: str | None = None) -> None:
    client = redis_lib.Redis.from_url(url or django_settings.REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            if not limiter_generation_key(key):  # the gateways' limiters did not forget
                client.delete(key)
    finally:
        client.close()


def start_fault_gateway(sandbox: ServerProcess | None, **extra: str) -> ServerProcess:
    """A gateway with FAST_FAIL_ENV and this feature's Redis prefix (`extra` overrides)."""
    return start_gateway(sandbox, **{**FAST_FAIL_ENV, "REDIS_KEY_PREFIX": fault_prefix(), **extra})


@dataclass
class FaultEnv:
    gateway: ServerProcess
    sandbox: SandboxClient
    _token: str | None = None

    @property
    def url(self) -> str:
        return self.gateway.url + "/"

    def token(self) -> str:
        """An access token for acme (read and write), from the real OAuth flow; one per test.
        The owner turned confirmations off at consent: these tests are about what reaches
        the upstream (tests/test_confirmation.py is about confirmations)."""
        if self._token is None:
            self._token = obtain_tokens(self.gateway.url, "demo", PASSWORDS["demo"], "acme", confirm_writes=False)[
                "access_token"
            ]
        return self._token


# --- Tool calls ---------------------------------------------------------------------------


@dataclass
class ToolOutcome:
    """One tool call as the assistant saw it."""

    tool: str
    arguments: dict
    is_error: bool
    structured: dict
    text: str
    seconds: float

    @property
    def error(self) -> str | None:
        return self.structured.get("error") if self.is_error else None


async def call_tool(client, name: str, arguments: dict) -> ToolOutcome:
    started = time.monotonic()
    result = await client.call_tool(name, arguments)
    text = result.content[0].text if result.content else ""
    return ToolOutcome(
        name, arguments, result.is_error, result.structured_content or {}, text, time.monotonic() - started
    )


async def call_tools_async(url: str, token: str, calls: list[tuple[str, dict]]) -> list[ToolOutcome]:
    async with mcp_session(url, token, "2026-07-28") as client:
        return [await call_tool(client, name, arguments) for name, arguments in calls]


def call_tools(url: str, token: str, calls: list[tuple[str, dict]]) -> list[ToolOutcome]:
    """Make `calls` one after the other in one SDK session (protocol 2026-07-28)."""
    return asyncio.run(call_tools_async(url, token, calls))


_email_counter = iter(range(10**9))


def new_customer_args(tag: str) -> dict:
    """Arguments of a create_customer call whose body is unique in this run."""
    return {"site_id": ACME_SITE, "email": f"{tag}-{os.getpid()}-{next(_email_counter)}-{time.time_ns()}@example.com"}


def write_bodies(entries: list[dict]) -> Counter:
    """How often each write body reached the upstream, by SHA-256."""
    return Counter(e["body_sha256"] for e in entries if e["method"] in WRITE_METHODS)


def requests_to(entries: list[dict], method: str, path: str) -> list[dict]:
    """The Core API requests of `entries` (the sandbox log) with this method and path."""
    return [e for e in entries if e["method"] == method and e["path"] == "/api/v1/core" + path]


def settled_log(sandbox, since: int, quiet: float = 0.3, timeout: float = 10.0) -> list[dict]:
    """The sandbox's log after `since`, once nothing new has arrived for `quiet` seconds and
    nothing is still inside the injected latency (requests are logged when they finish)."""
    deadline = time.monotonic() + timeout
    entries, last_change = sandbox.log(since), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = sandbox.log(since)
        if len(now) != len(entries):
            entries, last_change = now, time.monotonic()
        elif time.monotonic() - last_change >= max(quiet, sandbox_latency(sandbox) + 0.2):
            return entries
    return entries


def sandbox_latency(sandbox) -> float:
    return sandbox.admin.get("/config").json()["data"]["latency_ms"] / 1000


# --- Server logs ----------------------------------------------------------------------------


class LogWatch:
    """What a server process appended to its log file since this object was made."""

    def __init__(self, server: ServerProcess):
        self.path = Path(server.log_path)
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> str:
        if not self.path.exists():
            return ""
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode("utf-8", errors="replace")


# --- The database, cut and restored under a running gateway ---------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a TCP server; `cut()` drops every connection and refuses
    new ones until `restore()` (a database server that went away and came back).

    With `reset_answers` set, whatever the server answers is thrown away and the client's
    connection is reset instead (RST): a request that reached the server and was processed,
    whose answer was lost on the way back ("connection reset after send")."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.up = True
        self.reset_answers = False
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", self.port))
        self._server.listen(64)
        self._server.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst, answers in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, answers), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        try:
            while data := src.recv(65536):
                if answers and self.reset_answers:
                    # SO_LINGER 0 and no SHUT_WR: close() sends RST, not FIN (SHUT_RD sends
                    # nothing; it wakes the thread reading this socket).
                    dst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    with self._lock:
                        self._sockets.discard(dst)
                    dst.shutdown(socket.SHUT_RD)
                    dst.close()
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._drop(sock)

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._thread.join(timeout=2)
        self._server.close()


class DatabaseOutage:
    """A database URL for a gateway that reaches the test database until `cut()`.

    SQLite: the URL names a symlink to the test database file (SQLite resolves it, so the
    WAL is shared with everyone else); `cut()` points it into a directory that does not
    exist. PostgreSQL: the URL goes through a `TcpProxy`.
    """

    def __init__(self, settings_dict: dict):
        self.engine = "sqlite" if settings_dict["ENGINE"].endswith("sqlite3") else "postgresql"
        self._proxy: TcpProxy | None = None
        self.port: int | None = None  # PostgreSQL: the proxy's port the gateway connects to
        self._dir: Path | None = None
        if self.engine == "sqlite":
            self._dir = Path(tempfile.mkdtemp(prefix="pgw-db-outage-"))
            self._target = Path(settings_dict["NAME"]).resolve()
            self._link = self._dir / "gateway.sqlite3"
            self._point_to(self._target)
            self.url = f"sqlite:///{self._link}"
        else:
            host = settings_dict.get("HOST") or "127.0.0.1"
            self._proxy = TcpProxy(host, int(settings_dict.get("PORT") or 5432))
            self.port = self._proxy.port
            self.url = database_url_of({**settings_dict, "HOST": "127.0.0.1", "PORT": self._proxy.port})

    def _point_to(self, target: Path) -> None:
        temporary = self._link.with_suffix(".tmp")
        os.symlink(target, temporary)
        os.replace(temporary, self._link)

    def cut(self) -> None:
        if self._proxy:
            self._proxy.cut()
        else:
            self._point_to(self._dir / "gone" / "gateway.sqlite3")

    def restore(self) -> None:
        if self._proxy:
            self._proxy.restore()
        else:
            self._point_to(self._target)

    def close(self) -> None:
        if self._proxy:
            self._proxy.close()
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


def post_jsonrpc(
    url: str, body, token: str | None, *, version: str | None = "2025-06-18", timeout: float = 10, **headers: str
):
    """One raw JSON-RPC POST to an MCP endpoint (`body`: bytes/str as they are, else JSON)."""
    base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if token is not None:
        base["Authorization"] = f"Bearer {token}"
    if version is not None:
        base["MCP-Protocol-Version"] = version
    base.update(headers)
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(url, content=content, headers=base, timeout=timeout)


# --- Bad input: hypothesis building blocks ---------------------------------------------------

FUZZ = settings(
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(str.strip)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**80), 2**80),
    st.floats(),
    st.text(max_size=30),
)
NESTED = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HUGE = st.sampled_from(["x" * 70_000, "é" * 20_000, "\x00" * 2_000, "%s{}\\u0000" * 3_000, "9" * 5_000])
# What JSON can carry but a database column cannot: NUL, lone surrogates, NaN/Infinity.
UNSTORABLE = st.sampled_from(["a\x00b", "\ud800", "x\udfffy", float("nan"), float("inf"), -float("inf")])


class Deep:
    """`depth` nested lists around 1; spliced into the JSON text by `to_json` (Python's own
    encoder, and hypothesis's printer, would hit the recursion limit on it)."""

    def __init__(self, depth: int):
        self.depth = depth

    def __repr__(self) -> str:
        return f"Deep({self.depth})"


_DEEP_MARK = re.compile(r'"\\u0000deep(\d+)\\u0000"')


def to_json(value) -> bytes:
    text = json.dumps(value, default=lambda deep: f"\x00deep{deep.depth}\x00")
    return _DEEP_MARK.sub(lambda m: "[" * int(m[1]) + "1" + "]" * int(m[1]), text).encode()


DEEP = st.integers(10, 3_000).map(Deep)
JUNK = st.one_of(SCALARS, NESTED, HUGE, DEEP, UNSTORABLE)


@st.composite
def mostly(draw, good: st.SearchStrategy, bad: st.SearchStrategy = JUNK):
    """`good` three times in four, else `bad`: most messages get past the first check."""
    return draw(good if draw(st.sampled_from([True, True, True, False])) else bad)


_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ (\S+) ")


def assert_no_traceback_logged(watch: LogWatch, allowed_loggers: tuple[str, ...] = ()) -> None:
    """No traceback in what the server logged since `watch` was made, except under a logger
    whose name starts with one of `allowed_loggers` (e.g. "django.security.": Django's
    security log records each refused suspicious request with its stack, by design)."""
    logger = ""
    for line in watch.text().splitlines():
        if match := _LOG_RECORD.match(line):
            logger = match[1]
        assert "Exception in ASGI application" not in line, line
        if line.startswith("Traceback"):
            assert logger.startswith(allowed_loggers) if allowed_loggers else False, (
                f"a traceback logged by {logger}:\n{watch.text()[-3000:]}"
            )
