"""The sandbox's own admin API under /_sandbox (never rate limited, never in the request log).

`GET /_sandbox/health` is public. Everything else needs the header
`X-Sandbox-Admin: <SANDBOX_ADMIN_TOKEN>`, and answers 404 when that variable is unset.
"""

from __future__ import annotations

import hmac
import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.config import ConfigError
from sandbox.errors import APIError, NotFound, Unauthenticated, ValidationError
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
    entries = sandbox.log.entries(since, request.query_params.get("account"))
    return 200, {"data": entries, "meta": {"last_seq": sandbox.log.last_seq}}


def clear_log(request: Request, sandbox: Sandbox, raw: bytes):
    sandbox.log.clear()
    return 200, {"data": {"cleared": True, "last_seq": sandbox.log.last_seq}}


def reset(request: Request, sandbox: Sandbox, raw: bytes):
    sandbox.reset()
    return 200, {"data": {"reset": True}}


def clear_limits(request: Request, sandbox: Sandbox, raw: bytes):
    sandbox.limiter.reset()
    return 200, {"data": {"cleared": True}}


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


def accounts(request: Request, sandbox: Sandbox, raw: bytes):
    return 200, {
        "data": [
            {
                "slug": account.slug,
                "name": account.name,
                "api_key": account.api_key,
                "sites": [{"site_id": site_id, "name": name} for site_id, name in account.sites.items()],
                "requests_in_window": sandbox.limiter.used(account.slug),
            }
            for account in sandbox.store.accounts.values()
        ]
    }


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
]
