"""The baseline for bench/overhead.py: a bare `mcp` `MCPServer` with one tool.

Same SDK, same transport settings as the gateway (stateless Streamable HTTP, JSON
responses, protocol 2026-07-28 and the handshake versions), and a `get_customer` tool
that makes the same single Core API request the gateway's `get_customer` makes, with an
httpx client configured like the gateway's; and a `get_my_profile` tool that makes the
Open server's `get_my_profile` request (Open API `POST /customer` with a subscriber's JWT).
Nothing else: no token, no site check, no limiter, no audit row. Serve it with
`uvicorn bench.bare_server:app`; the upstreams and credentials come from BARE_UPSTREAM_URL
and BARE_API_KEY, BARE_OPEN_URL and BARE_OPEN_JWT.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

UPSTREAM = os.environ.get("BARE_UPSTREAM_URL", "http://127.0.0.1:8100/api/v1/core").rstrip("/")
API_KEY = os.environ.get("BARE_API_KEY", "")
OPEN_UPSTREAM = os.environ.get("BARE_OPEN_URL", "http://127.0.0.1:8100/api/v1/sdk").rstrip("/")
OPEN_JWT = os.environ.get("BARE_OPEN_JWT", "")
OPEN_SITE = 14

server = MCPServer(name="bare", instructions="Baseline server for the gateway overhead benchmark.")
_http: httpx.AsyncClient | None = None


def _client() -> httpx.AsyncClient:
    # Created on first use, inside the server's event loop (httpx pools are loop-bound).
    global _http
    if _http is None:
        _http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=3.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"Accept": "application/json", "User-Agent": "pelcro-bench-bare"},
        )
    return _http


@server.tool()
async def get_customer(site_id: int, customer_id: int) -> dict[str, Any]:
    """Get one customer by id (one Core API GET)."""
    response = await _client().get(
        f"{UPSTREAM}/customers/{customer_id}",
        params={"site_id": site_id},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    response.raise_for_status()
    return response.json()["data"]


@server.tool()
async def get_my_profile() -> dict[str, Any]:
    """The subscriber's own profile (one Open API POST /customer with their JWT)."""
    response = await _client().post(
        f"{OPEN_UPSTREAM}/customer", params={"site_id": OPEN_SITE}, headers={"Authorization": f"Bearer {OPEN_JWT}"}
    )
    response.raise_for_status()
    return {k: v for k, v in response.json()["data"].items() if k not in ("auth_token", "token")}


mcp_app = server.streamable_http_app(
    streamable_http_path="/",
    stateless_http=True,
    json_response=True,
    transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
)


async def app(scope, receive, send):
    """The MCP app, plus `GET /health` for the benchmark's readiness check."""
    if scope["type"] == "http" and scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await mcp_app(scope, receive, send)
