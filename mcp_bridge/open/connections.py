"""A subscriber's connected apps (issue 14): what `/open/connections` lists, and how a
person — the subscriber, or an operator in the admin — ends one.

Ending a subscriber's connection (`end_connections`) does, in this order:

1. revoke it and every token issued through it (`accounts.connections.revoke_connections`):
   the next MCP request at `/open` gets `invalid_token`. This is the part that must hold;
   if it cannot be published to every process (`accounts.auth_epoch.EpochUnavailable`)
   nothing happens at all and the error is raised.
2. take the connection's Pelcro JWT away (`SubscriberCredential`, deleted), under the lock
   that a refresh of that JWT holds (`credentials.refresh_lock_name`), so a refresh in
   flight finishes first and the JWT taken is the newest;
3. sign that JWT out at Pelcro (`POST /auth/logout`, OPEN_API.md §2 and §5.1), which
   blacklists it: best effort, bounded by LOGOUT_TIMEOUT_SECONDS, never undoing step 1.
   A failure is logged (never the JWT) and reported as `signed_out=False`; the JWT then
   stays valid at Pelcro until its own expiry, but the gateway no longer holds it.

The subscriber-side marker in `Connection.revoked_by` is `subscriber:<username>`
(`by_subscriber`), shown as "you" to that subscriber (`Connection.revoked_by_display`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from django.db import transaction
from django.db.models import QuerySet

from accounts.connections import revoke_connections
from accounts.models import Connection, Subscriber, SubscriberCredential
from mcp_bridge.models import ToolCall
from mcp_bridge.open.client import OpenAPIClient, build_client
from mcp_bridge.open.credentials import REFRESH_LOCK_SECONDS, refresh_lock_name
from mcp_bridge.upstream.errors import UpstreamError
from mcp_bridge.upstream.redis_clients import close_redis_for_loop, sync_redis

logger = logging.getLogger(__name__)

# How long the page (or the admin) waits for Pelcro's logout, all connections together.
LOGOUT_TIMEOUT_SECONDS = 5.0
# How long ending waits for a refresh of the same JWT in flight before taking it anyway.
REFRESH_WAIT_SECONDS = 5.0
# Tool calls shown under each app on the subscriber's page, newest first.
RECENT_CALLS = 10


def by_subscriber(subscriber: Subscriber) -> str:
    """The `Connection.revoked_by` of a revoke by the subscriber themselves."""
    return f"subscriber:{subscriber.user.get_username()}"


def connections_of(subscriber: Subscriber) -> QuerySet[Connection]:
    """Every connection of `subscriber` (their own user record: one site, one customer),
    active and revoked, newest first. Never anyone else's: a subscriber's user record is
    unique per site + customer id (`accounts.models.Subscriber`)."""
    return (
        Connection.objects.filter(user_id=subscriber.user_id)
        .select_related("application", "account")
        .order_by("-created_at")
    )


def recent_calls(connections: Iterable[Connection], limit: int = RECENT_CALLS) -> dict[int, list[ToolCall]]:
    """{connection id: its latest `limit` audited tool calls, newest first}."""
    calls: dict[int, list[ToolCall]] = {}
    for connection in connections:  # a handful per subscriber; each read uses the (connection, -created_at) index
        calls[connection.pk] = list(
            ToolCall.objects.filter(connection_id=connection.pk).order_by("-created_at", "-id")[:limit]
        )
    return calls


@dataclass(frozen=True)
class Ended:
    """What ending one connection did."""

    connection_id: int
    revoked: bool  # False: it was already revoked (its leftover JWT, if any, still signed out)
    signed_out: bool | None  # True: Pelcro blacklisted the JWT; False: the logout failed; None: no JWT held


def end_connections(connections: Iterable[Connection], *, by: str) -> list[Ended]:
    """Revoke `connections` and sign their Pelcro JWTs out (module docstring). Blocking
    (runs its own event loop): for sync views and the admin, not for async code.

    `by` is the `Connection.revoked_by` marker ("subscriber:<username>", "staff:<username>").
    Raises `accounts.auth_epoch.EpochUnavailable` with nothing revoked or signed out.
    """
    connections = list(connections)
    newly = set(
        Connection.objects.filter(pk__in=[c.pk for c in connections], revoked_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    revoke_connections(connections, by=by)
    sites = dict(
        Subscriber.objects.filter(user_id__in={c.user_id for c in connections}).values_list("user_id", "site__site_id")
    )
    taken = [
        _Held(c.pk, c.account_id, sites[c.user_id], jwt)
        for c in connections
        if (jwt := _take_jwt(c.pk)) is not None and c.user_id in sites
    ]
    outcomes = asyncio.run(_sign_out(taken)) if taken else {}
    return [Ended(c.pk, c.pk in newly, outcomes.get(c.pk)) for c in connections]


def end_connection(connection: Connection, *, by: str) -> Ended:
    """`end_connections` for one connection."""
    return end_connections([connection], by=by)[0]


def _take_jwt(connection_id: int) -> str | None:
    """Delete the connection's stored JWT and return it (None if there was none, or it
    cannot be decrypted any more), after any refresh of it in flight."""
    lock = sync_redis().lock(
        refresh_lock_name(connection_id), timeout=REFRESH_LOCK_SECONDS, blocking_timeout=REFRESH_WAIT_SECONDS
    )
    try:
        locked = lock.acquire()
    except redis.RedisError:
        locked = False  # the revoke already holds; taking the JWT must not depend on Redis
    try:
        with transaction.atomic():
            credential = SubscriberCredential.objects.select_for_update().filter(connection_id=connection_id).first()
            if credential is None:
                return None
            try:
                jwt = credential.get_jwt()
            except ValueError:
                jwt = None  # encrypted with a retired key: nothing to sign out with
            credential.delete()
            return jwt
    finally:
        if locked:
            with contextlib.suppress(redis.RedisError):  # it expires by itself after REFRESH_LOCK_SECONDS
                lock.release()


@dataclass(frozen=True)
class _Held:
    """A JWT taken from a connection, with what its logout needs."""

    connection_id: int
    account_id: int  # the limiter's key
    site_id: int
    jwt: str = field(repr=False)


async def _sign_out(taken: list[_Held]) -> dict[int, bool]:
    """Log every JWT out at Pelcro at once; {connection id: whether it worked}."""
    client = build_client()
    try:
        results = await asyncio.gather(*(_logout(client, held) for held in taken))
    finally:
        await client.aclose()
        await close_redis_for_loop()
    return {held.connection_id: ok for held, ok in zip(taken, results, strict=True)}


async def _logout(client: OpenAPIClient, held: _Held) -> bool:
    try:
        async with asyncio.timeout(LOGOUT_TIMEOUT_SECONDS):
            await client.logout(account_id=held.account_id, site_id=held.site_id, jwt=held.jwt)
    except TimeoutError:
        reason = f"no answer within {LOGOUT_TIMEOUT_SECONDS:g} s"
    except UpstreamError as failed:
        reason = f"{type(failed).__name__}: {failed.message}"
    except Exception as failed:  # best effort: nothing here may turn a done revoke into an error page
        reason = type(failed).__name__
    else:
        return True
    # Never the JWT: only which connection and why.
    logger.warning(
        "connection %s: Pelcro logout failed (%s); its JWT stays valid there until it expires",
        held.connection_id,
        reason,
    )
    return False
