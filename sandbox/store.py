"""The sandbox's in-memory state: accounts, sites, keys and every Core API object.

Objects are plain dicts shaped exactly as the API shows them (plus `site_id`), indexed
by site, then id (ids are unique across the whole sandbox). All access from the handlers is
synchronous, so each change is atomic on the single event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.errors import NotFound

KINDS = ("customers", "subscriptions", "invoices", "plans", "coupons", "charges")
_SINGULAR = {
    "customers": "Customer",
    "subscriptions": "Subscription",
    "invoices": "Invoice",
    "plans": "Plan",
    "coupons": "Coupon",
    "charges": "Charge",
}


@dataclass
class Account:
    slug: str
    name: str
    api_key: str
    sites: dict[int, str] = field(default_factory=dict)  # site_id -> site name


class Store:
    """Accounts and objects of one sandbox; `next_id()` hands out globally unique ids."""

    def __init__(self, accounts: list[Account], first_id: int = 1000):
        self.accounts = {account.slug: account for account in accounts}
        self.by_key = {account.api_key: account for account in accounts}
        self.site_owner = {site_id: account for account in accounts for site_id in account.sites}
        self.by_site: dict[str, dict[int, dict[int, dict]]] = {
            kind: {site_id: {} for site_id in self.site_owner} for kind in KINDS
        }
        self._next_id = first_id

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add(self, kind: str, obj: dict) -> dict:
        """Store a new object (it must carry `id` and `site_id`)."""
        self.by_site[kind][obj["site_id"]][obj["id"]] = obj
        return obj

    def get(self, kind: str, site_id: int, obj_id: int) -> dict:
        """The live object `obj_id` of `site_id`, else 404 (also for other sites' objects)."""
        obj = self.by_site[kind][site_id].get(obj_id)
        if obj is None or not is_live(kind, obj):
            raise NotFound(f"{_SINGULAR[kind]} {obj_id} not found.")
        return obj

    def live(self, kind: str, site_id: int) -> list[dict]:
        """Every live object of a kind on one site, in id order."""
        objs = self.by_site[kind][site_id].values()
        if kind == "customers":
            return [obj for obj in objs if obj["deleted_at"] is None]
        return list(objs)


def is_live(kind: str, obj: dict) -> bool:
    """Soft-deleted customers are gone as far as the API is concerned."""
    return kind != "customers" or obj["deleted_at"] is None
