"""A subscriber's connected apps (issue 14): what `/open/connections` lists, and how a
person — the subscriber, or an operator in the admin — ends one.

Ending a subscriber's connection (`end_connections`) does, in this order:

1. revoke it and every token issued through it (`accounts.connections.revoke_connections`):
   the next MCP request at `/open` gets `invalid_token`. This is the part that must hold;
   if it cannot be published to every process (`accounts.auth_epoch.EpochUnavailable`)
   nothing happens at all and the error is raised.
2. sign its Pelcro JWT out at Pelcro (`POST /auth/logout`, OPEN_API.md §2 and §5.1: Pelcro
   blacklists it) and delete it (`open.sign_out.sign_out`, after a refresh of it in
   flight): best effort, at most `sign_out.LOGOUT_TIMEOUT_SECONDS`, never undoing step 1.
   A failure is logged (never the JWT) and reported as `signed_out=False`; the JWT is then
   kept, unusable (the connection is revoked), and the beat sweep signs it out once Pelcro
   answers (`open.tasks.sweep_sign_ins`).

The subscriber-side marker in `Connection.revoked_by` is `subscriber:<username>`
(`by_subscriber`), shown as "you" to that subscriber (`Connection.revoked_by_display`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from accounts.connections import revoke_connections
from accounts.models import Connection, Subscriber
from mcp_bridge.models import ToolCall
from mcp_bridge.open.sign_out import Outcome, sign_out, signing_out_here

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
    # True: Pelcro blacklisted the JWT; False: the logout failed (kept for the sweep);
    # None: no JWT held, or one Pelcro refuses already (deleted without a request)
    signed_out: bool | None


# `Ended.signed_out` of each `sign_out` outcome.
_SIGNED_OUT = {Outcome.SIGNED_OUT: True, Outcome.FAILED: False, Outcome.DROPPED: None, Outcome.NONE: None}


def end_connections(connections: Iterable[Connection], *, by: str) -> list[Ended]:
    """Revoke `connections` and sign their Pelcro JWTs out (module docstring). Blocking
    (runs its own event loop): for sync views and the admin, not for async code.

    `by` is the `Connection.revoked_by` marker ("subscriber:<username>", "staff:<username>").
    Raises `accounts.auth_epoch.EpochUnavailable` with nothing revoked or signed out.
    """
    connections = list(connections)
    ids = [c.pk for c in connections]
    newly = set(Connection.objects.filter(pk__in=ids, revoked_at__isnull=True).values_list("pk", flat=True))
    with signing_out_here(ids):  # signed out right here, not by a queued task
        revoke_connections(connections, by=by)
    # All at once (the limiter still paces them): a person is waiting for the page.
    outcomes = sign_out(ids, concurrency=None)
    return [Ended(c.pk, c.pk in newly, _SIGNED_OUT[outcomes[c.pk]]) for c in connections]


def end_connection(connection: Connection, *, by: str) -> Ended:
    """`end_connections` for one connection."""
    return end_connections([connection], by=by)[0]
