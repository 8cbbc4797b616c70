"""The account-scoped principal a verified access token yields, and what it may use.

MCP tool handlers receive this and never look tokens up themselves (DESIGN.md:
"decorators carry the principal").
"""

from dataclasses import dataclass, field
from datetime import datetime

READ_SCOPE = "read"
WRITE_SCOPE = "write"


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    account_id: int
    account_slug: str
    connection_id: int
    client_id: str
    client_name: str
    scopes: frozenset[str]
    expires_at: datetime

    @property
    def can_write(self) -> bool:
        return WRITE_SCOPE in self.scopes


@dataclass(frozen=True)
class SubscriberIdentity:
    """Who an Open server token acts for: Pelcro customer `customer_id` of site `site_id`."""

    site_id: int
    customer_id: int


@dataclass(frozen=True, eq=False)
class Credentials:
    """A verified token's principal, its account's sites, its Core API rate limit and the
    account's Core API key (None when the account has none that decrypts). The key never
    shows in a repr.
    Compared (and hashed) by identity: one object per check."""

    principal: Principal
    sites: dict[int, str]  # site_id -> name
    api_key: str | None = field(default=None, repr=False)
    # Open server tokens only: the one subscriber (site + Pelcro customer) they act for;
    # `sites` is then that one site and `api_key` None (the Open API uses the customer's JWT).
    subscriber: SubscriberIdentity | None = None
    # The account's Core API requests per minute (Account.rate_limit: from GET /account,
    # entered by hand, or the default); the shared limiter grants this minus its margin.
    rate_limit: int = 120

    def site_list(self) -> str:
        """The account's sites as people read them, e.g. "14 (Acme Daily), 15 (Acme Weekly)"."""
        return ", ".join(f"{site_id} ({name})" for site_id, name in sorted(self.sites.items())) or "none"
