"""No subscriber's Pelcro sign-in outlives its connection (issue 14).

An Open connection holds its subscriber's Pelcro JWT (`accounts.models.SubscriberCredential`).
However the connection ends — the subscriber or an operator (`open.connections`), the app
revoking its own token (RFC 7009 `/oauth/revoke`), a membership change, the site's
subscriber access turned off, Pelcro refusing the JWT (`revoked_by = "pelcro"`), or the
sweep finding it dead (`accounts.connections.end_dead_connections`) — its JWT is signed out
at Pelcro (`POST /auth/logout`, OPEN_API.md §2 and §5.1: Pelcro blacklists it) and deleted.

`sign_out(connection_ids)` does that for revoked connections (an active one is never
touched), each under the lock a refresh of its JWT holds (`credentials.refresh_lock_name`),
so the JWT read is not one a refresh in flight is replacing:

- a JWT Pelcro refuses already is deleted without a request: the connection ended because
  Pelcro refused it (`revoked_by = "pelcro"`), it is past its `exp`, or it can no longer be
  decrypted (encrypted with a retired key);
- any other is logged out through the shared limiter (its account's limit and its site's
  budget, `limiter.open_budgets`; background calls use the background share), at most
  LOGOUT_TIMEOUT_SECONDS each, LOGOUT_CONCURRENCY at a time, and deleted once Pelcro has
  taken it (an answer of 401/403 for it counts: it is dead there already);
- a logout that fails (Pelcro down or slow, the limiter's refusal) keeps the JWT for the
  next sweep and is logged, never with the JWT. When the limiter refuses one, the rest of
  that account's are left for the next run without a request;
- a JWT is deleted only if it is still the one signed out: should a refresh that started
  before the revoke store a newer one, the next sweep signs that one out.

When it runs:

- at once: every revoke in `accounts` sends `accounts.connections.connections_revoked`;
  `tasks.queue_sign_out` (connected in `McpBridgeConfig.ready`) queues
  `tasks.sign_out_connections` for those holding a JWT, on commit. The revoke waits only for that message to be handed to
  the broker (no retry), never for Pelcro; if it cannot be, the sweep does it;
- `open.connections.end_connections` (the subscriber's page, the admin) calls `sign_out`
  itself, to say whether it worked, and queues nothing for those connections;
- every OPEN_JWT_SWEEP_SECONDS (beat, `tasks.sweep_sign_ins`): `sweep` ends the connections
  that can no longer be used (`end_dead_connections`) and signs out up to
  OPEN_JWT_SWEEP_BATCH revoked connections' JWTs, the least recently tried first: what the
  prompt path missed (queue down, Pelcro down, limiter refusals, bulk updates that send no
  signal). It also signs out the JWTs of authorization codes that were never redeemed
  (`ConsentCredential`: the subscriber allowed, the app never came back for its token), so
  a sign-in that never became a connection does not outlive its code either; a redeemed
  code's row left holding the JWT its reused connection held before (the same app
  connected again, `accounts.oauth_validator`) is signed out the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

import redis
from django.db.models import Exists, OuterRef
from django.utils import timezone
from oauth2_provider.settings import oauth2_settings

from accounts import crypto
from accounts.connections import end_dead_connections
from accounts.models import ConsentCredential, SubscriberCredential
from mcp_bridge.open.client import OpenAPIClient, build_client
from mcp_bridge.open.credentials import REFRESH_LOCK_SECONDS, refresh_lock_name
from mcp_bridge.upstream.errors import RateLimited, UpstreamError
from mcp_bridge.upstream.limiter import open_budgets
from mcp_bridge.upstream.redis_clients import close_redis_for_loop, sync_redis

logger = logging.getLogger(__name__)

# Longest one logout may take, its wait for the limiter included: a person revoking waits
# for it (the page, the admin), and a sweep run must end well within its interval.
LOGOUT_TIMEOUT_SECONDS = 5.0
# Logouts in flight at once in one run: kind to Pelcro and to the account's budget.
LOGOUT_CONCURRENCY = 4
# How long a sign-out waits for a refresh of the same JWT in flight before reading it anyway
# (a refresh is bounded by REFRESH_LOCK_SECONDS; reading during one is safe, only wasteful).
REFRESH_WAIT_SECONDS = 5.0
# An authorization code lives AUTHORIZATION_CODE_EXPIRE_SECONDS; past that and this margin
# (an exchange in flight), its consent's JWT can never reach a connection.
UNREDEEMED_GRACE = timedelta(minutes=1)


class Outcome(StrEnum):
    """What `sign_out` did with one connection's JWT."""

    SIGNED_OUT = "signed_out"  # Pelcro took the logout (or refused the JWT already); deleted
    DROPPED = "dropped"  # deleted without a request: Pelcro refuses it already
    FAILED = "failed"  # the logout failed or was not tried (limiter): kept for the next sweep
    NONE = "none"  # no JWT held (or the connection is not revoked)


