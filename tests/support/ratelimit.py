"""Fixtures and helpers for the rate-limiter, Celery and ops tests.

- `limiter_account`: a fresh account id whose limiter keys are deleted afterwards.
- `OwnRedis`: a private redis-server on a free port, for tests that stop Redis (never
  the shared one on 6379).
- `log_times` / `max_in_window`: when requests really reached the upstream (from the
  sandbox's log), and the busiest rolling window of a list of times.
- `StartLine`: a readiness barrier; load processes start their window together, once all
  are set up, whatever the machine's load.
- `hammer_process`: a process entry point that acquires slots as fast as it can.
- `tight_sandbox` / `tight_gateways` / `run_tool_callers`: the end-to-end contention set-up.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import queue as queue_lib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import redis as redis_lib
from django.conf import settings

from devtools.servers import OUTPUT_DIR, free_port


def limiter_generation_key(key: bytes) -> bool:
    """Whether `key` is an account's limiter generation key (`rl:{id}:gen`). Tests that
    empty the limiter between tests keep it: gateways that used the account would rightly
    take its disappearance for a Redis that forgot the window (and hold the account back)."""
    return re.fullmatch(rb".*rl:\{\d+\}:gen", key) is not None


def delete_account_keys(account_id: int, url: str | None = None) -> None:
    """Empty the account's limiter (its generation key stays, see `limiter_generation_key`)."""
    client = redis_lib.Redis.from_url(url or settings.REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}rl:{{{account_id}}}:*", count=1000):
            if not limiter_generation_key(key):
                client.delete(key)
    finally:
        client.close()


def max_in_window(times: list[float], window: float) -> int:
    """The most events in any half-open window (t - window, t] ending on an event."""
    ordered = sorted(times)
    return max((i + 1 - bisect.bisect_right(ordered, t - window) for i, t in enumerate(ordered)), default=0)


def log_times(entries: list[dict]) -> list[float]:
    return [datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in entries]


