"""What every Core API request goes through around its handler.

Order: latency → API key (401) → forced 429 → the account's limit (429, not counted) →
injected 5xx → due background jobs run → `site_id` of the key's own account (400/403;
not for `GET /account`) → query parameters → JSON body → handler.
Every request is then written to the request log, with the outcome.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.errors import (
    APIError,
    Forbidden,
    RateLimited,
    Unauthenticated,
    ValidationError,
)
from sandbox.runtime import Sandbox
from sandbox.store import Account, Store

logger = logging.getLogger("sandbox")


@dataclass(frozen=True)
class Call:
    """One authorised Core API call, as a handler sees it."""

    store: Store
    account: Account
    site_id: int | None
    path_params: dict
    query: object  # starlette QueryParams
    body: dict
    url: str  # scheme://host/path, no query
    queue_job: Callable[[str, int, list[int]], None]  # (kind, site_id, ids): background work for later

    @property
    def id(self) -> int:
        return self.path_params["id"]


def authenticate(store: Store, header: str | None) -> Account:
    scheme, _, key = (header or "").partition(" ")
    account = store.by_key.get(key.strip()) if scheme.lower() == "bearer" else None
    if account is None:
        raise Unauthenticated()
    return account


def site_of(request: Request, account: Account) -> int:
    raw = request.query_params.get("site_id")
    if raw is None or raw == "":
        raise ValidationError({"site_id": ["The site id field is required."]})
    try:
        site_id = int(raw)
    except ValueError:
        raise ValidationError({"site_id": ["The site id must be an integer."]}) from None
    if site_id not in account.sites:
        # Same answer whether the site exists elsewhere or not at all.
        raise Forbidden(f"This API key cannot access site {site_id}.")
    return site_id


def check_params(request: Request, allowed: tuple[str, ...]) -> None:
    """Refuse query parameters the operation does not document (400 naming each)."""
    errors = {
        key: [f"The {key} parameter is not supported on {request.method} {request.url.path}."]
        for key in request.query_params
        if key not in allowed
    }
    if errors:
        raise ValidationError(errors)


def parse_body(raw: bytes, site_id: int | None) -> dict:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ValidationError({"body": ["The request body must be a JSON object."]})
    if "site_id" in body and body["site_id"] != site_id:
        raise ValidationError({"site_id": ["The site id in the body must match the site_id query parameter."]})
    return body


def core_endpoint(
    handler: Callable[[Call], tuple[int, dict | None]],
    *,
    site: bool = True,
    params: tuple[str, ...] | None = ("site_id",),
):
    """Wrap a handler `(Call) -> (status, payload)` into a Starlette endpoint.

    `site=False` for the one operation without `site_id` (`GET /account`). `params` lists
    the accepted query parameters; None when the handler validates its query itself (lists).
    A None payload answers with an empty body (204).
    """

    async def endpoint(request: Request) -> Response:
        sandbox: Sandbox = request.app.state.sandbox
        started = time.perf_counter()
        knobs = sandbox.knobs
        raw = await request.body()
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms / 1000)
        account: Account | None = None
        fault = None
        # From here on nothing awaits, so a write is applied atomically.
        try:
            account = authenticate(sandbox.store, request.headers.get("authorization"))
            if forced := sandbox.faults.forced_429(knobs):
                fault = "force_429"
                raise forced
            limit = sandbox.rate_limit_of(account)
            if (retry_after := sandbox.limiter.hit(account.slug, limit)) is not None:
                raise RateLimited(retry_after)
            if injected := sandbox.faults.server_error(knobs):
                fault = "error"
                raise injected
            sandbox.run_due_jobs()
            site_id = site_of(request, account) if site else None
            if params is not None:
                check_params(request, params)
            call = Call(
                sandbox.store,
                account,
                site_id,
                request.path_params,
                request.query_params,
                parse_body(raw, site_id),
                f"{request.url.scheme}://{request.url.netloc}{request.url.path}",
                sandbox.queue_job,
            )
            status, payload = handler(call)
            response = Response(status_code=status) if payload is None else JSONResponse(payload, status)
        except APIError as exc:
            response = JSONResponse(exc.body(), exc.status, headers=exc.headers)
        except Exception:
            logger.exception("sandbox handler failed: %s %s", request.method, request.url.path)
            response = JSONResponse({"error": {"status": 500, "message": "Internal sandbox error."}}, 500)
        sandbox.log.record(
            api="core",
            account=account.slug if account else None,
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            status=response.status_code,
            body=raw,
            duration_ms=(time.perf_counter() - started) * 1000,
            fault=fault,
        )
        return response

    return endpoint
