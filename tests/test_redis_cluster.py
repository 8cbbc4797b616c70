"""The limiter, the auth epoch and the counters on a real Redis Cluster (issue 12 item 2).

A 3-master cluster (Debian's redis-server in cluster mode on free loopback ports, joined by
`redis-cli --cluster create`) serves the gateway with `REDIS_CLUSTER=1`: the limiter's
contention test (two processes racing for one account's slots) and tool calls through a
gateway whose every Redis use (limiter scripts, auth epoch, login and registration
counters, readiness) goes to the cluster. Celery keeps the single shared Redis (kombu has
no cluster transport).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random

import httpx
import pytest
import redis as redis_lib
from django.conf import settings

from accounts.auth_epoch import epoch_key
from accounts.models import Account
from devtools.oauth_client import obtain_tokens
from tests.support.mcp import PASSWORDS, mcp_session
from tests.support.ratelimit import StartLine, hammer_process, max_in_window
from tests.support.redis_servers import RedisClusterServers
from tests.support.servers import start_gateway

FAST = {"limit": 10, "window": 2.0, "margin": 0, "wait_budget": 0.0, "background_share": 0.5}


@pytest.fixture(scope="module")
def cluster():
    servers = RedisClusterServers().start()
    yield servers
    servers.stop()


def account_keys_by_node(cluster: RedisClusterServers, account_id: int) -> dict[int, list[bytes]]:
    """The account's limiter keys, by the port of the master that holds them."""
    found: dict[int, list[bytes]] = {}
    for port in cluster.ports:
        client = redis_lib.Redis(port=port)
        keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}rl:{{{account_id}}}:*"))
        client.close()
        if keys:
            found[port] = sorted(keys)
    return found


def test_two_processes_share_the_limit_on_a_cluster(cluster, monkeypatch):
    """The contention test of test_ratelimit_script.py, on the cluster: never more than the
    cap in any rolling window, the budget used, every key of the account on one node."""
    account_id = random.randint(10**8, 10**9)
    monkeypatch.setenv("REDIS_URL", cluster.url)  # the spawned processes read their settings
    monkeypatch.setenv("REDIS_CLUSTER", "1")
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_line = StartLine(ctx)  # the race starts once both processes are up
    procs = [ctx.Process(target=hammer_process, args=(account_id, FAST, start_line, results)) for _ in range(2)]
    for proc in procs:
        proc.start()
    start_line.release(procs, 3 * FAST["window"])
    grants_per_process = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
        assert proc.exitcode == 0
    assert all(grants_per_process), "both processes got slots"
    grants = sorted(t for grants in grants_per_process for t in grants)
    assert max_in_window(grants, FAST["window"]) == FAST["limit"]
    in_three_windows = [t for t in grants if t < grants[0] + 3 * FAST["window"]]
    assert len(in_three_windows) >= 0.95 * 3 * FAST["limit"]

    by_node = account_keys_by_node(cluster, account_id)
    assert len(by_node) == 1, by_node
    names = {key.rsplit(b":", 1)[1] for key in next(iter(by_node.values()))}
    assert {b"log", b"usage", b"gen"} <= names


@pytest.fixture
def cluster_gateway(cluster, sandbox_server, django_db_blocker, demo_users):
    with django_db_blocker.unblock():
        server = start_gateway(
            sandbox_server,
            REDIS_URL=cluster.url,
            REDIS_CLUSTER="1",
            CELERY_BROKER_URL=settings.REDIS_URL,
            CELERY_RESULT_BACKEND=settings.REDIS_URL,
        )
    yield server
    server.stop()


def test_tool_calls_through_a_gateway_on_a_cluster(cluster, cluster_gateway, demo_users):
    gateway = cluster_gateway
    assert httpx.get(gateway.url + "/health/ready").json()["checks"]["redis"] == "ok"
    # Registration and sign-in count on the cluster (accounts.throttle); the token's
    # creation changes the auth epoch there.
    tokens = obtain_tokens(gateway.url, "demo", PASSWORDS["demo"], "acme")

    async def calls(count: int) -> list:
        async with mcp_session(gateway.url + "/", tokens["access_token"], "2026-07-28") as client:
            return [await client.call_tool("list_plans", {"site_id": 14, "per_page": 1}) for _ in range(count)]

    results = asyncio.run(calls(3))
    assert [r.is_error for r in results] == [False] * 3, [r.structured_content for r in results]

    client = cluster.client()
    try:
        assert client.get(epoch_key()) is not None
        counters = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}dcr:ip:*"))
        assert counters, "the registration counter lives on the cluster"
    finally:
        client.close()

    acme = Account.objects.get(slug="acme")
    by_node = account_keys_by_node(cluster, acme.id)
    assert len(by_node) == 1, by_node  # one slot: every script runs on one node
    assert sum(1 for key in next(iter(by_node.values())) if key.endswith(b":log")) == 1

    # RFC 7009 revocation changes the epoch on the cluster: the next call is refused.
    response = httpx.post(
        gateway.url + "/oauth/revoke", data={"token": tokens["access_token"], "client_id": tokens["client_id"]}
    )
    assert response.status_code == 200
    refused = httpx.post(
        gateway.url + "/",
        headers={
            "Authorization": f"Bearer {tokens['access_token']}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
    )
    assert refused.status_code == 401


def test_an_idempotent_write_is_sent_once_on_a_cluster(cluster, cluster_gateway, sandbox_server, demo_users):
    """The idempotency store's scripts (one key each) run on the cluster: a repeat with the
    same key is answered from it, with no second upstream request."""
    from accounts.models import Connection
    from tests.support.faults import new_customer_args
    from tests.support.sandbox import SandboxClient

    token = obtain_tokens(cluster_gateway.url, "demo", PASSWORDS["demo"], "acme")["access_token"]
    Connection.objects.update(confirm_writes=False)
    sandbox = SandboxClient(sandbox_server)
    try:
        customer = sandbox.ok("POST", "/customers", 201, site_id=14, json=new_customer_args("cluster"))["id"]
        since = sandbox.last_seq()
        arguments = {
            "site_id": 14,
            "customer_id": customer,
            "amount": 700,
            "currency": "usd",
            "reference": "CLUSTER-1",
            "idempotency_key": "cluster-key-0001",
        }

        async def twice():
            async with mcp_session(cluster_gateway.url + "/", token, "2026-07-28") as client:
                return [await client.call_tool("create_offline_charge", arguments) for _ in range(2)]

        first, again = asyncio.run(twice())
        posts = [e for e in sandbox.log(since) if e["method"] == "POST" and e["path"].endswith("/charges")]
    finally:
        sandbox.close()
    assert not first.is_error and first.structured_content == again.structured_content
    assert len(posts) == 1
    client = cluster.client()
    try:
        [key] = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}idem:*cluster-key-0001"))
        assert 0 < client.ttl(key) <= 24 * 3600
    finally:
        client.close()
