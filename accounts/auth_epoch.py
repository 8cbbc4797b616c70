"""The auth epoch: shared Redis state that tells every process when a token check may change.

The MCP endpoint keeps each token's check (principal, the account's sites, its API key) in
a per-process cache, stamped with the epoch it read *before* checking the database. Every
request reads the epoch again (`mcp_bridge.edge.credential_cache.read_epoch`) and uses its
cached check only while the epoch is unchanged and no change is in flight. So a
revocation, a deactivated user, a role change, a new API key or a moved site takes effect
on the very next request in every process, exactly as if nothing were cached.

Publishing a change fails closed. A change to what a check reads (an update or delete of
the `watch_models`, a bulk `QuerySet.update()` of a model whose manager is a
`PublishingQuerySet`, anything made `with publishing():`) is published in two steps
around its transaction:

1. `hold` (before the write, inside the transaction): one atomic Redis step gives the
   epoch a new value and counts one more change in flight (`holds`, which expires after
   `HOLD_SECONDS`). If Redis cannot take it, `EpochUnavailable` is raised, the transaction
   rolls back, and the person is told that nothing was changed and to try again: a
   revocation is never reported done while other processes could still trust their cache.
2. `release` (after the commit): a new epoch again, one change fewer in flight.

Readers trust and fill their cache only while no change is in flight, so a check made
between step 1 and the commit (which still sees the old rows) is never reused. If step 2
fails (Redis went away after step 1), the count keeps every process off its cache until it
expires, and by then the epoch differs from every stamp made before step 1. A reader that
cannot read Redis checks the database (no cache). What still bypasses this is a write made
behind Django's back (hand-written SQL): the cache's maximum age (`AUTH_CACHE_SECONDS`)
bounds it.

New rows publish nothing before they commit (a new row cannot make a cached check wrong,
only stale: a new site, a new membership), and so are never refused: their epoch change is
best effort, after the commit. Creations of `silent_creates` publish nothing at all.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, models, transaction
from django.db.models.signals import post_save, pre_delete, pre_save

from accounts.redis_client import redis_client

log = logging.getLogger(__name__)

# How long a change may stay in flight (from `hold` to `release`) before readers trust
# their caches again. Longer than any transaction that changes what a check reads; a hold
# whose release was lost (Redis went away, the process died) keeps caches off this long.
HOLD_SECONDS = 30

# What a refused change tells the caller to wait (Retry-After), in seconds.
RETRY_AFTER_SECONDS = 30

# Keys share one hash tag: read together (MGET) and written together (scripts),
# they must live in one Redis Cluster slot.


def epoch_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}{{auth-epoch}}"


def holds_key() -> str:
    """How many changes are in flight (between `hold` and `release`); absent when none."""
    return f"{settings.REDIS_KEY_PREFIX}{{auth-epoch}}:holds"


def new_epoch() -> str:
    return secrets.token_hex(8)


class EpochUnavailable(Exception):
    """A change to what token checks read could not be published to the other processes
    (Redis unreachable), so it was refused: nothing was changed."""

    message = (
        "Nothing was changed: the gateway could not tell its other servers about this change "
        "(its shared store, Redis, is unreachable), so they could keep accepting access that "
        "this change removes. Try again in a minute."
    )

    def __init__(self, detail: str = ""):
        super().__init__(f"{self.message} ({detail})" if detail else self.message)


# Hold: a new epoch and one more change in flight (the count lives HOLD_SECONDS from the
# latest hold), in one atomic step. A script, not MULTI: it also runs on a Redis Cluster
# (both keys are in one slot).
_HOLD = """
redis.call('SET', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""

# Release: one change fewer in flight (the counter never goes below zero, and is removed at
# zero) and a new epoch, in one atomic step.
_RELEASE = """
if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


def hold() -> None:
    """Step 1: a new epoch and one more change in flight. Raises `EpochUnavailable` if Redis
    cannot take it (1 s deadline: `accounts.redis_client`)."""
    try:
        redis_client().eval(_HOLD, 2, epoch_key(), holds_key(), new_epoch(), HOLD_SECONDS)
    except redis.RedisError as exc:
        log.error("auth epoch: change refused, Redis unreachable (%s)", type(exc).__name__)
        raise EpochUnavailable(type(exc).__name__) from None


def release() -> None:
    """Step 2, after the commit: a new epoch, one change fewer in flight. Never raises (the
    change is made): if Redis is gone, the hold expires after HOLD_SECONDS and until then
    no process trusts its cache."""
    try:
        redis_client().eval(_RELEASE, 2, epoch_key(), holds_key(), new_epoch())
    except redis.RedisError as exc:
        log.error(
            "auth epoch: could not end a change (%s); token caches stay off for up to %d s",
            type(exc).__name__,
            HOLD_SECONDS,
        )


class _Release:
    """The on-commit callback of one transaction's hold (recognisable, so a transaction
    holds once however many rows it changes)."""

    def __call__(self) -> None:
        release()


def hold_until_commit(using: str = DEFAULT_DB_ALIAS) -> None:
    """Hold now (raising `EpochUnavailable`) and release when the current transaction
    commits; once per transaction. Must run inside `transaction.atomic`, before the write."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        raise RuntimeError("hold_until_commit() needs a transaction: use `with publishing():`")
    if any(isinstance(callback, _Release) for _sids, callback, *_rest in connection.run_on_commit):
        return  # this transaction holds already; its release runs on commit
    hold()
    transaction.on_commit(_Release(), using=using)


