"""The sandbox's own admin API under /_sandbox (never rate limited, never in the request log).

`GET /_sandbox/health` is public. Everything else needs the header
`X-Sandbox-Admin: <SANDBOX_ADMIN_TOKEN>`, and answers 404 when that variable is unset.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict, replace

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.clock import now_unix
from sandbox.config import ConfigError
from sandbox.errors import APIError, NotFound, Unauthenticated, ValidationError
from sandbox.records import new_refund
from sandbox.runtime import Sandbox


def admin_endpoint(handler):
    """Check the admin token, then run `handler(request, sandbox)` -> (status, payload)."""

    async def endpoint(request: Request) -> JSONResponse:
        sandbox: Sandbox = request.app.state.sandbox
        try:
            token = sandbox.config.admin_token
            if token is None:
                raise NotFound("Not found.")
            given = request.headers.get("x-sandbox-admin", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                raise Unauthenticated("Missing or wrong X-Sandbox-Admin header.")
            status, payload = handler(request, sandbox, await request.body())
        except APIError as exc:
            return JSONResponse(exc.body(), exc.status, headers=exc.headers)
        return JSONResponse(payload, status)

    return endpoint


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def get_log(request: Request, sandbox: Sandbox, raw: bytes):
    try:
        since = int(request.query_params.get("since", "0"))
    except ValueError:
        raise ValidationError({"since": ["The since must be an integer (a seq)."]}) from None
    entries = sandbox.log.entries(since, request.query_params.get("account"), request.query_params.get("api"))
    return 200, {"data": entries, "meta": {"last_seq": sandbox.log.last_seq}}


def clear_log(request: Request, sandbox: Sandbox, raw: bytes):
    sandbox.log.clear()
    return 200, {"data": {"cleared": True, "last_seq": sandbox.log.last_seq}}


def reset(request: Request, sandbox: Sandbox, raw: bytes):
    sandbox.reset()
    return 200, {"data": {"reset": True}}


def clear_limits(request: Request, sandbox: Sandbox, raw: bytes):
    """Empty the limiter (Core per account, Open per site), the Open login-failure counts
    (lifting lock-outs) and the passwordless request counts."""
    sandbox.limiter.reset()
    sandbox.store.open.login_failures.clear()
    sandbox.store.open.passwordless_requests.clear()
    return 200, {"data": {"cleared": True}}


def _site(sandbox: Sandbox, request: Request):
    site_id = request.path_params["site_id"]
    account = sandbox.store.site_owner.get(site_id)
    if account is None:
        raise NotFound(f"No site {site_id}.")
    return account.sites[site_id]


def get_open_settings(request: Request, sandbox: Sandbox, raw: bytes):
    return 200, {"data": asdict(_site(sandbox, request).open)}


_OPEN_SETTING_RANGES = {"auth_token_ttl_days": (1, 365), "passwordless_token_duration": (1, 365)}


def patch_open_settings(request: Request, sandbox: Sandbox, raw: bytes):
    """Change a site's Open API settings (OPEN_API.md §6): booleans, or integers for
    `auth_token_ttl_days` (1-365) and `passwordless_token_duration` (days, 1-365). A reset
    restores demo/accounts.json's values."""
    site = _site(sandbox, request)
    try:
        changes = json.loads(raw or b"{}")
    except ValueError:
        changes = None
    if not isinstance(changes, dict):
        raise ValidationError({"body": ["Send a JSON object of Open settings."]})
    current = asdict(site.open)
    errors = {}
    for name, value in changes.items():
        if name not in current:
            errors[name] = [f"Unknown setting; use one of: {', '.join(current)}."]
        elif name in _OPEN_SETTING_RANGES:
            low, high = _OPEN_SETTING_RANGES[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                errors[name] = [f"The {name} must be an integer from {low} to {high}."]
        elif not isinstance(value, bool):
            errors[name] = [f"The {name} must be true or false."]
    if errors:
        raise ValidationError(errors)
    site.open = replace(site.open, **changes)
    return 200, {"data": asdict(site.open)}


def outbox(request: Request, sandbox: Sandbox, raw: bytes):
    """The "emails" the Open API sent (passwordless links, email verifications), oldest
    first; optional filters `site_id` and `to`. Never reachable through the Open API."""
    site_id, to = request.query_params.get("site_id"), request.query_params.get("to")
    mails = [
        m
        for m in sandbox.store.open.outbox
        if (site_id is None or str(m["site_id"]) == site_id) and (to is None or m["to"] == to.lower())
    ]
    return 200, {"data": mails}


def get_config(request: Request, sandbox: Sandbox, raw: bytes):
    return 200, {"data": sandbox.knobs.as_dict()}


def put_config(request: Request, sandbox: Sandbox, raw: bytes):
    try:
        changes = json.loads(raw or b"{}")
    except ValueError:
        changes = None
    if not isinstance(changes, dict):
        raise ValidationError({"body": ["The request body must be a JSON object of settings."]})
    try:
        sandbox.configure(sandbox.knobs.updated(changes))
    except ConfigError as exc:
        raise ValidationError(exc.errors) from None
    return 200, {"data": sandbox.knobs.as_dict()}


def restore_config(request: Request, sandbox: Sandbox, raw: bytes):
    sandbox.configure(sandbox.config.knobs)
    return 200, {"data": sandbox.knobs.as_dict()}


def _account(sandbox: Sandbox, account) -> dict:
    return {
        "slug": account.slug,
        "name": account.name,
        "api_key": account.api_key,
        "sites": [{"site_id": site.id, "name": site.name} for site in account.sites.values()],
        "api_core_rate_limit": account.api_core_rate_limit,
        "effective_rate_limit": sandbox.rate_limit_of(account),
        "requests_in_window": sandbox.limiter.used(account.slug),
    }


def accounts(request: Request, sandbox: Sandbox, raw: bytes):
    return 200, {"data": [_account(sandbox, account) for account in sandbox.store.accounts.values()]}


def patch_account(request: Request, sandbox: Sandbox, raw: bytes):
    """Change one account's `api_core_rate_limit` (what GET /account shows and the limiter
    enforces unless the `rate_limit` knob overrides it); a reset restores the file's value."""
    account = sandbox.store.accounts.get(request.path_params["slug"])
    if account is None:
        raise NotFound(f"No account {request.path_params['slug']!r}.")
    try:
        changes = json.loads(raw or b"{}")
    except ValueError:
        changes = None
    if not isinstance(changes, dict) or set(changes) - {"api_core_rate_limit"}:
        raise ValidationError({"body": ["Send a JSON object with api_core_rate_limit (an integer ≥ 1)."]})
    limit = changes.get("api_core_rate_limit")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1_000_000_000:
        raise ValidationError(
            {"api_core_rate_limit": ["The api core rate limit must be an integer from 1 to 1000000000."]}
        )
    account.api_core_rate_limit = limit
    return 200, {"data": _account(sandbox, account)}


def create_refund(request: Request, sandbox: Sandbox, raw: bytes):
    """A pending (`to_issue`) refund of one of the site's charges, created now, as Pelcro's
    dashboard or a payment gateway would make it (the Core API cannot create refunds,
    CORE_API.md §8.8). Body: `{"charge_id": int, "amount": int (cents, optional: the
    charge's amount)}`."""
    site = _site(sandbox, request)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict) or set(body) - {"charge_id", "amount"}:
        raise ValidationError({"body": ["Send a JSON object with charge_id and, optionally, amount (cents)."]})
    charge = sandbox.store.find("charges", site.id, body.get("charge_id"))
    if charge is None:
        raise NotFound(f"No charge {body.get('charge_id')!r} on site {site.id}.")
    amount = body.get("amount", charge["amount"])
    if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= charge["amount"]:
        raise ValidationError({"amount": [f"The amount must be an integer from 1 to {charge['amount']}."]})
    refund = new_refund(
        sandbox.store.next_id(), site.id, charge, amount, now_unix(), status="to_issue", reason="requested_by_customer"
    )
    sandbox.store.add("refunds", refund)
    return 201, {"data": refund}


