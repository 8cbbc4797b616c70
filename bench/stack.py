"""The systems a benchmark runs against, started as real processes and torn down after.

`Stack` owns, for one run: a scratch database (a temporary SQLite file or a scratch
PostgreSQL database), migrated and seeded with the demo data; a Redis key prefix of its
own (its keys are deleted at the end, nothing else is touched); and the servers it starts
(the Core API sandbox, the gateway, the bare MCP server), each a uvicorn subprocess on a
free 127.0.0.1 port. Access tokens come from the real OAuth flow (DCR, sign-in, consent,
PKCE, code exchange) against the running gateway.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

from devtools.oauth_client import obtain_open_tokens, obtain_tokens
from devtools.servers import ROOT, ServerProcess, free_port, uvicorn_argv

DEFAULT_PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
SANDBOX_ADMIN_TOKEN = "bench-sandbox-admin"
# "Effectively unlimited" for both limiters: the gateway's still runs its Lua script on
# every call, it just never says no.
UNLIMITED = "1000000000"
DEMO_ACCOUNT = "acme"
DEMO_SITE = 14
DEMO_USER = "demo"
DEMO_SPEC = ROOT / "demo" / "accounts.json"


def demo_api_key(account_slug: str = DEMO_ACCOUNT) -> str:
    """The account's Core API key from demo/accounts.json (what the sandbox accepts)."""
    spec = json.loads(DEMO_SPEC.read_text())
    return next(a["api_key"] for a in spec["accounts"] if a["slug"] == account_slug)


def demo_password(username: str = DEMO_USER) -> str:
    """The demo user's password from demo/accounts.json."""
    spec = json.loads(DEMO_SPEC.read_text())
    return next(u["password"] for u in spec["users"] if u["username"] == username)


