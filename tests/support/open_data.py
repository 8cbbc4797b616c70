"""Data for the Open tools' tests, made through the sandbox's own APIs (never through the
tools under test): new subscribers registered on a site, cards saved with the Open API,
invoices made with the Core API, and the request log read back.

Tests use fresh subscribers so the shared sandbox's demo subscribers stay as other tests
expect them, and so each test knows exactly what its subscriber has.
"""

from __future__ import annotations

import secrets

import httpx

from tests.support.sandbox import DEMO, KEYS

ACCOUNT_OF_SITE = {site["site_id"]: account["slug"] for account in DEMO["accounts"] for site in account["sites"]}
# Open API calls that only read: GETs and the two reading POSTs (OPEN_API.md §5.3, §5.4).
READING = {("POST", "/api/v1/sdk/customer"), ("POST", "/api/v1/sdk/order")}


def open_api(sandbox_url: str, method: str, path: str, site_id: int, *, jwt: str | None = None, json=None):
    """One Open API call; returns the whole answer body (asserting success)."""
    headers = {"Authorization": f"Bearer {jwt}"} if jwt else {}
    response = httpx.request(
        method, f"{sandbox_url}/api/v1/sdk{path}", params={"site_id": site_id}, json=json, headers=headers, timeout=10
    )
    assert response.status_code < 300, (method, path, response.status_code, response.text)
    return response.json() if response.content else None


def core_api(sandbox_url: str, method: str, path: str, site_id: int, json=None) -> dict:
    """One Core API call as the site's account; returns `data` (asserting success)."""
    response = httpx.request(
        method,
        f"{sandbox_url}/api/v1/core{path}",
        params={"site_id": site_id},
        json=json,
        headers={"Authorization": f"Bearer {KEYS[ACCOUNT_OF_SITE[site_id]]}"},
        timeout=10,
    )
    assert response.status_code < 300, (method, path, response.status_code, response.text)
    return response.json()["data"]


def register(sandbox_url: str, site_id: int = 14) -> dict:
    """A new subscriber of `site_id` (a dict shaped as `tests.support.sandbox.SUBSCRIBERS`'),
    with no card, address, subscription or invoice yet."""
    tag = secrets.token_hex(4)
    spec = {
        "site_id": site_id,
        "email": f"open-tools-{tag}@example.com",
        "password": f"Pw-{tag}-9!aA",
        "first_name": "Test",
        "last_name": f"Reader{tag}",
    }
    body = {k: spec[k] for k in ("email", "password", "first_name", "last_name")}
    customer = open_api(sandbox_url, "POST", "/auth/register", site_id, json=body)["data"]
    spec["customer_id"] = customer["id"]
    spec["jwt"] = customer["auth_token"]
    return spec


def add_card(sandbox_url: str, subscriber: dict, token: str = "tok_visa_4242", *, default: bool = False) -> dict:
    """A card saved with the Open API (`POST /payment_methods`)."""
    body = {"token": token, "is_default": default}
    return open_api(sandbox_url, "POST", "/payment_methods", subscriber["site_id"], jwt=subscriber["jwt"], json=body)[
        "data"
    ]


def invoice(sandbox_url: str, subscriber: dict, *, status: str = "open", total: int = 1500) -> dict:
    """An invoice for the subscriber, made with the Core API (in the site's currency)."""
    site_id = subscriber["site_id"]
    currency = open_api(sandbox_url, "GET", "/site", site_id)["data"]["default_currency"]
    body = {"customer_id": subscriber["customer_id"], "currency": currency, "total": total, "status": status}
    return core_api(sandbox_url, "POST", "/invoices", site_id, json=body)


def plans(sandbox_url: str, site_id: int) -> dict[str, dict]:
    """The plans a site offers (Open `GET /site`), by nickname."""
    site = open_api(sandbox_url, "GET", "/site", site_id)["data"]
    return {p["nickname"]: p for product in site["products"] for p in product["plans"]}


def subscribe(
    sandbox_url: str, subscriber: dict, source_id: int, address_id: int | None = None, plan: str = "Digital Monthly"
) -> dict:
    """A subscription to the plan named `plan` paid by `source_id` (Open `POST /subscription`),
    using `address_id` when given."""
    plan = plans(sandbox_url, subscriber["site_id"])[plan]
    customer = open_api(
        sandbox_url,
        "POST",
        "/subscription",
        subscriber["site_id"],
        jwt=subscriber["jwt"],
        json={"plan_id": plan["id"], "source_id": source_id} | ({"address_id": address_id} if address_id else {}),
    )["data"]
    return max(customer["subscriptions"], key=lambda s: s["id"])


def add_address(sandbox_url: str, subscriber: dict, **fields) -> dict:
    """An address saved with the Open API (`POST /address`); returns it."""
    body = {"line1": "1 Test Street", "country": "GB", "city": "London", **fields}
    customer = open_api(sandbox_url, "POST", "/address", subscriber["site_id"], jwt=subscriber["jwt"], json=body)
    return max(customer["data"]["addresses"], key=lambda a: a["id"])


def writes_since(sandbox, seq: int) -> list[dict]:
    """The Open API requests since `seq` that could write (anything but the reads)."""
    return [
        e
        for e in sandbox.log(since=seq, api="open")
        if (e["method"], e["path"]) not in READING and e["method"] != "GET"
    ]


def requests_since(sandbox, seq: int, customer: int | None = None) -> list[tuple[str, str]]:
    """(method, path) of the Open API requests since `seq` (of `customer`, when given)."""
    return [
        (e["method"], e["path"])
        for e in sandbox.log(since=seq, api="open")
        if customer is None or e["customer"] in (customer, None)
    ]
