"""Every fixture of the suite. The helpers they are built from (server processes, clients,
constants) are modules of `tests/support/`, which tests import directly.

Servers: `unlimited_sandbox` is the session's one sandbox with its rate limit out of reach
(`mcp_sandbox`, `fault_sandbox` and, as a client, `sandbox_api` are that same process);
`sandbox_server` (the real limits) and `tight_sandbox` (a compressed limit) differ on
purpose. Every gateway comes from one factory, `tests.support.servers.start_gateway`.

`make test-fast` runs the tests that start no server (`-m "not servers"`): the `servers`
marker is added here to every test that uses a fixture starting a process, or whose module
starts one itself.
"""

import contextlib
import os
import random
from pathlib import Path

import pytest
import redis as redis_lib
from django.conf import settings
from playwright.sync_api import sync_playwright

from devtools.servers import ServerProcess
from tests.support.browser import CHROMIUM_ARGS, CHROMIUM_PATH
from tests.support.databases import drop_stale_test_databases, quick_commits
from tests.support.faults import DatabaseOutage, FaultEnv, delete_prefixed_keys, fault_prefix, start_fault_gateway
from tests.support.mcp import OUT_OF_REACH, McpEnv
from tests.support.oauth import STRICT_LIMITS, _clear_redis_prefix
from tests.support.ratelimit import (
    CUSTOMERS_PER_SITE,
    EXPORT_PAGE_SIZE,
    TIGHT_GATEWAY_ENV,
    TIGHT_LIMIT,
    TIGHT_WINDOW,
    OwnRedis,
    WorkerProcess,
    _demo_account,
    delete_account_keys,
)
from tests.support.sandbox import OpenClient, SandboxClient
from tests.support.servers import start_gateway, start_sandbox


def pytest_sessionstart(session):
    """Once per run (the xdist controller, or the only process): drop the test databases
    that ended runs left behind (tests/support/databases.py)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    drop_stale_test_databases(settings.DATABASES["default"], Path(settings.VAR_DIR))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, with commits that do not wait for the disk
    (PostgreSQL; tests/support/databases.py)."""
    from django.db import connection

    with django_db_blocker.unblock():
        quick_commits(connection)