@dataclass
class Stack:
    """Scratch database + Redis prefix + servers for one benchmark run (a context manager)."""

    db: str | None = "sqlite"  # "sqlite", "postgres", or None (no database: sandbox and Redis only)
    pg_url: str = DEFAULT_PG_URL
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    servers: list[ServerProcess] = field(default_factory=list)
    database_url: str = ""
    _tmpdir: tempfile.TemporaryDirectory | None = None
    _pg_name: str | None = None

    @property
    def redis_prefix(self) -> str:
        return f"pgwbench-{self.run_id}:"

    def __enter__(self) -> Stack:
        if self.db is None:
            return self
        try:
            self._create_database()
            self._manage("migrate", "--no-input", "-v0")
            self._manage("seed_demo")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- Database -------------------------------------------------------------------------

    def _create_database(self) -> None:
        if self.db == "sqlite":
            self._tmpdir = tempfile.TemporaryDirectory(prefix="pgw-bench-")
            self.database_url = f"sqlite:///{Path(self._tmpdir.name) / 'bench.sqlite3'}"
        elif self.db == "postgres":
            import psycopg

            self._pg_name = f"pgw_bench_{self.run_id}"
            with psycopg.connect(self.pg_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self._pg_name}"')
            base, _, _ = self.pg_url.rpartition("/")
            self.database_url = f"{base}/{self._pg_name}"
        else:
            raise ValueError(f"unknown database kind {self.db!r} (sqlite or postgres)")

    def _drop_database(self) -> None:
        if self._pg_name is not None:
            import psycopg

            with psycopg.connect(self.pg_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
            self._pg_name = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def _manage(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**os.environ, **self.base_env()},
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def sql(self, query: str) -> list[tuple]:
        """Run one read query on the scratch database (e.g. to count audit rows)."""
        if self.db == "sqlite":
            import sqlite3

            with contextlib.closing(sqlite3.connect(self.database_url.removeprefix("sqlite:///"))) as conn:
                return conn.execute(query).fetchall()
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query).fetchall()

    def audit_rows(self, at_least: int = 0, timeout: float = 10.0) -> int:
        """How many audit rows there are, once there are `at_least` (each is written just
        after its call's answer) or `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        while (count := self.sql("SELECT count(*) FROM mcp_bridge_toolcall")[0][0]) < at_least:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return count

    # --- Servers --------------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        """What every gateway-side process of this run gets in its environment."""
        env = {
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": self.redis_prefix,
            "GATEWAY_ENV": "dev",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
        }
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        return env

    def _start(self, server: ServerProcess) -> ServerProcess:
        self.servers.append(server)
        return server.start(timeout=60)

    def start_sandbox(self, **env: str) -> ServerProcess:
        """The Core API sandbox; `env` overrides its knobs (e.g. SANDBOX_RATE_LIMIT)."""
        port = free_port()
        argv = [sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)]
        base = {"SANDBOX_ADMIN_TOKEN": SANDBOX_ADMIN_TOKEN, "SANDBOX_RATE_LIMIT": UNLIMITED}
        return self._start(ServerProcess("bench-sandbox", argv, port, {**base, **env}, "/_sandbox/health"))

    def start_gateway(self, sandbox: ServerProcess, *, workers: int = 1, **env: str) -> ServerProcess:
        """The full gateway (pelcro_gateway.asgi) on the scratch DB, upstream = `sandbox`."""
        port = free_port()
        full_env = {
            **self.base_env(),
            "PUBLIC_URL": f"http://127.0.0.1:{port}",
            "PORT": str(port),
            "CORE_API_BASE_URL": sandbox.url + "/api/v1/core",
            "OPEN_API_BASE_URL": sandbox.url + "/api/v1/sdk",
            "RATE_LIMIT": UNLIMITED,
            "OPEN_SITE_RATE_LIMIT": UNLIMITED,
            "OPEN_SUBSCRIBER_RATE_LIMIT": UNLIMITED,
            "ACCESS_LOG": "0",  # like the bare server (--no-access-log)
            "FORWARDED_ALLOW_IPS": "",  # as the launchers run it
            **env,
        }
        argv = uvicorn_argv("pelcro_gateway.asgi:application", port, "--workers", str(workers))
        return self._start(ServerProcess("bench-gateway", argv, port, full_env, "/health"))

    def start_bare(self, sandbox: ServerProcess, *, workers: int = 1, open_jwt: str = "") -> ServerProcess:
        """The bare `MCPServer` (bench/bare_server.py) calling the same upstream; `open_jwt`,
        a demo subscriber's Pelcro JWT, for its Open API tool."""
        port = free_port()
        env = {
            "BARE_UPSTREAM_URL": sandbox.url + "/api/v1/core",
            "BARE_API_KEY": demo_api_key(),
            "BARE_OPEN_URL": sandbox.url + "/api/v1/sdk",
            "BARE_OPEN_JWT": open_jwt,
        }
        argv = uvicorn_argv("bench.bare_server:app", port, "--workers", str(workers))
        return self._start(ServerProcess("bench-bare", argv, port, env, "/health"))

    def access_token(self, gateway: ServerProcess, account: str = DEMO_ACCOUNT, username: str = DEMO_USER) -> str:
        """An access token for `account` from the real OAuth flow against `gateway`."""
        tokens = obtain_tokens(gateway.url, username, demo_password(username), account, client_name="pelcro-bench")
        return tokens["access_token"]

    def demo_subscriber(self, index: int = 0) -> dict:
        """A demo subscriber of demo/accounts.json (site_id, email, password)."""
        return json.loads(DEMO_SPEC.read_text())["subscribers"][index]

    def subscriber_jwt(self, sandbox: ServerProcess, subscriber: dict) -> str:
        """A Pelcro JWT of `subscriber` from a real Open API login at `sandbox`."""
        import httpx

        login = httpx.post(
            f"{sandbox.url}/api/v1/sdk/auth/login",
            params={"site_id": subscriber["site_id"]},
            json={"email": subscriber["email"], "password": subscriber["password"]},
            timeout=10,
        )
        login.raise_for_status()
        return login.json()["data"]["auth_token"]

    def open_access_token(self, gateway: ServerProcess, subscriber: dict) -> str:
        """A read-only Open server (`/open`) access token for `subscriber` from the real OAuth
        flow against `gateway`: the subscriber picks the publication, signs in (the gateway's
        Open API login at its sandbox) and consents, as `access_token` does for staff."""
        tokens = obtain_open_tokens(
            gateway.url,
            subscriber["site_id"],
            subscriber["email"],
            subscriber["password"],
            access="read",
            client_name="pelcro-bench (open)",
        )
        return tokens["access_token"]

    def limiter_grants(self) -> int:
        """Requests the gateway's Redis limiter granted in this run (its per-minute usage ring)."""
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        try:
            total = 0
            for key in client.scan_iter(match=self.redis_prefix + "rl:*:usage", count=1000):
                total += sum(int(v) for k, v in client.hgetall(key).items() if k.startswith("c"))
            return total
        finally:
            client.close()

    # --- Teardown -------------------------------------------------------------------------

    def close(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()
        self._clear_redis()
        self._drop_database()

    def _clear_redis(self) -> None:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            for key in client.scan_iter(match=self.redis_prefix + "*", count=1000):
                client.delete(key)
        finally:
            client.close()
