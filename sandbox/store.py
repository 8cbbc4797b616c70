"""The sandbox's one data world: accounts, sites, keys and every stored object.

The Core API (`sandbox/core/`) and the Open API (`sandbox/open/`) are two views of
this same world: an Open subscriber is a Core customer of that site. Objects are plain
dicts in their Core API shape plus two internal keys, `site_id` and `deleted_at` (soft
deletes), which the API layers never show, and keys starting with `_` (e.g. a customer's
`_password_hash`), also never shown. Ids are unique across the whole sandbox. All
access from the handlers is synchronous, so each change is atomic on the single event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.errors import NotFound

KINDS = (
    "customers",
    "subscriptions",
    "invoices",
    "plans",
    "coupons",
    "charges",
    "refunds",
    "addresses",
    "sources",
    "organizations",
)
SINGULAR = {
    "customers": "Customer",
    "subscriptions": "Subscription",
    "invoices": "Invoice",
    "plans": "Plan",
    "coupons": "Coupon",
    "charges": "Charge",
    "refunds": "Refund",
    "addresses": "Address",
    "sources": "Source",
    "organizations": "Organization",
}
INTERNAL_KEYS = ("site_id", "deleted_at")


@dataclass
class OpenSettings:
    """A site's Open API settings (OPEN_API.md §6, defaults there); demo/accounts.json may set
    them per site under `"open"`, and `PATCH /_sandbox/sites/<site_id>/open` changes them."""

    auth_token_ttl_days: int = 60  # 1..365, JWT lifetime (§2)
    single_session: bool = False  # a login blacklists the customer's earlier tokens
    passwordless_enabled: bool = True
    passwordless_token_duration: int = 1  # days a passwordless link stays valid
    immediate_cancel_enabled: bool = False  # cancel mode `now` allowed
    strong_password: bool = True  # register: 8-30 chars with digit, symbol, lower, upper (else >= 6)
    email_verify_enabled: bool = False  # an email change sends a verification mail (to the outbox)


@dataclass
class Site:
    id: int
    name: str
    currency: str
    url: str
    slug: str
    country_code: str
    default_locale: str = "en_US"
    open: OpenSettings = field(default_factory=OpenSettings)


@dataclass
class OpenState:
    """The Open API's own state, beside the shared objects (reset with the store).

    `blacklist`: JWT ids refused with 403 (logout, refresh, single-session logins);
    `live_tokens`: jti -> customer id of tokens issued and not blacklisted (for single
    session); `login_failures`: (site_id, identifier) -> failure times (wall clock);
    `newsletters`: site_id -> email -> entry; `outbox`: sent "emails" (GET /_sandbox/outbox);
    `passwordless`: one-time login token -> (site_id, customer_id, expires Unix time);
    `passwordless_requests`: (site_id, email) -> request times (5 an hour).
    """

    blacklist: set[str] = field(default_factory=set)
    live_tokens: dict[str, int] = field(default_factory=dict)
    login_failures: dict[tuple[int, str], list[float]] = field(default_factory=dict)
    newsletters: dict[int, dict[str, dict]] = field(default_factory=dict)
    outbox: list[dict] = field(default_factory=list)
    passwordless: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    passwordless_requests: dict[tuple[int, str], list[float]] = field(default_factory=dict)


@dataclass
class Account:
    """One Pelcro account of demo/accounts.json (GET /account shows it, the limiter uses it)."""

    id: int
    slug: str
    name: str
    api_key: str
    api_core_rate_limit: int
    country: str = "US"
    default_currency: str = "usd"
    is_enterprise: bool = False
    taxes_enabled: bool = False
    payment_gateway: str = "stripe"
    sites: dict[int, Site] = field(default_factory=dict)

    @property
    def currencies(self) -> set[str]:
        """Currencies valid for this account: its default and its sites' (CORE_API.md §8.4, §8.7)."""
        return {self.default_currency} | {site.currency for site in self.sites.values()}


@dataclass
class PendingJob:
    """Work Pelcro runs later in a background job (refund cancellation, §8.8)."""

    due: float  # time.monotonic() after which it runs
    kind: str
    site_id: int
    ids: list[int]


class Store:
    """Accounts and objects of one sandbox; `next_id()` hands out globally unique ids."""

    def __init__(self, accounts: list[Account], first_id: int = 1000):
        self.accounts = {account.slug: account for account in accounts}
        self.by_key = {account.api_key: account for account in accounts}
        self.site_owner = {site_id: account for account in accounts for site_id in account.sites}
        self.by_site: dict[str, dict[int, dict[int, dict]]] = {
            kind: {site_id: {} for site_id in self.site_owner} for kind in KINDS
        }
        self.jobs: list[PendingJob] = []
        self.open = OpenState(newsletters={site_id: {} for site_id in self.site_owner})
        self._next_id = first_id

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add(self, kind: str, obj: dict) -> dict:
        """Store a new object (it must carry `id` and `site_id`)."""
        obj.setdefault("deleted_at", None)
        self.by_site[kind][obj["site_id"]][obj["id"]] = obj
        return obj

    def find(self, kind: str, site_id: int, obj_id: int) -> dict | None:
        """The live object `obj_id` of `site_id`, or None (deleted and other sites' objects too)."""
        obj = self.by_site[kind][site_id].get(obj_id)
        return obj if obj is not None and obj["deleted_at"] is None else None

    def get(self, kind: str, site_id: int, obj_id: int) -> dict:
        """The live object `obj_id` of `site_id`, else 404 (also for other sites' objects)."""
        obj = self.find(kind, site_id, obj_id)
        if obj is None:
            raise NotFound(f"{SINGULAR[kind]} {obj_id} not found.")
        return obj

    def live(self, kind: str, site_id: int) -> list[dict]:
        """Every live (not soft-deleted) object of a kind on one site, in id order."""
        return [obj for obj in self.by_site[kind][site_id].values() if obj["deleted_at"] is None]

    def by_old_provider_id(self, kind: str, site_id: int, old_id: str) -> dict | None:
        return next((o for o in self.live(kind, site_id) if o.get("old_provider_id") == old_id), None)

    def account_of(self, site_id: int) -> Account:
        return self.site_owner[site_id]
