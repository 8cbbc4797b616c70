"""Stored objects → Core API objects (CORE_API.md §8), and `expand` (§6).

Internal keys (`site_id`, `deleted_at` except on charges, anything starting with `_`) are
never shown. Charge metadata keys starting with `pelcro` are hidden [chg-ov]. An invoice's
`payment_link` is set only while it is open or past_due; `hosted_invoice_url` and
`invoice_pdf` are null until it is finalized (**chosen** URLs under `PUBLIC_LINK_BASE`).

Expand (**chosen** placement): a customer's `addresses` and `subscriptions` appear (lists)
only when expanded, `default_source` is the source object when `defaultSource` is expanded
(else null) and `organization` becomes the organization object; a subscription's `plan`,
`coupon`, `address`, `default_source`, `latest_invoice` ids become objects; an invoice gains
`subscription` (its `subscription_id` stays); an address gains `user` (`user_id` stays); a
refund gains `charge` with `include=charge`. Expanded objects are not expanded further. A
link to a since-deleted object (subscription → plan, invoice → subscription) still expands.
"""

from __future__ import annotations

from sandbox.store import INTERNAL_KEYS, Store

PUBLIC_LINK_BASE = "https://sandbox.pelcro.invalid"


def present(kind: str, obj: dict) -> dict:
    """The API view of one stored object (a new dict)."""
    shown = {k: v for k, v in obj.items() if not k.startswith("_") and k not in INTERNAL_KEYS}
    if kind == "charges":
        shown["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if not k.lower().startswith("pelcro")}
        shown["deleted_at"] = obj.get("deleted_at")
    elif kind == "invoices":
        finalized = obj["finalized_at"] is not None
        shown["payment_link"] = (
            f"{PUBLIC_LINK_BASE}/pay/{obj['site_id']}/{obj['number']}"
            if obj["status"] in ("open", "past_due")
            else None
        )
        shown["hosted_invoice_url"] = f"{PUBLIC_LINK_BASE}/invoices/{obj['number']}" if finalized else None
        shown["invoice_pdf"] = f"{PUBLIC_LINK_BASE}/invoices/{obj['number']}.pdf" if finalized else None
    elif kind == "customers":
        shown["default_source"] = None
    return shown


def _one(store: Store, kind: str, site_id: int, obj_id: int | None) -> dict | None:
    found = store.find(kind, site_id, obj_id) if obj_id is not None else None
    return present(kind, found) if found is not None else None


def _expand_customer(store: Store, site_id: int, shown: dict, stored: dict, tokens: tuple[str, ...]) -> None:
    for token in tokens:
        if token == "addresses":
            shown["addresses"] = [
                present("addresses", a) for a in store.live("addresses", site_id) if a["user_id"] == stored["id"]
            ]
        elif token == "subscriptions":
            shown["subscriptions"] = [
                present("subscriptions", s)
                for s in store.live("subscriptions", site_id)
                if s["user_id"] == stored["id"]
            ]
        elif token == "defaultSource":
            shown["default_source"] = _one(store, "sources", site_id, stored["default_source_id"])
        elif token == "organization":
            shown["organization"] = _one(store, "organizations", site_id, stored["organization"])


_SUBSCRIPTION_LINKS = {
    "plan": "plans",
    "coupon": "coupons",
    "address": "addresses",
    "default_source": "sources",
    "latest_invoice": "invoices",
}


def shown(
    store: Store, kind: str, site_id: int, obj: dict, expand: tuple[str, ...] = (), include: tuple[str, ...] = ()
) -> dict:
    """`present()` plus the requested expansions (tokens already validated)."""
    view = present(kind, obj)
    if kind == "customers":
        _expand_customer(store, site_id, view, obj, expand)
    elif kind == "subscriptions":
        for token in expand:
            target = _SUBSCRIPTION_LINKS[token]
            found = store.by_site[target][site_id].get(obj[token]) if obj[token] is not None else None
            # Links to since-deleted objects still expand: the subscription keeps pointing at them.
            view[token] = present(target, found) if found is not None else None
    elif kind == "invoices" and "subscription" in expand:
        found = store.by_site["subscriptions"][site_id].get(obj["subscription_id"]) if obj["subscription_id"] else None
        view["subscription"] = present("subscriptions", found) if found is not None else None
    elif kind == "addresses" and "user" in expand:
        view["user"] = _one(store, "customers", site_id, obj["user_id"])
    elif kind == "refunds" and "charge" in include:
        found = store.by_site["charges"][site_id].get(obj["charge_id"])
        view["charge"] = present("charges", found) if found is not None else None
    return view
