"""Site configuration and plans (OPEN_API.md §5.2): `GET /site`, `GET|POST /plan`.

**chosen** site shape: `id`, `account` (account id), `name`, `link`, `default_currency`,
`default_locale`, `ecommerce_enabled` (true), `passwordless_enabled`,
`passwordless_token_duration`, `email_verify_enabled`, `taxes_enabled`, `tax_inclusive`
(false), `logo` (null), `settings` (the site's Open settings, §6), `products` (each `id`,
`name`, `ships`, `plans`: the product's active, online plans in their Core shape),
`paywalls` ([]), `newsletters` (the site's newsletter lists: `[{"id": "default", "name":
"Newsletter"}]`), `design_settings` ({}), `payment_gateway` (the account's). No edge cache:
changes show at once. Products: the demo plans of one site share two products, "Digital"
and "Print"; **chosen:** a plan ships (its subscriptions need an `address_id`) when its
product is Print.

`/plan`: `plan_id` (int, body or query) required; a plan of this site that is active and
available online, else 404 `Invalid plan provided.`; answers `{"data": plan}` with
`product` (`{id, name, ships}`) and `address_required`. `language` is accepted (`en`, `fr`,
`it`, `ko`, `es`, `de`; others fall back to `en`).
"""

from __future__ import annotations

from dataclasses import asdict

from sandbox.core.present import present
from sandbox.errors import NotFound, ValidationError
from sandbox.open.pipeline import OpenCall
from sandbox.store import Store

NEWSLETTER_LISTS = [{"id": "default", "name": "Newsletter"}]


def ships(plan: dict) -> bool:
    """Print plans ship (need a shipping address); digital ones do not."""
    return "Print" in plan["nickname"]


def product_of(plan: dict) -> dict:
    name = "Print" if ships(plan) else "Digital"
    return {"id": plan["product_id"], "name": name, "ships": ships(plan)}


def offered(store: Store, site_id: int) -> list[dict]:
    """Plans a subscriber may pick: active and available online."""
    return [p for p in store.live("plans", site_id) if p["active"] == "active" and p["available_online"]]


def find_plan(store: Store, site_id: int, plan_id) -> dict:
    """An offered plan of the site, else 404 (OPEN_API.md §4: invalid plan → 404)."""
    plan = store.find("plans", site_id, plan_id) if isinstance(plan_id, int) and not isinstance(plan_id, bool) else None
    if plan is None or plan["active"] != "active" or not plan["available_online"]:
        raise NotFound("Invalid plan provided.")
    return plan


def plan_view(plan: dict) -> dict:
    return {**present("plans", plan), "product": product_of(plan), "address_required": ships(plan)}


def get_site(call: OpenCall):
    site, account = call.site, call.account
    products: dict[int, dict] = {}
    for plan in offered(call.store, site.id):
        product = products.setdefault(plan["product_id"], {**product_of(plan), "plans": []})
        product["plans"].append(present("plans", plan))
    return 200, {
        "data": {
            "id": site.id,
            "account": account.id,
            "name": site.name,
            "link": site.url,
            "default_currency": site.currency,
            "default_locale": site.default_locale,
            "ecommerce_enabled": True,
            "passwordless_enabled": site.open.passwordless_enabled,
            "passwordless_token_duration": site.open.passwordless_token_duration,
            "email_verify_enabled": site.open.email_verify_enabled,
            "taxes_enabled": account.taxes_enabled,
            "tax_inclusive": False,
            "logo": None,
            "settings": asdict(site.open),
            "products": list(products.values()),
            "paywalls": [],
            "newsletters": NEWSLETTER_LISTS,
            "design_settings": {},
            "payment_gateway": account.payment_gateway,
        }
    }


def get_plan(call: OpenCall):
    plan_id = call.param("plan_id")
    if plan_id is None or plan_id == "":
        raise ValidationError({"plan_id": ["The plan id field is required."]})
    if isinstance(plan_id, str):
        if not plan_id.strip().isdigit():
            raise ValidationError({"plan_id": ["The plan id must be an integer."]})
        plan_id = int(plan_id)
    if isinstance(plan_id, bool) or not isinstance(plan_id, int):
        raise ValidationError({"plan_id": ["The plan id must be an integer."]})
    return 200, {"data": plan_view(find_plan(call.store, call.site_id, plan_id))}