@contextmanager
def publishing(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Make writes that change what token checks read (e.g. a bulk `QuerySet.update()`),
    published to every process or refused:

        with auth_epoch.publishing():
            Membership.objects.filter(account=account).update(role=Membership.Role.MEMBER)

    Opens a transaction (a savepoint inside one) and holds before the body runs; raises
    `EpochUnavailable`, with nothing written, if the change cannot be published."""
    with transaction.atomic(using=using):
        hold_until_commit(using)
        yield


def bump() -> None:
    """Give the epoch a new value now, best effort: for changes that only make cached checks
    stale (new rows), never ones that take access away."""
    try:
        redis_client().set(epoch_key(), new_epoch())
    except redis.RedisError:
        log.error(
            "could not change the auth epoch (Redis unreachable); cached token checks expire within AUTH_CACHE_SECONDS"
        )


# Fields no token check reads, written alone by bookkeeping (every sign-in, every request,
# every scheduled read of an account from Pelcro: `accounts.upstream_account`) and by
# sign-in's password re-hash (`save(update_fields=["password"])`): such writes publish
# nothing, so they neither flush every cache nor need Redis.
_BOOKKEEPING = frozenset({"last_login", "last_used_at", "password", "upstream_read_at", "upstream_read_error"})


# --- Bulk writes: QuerySet.update() / bulk_update() send no signals -----------------------


class PublishingQuerySet(models.QuerySet):
    """The manager of a model token checks read (`objects = PublishingQuerySet.as_manager()`):
    its bulk `update()` and `bulk_update()`, which send no signals, are published like a save
    (`publishing()`), so they too take effect on the next request everywhere or are refused
    with `EpochUnavailable`. (`delete()` sends `pre_delete` for every row: see below.)
    Bookkeeping-only updates (`last_used_at`, `last_login`) publish nothing."""

    def update(self, **kwargs):
        if set(kwargs) <= _BOOKKEEPING:
            return super().update(**kwargs)
        with publishing(self.db):
            return super().update(**kwargs)

    update.alters_data = True

    def bulk_update(self, objs, fields, batch_size=None):
        if set(fields) <= _BOOKKEEPING:
            return super().bulk_update(objs, fields, batch_size=batch_size)
        with publishing(self.db):
            return super().bulk_update(objs, fields, batch_size=batch_size)

    bulk_update.alters_data = True


# --- Signals: every save and delete of the watched models --------------------------------

# Models whose new rows leave every cached check valid: a new token or connection cannot be
# in anyone's cache yet (their later changes and deletes still count).
_SILENT_CREATES: set[type] = set()
# Every model watched (in `watch_models` order), for the tests that hold the rule.
WATCHED: list[type] = []


def _publishes(sender, instance, update_fields) -> bool:
    if instance._state.adding:
        return False  # a new row: published (best effort) after the commit, see _saved
    return not (update_fields and set(update_fields) <= _BOOKKEEPING)


def _before_save(sender, instance, raw=False, using=DEFAULT_DB_ALIAS, update_fields=None, **kwargs) -> None:
    if raw or not _publishes(sender, instance, update_fields):
        return
    if transaction.get_connection(using).in_atomic_block:
        hold_until_commit(using)
    else:
        # Autocommit: Model.save() commits its own write; hold now, release in _saved.
        hold()
        instance._auth_epoch_release = True


def _saved(sender, instance, created=False, raw=False, using=DEFAULT_DB_ALIAS, update_fields=None, **kwargs) -> None:
    if instance.__dict__.pop("_auth_epoch_release", False):
        release()
    elif created and sender not in _SILENT_CREATES:
        transaction.on_commit(bump, using=using)


def _before_delete(sender, instance, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    # Model.delete() and QuerySet.delete() run in a transaction (the deletion collector's).
    hold_until_commit(using)


def watch_models(*models, silent_creates: tuple = ()) -> None:
    """Publish every update and delete of `models` (fail closed), and their creations best
    effort (`silent_creates`: not at all)."""
    _SILENT_CREATES.update(silent_creates)
    WATCHED.extend(m for m in models if m not in WATCHED)
    for model in models:
        label = model._meta.label
        pre_save.connect(_before_save, sender=model, dispatch_uid=f"auth-epoch-hold-save-{label}")
        post_save.connect(_saved, sender=model, dispatch_uid=f"auth-epoch-save-{label}")
        pre_delete.connect(_before_delete, sender=model, dispatch_uid=f"auth-epoch-hold-delete-{label}")
