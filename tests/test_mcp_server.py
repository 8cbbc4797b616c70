"""The server's own guarantees, in process: a crashing tool answers `internal_error` (its
message never leaks), and still leaves its audit row."""

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

from accounts.models import Account
from accounts.principal import Credentials, Principal
from mcp_bridge.runtime.context import PrincipalAccessToken
from mcp_bridge.runtime.registry import ToolDef
from mcp_bridge.runtime.schemas import SiteInput, ToolFailure
from mcp_bridge.runtime.server import GatewayMCPServer
from tests.support.mcp import audit_rows_async


async def explode(call, args):
    raise RuntimeError("secret internals: dsn=postgres://user:pw@db/prod")


BROKEN = ToolDef(
    name="broken_tool",
    title="Broken",
    description="Always fails.",
    input_model=SiteInput,
    output_model=ToolFailure,
    handler=explode,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=False,
    args_model=SiteInput,
)


@contextlib.contextmanager
def as_principal_context(principal: Principal):
    """Calls made inside run as `principal` (what the bearer gate sets for a request)."""
    token = PrincipalAccessToken(
        token="t",
        client_id=principal.client_id,
        scopes=sorted(principal.scopes),
        principal=principal,
        credentials=Credentials(principal, {14: "Crash Daily"}),
    )
    reset = auth_context_var.set(AuthenticatedUser(token))
    try:
        yield
    finally:
        auth_context_var.reset(reset)


@pytest.fixture
def as_principal(transactional_db):
    account = Account.objects.create(name="Crash Co", slug="crash")
    principal = Principal(
        user_id=None,
        username="tester",
        account_id=account.pk,
        account_slug="crash",
        connection_id=None,
        client_id="cid",
        client_name="Unit",
        scopes=frozenset({"read"}),
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    with as_principal_context(principal):
        yield principal


async def test_a_crashing_tool_answers_internal_error_and_is_audited(as_principal, caplog):
    server = GatewayMCPServer({"broken_tool": BROKEN}, name="t")
    result = await server.call_tool("broken_tool", {"site_id": 14})
    assert result.is_error
    assert result.structured_content["error"] == "internal_error"
    assert "secret internals" not in result.content[0].text and "postgres" not in str(result.structured_content)
    assert "secret internals" in caplog.text  # the traceback is in the server log
    [row] = await audit_rows_async(1)
    assert (row.tool, row.outcome, row.site_id, row.account_slug) == ("broken_tool", "error", 14, "crash")
    assert "failed inside the gateway" in row.error_message
