"""The auth epoch: one shared Redis value that changes whenever a token check could change.

The MCP endpoint keeps each token's check (principal, the account's sites, its API key) in
a per-process cache, stamped with the epoch it read *before* checking the database. Every
request reads the epoch again (one Redis GET) and uses its cached check only while the
epoch is unchanged. So a revocation, a deactivated user, a role change, a new API key or a
moved site takes effect on the very next request in every process, exactly as if nothing
were cached; a stale stamp only costs one database check.

The epoch changes (to a new random value) after the commit of every save or delete of the
models a check reads (`watch_models`), and of the bulk updates that send no signals
(`revoke_connections`, the revocation endpoint). Anything that bypasses Django (hand-written
SQL) is caught by the cache's maximum age instead (`AUTH_CACHE_SECONDS`).
"""

from __future__ import annotations

import logging
import secrets

import redis
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from accounts.throttle import redis_client

log = logging.getLogger(__name__)


def epoch_key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}auth-epoch"


def new_epoch() -> str:
    return secrets.token_hex(8)


def bump() -> None:
    """Give the epoch a new value now: every process's cached token checks are stale."""
    try:
        redis_client().set(epoch_key(), new_epoch())
    except redis.RedisError:
        # Readers cannot read the epoch either while Redis is down, and then they check the
        # database on every request; a cache entry outlives this at most AUTH_CACHE_SECONDS.
        log.error("could not change the auth epoch (Redis unreachable); cached token checks "
                  "expire within AUTH_CACHE_SECONDS")


def bump_on_commit() -> None:
    """Change the epoch once the current transaction commits (at once outside one): a
    reader that checked the database before the commit holds the old stamp."""
    transaction.on_commit(bump)


# Models whose new rows leave every cached check valid: a new token or connection cannot be
# in anyone's cache yet (their later changes and deletes still count).
_SILENT_CREATES: set[type] = set()


def _changed(sender, instance=None, created=False, update_fields=None, **kwargs) -> None:
    if created and sender in _SILENT_CREATES:
        return
    if update_fields and set(update_fields) <= {"last_login", "last_used_at"}:
        return  # bookkeeping every sign-in / request writes; no check reads it
    bump_on_commit()


def watch_models(*models, silent_creates: tuple = ()) -> None:
    """Change the epoch after every save and delete of `models` (creations of
    `silent_creates` excepted)."""
    _SILENT_CREATES.update(silent_creates)
    for model in models:
        post_save.connect(_changed, sender=model, dispatch_uid=f"auth-epoch-save-{model._meta.label}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"auth-epoch-delete-{model._meta.label}")
