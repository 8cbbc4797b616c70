"""The sandbox's Starlette app: Core API routes under /api/v1/core, admin under /_sandbox.

Handlers are thin: the pipeline authorises and logs, the resource modules hold the rules.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route

from sandbox import admin, charges, customers, invoices, subscriptions
from sandbox.config import StartupConfig
from sandbox.errors import MethodNotAllowed, NotFound
from sandbox.listing import LISTS, envelope, parse_list_query, select
from sandbox.pipeline import Call, core_endpoint
from sandbox.runtime import Sandbox

BASE = "/api/v1/core"


def list_of(kind: str):
    spec = LISTS[kind]

    def handler(call: Call):
        query = parse_list_query(call.query, spec)
        return 200, envelope(select(call.store.live(kind, call.site_id), query), query, call.url, call.query)

    return core_endpoint(handler)


def one_of(kind: str):
    return core_endpoint(lambda call: (200, {"data": call.store.get(kind, call.site_id, call.path_params["id"])}))


def create(operation, status: int = 201):
    """POST a new object: `operation(store, site_id, body)`."""
    return core_endpoint(lambda call: (status, {"data": operation(call.store, call.site_id, call.body)}))


def change(operation):
    """Act on one object with a body: `operation(store, site_id, id, body)`."""
    return core_endpoint(lambda call: (200, {"data": operation(call.store, call.site_id, call.path_params["id"], call.body)}))


def transition(operation):
    """Act on one object, no body: `operation(store, site_id, id)`."""
    return core_endpoint(lambda call: (200, {"data": operation(call.store, call.site_id, call.path_params["id"])}))


def _unrouted(request: Request):
    """An authorised call to no operation: 405 if the path exists with other methods, else 404."""

    def handler(call: Call):
        for route in request.app.routes:
            if route.path != BASE + "/{rest:path}" and route.matches(request.scope)[0] == Match.PARTIAL:
                raise MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}.")
        raise NotFound(f"No Core API operation at {request.method} {request.url.path}.")

    return handler


async def unrouted(request: Request):
    return await core_endpoint(_unrouted(request))(request)


ROUTES = [
    Route(f"{BASE}/customers", list_of("customers"), methods=["GET"]),
    Route(f"{BASE}/customers", create(customers.create_customer), methods=["POST"]),
    Route(f"{BASE}/customers/{{id:int}}", one_of("customers"), methods=["GET"]),
    Route(f"{BASE}/customers/{{id:int}}", change(customers.update_customer), methods=["PUT"]),
    Route(f"{BASE}/customers/{{id:int}}", transition(customers.delete_customer), methods=["DELETE"]),
    Route(f"{BASE}/subscriptions", list_of("subscriptions"), methods=["GET"]),
    Route(f"{BASE}/subscriptions", create(subscriptions.create_subscription), methods=["POST"]),
    Route(f"{BASE}/subscriptions/{{id:int}}", one_of("subscriptions"), methods=["GET"]),
    Route(f"{BASE}/subscriptions/{{id:int}}/cancel", change(subscriptions.cancel_subscription), methods=["POST"]),
    Route(f"{BASE}/invoices", list_of("invoices"), methods=["GET"]),
    Route(f"{BASE}/invoices", create(invoices.create_invoice), methods=["POST"]),
    Route(f"{BASE}/invoices/{{id:int}}", one_of("invoices"), methods=["GET"]),
    Route(f"{BASE}/invoices/{{id:int}}", change(invoices.update_invoice), methods=["PUT"]),
    Route(f"{BASE}/invoices/{{id:int}}/pay_offline", change(invoices.pay_offline), methods=["POST"]),
    Route(f"{BASE}/invoices/{{id:int}}/void", transition(invoices.void_invoice), methods=["POST"]),
    Route(f"{BASE}/invoices/{{id:int}}/uncollectible", transition(invoices.mark_uncollectible), methods=["POST"]),
    Route(f"{BASE}/plans", list_of("plans"), methods=["GET"]),
    Route(f"{BASE}/plans/{{id:int}}", one_of("plans"), methods=["GET"]),
    Route(f"{BASE}/coupons", list_of("coupons"), methods=["GET"]),
    Route(f"{BASE}/coupons/{{id:int}}", one_of("coupons"), methods=["GET"]),
    Route(f"{BASE}/charges", list_of("charges"), methods=["GET"]),
    Route(f"{BASE}/charges", create(charges.create_offline_charge), methods=["POST"]),
    Route(f"{BASE}/charges/{{id:int}}", one_of("charges"), methods=["GET"]),
    *admin.ROUTES,
    Route(BASE + "/{rest:path}", unrouted, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
]


async def _json_404(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": {"status": 404, "message": "Not found."}}, 404)


async def _json_405(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": {"status": 405, "message": "Method not allowed."}}, 405)


def create_app(config: StartupConfig) -> Starlette:
    """The sandbox app, seeded from `config`."""
    app = Starlette(routes=ROUTES, exception_handlers={404: _json_404, 405: _json_405})
    app.state.sandbox = Sandbox(config)
    return app
