"""Fixtures and helpers for the MCP endpoint and tool tests.

- `mcp_sandbox` / `mcp_gateway`: this feature's own sandbox and gateway (session-scoped),
  with both rate limits out of reach so calling every tool twice never trips them; rate
  limits have their own tests. The sandbox's data changes as tools write to it, so
  tests read the truth from it (`truth`) instead of assuming seed values.
- `mcp_env`: the demo users and accounts committed for the gateway, with `token(...)`
  running the real OAuth flow (DCR, sign-in, consent, PKCE) for a user and an account.
- `mcp_session(url, token, mode)`: a real SDK client over Streamable HTTP.
- `audit_rows(count, **filters)` / `audit_rows_async(...)`: the audit rows, once written.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from devtools.oauth_client import obtain_tokens
from devtools.servers import ServerProcess
from tests.support.sandbox import DEMO


def audit_rows(count: int = 0, *, timeout: float = 10.0, **filters) -> list:
    """The audit rows matching `filters`, oldest first, once at least `count` are written.

    A row is committed before its call's answer, but a call may still be running when the
    test reads (a client that gave up, a gate's answer), so this waits for `count` rows.
    Then it reads once more a little later, so that a row written twice still shows in the
    test's exact count."""
    from mcp_bridge.models import ToolCall

    def read() -> list:
        return list(ToolCall.objects.filter(**filters).order_by("created_at", "id"))

    deadline = time.monotonic() + timeout
    while len(read()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    return read()


async def audit_rows_async(count: int = 0, **filters) -> list:
    """`audit_rows` from async code."""
    from mcp_bridge.orm import run_db

    return await run_db(audit_rows, count, **filters)


PASSWORDS = {user["username"]: user["password"] for user in DEMO["users"]}
SITES = {account["slug"]: [site["site_id"] for site in account["sites"]] for account in DEMO["accounts"]}
# The two protocol eras: 2026-07-28 (stateless, no handshake) and the handshake era
# (the SDK's "legacy" mode negotiates 2025-11-25).
ERAS = ["2026-07-28", "legacy"]
OUT_OF_REACH = "1000000"
# The Core API tools this feature serves (the export tools of the ops feature come on top).
CORE_TOOLS = {
    "get_account",
    "list_customers",
    "get_customer",
    "create_customer",
    "update_customer",
    "delete_customer",
    "list_subscriptions",
    "get_subscription",
    "create_subscription",
    "cancel_subscription",
    "list_invoices",
    "get_invoice",
    "create_invoice",
    "update_invoice",
    "pay_invoice_offline",
    "void_invoice",
    "mark_invoice_uncollectible",
    "apply_invoice_balance",
    "list_plans",
    "get_plan",
    "list_coupons",
    "get_coupon",
    "list_charges",
    "get_charge",
    "create_offline_charge",
    "list_refunds",
    "cancel_refunds",
    "list_addresses",
    "get_address",
    "create_address",
    "update_address",
    "delete_address",
}
WRITE_TOOLS = {
    "create_customer",
    "update_customer",
    "delete_customer",
    "create_subscription",
    "cancel_subscription",
    "create_invoice",
    "update_invoice",
    "pay_invoice_offline",
    "void_invoice",
    "mark_invoice_uncollectible",
    "apply_invoice_balance",
    "create_offline_charge",
    "cancel_refunds",
    "create_address",
    "update_address",
    "delete_address",
}


@dataclass
class McpEnv:
    gateway: ServerProcess
    sandbox: ServerProcess

    @property
    def url(self) -> str:
        return self.gateway.url + "/"

    def token(
        self,
        account: str = "acme",
        access: str = "read_write",
        username: str | None = None,
        confirm_writes: bool = True,
    ) -> str:
        """An access token from the real OAuth flow for `account` (its first member by default).
        `confirm_writes=False`: the owner turned off confirmations at consent (calls `waived`)."""
        username = username or {"acme": "demo", "other": "demo", "globex": "alice"}[account]
        tokens = obtain_tokens(
            self.gateway.url, username, PASSWORDS[username], account, access=access, confirm_writes=confirm_writes
        )
        return tokens["access_token"]

    def post(self, body, token: str | None, *, version: str | None = "2025-06-18", **headers) -> httpx.Response:
        """One raw JSON-RPC POST to the MCP endpoint."""
        base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        if token is not None:
            base["Authorization"] = f"Bearer {token}"
        if version is not None:
            base["MCP-Protocol-Version"] = version
        base.update(headers)
        content = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return httpx.post(self.url, content=content, headers=base, timeout=30)


@contextlib.asynccontextmanager
async def mcp_session(url: str, token: str, mode: str, **options) -> AsyncIterator[Client]:
    """A connected SDK client (`mode`: "2026-07-28", "legacy" or "auto") with a bearer token;
    `options` go to `mcp.Client` (e.g. `elicitation_callback=...`)."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, **options) as client,
    ):
        yield client
