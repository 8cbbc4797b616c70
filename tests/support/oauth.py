"""OAuth test helpers and fixtures, reusable by every feature's tests.

The OAuth client flow itself (`obtain_tokens`, `register_client`, `signed_in`, ...) is
`devtools.oauth_client`, shared with the benchmarks.
`gateway_principal(gateway_url, token)` checks a token the way that gateway's MCP
endpoint does.

Fixtures: `demo_users` seeds the demo accounts, sites, keys and users
(`accounts.demo.seed_demo()`) into the test database and returns the spec.
"""

import os

import redis
from django.conf import settings as django_settings
from django.contrib.auth.hashers import ScryptPasswordHasher

from devtools import oauth_client
from devtools.oauth_client import mcp_url
from tests.support.ratelimit import limiter_generation_key

# Every test registers clients from 127.0.0.1 against the session's gateways; the
# per-IP registration cap itself is tested on a dedicated gateway (test_oauth_dcr.py).
os.environ.setdefault("DCR_PER_IP_PER_HOUR", "100000")

# The client flow's names, still importable from here for tests written before it moved
# to devtools (new tests import devtools.oauth_client).
globals().update({name: getattr(oauth_client, name) for name in oauth_client.__all__})


def gateway_principal(gateway_url: str, raw_token: str, resource: str | None = None):
    """The token check's principal as the gateway at `gateway_url` sees it (its MCP URL is
    the resource), run in the test process against the shared test database."""
    from django.test import override_settings

    from accounts.tokens import credentials_for_token

    with override_settings(PUBLIC_URL=gateway_url, MCP_RESOURCE_URL=mcp_url(gateway_url)):
        credentials = credentials_for_token(raw_token, resource or mcp_url(gateway_url))
    return credentials.principal if credentials else None


class QuickScryptHasher(ScryptPasswordHasher):
    """Test-only scrypt with a tiny work factor, so seeding users takes milliseconds. The
    encoded hash carries its parameters, so gateways (default hashers) verify it."""

    work_factor = 2**4
    parallelism = 1


# A gateway with tight limits for lock-out and registration-cap tests. It has its own
# Redis key prefix, so its counters never touch the session gateway's.
STRICT_LIMITS = {
    "LOGIN_MAX_FAILURES": "3",
    "LOGIN_MAX_FAILURES_PER_IP": "5",
    "LOGIN_LOCKOUT_SECONDS": "60",
    "DCR_PER_IP_PER_HOUR": "3",
}


def _clear_redis_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            if not limiter_generation_key(key):  # the gateways' limiters did not forget
                client.delete(key)
    finally:
        client.close()
