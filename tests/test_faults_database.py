"""The database going away under a running gateway, and coming back.

Readiness answers 503 naming the database (liveness stays 200, so the process is not
killed for it). The first tool call after the cut is still served (its token check is
cached) and its audit row, which fails just after the answer, waits in the process's
backlog; from then on the gateway distrusts its cache, so MCP requests get a clear 503
with Retry-After instead of a crash. Everything recovers without a restart, and the kept
row is written. The gateway reaches the test database through a link that the test cuts:
a symlink on SQLite, a TCP proxy on PostgreSQL (tests.support.faults.DatabaseOutage), so
this runs on both engines.
"""

import time

import httpx
import pytest

from devtools.oauth_client import obtain_tokens
from tests.support.faults import PLANS_ARGS, LogWatch, call_tools, post_jsonrpc, start_fault_gateway
from tests.support.mcp import PASSWORDS, audit_rows

pytestmark = pytest.mark.sqlite


@pytest.fixture
def db_gateway(faults, database_outage, fault_sandbox, django_db_blocker):
    with django_db_blocker.unblock():
        server = start_fault_gateway(fault_sandbox, DATABASE_URL=database_outage.url)
    yield server
    server.stop()


def ready(gateway) -> httpx.Response:
    return httpx.get(gateway.url + "/health/ready", timeout=10)


def test_database_outage_is_named_by_readiness_and_recovers(faults, database_outage, db_gateway):
    token = obtain_tokens(db_gateway.url, "demo", PASSWORDS["demo"], "acme")["access_token"]
    url, pid = db_gateway.url + "/", db_gateway.proc.pid
    assert not call_tools(url, token, [("list_plans", PLANS_ARGS)])[0].is_error
    assert ready(db_gateway).status_code == 200

    database_outage.cut()
    watch = LogWatch(db_gateway)
    response = ready(db_gateway)
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"] and body["checks"]["redis"] == "ok"
    assert body["checks"]["database"].startswith("fail")
    assert httpx.get(db_gateway.url + "/health").status_code == 200  # liveness: keep the process

    call = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/call",
        "params": {"name": "list_plans", "arguments": PLANS_ARGS},
    }
    served = post_jsonrpc(url, call, token)  # the token check is cached: the call goes through
    assert served.status_code == 200 and not served.json()["result"].get("isError")
    # Its audit row, written just after the answer, fails and is kept.
    deadline = time.monotonic() + 10
    while "kept until the database answers again" not in watch.text():
        assert time.monotonic() < deadline, "the failed audit insert was not reported"
        time.sleep(0.05)
    refused = post_jsonrpc(url, call, token)  # the failed audit insert made the cache distrusted
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert refused.json() == {"error": "temporarily_unavailable", "error_description": "Try again shortly"}
    assert "Traceback" not in refused.text
    assert "database unavailable" in watch.text()  # the operator is told why

    # The OAuth server and the sign-in page say the same, never a bare 500.
    token_call = httpx.post(
        db_gateway.url + "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": "y"}
    )
    assert token_call.status_code == 503 and token_call.headers["retry-after"] == "5"
    assert token_call.json()["error"] == "temporarily_unavailable"
    sign_in = httpx.get(db_gateway.url + "/login")
    sign_in = httpx.post(
        db_gateway.url + "/login",
        cookies=sign_in.cookies,
        data={
            "csrfmiddlewaretoken": sign_in.cookies.get("csrftoken", ""),
            "username": "demo",
            "password": PASSWORDS["demo"],
        },
    )
    assert sign_in.status_code == 503 and "database unreachable" in sign_in.text
    assert "Traceback" not in token_call.text + sign_in.text

    database_outage.restore()
    deadline = time.monotonic() + 5
    while ready(db_gateway).status_code != 200:
        assert time.monotonic() < deadline, "readiness did not recover"
        time.sleep(0.1)
    assert not call_tools(url, token, [("list_plans", PLANS_ARGS)])[0].is_error
    assert db_gateway.proc.poll() is None and db_gateway.proc.pid == pid
    # The refused request never became a tool call; the three that ran have their rows,
    # the one made during the outage included.
    assert [(r.tool, r.outcome) for r in audit_rows(3)] == [("list_plans", "ok")] * 3
