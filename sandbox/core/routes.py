"""The Core API's routes under /api/v1/core (CORE_API.md §8), as thin handlers.

The pipeline authorises, limits and logs; `listing` parses list queries; the resource
modules hold the rules; `present` renders objects. Deletes answer 204 with no body
(**chosen**), creates 201, `POST /refunds/cancelled` 202.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Match, Route

from sandbox.core import (
    account,
    addresses,
    charges,
    customers,
    invoices,
    refunds,
    sources,
    subscriptions,
)
from sandbox.core.listing import LISTS, envelope, parse_list_query, parse_tokens, select
from sandbox.core.pipeline import Call, core_endpoint
from sandbox.core.present import shown
from sandbox.errors import MethodNotAllowed, NotFound, ValidationError

BASE = "/api/v1/core"


def list_of(kind: str):
    spec = LISTS[kind]

    def handler(call: Call):
        query = parse_list_query(call.query, spec, kind)
        items = select(call.store.live(kind, call.site_id), query)
        start = (query.page - 1) * query.limit
        page = [
            shown(call.store, kind, call.site_id, obj, query.expand, query.include)
            for obj in items[start : start + query.limit]
        ]
        return 200, envelope(page, len(items), query, call.url, call.query)

    return core_endpoint(handler, params=None)


def one_of(kind: str):
    """`GET /<kind>/{id}`, with `expand` where the resource has it."""
    allowed = LISTS[kind].expand

    def handler(call: Call):
        errors: dict = {}
        expand = parse_tokens(call.query, "expand", allowed, kind, errors) if allowed else ()
        if errors:
            raise ValidationError(errors)
        return 200, {"data": shown(call.store, kind, call.site_id, call.store.get(kind, call.site_id, call.id), expand)}

    return core_endpoint(handler, params=("site_id", "expand") if allowed else ("site_id",))


def write(kind: str, operation, status: int = 200):
    """Run `operation(call)` → stored object, answered as `{"data": object}`."""
    return core_endpoint(lambda call: (status, {"data": shown(call.store, kind, call.site_id, operation(call))}))


def delete(operation):
    def handler(call: Call):
        operation(call.store, call.site_id, call.id)
        return 204, None

    return core_endpoint(handler)


def _unrouted(request: Request):
    """An authorised call to no operation: 405 if the path exists with other methods, else 404."""

    def handler(call: Call):
        for route in request.app.routes:
            if route.path != BASE + "/{rest:path}" and route.matches(request.scope)[0] == Match.PARTIAL:
                raise MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
        raise NotFound(f"No Core API operation at {request.method} {request.url.path}.")

    return handler


async def unrouted(request: Request):
    return await core_endpoint(_unrouted(request), site=False, params=None)(request)


def _cancel_refunds(call: Call):
    return 202, {"data": {"queued": refunds.cancel_refunds(call.store, call.site_id, call.body, call.queue_job)}}


def _site(call: Call):
    return 200, {"data": account.site_view(call.account.sites[call.site_id])}


ID = "{id:int}"
ROUTES = [
    Route(
        f"{BASE}/account",
        core_endpoint(lambda call: (200, {"data": account.account_view(call.account)}), site=False, params=()),
        methods=["GET"],
    ),
    Route(f"{BASE}/sites", core_endpoint(_site), methods=["GET"]),
    Route(f"{BASE}/customers", list_of("customers"), methods=["GET"]),
    Route(
        f"{BASE}/customers",
        write("customers", lambda c: customers.create_customer(c.store, c.account, c.site_id, c.body), 201),
        methods=["POST"],
    ),
    Route(f"{BASE}/customers/{ID}", one_of("customers"), methods=["GET"]),
    Route(
        f"{BASE}/customers/{ID}",
        write("customers", lambda c: customers.update_customer(c.store, c.account, c.site_id, c.id, c.body)),
        methods=["PUT"],
    ),
    Route(f"{BASE}/customers/{ID}", delete(customers.delete_customer), methods=["DELETE"]),
    Route(f"{BASE}/subscriptions", list_of("subscriptions"), methods=["GET"]),
    Route(
        f"{BASE}/subscriptions",
        write("subscriptions", lambda c: subscriptions.create_subscription(c.store, c.site_id, c.body), 201),
        methods=["POST"],
    ),
    Route(f"{BASE}/subscriptions/{ID}", one_of("subscriptions"), methods=["GET"]),
    Route(
        f"{BASE}/subscriptions/{ID}",
        write("subscriptions", lambda c: subscriptions.cancel_subscription(c.store, c.site_id, c.id, c.body)),
        methods=["DELETE"],
    ),
    Route(f"{BASE}/invoices", list_of("invoices"), methods=["GET"]),
    Route(
        f"{BASE}/invoices",
        write("invoices", lambda c: invoices.create_invoice(c.store, c.account, c.site_id, c.body), 201),
        methods=["POST"],
    ),
    Route(f"{BASE}/invoices/{ID}", one_of("invoices"), methods=["GET"]),
    Route(
        f"{BASE}/invoices/{ID}",
        write("invoices", lambda c: invoices.update_invoice(c.store, c.site_id, c.id, c.body)),
        methods=["PUT"],
    ),
    Route(
        f"{BASE}/invoices/{ID}/pay_offline",
        write("invoices", lambda c: invoices.pay_offline(c.store, c.site_id, c.id, c.body)),
        methods=["POST"],
    ),
    Route(
        f"{BASE}/invoices/{ID}/void",
        write("invoices", lambda c: _no_body(c) or invoices.void_invoice(c.store, c.site_id, c.id)),
        methods=["POST"],
    ),
    Route(
        f"{BASE}/invoices/{ID}/uncollectible",
        write("invoices", lambda c: _no_body(c) or invoices.mark_uncollectible(c.store, c.site_id, c.id)),
        methods=["POST"],
    ),
    Route(
        f"{BASE}/invoices/{ID}/apply_balance",
        write("invoices", lambda c: invoices.apply_balance(c.store, c.site_id, c.id, c.body)),
        methods=["POST"],
    ),
    Route(f"{BASE}/plans", list_of("plans"), methods=["GET"]),
    Route(f"{BASE}/plans/{ID}", one_of("plans"), methods=["GET"]),
    Route(f"{BASE}/coupons", list_of("coupons"), methods=["GET"]),
    Route(f"{BASE}/coupons/{ID}", one_of("coupons"), methods=["GET"]),
    Route(f"{BASE}/charges", list_of("charges"), methods=["GET"]),
    Route(
        f"{BASE}/charges",
        write("charges", lambda c: charges.create_offline_charge(c.store, c.account, c.site_id, c.body), 201),
        methods=["POST"],
    ),
    Route(f"{BASE}/charges/{ID}", one_of("charges"), methods=["GET"]),
    Route(f"{BASE}/refunds", list_of("refunds"), methods=["GET"]),
    Route(f"{BASE}/refunds/cancelled", core_endpoint(_cancel_refunds), methods=["POST"]),
    Route(f"{BASE}/addresses", list_of("addresses"), methods=["GET"]),
    Route(
        f"{BASE}/addresses",
        write("addresses", lambda c: addresses.create_address(c.store, c.account, c.site_id, c.body), 201),
        methods=["POST"],
    ),
    Route(f"{BASE}/addresses/{ID}", one_of("addresses"), methods=["GET"]),
    Route(
        f"{BASE}/addresses/{ID}",
        write("addresses", lambda c: addresses.update_address(c.store, c.account, c.site_id, c.id, c.body)),
        methods=["PUT"],
    ),
    Route(f"{BASE}/addresses/{ID}", delete(addresses.delete_address), methods=["DELETE"]),
    Route(f"{BASE}/sources/{ID}", delete(sources.delete_source), methods=["DELETE"]),
]
CATCH_ALL = Route(BASE + "/{rest:path}", unrouted, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])


def _no_body(call: Call) -> None:
    """void / uncollectible take no body fields."""
    errors = {key: [f"The {key.replace('_', ' ')} field is not allowed here."] for key in call.body if key != "site_id"}
    if errors:
        raise ValidationError(errors)