class OwnRedis:
    """A private redis-server on 127.0.0.1:<free port> with AOF persistence in a temp dir
    (the production recommendation: a restart keeps the limiter's last window), or none
    (`persistent=False`: a restart forgets everything); `extra` adds server arguments."""

    def __init__(self, password: str | None = None, *, persistent: bool = True, extra: tuple[str, ...] = ()):
        self.port = free_port()
        self.password = password
        self.persistent = persistent
        self.extra = extra
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="pgw-redis-"))
        self.proc: subprocess.Popen | None = None

    def start(self) -> OwnRedis:
        OUTPUT_DIR.mkdir(exist_ok=True)
        with open(OUTPUT_DIR / f"redis-{self.port}.log", "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    *(
                        ["--appendonly", "yes", "--appendfsync", "always"]
                        if self.persistent
                        else ["--appendonly", "no"]
                    ),
                    "--dir",
                    str(self.dir),
                    *(["--requirepass", self.password] if self.password else []),
                    *self.extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis_lib.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("own redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class StartLine:
    """A readiness barrier for spawned load processes (pass it to them as an argument).

    Each process calls `ready_and_wait()` once it is set up (Django loaded, sessions open)
    and gets the window (start, until) in epoch seconds; the parent's `release()` fixes
    that window only when every process is ready. A fixed "start in N s" guess would let a
    slow start-up on a loaded machine eat into (or miss) the measured window.
    """

    def __init__(self, ctx):
        self._ready = ctx.Queue()
        self._go = ctx.Event()
        self._window = ctx.Array("d", 2)

    def ready_and_wait(self, timeout: float = 300.0) -> tuple[float, float]:
        """Child side: say this process is ready, block until the window is set."""
        self._ready.put(os.getpid())
        if not self._go.wait(timeout):
            raise RuntimeError(f"no start signal within {timeout} s")
        return self._window[0], self._window[1]

    def release(self, procs: list, seconds: float, timeout: float = 120.0, lead: float = 0.2) -> tuple[float, float]:
        """Parent side: wait until every one of `procs` is ready, then open the window of
        `seconds` starting `lead` s from now; returns (start, until). Fails, naming the
        cause, if a process died or is not ready within `timeout` s."""
        deadline = time.monotonic() + timeout
        for count in range(len(procs)):
            while True:
                try:
                    self._ready.get(timeout=0.5)
                    break
                except queue_lib.Empty:
                    dead = [p.exitcode for p in procs if p.exitcode is not None]
                    if dead or time.monotonic() > deadline:
                        raise AssertionError(
                            f"{count} of {len(procs)} load processes ready after "
                            f"{timeout - (deadline - time.monotonic()):.0f} s; exit codes of "
                            f"the dead ones: {dead}"
                        ) from None
        start = time.time() + lead
        self._window[0], self._window[1] = start, start + seconds
        self._go.set()
        return start, start + seconds


def hammer_process(
    account_id: int, config_kwargs: dict, start_line: StartLine, result_queue, background: bool = False, tasks: int = 4
) -> None:
    """Process entry point: once every process is ready (`start_line`), `tasks` coroutines
    acquire slots until the window ends; puts the Redis grant times (seconds) on `result_queue`."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pelcro_gateway.settings")
    import django

    django.setup()
    from mcp_bridge.upstream.limiter import LimitConfig, RedisRateGate, request_finished
    from mcp_bridge.upstream.redis_clients import close_redis_for_loop

    gate = RedisRateGate(LimitConfig(**config_kwargs))
    grants: list[float] = []
    start, until = start_line.ready_and_wait()

    async def worker():
        while time.time() < until:
            decision = await gate.try_acquire(account_id, background=background)
            if decision.allowed:
                grants.append(decision.now)
                await request_finished(account_id, 0.0, decision.call_id)  # an instant request
            else:
                await asyncio.sleep(min(decision.retry_after, max(0.0, until - time.time())) + 0.001)

    async def main():
        await asyncio.sleep(max(0.0, start - time.time()))
        await asyncio.gather(*(worker() for _ in range(tasks)))
        await close_redis_for_loop()

    asyncio.run(main())
    result_queue.put(grants)


# --- End-to-end: a tight sandbox, two gateways, tool-calling processes ------------------------

# The sandbox's own limit, compressed; the gateways use the same numbers and no safety
# margin: the limiter counts a request until its answer is back, so arrivals upstream
# never exceed the limit even with a margin of 0 (the setting exists for upstreams that
# count differently).
TIGHT_LIMIT, TIGHT_WINDOW, TIGHT_MARGIN = 20, 3.0, 0
TIGHT_GATEWAY_ENV = {
    "RATE_LIMIT": str(TIGHT_LIMIT),
    "RATE_WINDOW_SECONDS": str(TIGHT_WINDOW),
    "RATE_SAFETY_MARGIN": str(TIGHT_MARGIN),
}


# Exports page through 10 customers at a time, so a few hundred take many requests.
EXPORT_PAGE_SIZE = 10
CUSTOMERS_PER_SITE = 300


class WorkerProcess:
    """A real Celery worker (prefork, 2 processes) on the test database and Redis."""

    def __init__(self, env: dict[str, str]):
        self.env = {**os.environ, **env}
        self.name = f"celery-{free_port()}"
        self.log_path = OUTPUT_DIR / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        from devtools.servers import ROOT

        OUTPUT_DIR.mkdir(exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "pelcro_gateway",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--hostname",
            f"{self.name}@127.0.0.1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited; log tail:\n{self.log_text()[-3000:]}")
            if " ready." in self.log_text():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"celery worker not ready in {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _demo_account(slug: str):
    from accounts.models import Account

    account = Account.objects.get(slug=slug)
    delete_account_keys(account.id)
    yield account
    delete_account_keys(account.id)


def tool_caller_process(
    url: str, token: str, tool: str, arguments: dict, sessions: int, start_line: StartLine, result_queue
) -> None:
    """Process entry point: `sessions` MCP clients open their sessions, wait at `start_line`
    for every process to be ready, then call `tool` back to back until the window ends;
    puts {"ok": n, "errors": {kind: n}} on `result_queue`."""
    from tests.support.mcp import mcp_session

    outcome = {"ok": 0, "errors": {}}

    async def main():
        opened = 0
        all_open, go = asyncio.Event(), asyncio.Event()
        window: list[float] = []

        async def session_loop():
            nonlocal opened
            async with mcp_session(url, token, "2026-07-28") as client:
                opened += 1
                if opened == sessions:
                    all_open.set()
                await go.wait()
                start, until = window
                await asyncio.sleep(max(0.0, start - time.time()))
                while time.time() < until:
                    result = await client.call_tool(tool, arguments)
                    if result.is_error:
                        kind = (result.structured_content or {}).get("error", "unknown")
                        outcome["errors"][kind] = outcome["errors"].get(kind, 0) + 1
                    else:
                        outcome["ok"] += 1

        async def starter():
            await all_open.wait()
            window.extend(await asyncio.to_thread(start_line.ready_and_wait))
            go.set()

        await asyncio.gather(starter(), *(session_loop() for _ in range(sessions)))

    asyncio.run(main())
    result_queue.put(outcome)


def run_tool_callers(
    targets: list[tuple[str, str]],
    tool: str,
    arguments: dict,
    *,
    processes: int,
    sessions: int,
    seconds: float,
    on_start=None,
) -> list[dict]:
    """Run `processes` tool-calling processes spread over `targets` [(mcp url, token)] for a
    window of `seconds` that opens once every session of every process is open (a
    readiness barrier, not a guess of the start-up time). `on_start(start, until)` (epoch
    seconds) is called from here as the window opens. Returns each process's outcome."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    results_queue = ctx.Queue()
    start_line = StartLine(ctx)
    procs = []
    for index in range(processes):
        url, token = targets[index % len(targets)]
        procs.append(
            ctx.Process(
                target=tool_caller_process, args=(url, token, tool, arguments, sessions, start_line, results_queue)
            )
        )
    for proc in procs:
        proc.start()
    try:
        start, until = start_line.release(procs, seconds)
        if on_start is not None:
            on_start(start, until)
        results = [results_queue.get(timeout=until - time.time() + 60) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return results