@dataclass(frozen=True)
class _Held:
    """A stored JWT to sign out: a revoked connection's (`SubscriberCredential`) or an
    unredeemed code's (`ConsentCredential`), with what its logout needs."""

    model: type[SubscriberCredential] | type[ConsentCredential]
    pk: int  # the row's: its connection's or consent's id
    account_id: int  # the limiter's key
    rate_limit: int  # the account's requests per window
    site_id: int | None  # None: its subscriber record is gone, no logout can name the site
    ciphertext: str = field(repr=False)  # as stored: deleted only if still this one
    jwt: str | None = field(repr=False)  # None: it cannot be decrypted any more
    pelcro_refused: bool  # the connection ended because Pelcro refused this sign-in
    expired: bool  # past its `exp`: Pelcro refuses it
    in_use: bool = False  # an unredeemed code's JWT a connection holds too: only deleted

    @property
    def label(self) -> str:
        """How the logs name it (never the JWT)."""
        return f"connection {self.pk}" if self.model is SubscriberCredential else f"unredeemed consent {self.pk}"

    @property
    def needs_logout(self) -> bool:
        return not (self.pelcro_refused or self.expired or self.in_use or self.jwt is None or self.site_id is None)


# Connections whose sign-out the running code does itself (`signing_out_here`).
_signing_out_here: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "signing_out_here", default=frozenset()
)
# Set while the sweep revokes: it signs them out itself in the same run.
_queue_nothing: contextvars.ContextVar[bool] = contextvars.ContextVar("queue_nothing", default=False)


@contextlib.contextmanager
def signing_out_here(connection_ids: Iterable[int]) -> Iterator[None]:
    """Within it, revoking these connections queues no sign-out: the caller signs them out
    itself right after (`open.connections.end_connections`)."""
    token = _signing_out_here.set(_signing_out_here.get() | frozenset(connection_ids))
    try:
        yield
    finally:
        _signing_out_here.reset(token)


def queued_elsewhere(connection_ids: Iterable[int]) -> list[int]:
    """Those of `connection_ids` whose revoke must queue a sign-out: none while the sweep
    revokes (it signs them out itself), and not those in `signing_out_here`."""
    if _queue_nothing.get():
        return []
    return [pk for pk in connection_ids if pk not in _signing_out_here.get()]


def sign_out(
    connection_ids: Iterable[int],
    *,
    background: bool = False,
    refresh_wait: float = REFRESH_WAIT_SECONDS,
    concurrency: int | None = LOGOUT_CONCURRENCY,
) -> dict[int, Outcome]:
    """Sign out and delete the Pelcro JWTs of these revoked connections (module docstring);
    {connection id: `Outcome`} for each id given. Blocking (runs its own event loop): for
    sync views, the admin and Celery, not for async code. `background`: the logouts use the
    account's background share of the limit. `refresh_wait`: seconds to wait for a refresh
    of a JWT in flight before reading it anyway (0: do not wait). `concurrency`: logouts
    in flight at once (None: all)."""
    ids = list(dict.fromkeys(connection_ids))
    outcomes = dict.fromkeys(ids, Outcome.NONE)
    held_ids = list(
        SubscriberCredential.objects.filter(connection_id__in=ids, connection__revoked_at__isnull=False).values_list(
            "connection_id", flat=True
        )
    )
    if not held_ids:
        return outcomes
    with contextlib.ExitStack() as locks:
        held = []
        for connection_id in held_ids:
            locks.enter_context(_refresh_lock(connection_id, refresh_wait))
            item = _load(connection_id)
            if item is not None:
                held.append(item)
        for item, outcome in zip(held, _settle(held, background, concurrency), strict=True):
            outcomes[item.pk] = outcome
    return outcomes