@pytest.fixture
def redis_client():
    assert settings.REDIS_KEY_PREFIX.startswith("pgwtest-"), "tests/run_env.py did not run"
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    yield client
    # Remove only this run's keys; never FLUSHDB a Redis others may share.
    for key in client.scan_iter(match=settings.REDIS_KEY_PREFIX + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(autouse=True)
def _no_auth_epoch_hold_left():
    """A test whose transaction never commits (the `db` fixture) never releases the auth
    epoch holds its changes took (`accounts.auth_epoch`); in production a rolled-back hold
    expires after HOLD_SECONDS, here it would keep every cache of the run off that long."""
    yield
    from accounts.auth_epoch import holds_key
    from accounts.redis_client import redis_client

    with contextlib.suppress(redis_lib.RedisError):
        redis_client().delete(holds_key())


# --- servers -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sandbox_server():
    """The Core API sandbox with its default (real) limits, shared by the session."""
    server = start_sandbox()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _session_gateway(django_db_setup, django_db_blocker, sandbox_server):
    with django_db_blocker.unblock():
        server = start_gateway(sandbox_server)
    yield server
    server.stop()


@pytest.fixture
def gateway_server(transactional_db, _session_gateway):
    """A live gateway (uvicorn subprocess) on the test database, upstream = the sandbox.

    The process lives for the whole session; `transactional_db` makes each test's rows
    visible to it (committed) and flushes them afterwards. The gateway keeps no DB state
    in memory, so that is safe.
    """
    return _session_gateway


# --- sandbox -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def unlimited_sandbox() -> ServerProcess:
    """The session's one sandbox with its rate limit out of reach, shared by the sandbox,
    MCP and fault tests (each restores the sandbox's knobs it turned; `fresh_sbx` reseeds)."""
    server = start_sandbox(SANDBOX_RATE_LIMIT=OUT_OF_REACH)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sandbox_api(unlimited_sandbox) -> SandboxClient:
    """A client (with the admin API) of the unlimited sandbox."""
    client = SandboxClient(unlimited_sandbox)
    yield client
    client.close()


@pytest.fixture
def sbx(sandbox_api):
    """The session's sandbox with start-up knobs (data as previous tests left it)."""
    sandbox_api.restore_config()
    yield sandbox_api
    sandbox_api.restore_config()


@pytest.fixture
def fresh_sbx(sbx):
    """The session's sandbox, freshly seeded, with an empty request log and limiter."""
    sbx.reset()
    return sbx


@pytest.fixture
def sdk(fresh_sbx):
    """The Open API of a freshly seeded sandbox (knobs and per-site settings at start-up values)."""
    client = OpenClient(fresh_sbx)
    yield client
    client.close()


# --- oauth ---------------------------------------------------------------------------------


@pytest.fixture
def demo_users(transactional_db, settings):
    """The demo accounts/sites/keys/users (demo/accounts.json), committed so live gateways
    see them. Returns the spec: users[i]["username"/"password"], accounts[i]["slug"]…
    Users this test creates get quickly-hashed passwords too."""
    from accounts.demo import seed_demo

    settings.PASSWORD_HASHERS = ["tests.support.oauth.QuickScryptHasher"]
    return seed_demo()


@pytest.fixture(scope="session")
def _strict_gateway(django_db_setup, django_db_blocker):
    prefix = os.environ["REDIS_KEY_PREFIX"] + "strict:"
    with django_db_blocker.unblock():
        server = start_gateway(None, REDIS_KEY_PREFIX=prefix, **STRICT_LIMITS)
    server.redis_prefix = prefix
    yield server
    server.stop()


@pytest.fixture
def strict_gateway(transactional_db, _strict_gateway):
    """A live gateway with STRICT_LIMITS, its counters reset for each test."""
    _clear_redis_prefix(_strict_gateway.redis_prefix)
    yield _strict_gateway
    _clear_redis_prefix(_strict_gateway.redis_prefix)


# --- mcp -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mcp_sandbox(unlimited_sandbox) -> ServerProcess:
    """The MCP tests' upstream: the unlimited sandbox."""
    return unlimited_sandbox


@pytest.fixture(scope="session")
def mcp_gateway(django_db_setup, django_db_blocker, mcp_sandbox) -> ServerProcess:
    with django_db_blocker.unblock():
        server = start_gateway(
            mcp_sandbox,
            RATE_LIMIT=OUT_OF_REACH,
            OPEN_SITE_RATE_LIMIT=OUT_OF_REACH,
            OPEN_SUBSCRIBER_RATE_LIMIT=OUT_OF_REACH,
        )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def truth(mcp_sandbox) -> SandboxClient:
    """Straight access to the sandbox with the accounts' own keys: what the gateway must show."""
    return SandboxClient(mcp_sandbox)


@pytest.fixture
def mcp_env(transactional_db, demo_users, mcp_gateway, mcp_sandbox) -> McpEnv:
    return McpEnv(gateway=mcp_gateway, sandbox=mcp_sandbox)


# --- ratelimit -----------------------------------------------------------------------------


@pytest.fixture
def limiter_account():
    """An account id no other test uses; its limiter keys are removed at teardown."""
    account_id = random.randint(10**8, 10**9)
    yield account_id
    delete_account_keys(account_id)


@pytest.fixture
async def close_limiter_redis():
    """Close the test loop's limiter Redis pool when an async test ends."""
    from mcp_bridge.upstream.redis_clients import close_redis_for_loop

    yield
    await close_redis_for_loop()


@pytest.fixture
def own_redis():
    server = OwnRedis().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def tight_sandbox():
    """A sandbox whose own limit is TIGHT_LIMIT per TIGHT_WINDOW s (429 beyond)."""
    from tests.support.servers import start_sandbox

    server = start_sandbox(
        SANDBOX_RATE_LIMIT=str(TIGHT_LIMIT),
        SANDBOX_RATE_WINDOW=str(TIGHT_WINDOW),
        SANDBOX_CUSTOMERS_PER_SITE=str(CUSTOMERS_PER_SITE),
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tight_env(tmp_path_factory) -> dict[str, str]:
    """Settings shared by the tight gateways and the Celery worker. Their own task queue:
    the worker lives for the rest of the session and must not take the tasks other tests
    queue from this process (a revoke's sign-out, say), which they call or check themselves."""
    return {
        **TIGHT_GATEWAY_ENV,
        "CELERY_TASK_DEFAULT_QUEUE": "tight",
        "EXPORT_PAGE_SIZE": str(EXPORT_PAGE_SIZE),
        "EXPORT_DIR": str(tmp_path_factory.mktemp("exports")),
    }


@pytest.fixture(scope="session")
def tight_gateways(django_db_setup, django_db_blocker, tight_sandbox, tight_env):
    """Two gateway processes sharing the test database and Redis, limited like the sandbox."""
    from tests.support.servers import start_gateway

    with django_db_blocker.unblock():
        servers = [start_gateway(tight_sandbox, **tight_env) for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tight_sandbox, tight_env):
    """A Celery worker like the tight gateways, whose limiter waits at most 0.5 s in-process,
    so longer waits go through Celery's retry with countdown."""
    from django.db import connection

    from devtools.servers import database_url_of

    with django_db_blocker.unblock():
        env = {
            **tight_env,
            "DATABASE_URL": database_url_of(connection.settings_dict),
            "CORE_API_BASE_URL": tight_sandbox.url + "/api/v1/core",
            "RATE_WAIT_BUDGET_SECONDS": "0.5",
        }
        worker = WorkerProcess(env).start()
    yield worker
    worker.stop()


@pytest.fixture
def acme(demo_users):
    """The demo account `acme` (committed for the live gateways); its limiter keys are
    deleted afterwards so later tests start with an empty window."""
    yield from _demo_account("acme")


@pytest.fixture
def other(demo_users):
    """The demo account `other` (site 27), for tests that must not see requests that an
    earlier test's callers left waiting in a gateway for `acme` (they may still arrive at
    the shared sandbox after that test ended)."""
    yield from _demo_account("other")


# --- faults --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def fault_sandbox(unlimited_sandbox) -> ServerProcess:
    """The fault tests' upstream: the unlimited sandbox (the `faults` fixture restores its
    knobs before and after each test)."""
    return unlimited_sandbox


@pytest.fixture(scope="session")
def fault_gateway(django_db_setup, django_db_blocker, fault_sandbox):
    with django_db_blocker.unblock():
        server = start_fault_gateway(fault_sandbox)
    yield server
    server.stop()
    delete_prefixed_keys(fault_prefix())


@pytest.fixture(scope="session")
def fuzz_gateway(django_db_setup, django_db_blocker, fault_sandbox):
    """A gateway for bad-input tests: default timeouts, limits out of reach, its own log."""
    prefix = fault_prefix() + "fuzz:"
    with django_db_blocker.unblock():
        server = start_gateway(fault_sandbox, RATE_LIMIT=OUT_OF_REACH, REDIS_KEY_PREFIX=prefix)
    yield server
    server.stop()
    delete_prefixed_keys(prefix)


@pytest.fixture
def faults(transactional_db, demo_users, fault_gateway, fault_sandbox) -> FaultEnv:
    sandbox = SandboxClient(fault_sandbox)
    sandbox.restore_config()
    delete_prefixed_keys(fault_prefix())
    yield FaultEnv(gateway=fault_gateway, sandbox=sandbox)
    if fault_sandbox.proc and fault_sandbox.proc.poll() is None:
        sandbox.restore_config()
    sandbox.close()
    delete_prefixed_keys(fault_prefix())


@pytest.fixture
def database_outage(transactional_db):
    from django.db import connection

    outage = DatabaseOutage(connection.settings_dict)
    yield outage
    outage.close()


# --- browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an event loop running in this thread; Django's ORM (used
    # by the test itself, between browser steps) refuses to run under one unless allowed.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


# --- make test-fast ------------------------------------------------------------------------

# Fixtures that start a process (a server, a worker, a Redis of its own, Chromium).
SERVER_FIXTURES = frozenset(
    {
        "unlimited_sandbox",
        "sandbox_server",
        "tight_sandbox",
        "_session_gateway",
        "gateway_server",
        "mcp_gateway",
        "fault_gateway",
        "fuzz_gateway",
        "_strict_gateway",
        "strict_gateway",
        "tight_gateways",
        "celery_worker_process",
        "own_redis",
        "browser",
        "sandbox_api",
        "mcp_sandbox",
        "fault_sandbox",
    }
)
# A module that starts one itself names one of these.
SERVER_STARTERS = (
    "start_gateway(",
    "start_sandbox(",
    "start_fault_gateway(",
    "ServerProcess(",
    "OwnRedis(",
    "WorkerProcess(",
    "subprocess.",
    "multiprocessing",
)


# The modules that take longest (a minute or more of one worker: rate-limit windows, load,
# browsers, restarts), started first: pytest-xdist hands out modules in collection order
# (`--dist loadfile`), and one of these begun last would keep a worker busy alone at the end.
HEAVY_FIRST = (
    "test_ratelimit_gateway.py",
    "test_pages_browser.py",
    "test_redis_reliability.py",
    "test_ops_browser.py",
    "test_export.py",
    "test_faults_writes.py",
    "test_redis_cluster.py",
    "test_idempotency.py",
    "test_open_breaking_signin.py",
    "test_mcp_inspector.py",
    "test_faults_upstream.py",
    "test_bad_input_mcp.py",
)


def pytest_collection_modifyitems(config, items):
    # A stable sort: the heavy modules first, every module's own tests in their order.
    items.sort(
        key=lambda item: HEAVY_FIRST.index(item.path.name) if item.path.name in HEAVY_FIRST else len(HEAVY_FIRST)
    )
    sources: dict[str, bool] = {}
    for item in items:
        path = str(item.path)
        if path not in sources:
            text = item.path.read_text()
            sources[path] = any(starter in text for starter in SERVER_STARTERS)
        if sources[path] or SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)
