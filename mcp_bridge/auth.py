"""Who is calling: the token verifier for the MCP endpoint and the principal accessor.

`PrincipalTokenVerifier` implements the SDK's `TokenVerifier` over the DOT access tokens
(`accounts.tokens.credentials_for_token`: hashed lookup, expiry, audience, active
connection and membership; cached per process by `mcp_bridge.credential_cache`). The
verified token carries the account-scoped `Principal` and its `Credentials` (sites, API
key); tool handlers read them with `current_principal()` / `current_credentials()` and
never look tokens up themselves.
"""

from __future__ import annotations

import weakref

from django.conf import settings
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from pydantic import ConfigDict, Field

from accounts.principal import Credentials, Principal
from accounts.tokens import checksum
from mcp_bridge.credential_cache import CredentialCache


class PrincipalAccessToken(AccessToken):
    """The SDK's access-token info plus the principal it stands for."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    principal: Principal
    credentials: Credentials | None = Field(default=None, repr=False)


class PrincipalTokenVerifier:
    """Verifies bearer tokens for one resource (this server's MCP URL)."""

    def __init__(self, resource: str):
        self.resource = resource
        self.cache = CredentialCache(resource, max_age=settings.PELCRO_GATEWAY["AUTH_CACHE_SECONDS"])
        # The SDK's token object for each cached check, built once (it is immutable).
        self._issued: weakref.WeakKeyDictionary[Credentials, PrincipalAccessToken] = weakref.WeakKeyDictionary()

    async def verify_token(self, token: str) -> PrincipalAccessToken | None:
        """The token's info with its principal, or None if the token must be refused."""
        if not token or len(token) > 512:
            return None
        # The check also records the connection's last use (at most once a minute).
        credentials = await self.cache.credentials(token)
        if credentials is None:
            return None
        issued = self._issued.get(credentials)
        if issued is None:
            issued = self._issued[credentials] = self._token_info(token, credentials)
        return issued

    def _token_info(self, token: str, credentials: Credentials) -> PrincipalAccessToken:
        principal = credentials.principal
        return PrincipalAccessToken(
            # The raw token is not kept: this object may end up in a repr or a log.
            token=checksum(token)[:16],
            client_id=principal.client_id,
            scopes=sorted(principal.scopes),
            expires_at=int(principal.expires_at.timestamp()),
            resource=self.resource,
            subject=str(principal.user_id),
            principal=principal,
            credentials=credentials,
        )


def current_principal() -> Principal:
    """The principal of the MCP request being handled (raises if there is none)."""
    token = get_access_token()
    if not isinstance(token, PrincipalAccessToken):
        raise RuntimeError("no authenticated principal for this request")
    return token.principal


def current_credentials() -> Credentials:
    """The credentials (sites, API key) of the MCP request being handled."""
    token = get_access_token()
    if not isinstance(token, PrincipalAccessToken) or token.credentials is None:
        raise RuntimeError("no verified credentials for this request")
    return token.credentials