def _settle(held: list[_Held], background: bool, concurrency: int | None) -> list[Outcome]:
    """Log out those that need it, then delete each one signed out or dead at Pelcro already;
    the outcome of each, in order."""
    to_log_out = [item for item in held if item.needs_logout]
    worked = dict(zip(map(id, to_log_out), asyncio.run(_log_out(to_log_out, background, concurrency)), strict=True))
    outcomes = []
    for item in held:
        if item.site_id is None and item.jwt is not None:
            logger.warning(
                "%s: its subscriber record is gone, so its Pelcro sign-in cannot be signed out (no site to name); "
                "it is deleted and stays valid at Pelcro until it expires",
                item.label,
            )
        if not item.needs_logout:
            _delete_if_unchanged(item)
            outcomes.append(Outcome.DROPPED)
        elif worked[id(item)]:
            _delete_if_unchanged(item)
            outcomes.append(Outcome.SIGNED_OUT)
        else:
            _tried(item)
            outcomes.append(Outcome.FAILED)
    return outcomes


def sweep(batch: int, *, now: datetime | None = None) -> Counter[str]:
    """One beat run: revoke up to `batch` dead connections (`end_dead_connections`), sign out
    up to `batch` revoked connections' JWTs, least recently tried first (a failed one goes to
    the back), and up to `batch` JWTs of authorization codes never redeemed (their consent's
    `ConsentCredential`, once the code can no longer be: the app never came back for it).
    Returns how many connections ended and each outcome's count."""
    now = now or timezone.now()
    ended = _end_dead(batch, now)
    pending = list(
        SubscriberCredential.objects.filter(connection__revoked_at__isnull=False)
        .order_by("updated_at", "connection_id")
        .values_list("connection_id", flat=True)[:batch]
    )
    counts = Counter({"ended": ended})
    counts.update(sign_out(pending, background=True, refresh_wait=0).values())
    unredeemed = _unredeemed(batch, now)
    if unredeemed:
        counts.update(_settle(unredeemed, True, LOGOUT_CONCURRENCY))
    return counts


def _unredeemed(batch: int, now: datetime) -> list[_Held]:
    """The JWTs of consents whose authorization code can no longer be redeemed, oldest first.
    One that a connection holds too (the same sign-in's ciphertext, moved at a code exchange:
    two codes of one sign-in, which the consent page prevents) is only deleted: signing it
    out would end that live connection."""
    unredeemable = now - timedelta(seconds=oauth2_settings.AUTHORIZATION_CODE_EXPIRE_SECONDS) - UNREDEEMED_GRACE
    rows = (
        ConsentCredential.objects.select_related("consent__account", "consent__user__subscriber__site")
        .filter(created_at__lt=unredeemable)
        .annotate(in_use=Exists(SubscriberCredential.objects.filter(jwt_encrypted=OuterRef("jwt_encrypted"))))
        .order_by("created_at", "consent_id")[:batch]
    )
    return [
        _held(
            ConsentCredential,
            row.consent_id,
            row,
            row.consent.account,
            row.consent.user,
            pelcro_refused=False,
            in_use=row.in_use,
        )
        for row in rows
    ]


def _end_dead(batch: int, now) -> int:
    """`end_dead_connections`, without queueing their sign-outs: this run signs them out next."""
    token = _queue_nothing.set(True)
    try:
        return end_dead_connections(batch, now)
    finally:
        _queue_nothing.reset(token)


@contextlib.contextmanager
def _refresh_lock(connection_id: int, wait: float) -> Iterator[None]:
    """Hold the connection's refresh lock (`credentials.SubscriberCaller`), waiting at most
    `wait` s for a refresh in flight; go on without it if it stays held or Redis is down
    (deleting only the JWT read keeps that safe)."""
    lock = sync_redis().lock(
        refresh_lock_name(connection_id), timeout=REFRESH_LOCK_SECONDS, blocking_timeout=max(wait, 0.001)
    )
    try:
        locked = lock.acquire(blocking=wait > 0)
    except redis.RedisError:
        locked = False
    try:
        yield
    finally:
        if locked:
            with contextlib.suppress(redis.RedisError):  # it expires by itself after REFRESH_LOCK_SECONDS
                lock.release()


