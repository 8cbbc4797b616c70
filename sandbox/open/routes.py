"""The Open API's routes under /api/v1/sdk (OPEN_API.md §5), as thin handlers.

Every operation takes `site_id` (query, or body); P = needs the subscriber's JWT. Paths
not listed answer 400 (`No Open API operation at ...`, the contract's "anything not listed
is outside the contract"). IdP login and password reset are not modelled (400).
"""

from __future__ import annotations

from starlette.routing import Route

from sandbox.errors import BusinessRuleError
from sandbox.open import addresses, auth, customer, members, newsletters, payments, site, subscriptions
from sandbox.open.pipeline import BASE, OpenCall, open_endpoint


def public(handler):
    return open_endpoint(handler, protected=False)


def protected(handler):
    return open_endpoint(handler, protected=True)


def _unrouted(call: OpenCall):
    raise BusinessRuleError("No Open API operation here; see OPEN_API.md §5 for the operations the sandbox serves.")


ID = "{id:int}"
ROUTES = [
    Route(f"{BASE}/site", public(site.get_site), methods=["GET"]),
    Route(f"{BASE}/plan", public(site.get_plan), methods=["GET", "POST"]),
    Route(f"{BASE}/auth/register", public(auth.register), methods=["POST"]),
    Route(f"{BASE}/auth/login", public(auth.login), methods=["POST"]),
    Route(f"{BASE}/auth/logout", protected(auth.logout), methods=["POST"]),
    Route(f"{BASE}/auth/passwordless/request", public(auth.passwordless_request), methods=["POST"]),
    Route(f"{BASE}/auth/passwordless/login", public(auth.passwordless_login), methods=["POST"]),
    Route(f"{BASE}/customer/refresh", protected(auth.refresh), methods=["POST"]),
    Route(f"{BASE}/customer", protected(customer.get_customer), methods=["POST"]),
    Route(f"{BASE}/customer", protected(customer.update_customer), methods=["PUT"]),
    Route(f"{BASE}/subscription", protected(subscriptions.create), methods=["POST"]),
    Route(f"{BASE}/order", protected(subscriptions.order), methods=["POST"]),
    Route(f"{BASE}/subscription/cancel", protected(subscriptions.cancel), methods=["POST"]),
    Route(f"{BASE}/subscription/reactivate", protected(subscriptions.reactivate), methods=["POST"]),
    Route(f"{BASE}/subscription/renew", protected(subscriptions.renew), methods=["POST"]),
    Route(f"{BASE}/payment_methods", protected(payments.list_methods), methods=["GET"]),
    Route(f"{BASE}/payment_methods", protected(payments.create_method), methods=["POST"]),
    Route(f"{BASE}/payment_methods/{ID}", protected(payments.update_method), methods=["PUT"]),
    Route(f"{BASE}/payment_methods/{ID}", protected(payments.delete_method), methods=["DELETE"]),
    Route(f"{BASE}/source", protected(payments.create_source), methods=["POST"]),
    Route(f"{BASE}/address", protected(addresses.create), methods=["POST"]),
    Route(f"{BASE}/address/{ID}", protected(addresses.update), methods=["PUT"]),
    Route(f"{BASE}/invoices/{ID}/pay", protected(payments.pay_invoice), methods=["POST"]),
    Route(f"{BASE}/subscriptions/{ID}/members/list", protected(members.list_members), methods=["GET"]),
    Route(f"{BASE}/subscriptions/{ID}/members/invite", protected(members.invite), methods=["POST"]),
    Route(f"{BASE}/subscriptions/{ID}/members/{{member_id:int}}", protected(members.remove), methods=["DELETE"]),
    Route(f"{BASE}/newsletter", public(newsletters.subscribe), methods=["POST"]),
    Route(f"{BASE}/newsletter/{{email}}", public(newsletters.get), methods=["GET"]),
    Route(f"{BASE}/newsletter/{{email}}", public(newsletters.update), methods=["PUT"]),
    Route(f"{BASE}/newsletter/{{email}}", public(newsletters.unsubscribe), methods=["DELETE"]),
]
CATCH_ALL = Route(BASE + "/{rest:path}", public(_unrouted), methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
