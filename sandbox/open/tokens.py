"""Subscriber tokens (OPEN_API.md §2): HS256 JWTs (RFC 7519, via PyJWT), the blacklist, and
the answers for a missing (401 `Token not provided`), bad or expired (401 `Invalid or
expired token`) and blacklisted (403) token.

**chosen (sandbox):** claims `iss` (`<base>/api/v1/sdk/customer`), `iat`, `nbf` (= iat),
`exp` (= iat + the site's `auth_token_ttl_days`), `jti` (random), `sub` (customer id, a
string as RFC 7519 requires), `prv` (a fixed hash naming the customer model, as Laravel's
jwt-auth does), `site_id` (int). Logout and refresh put the old `jti` on the blacklist; with
the site's `single_session` on, a login blacklists the customer's earlier tokens. A token of
another site, or of a deleted customer, answers 401 `Invalid or expired token` (it can never
be valid here: sign in on that site). The signing key is random per sandbox process.
"""

from __future__ import annotations

import secrets

import jwt

from sandbox import clock
from sandbox.errors import APIError, Forbidden, Unauthenticated
from sandbox.store import Site, Store

ALGORITHM = "HS256"
PRV = "23bd5c8949f600adb39e701c400872db7a5976f7"  # sha1("App\\Models\\Customer"), as jwt-auth's `prv`
CLAIMS = ("iss", "iat", "exp", "nbf", "jti", "sub", "prv", "site_id")
NOT_PROVIDED = "Token not provided"
INVALID = "Invalid or expired token"
BLACKLISTED = "Authentication token has been blacklisted, please try again"


def issue(store: Store, secret: bytes, site: Site, customer_id: int, issuer: str) -> str:
    """A new token for `customer_id` on `site`, valid `site.open.auth_token_ttl_days` days."""
    now = clock.now_unix()
    jti = secrets.token_hex(16)
    claims = {
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + site.open.auth_token_ttl_days * 86_400,
        "jti": jti,
        "sub": str(customer_id),
        "prv": PRV,
        "site_id": site.id,
    }
    store.open.live_tokens[jti] = customer_id
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def blacklist(store: Store, jti: str) -> None:
    store.open.blacklist.add(jti)
    store.open.live_tokens.pop(jti, None)


def blacklist_customer(store: Store, customer_id: int) -> None:
    """Blacklist every live token of a customer (single-session login)."""
    for jti in [j for j, owner in store.open.live_tokens.items() if owner == customer_id]:
        blacklist(store, jti)


def authenticate(store: Store, secret: bytes, header: str | None, site_id: int) -> tuple[dict, dict]:
    """(customer, claims) for an `Authorization: Bearer <JWT>` header, else the 401/403 answer."""
    scheme, _, raw = (header or "").partition(" ")
    raw = raw.strip()
    if not raw or scheme.lower() != "bearer":
        raise Unauthenticated(NOT_PROVIDED)
    try:
        claims = jwt.decode(raw, secret, algorithms=[ALGORITHM], options={"require": list(CLAIMS)})
    except jwt.InvalidTokenError:
        raise Unauthenticated(INVALID) from None
    if claims["jti"] in store.open.blacklist:
        raise Forbidden(BLACKLISTED)
    if claims["site_id"] != site_id:
        raise Unauthenticated(INVALID)
    try:
        customer_id = int(claims["sub"])
    except (TypeError, ValueError):
        raise Unauthenticated(INVALID) from None
    customer = store.find("customers", site_id, customer_id)
    if customer is None:
        raise Unauthenticated(INVALID)
    return customer, claims


class TooManyLoginAttempts(APIError):
    """429 after too many failed logins (OPEN_API.md §2), with Retry-After seconds."""

    status = 429

    def __init__(self, retry_after: int):
        super().__init__(
            f"Too many login attempts. Please try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after

    def body(self) -> dict:
        body = super().body()
        body["error"]["retry_after"] = self.retry_after
        return body