def run_jobs(request: Request, sandbox: Sandbox, raw: bytes):
    """Run every queued background job now (refund cancellations), whatever its delay."""
    return 200, {"data": {"ran": sandbox.run_due_jobs(all_jobs=True)}}


ROUTES = [
    Route("/_sandbox/health", health, methods=["GET"]),
    Route("/_sandbox/log", admin_endpoint(get_log), methods=["GET"]),
    Route("/_sandbox/log", admin_endpoint(clear_log), methods=["DELETE"]),
    Route("/_sandbox/reset", admin_endpoint(reset), methods=["POST"]),
    Route("/_sandbox/limits", admin_endpoint(clear_limits), methods=["DELETE"]),
    Route("/_sandbox/config", admin_endpoint(get_config), methods=["GET"]),
    Route("/_sandbox/config", admin_endpoint(put_config), methods=["PUT"]),
    Route("/_sandbox/config", admin_endpoint(restore_config), methods=["DELETE"]),
    Route("/_sandbox/accounts", admin_endpoint(accounts), methods=["GET"]),
    Route("/_sandbox/accounts/{slug}", admin_endpoint(patch_account), methods=["PATCH"]),
    Route("/_sandbox/jobs/run", admin_endpoint(run_jobs), methods=["POST"]),
    Route("/_sandbox/sites/{site_id:int}/open", admin_endpoint(get_open_settings), methods=["GET"]),
    Route("/_sandbox/sites/{site_id:int}/open", admin_endpoint(patch_open_settings), methods=["PATCH"]),
    Route("/_sandbox/outbox", admin_endpoint(outbox), methods=["GET"]),
    Route("/_sandbox/sites/{site_id:int}/refunds", admin_endpoint(create_refund), methods=["POST"]),
]
