"""Who is calling: the token verifier for the MCP endpoint.

`PrincipalTokenVerifier` implements the SDK's `TokenVerifier` over the DOT access tokens
(`accounts.tokens.credentials_for_token`: hashed lookup, expiry, audience, active
connection and membership; cached per process by `edge.credential_cache`). The
verified token (`runtime.context.PrincipalAccessToken`) carries the account-scoped
`Principal` and its `Credentials` (sites, API key); the tool runtime reads it once per
call into the handler's `CallContext`, and handlers never look tokens up themselves.
"""

from __future__ import annotations

import weakref

from django.conf import settings

from accounts.principal import Credentials
from accounts.tokens import checksum
from mcp_bridge.edge.credential_cache import CredentialCache
from mcp_bridge.orm import DatabaseHealth
from mcp_bridge.runtime.context import PrincipalAccessToken


class PrincipalTokenVerifier:
    """Verifies bearer tokens for one resource (this server's MCP URL)."""

    def __init__(self, resource: str, *, database: DatabaseHealth):
        self.resource = resource
        self.cache = CredentialCache(resource, database=database, max_age=settings.PELCRO_GATEWAY["AUTH_CACHE_SECONDS"])
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
