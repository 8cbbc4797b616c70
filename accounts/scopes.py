"""Which requested scope values count, the same rule at every OAuth endpoint.

This server defines `read` and `write` (README "Connecting and OAuth"). Clients add other
values out of habit: `offline_access` to be sure of a refresh token (one is always
issued), OpenID's `openid profile email`, `mcp`, the resource URL itself. RFC 6749 §3.3
lets the server fully or partly ignore the requested scope, and says the token response
then names the scope granted. So, at the authorization endpoint, the consent POST, the
token endpoint and refresh alike: values we do not define are ignored, the granted set is
the requested `read`/`write` (none of them, or an empty `scope`: the default, `read write`,
with the consent screen choosing the access level), and `scope` is always in the token
response. Only a value that is not a scope token at all (RFC 6749 §3.3 syntax) is refused.

`write` implies `read`: asking for `write` alone is granted `read write`, at every one of
those endpoints (refresh included, so a refresh cannot narrow a token to a write-only
one). Every write tool needs reads to be used safely (look the record up, check its
state, then change it), and the consent screen's access levels are "read only" and "read
and write" (accounts.access.scopes_for): there is no write-only access to grant.

`offline_access` is advertised in the authorization server's `scopes_supported`, because
it is honoured: a refresh token comes with every token response.
"""

import re

DEFINED = ("read", "write")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
ADVERTISED = [*DEFINED, "offline_access"]
IMPLIED_BY_WRITE = {"read"}


def tolerated(scope: str | None) -> str:
    """The defined scopes among `scope` (space-separated), in a fixed order, as a string;
    `write` brings `read` with it ("write" → "read write", see the module docstring).

    "" when none is defined (the caller applies the default). Raises ValueError for a
    value that is not a scope token (e.g. a quote, a backslash, non-ASCII)."""
    values = (scope or "").split()
    bad = [value for value in values if not SCOPE_TOKEN.fullmatch(value)]
    if bad:
        raise ValueError(f"not a scope value: {bad[0]!r}")
    values = set(values)
    if "write" in values:
        values |= IMPLIED_BY_WRITE
    return " ".join(name for name in DEFINED if name in values)