def _load(connection_id: int) -> _Held | None:
    credential = (
        SubscriberCredential.objects.select_related("connection__account", "connection__user__subscriber__site")
        .filter(connection_id=connection_id, connection__revoked_at__isnull=False)
        .first()
    )
    if credential is None:
        return None
    connection = credential.connection
    return _held(
        SubscriberCredential,
        connection_id,
        credential,
        connection.account,
        connection.user,
        pelcro_refused=connection.revoked_by == "pelcro",
    )


def _held(model, pk: int, row, account, user, *, pelcro_refused: bool, in_use: bool = False) -> _Held:
    try:
        jwt = row.get_jwt() if model is SubscriberCredential else crypto.decrypt(row.jwt_encrypted)
    except ValueError:
        jwt = None  # encrypted with a key no longer configured: nothing can sign it out
    subscriber = getattr(user, "subscriber", None)
    return _Held(
        model=model,
        pk=pk,
        account_id=account.pk,
        rate_limit=account.rate_limit,
        site_id=subscriber.site.site_id if subscriber is not None else None,
        ciphertext=row.jwt_encrypted,
        jwt=jwt,
        pelcro_refused=pelcro_refused,
        expired=row.expires_at <= timezone.now(),
        in_use=in_use,
    )


def _delete_if_unchanged(item: _Held) -> None:
    item.model.objects.filter(pk=item.pk, jwt_encrypted=item.ciphertext).delete()


def _tried(item: _Held) -> None:
    """Send a connection's JWT whose logout failed to the back of the sweep's queue (an
    unredeemed code's keeps its place: the oldest are tried first)."""
    if item.model is SubscriberCredential:
        SubscriberCredential.objects.filter(pk=item.pk).update(updated_at=timezone.now())


async def _log_out(items: list[_Held], background: bool, concurrency: int | None) -> list[bool]:
    """Log every JWT out at Pelcro, `concurrency` at a time; whether each worked, in order.
    After a limiter refusal the account's remaining ones are not tried."""
    if not items:
        return []
    client = build_client()
    gate = asyncio.Semaphore(concurrency or len(items))
    refused_accounts: set[int] = set()

    async def one(item: _Held) -> bool:
        async with gate:
            if item.account_id in refused_accounts:
                return False
            return await _logout(client, item, background, refused_accounts)

    try:
        results = await asyncio.gather(*(one(item) for item in items))
    finally:
        await client.aclose()
        await close_redis_for_loop()
    left = Counter(item.account_id for item, ok in zip(items, results, strict=True) if not ok)
    for account_id in refused_accounts:
        logger.info(
            "account %s: the rate limiter refused a Pelcro logout; %d sign-in(s) left for the next sweep",
            account_id,
            left[account_id],
        )
    return results


async def _logout(client: OpenAPIClient, item: _Held, background: bool, refused_accounts: set[int]) -> bool:
    try:
        async with asyncio.timeout(LOGOUT_TIMEOUT_SECONDS):
            await client.logout(
                account_id=item.account_id,
                site_id=item.site_id,
                jwt=item.jwt,
                rate_limit=item.rate_limit,
                budgets=open_budgets(item.site_id),
                background=background,
            )
    except RateLimited:
        refused_accounts.add(item.account_id)  # said once per account, by `_log_out`
        return False
    except TimeoutError:
        reason = f"no answer within {LOGOUT_TIMEOUT_SECONDS:g} s"
    except UpstreamError as failed:
        reason = f"{type(failed).__name__}: {failed.message}"
    except Exception as failed:  # best effort: nothing here may undo or fail the revoke
        reason = type(failed).__name__
    else:
        return True
    # Never the JWT: only which connection and why.
    logger.warning(
        "%s: Pelcro logout failed (%s); its sign-in is kept, unusable, for the next sweep", item.label, reason
    )
    return False
