"""Who is calling: the token verifier for the MCP endpoint and the principal accessor.

`PrincipalTokenVerifier` implements the SDK's `TokenVerifier` over the DOT access tokens
(`accounts.tokens.principal_for_token`: hashed lookup, expiry, audience, active
connection and membership). The verified token carries the account-scoped `Principal`;
tool handlers read it with `current_principal()` and never look tokens up themselves.
"""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from pydantic import ConfigDict

from accounts.principal import Principal
from accounts.tokens import checksum, principal_for_token
from mcp_bridge.orm import run_db


class PrincipalAccessToken(AccessToken):
    """The SDK's access-token info plus the principal it stands for."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    principal: Principal


class PrincipalTokenVerifier:
    """Verifies bearer tokens for one resource (this server's MCP URL)."""

    def __init__(self, resource: str):
        self.resource = resource

    async def verify_token(self, token: str) -> PrincipalAccessToken | None:
        """The token's info with its principal, or None if the token must be refused."""
        if not token or len(token) > 512:
            return None
        # principal_for_token also records the connection's last use (throttled).
        principal = await run_db(principal_for_token, token, self.resource)
        if principal is None:
            return None
        return PrincipalAccessToken(
            # The raw token is not kept: this object may end up in a repr or a log.
            token=checksum(token)[:16],
            client_id=principal.client_id,
            scopes=sorted(principal.scopes),
            expires_at=int(principal.expires_at.timestamp()),
            resource=self.resource,
            subject=str(principal.user_id),
            principal=principal,
        )


def current_principal() -> Principal:
    """The principal of the MCP request being handled (raises if there is none)."""
    token = get_access_token()
    if not isinstance(token, PrincipalAccessToken):
        raise RuntimeError("no authenticated principal for this request")
    return token.principal
