"""The Pelcro JWT of an Open connection: used, refreshed before it expires, and the end of
the connection when Pelcro refuses it (OPEN_API.md §2, DESIGN.md "The Open server").

`SubscriberCaller.call` is how everything on the `/open` side reaches the Open API as the
subscriber:

1. it reads the connection's JWT (`accounts.models.SubscriberCredential`, decrypted);
2. if the JWT is close to its expiry (`client.refresh_due`), it refreshes it through
   `POST /customer/refresh` and stores the new one (Pelcro blacklists the old one), one
   refresh per connection at a time (a Redis lock), so concurrent requests never refresh
   the same JWT twice;
3. it makes the call; a fresher JWT in the answer (`data.auth_token` of a customer
   resource) is stored only when the one used is due for refresh (then it saves a refresh);
   otherwise it is dropped: every customer resource answer carries a new JWT, earlier ones
   stay valid (OPEN_API.md §3), and storing each would make every read a database write
   (an encrypted row updated under a lock, per call);
4. when Pelcro answers 401/403 for the JWT (`client.CustomerTokenRejected`), the stored
   JWT is read again: if another request replaced it meanwhile (a concurrent refresh
   blacklisted the one this request used), the call is made once more with the new one —
   a 401/403 means nothing was processed, so this never repeats a write. Otherwise the
   connection is revoked (`revoked_by="pelcro"`, with its tokens) and `CustomerTokenRejected`
   is raised, so the next MCP request gets `invalid_token` and the app signs in again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.connections import revoke_connection
from accounts.models import Connection, SubscriberCredential
from mcp_bridge.open.client import CustomerTokenRejected, OpenAPIClient, OpenAPIResponse, jwt_times, refresh_due
from mcp_bridge.orm import run_db
from mcp_bridge.upstream.gate import Budget
from mcp_bridge.upstream.redis_clients import redis_for_loop

# Longer than one refresh can take (upstream timeout with its retries).
REFRESH_LOCK_SECONDS = 40


class ConnectionEnded(CustomerTokenRejected):
    """The connection has no usable Pelcro sign-in any more (revoked, or refused by Pelcro)."""


@dataclass(frozen=True)
class SubscriberCaller:
    """Calls the Open API as the subscriber of one connection, on its site."""

    client: OpenAPIClient
    connection_id: int
    site_id: int
    account_id: int  # the site's gateway account: the limiter's key
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # aware UTC; tests move it
    rate_limit: int | None = None  # the account's requests per window (None: the default)
    budgets: tuple[Budget, ...] = ()  # the limiter budgets its calls count against (limiter.open_budgets)

    async def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json: dict[str, Any] | None = None
    ) -> OpenAPIResponse:
        """One protected Open API call as the subscriber (module docstring). Raises
        `ConnectionEnded` when the sign-in is over, else as `OpenAPIClient.request`."""
        jwt = await self.current_jwt()
        for attempt in (1, 2):
            try:
                response = await self.client.request(
                    method,
                    path,
                    account_id=self.account_id,
                    site_id=self.site_id,
                    jwt=jwt,
                    params=params,
                    json=json,
                    rate_limit=self.rate_limit,
                    budgets=self.budgets,
                )
            except CustomerTokenRejected as refused:
                stored = await run_db(_stored_jwt, self.connection_id)
                if attempt == 1 and stored is not None and stored != jwt:
                    jwt = stored  # replaced meanwhile (a concurrent refresh): nothing was processed
                    continue
                await self.end(refused)
            if response.token is not None and response.token != jwt and refresh_due(*jwt_times(jwt), self.now()):
                await self._keep_if_fresher(response.token)
            return response
        raise AssertionError("unreachable")

    async def current_jwt(self) -> str:
        """The connection's JWT, refreshed first if it is due (`client.refresh_due`)."""
        jwt = await run_db(_stored_jwt, self.connection_id)
        if jwt is None:
            raise ConnectionEnded("This connection has ended; sign in again.", 401)
        expires, issued = jwt_times(jwt)
        if not refresh_due(expires, issued, self.now()):
            return jwt
        # Pelcro blacklists the JWT a refresh replaces, so two refreshes of one JWT would end
        # the connection: one refresh at a time per connection, across processes.
        async with self._refresh_lock():
            stored = await run_db(_stored_jwt, self.connection_id)
            if stored is None:
                raise ConnectionEnded("This connection has ended; sign in again.", 401)
            if stored != jwt:
                return stored  # refreshed by another request while this one waited
            try:
                signed_in = await self.client.refresh(
                    account_id=self.account_id,
                    site_id=self.site_id,
                    jwt=jwt,
                    rate_limit=self.rate_limit,
                    budgets=self.budgets,
                )
            except CustomerTokenRejected as refused:
                await self.end(refused)
            await run_db(_store, self.connection_id, signed_in.jwt, signed_in.expires_at, refreshed=True)
            return signed_in.jwt

    def _refresh_lock(self):
        """A Redis lock (redis-py) on this connection's refresh; it expires by itself after
        REFRESH_LOCK_SECONDS should its holder die. Redis down: the lock raises, as the
        shared limiter would refuse the call anyway (fail closed)."""
        return redis_for_loop().client.lock(
            refresh_lock_name(self.connection_id),
            timeout=REFRESH_LOCK_SECONDS,
            blocking_timeout=REFRESH_LOCK_SECONDS + 5,
        )

    async def end(self, refused: CustomerTokenRejected):
        """Revoke the connection (Pelcro ended the sign-in) and raise `ConnectionEnded`."""
        await run_db(_end, self.connection_id)
        raise ConnectionEnded(
            f"The publication ended this sign-in ({refused.message}); the connection is closed. "
            "Sign in again to reconnect.",
            refused.status,
        ) from None

    async def _keep_if_fresher(self, token: str) -> None:
        expires, _ = jwt_times(token)
        await run_db(_store, self.connection_id, token, expires, refreshed=False)


def refresh_lock_name(connection_id: int) -> str:
    """The Redis key of the lock held while a connection's JWT is refreshed (or taken away
    to be signed out, `mcp_bridge.open.connections`)."""
    return f"{settings.REDIS_KEY_PREFIX}open-jwt-refresh:{connection_id}"


def _stored_jwt(connection_id: int) -> str | None:
    credential = SubscriberCredential.objects.filter(connection_id=connection_id, connection__revoked_at=None).first()
    return credential.get_jwt() if credential is not None else None


def _store(connection_id: int, jwt: str, expires_at: datetime, *, refreshed: bool) -> None:
    """Store `jwt` unless the stored one lives at least as long (a concurrent request's)."""
    with transaction.atomic():
        credential = SubscriberCredential.objects.select_for_update().filter(connection_id=connection_id).first()
        if credential is None or (not refreshed and credential.expires_at >= expires_at):
            return
        credential.set_jwt(jwt, expires_at)
        update = ["jwt_encrypted", "expires_at", "updated_at"]
        if refreshed:
            credential.refreshed_at = timezone.now()
            update.append("refreshed_at")
        credential.save(update_fields=update)


def _end(connection_id: int) -> None:
    with transaction.atomic():
        connection = Connection.objects.filter(pk=connection_id).first()
        if connection is not None:
            revoke_connection(connection, by="pelcro")
