"""Token checks cached per process, trusted only while the auth epoch is unchanged.

A full token check (`accounts.tokens.credentials_for_token`: the hashed token with its user,
client, connection and account, the member's role, the account's sites, the decrypted API
key) is several queries and a trip to the database thread: most of what the gateway used to
add to a tool call. A cached check is reused when all of these hold:

- the auth epoch in Redis is the one read before that check (`accounts.auth_epoch`: it
  changes before and after every revocation, role change, deactivation, new key or site
  change), and no such change is in flight, so a change takes effect on the very next
  request in every process; a change that cannot be published is refused;
- the token has not expired, and the check is younger than `AUTH_CACHE_SECONDS`
  (a bound for changes made behind Django's back, e.g. by hand-written SQL).

If Redis cannot be read, nothing is cached (and everything cached is dropped): each request
checks the database, as it would with no cache at all. The same while the database is
suspect (the `DatabaseHealth` the cache is given, `mcp_bridge.orm.database_health` in the
gateway): during an outage requests get a clear 503
instead of tool calls whose audit rows could only be written later. Refused tokens are
never cached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from accounts.auth_epoch import epoch_key, holds_key, new_epoch
from accounts.connections import LAST_USED_RESOLUTION_SECONDS, touch_by_id
from accounts.principal import Credentials
from accounts.tokens import checksum, credentials_for_token
from mcp_bridge.orm import DatabaseHealth, run_db
from mcp_bridge.upstream.redis_clients import redis_for_loop


@dataclass
class _Entry:
    credentials: Credentials
    epoch: bytes
    checked_at: float  # time.monotonic() of the database check
    expires_at: float  # the token's expiry, as time.time()
    touched_at: float  # time.monotonic() of the last "last used" write


async def read_epoch() -> bytes | None:
    """The current auth epoch, or None when no cached check may be trusted: Redis cannot be
    read, or a change to what checks read is in flight (`accounts.auth_epoch.hold`: it may
    commit at any moment, and a check made now could miss it). Then nothing is cached.

    It is stamped with the Redis connection it was read on: a Redis restarted from its
    persisted data may hold an epoch from before a change whose bump it never got (it was
    down), so nothing checked before a reconnection is trusted after it."""
    client = redis_for_loop()
    try:
        epoch, holds = await client.execute("MGET", epoch_key(), holds_key())
        if holds is not None and int(holds) > 0:
            return None
        if epoch is None:  # a fresh Redis: start an epoch (the first writer wins)
            await client.execute("SET", epoch_key(), new_epoch(), "NX")
            epoch = await client.execute("GET", epoch_key())
    except (RedisError, OSError, ValueError):
        return None
    return b"%s/%d" % (epoch, client.connection_number)


class CredentialCache:
    """The checks of the tokens one process has seen lately, for one resource."""

    def __init__(self, resource: str, *, database: DatabaseHealth, max_age: float, max_entries: int = 10_000):
        self.resource = resource
        self.database = database
        self.max_age = max_age
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}

    async def credentials(self, raw_token: str) -> Credentials | None:
        """The token's credentials, or None if it must be refused."""
        if self.max_age <= 0 or self.database.suspect:
            return await run_db(credentials_for_token, raw_token, self.resource)
        key = checksum(raw_token)
        epoch = await read_epoch()
        if epoch is None:
            self._entries.clear()
            return await run_db(credentials_for_token, raw_token, self.resource)
        now = time.monotonic()
        entry = self._entries.get(key)
        if (
            entry is not None
            and entry.epoch == epoch
            and now - entry.checked_at < self.max_age
            and time.time() < entry.expires_at
        ):
            if now - entry.touched_at >= LAST_USED_RESOLUTION_SECONDS:
                entry.touched_at = now
                await run_db(touch_by_id, entry.credentials.principal.connection_id)
            return entry.credentials
        credentials = await run_db(credentials_for_token, raw_token, self.resource)
        self._entries.pop(key, None)
        self._drop_old(now)
        if credentials is not None:
            self._entries[key] = _Entry(credentials, epoch, now, credentials.principal.expires_at.timestamp(), now)
        return credentials

    def __len__(self) -> int:
        """How many token checks are cached (each holds a decrypted API key)."""
        return len(self._entries)

    def _drop_old(self, now: float) -> None:
        """Forget checks past their maximum age (they hold decrypted API keys) and, beyond
        `max_entries`, the oldest. Entries are in check order: the old ones are in front."""
        entries = self._entries
        while entries:
            oldest_key = next(iter(entries))
            if now - entries[oldest_key].checked_at < self.max_age and len(entries) < self.max_entries:
                return
            del entries[oldest_key]
