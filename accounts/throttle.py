"""Redis counters that slow down guessing and registration floods.

- Login (used by `accounts.sign_in`, the one sign-in path): failures are counted per
  sign-in name and per client IP. Once a counter reaches its cap (`LOGIN_MAX_FAILURES` per
  name, `LOGIN_MAX_FAILURES_PER_IP` per IP), sign-in with that name / from that IP is
  refused for `LOGIN_LOCKOUT_SECONDS`, without checking the password. A successful
  sign-in clears the name's counter.
- Subscriber sign-in (the Open server's, checked by Pelcro's Open API login): failed
  attempts are counted per client IP (`LOGIN_MAX_FAILURES_PER_IP` within
  `LOGIN_LOCKOUT_SECONDS`), so the gateway cannot be used to try many subscribers'
  passwords from one address; Pelcro's own lock-out covers one subscriber's identifier.
- Dynamic client registration: at most `DCR_PER_IP_PER_HOUR` registrations per IP.

Keys start with `settings.REDIS_KEY_PREFIX`; identifiers are hashed so no e-mail address
or username appears in Redis. If Redis is unreachable the limits are skipped (logged):
Redis being down must not lock everyone out.
"""

import hashlib
import logging

import redis
from django.conf import settings

from accounts.redis_client import redis_client

log = logging.getLogger(__name__)


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]
    return f"{settings.REDIS_KEY_PREFIX}{kind}:{digest}"


def _knob(name: str) -> int:
    return settings.PELCRO_GATEWAY[name]


# --- login ---------------------------------------------------------------------------------


def _login_keys(name: str, ip: str) -> list[tuple[str, int]]:
    return [
        (_key("login-fail:name", name), _knob("LOGIN_MAX_FAILURES")),
        (_key("login-fail:ip", ip), _knob("LOGIN_MAX_FAILURES_PER_IP")),
    ]


def login_retry_after(name: str, ip: str) -> int:
    """Seconds until sign-in is allowed again with this name or from this IP; 0 when not locked."""
    try:
        pipe = redis_client().pipeline(transaction=False)
        keys = _login_keys(name, ip)
        for key, _cap in keys:
            pipe.get(key)
            pipe.ttl(key)
        values = pipe.execute()
    except redis.RedisError as exc:
        log.warning("login throttle unavailable (%s); not limiting", type(exc).__name__)
        return 0
    wait = 0
    for index, (_key_name, cap) in enumerate(keys):
        count, ttl = values[2 * index], values[2 * index + 1]
        if count is not None and int(count) >= cap:
            wait = max(wait, ttl if ttl and ttl > 0 else 1)
    return wait


def record_login_failure(name: str, ip: str) -> None:
    """Count one failed sign-in; the counters (and any lock-out) last LOGIN_LOCKOUT_SECONDS
    from the latest failure."""
    window = _knob("LOGIN_LOCKOUT_SECONDS")
    try:
        # No MULTI: the two keys may live on different Redis Cluster nodes.
        pipe = redis_client().pipeline(transaction=False)
        for key, _cap in _login_keys(name, ip):
            pipe.incr(key)
            pipe.expire(key, window)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("login throttle unavailable (%s); failure not counted", type(exc).__name__)


def clear_login_failures(name: str) -> None:
    try:
        redis_client().delete(_key("login-fail:name", name))
    except redis.RedisError as exc:
        log.warning("login throttle unavailable (%s)", type(exc).__name__)


# --- subscriber sign-in ------------------------------------------------------------------


def subscriber_sign_in_retry_after(ip: str) -> int:
    """Seconds until subscribers may try to sign in from `ip` again; 0 when not locked."""
    key = _key("subscriber-fail:ip", ip)
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
    except redis.RedisError as exc:
        log.warning("subscriber sign-in throttle unavailable (%s); not limiting", type(exc).__name__)
        return 0
    if count is not None and int(count) >= _knob("LOGIN_MAX_FAILURES_PER_IP"):
        return ttl if ttl and ttl > 0 else 1
    return 0


def record_subscriber_sign_in_failure(ip: str) -> None:
    """Count one failed subscriber sign-in from `ip` (kept LOGIN_LOCKOUT_SECONDS from the latest)."""
    key = _key("subscriber-fail:ip", ip)
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, _knob("LOGIN_LOCKOUT_SECONDS"))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("subscriber sign-in throttle unavailable (%s); failure not counted", type(exc).__name__)


# --- dynamic client registration -------------------------------------------------------------


def registration_retry_after(ip: str) -> int:
    """Count one registration from `ip`; return 0 if allowed, else seconds to wait."""
    key = _key("dcr:ip", ip)
    try:
        pipe = redis_client().pipeline(transaction=True)
        pipe.set(key, 0, ex=3600, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
    except redis.RedisError as exc:
        log.warning("registration throttle unavailable (%s); not limiting", type(exc).__name__)
        return 0
    if count > _knob("DCR_PER_IP_PER_HOUR"):
        return ttl if ttl and ttl > 0 else 1
    return 0
