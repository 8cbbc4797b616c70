"""What every Open API request goes through around its handler (OPEN_API.md §1, §2).

Order: latency → `site_id` (query, or body; 400 when missing, not an integer or no such
site) → forced 429 → the per-site Open limit (knob `open_rate_limit`, off by default;
429 `Too Many Attempts.` + Retry-After) → injected 5xx → due background jobs → the
subscriber's JWT on protected operations (401/403, `tokens.py`) → body → handler.
Every request is written to the shared request log with `api: "open"`, the site's account
and, once a token was accepted, the customer id (never the token; `/auth/*` bodies, which
carry passwords, are logged without their hash).

Bodies are JSON or form-encoded (§1). **chosen:** in a form body, a value of only digits
is read as an integer and `true`/`false` as booleans, so both encodings validate alike.
A `site_id` in the body must match the query's when both are given.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.errors import APIError, RateLimited, ValidationError
from sandbox.open import tokens
from sandbox.runtime import Sandbox
from sandbox.store import Account, Site, Store

logger = logging.getLogger("sandbox")
BASE = "/api/v1/sdk"
_DIGITS = re.compile(r"^-?\d{1,18}$")


@dataclass
class OpenCall:
    """One Open API call as a handler sees it (`customer` None on public operations)."""

    sandbox: Sandbox
    account: Account
    site: Site
    customer: dict | None
    claims: dict | None
    path_params: dict
    query: object  # starlette QueryParams
    body: dict
    issuer: str  # the `iss` of new tokens

    @property
    def store(self) -> Store:
        return self.sandbox.store

    @property
    def site_id(self) -> int:
        return self.site.id

    def new_token(self, customer_id: int | None = None) -> str:
        """A fresh token for the caller (or `customer_id`); earlier tokens stay valid."""
        return tokens.issue(
            self.store,
            self.sandbox.jwt_secret,
            self.site,
            customer_id if customer_id is not None else self.customer["id"],
            self.issuer,
        )

    def param(self, name: str):
        """A field from the body, else the query string (GET /plan, GET /site take either)."""
        return self.body[name] if name in self.body else self.query.get(name)


def _form_value(value: str):
    if _DIGITS.match(value):
        return int(value)
    return {"true": True, "false": False}.get(value, value)


def parse_body(raw: bytes, content_type: str) -> dict:
    if not raw.strip():
        return {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        try:
            pairs = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True)
        except (ValueError, UnicodeDecodeError):
            raise ValidationError({"body": ["The request body is not valid form encoding."]}) from None
        body: dict = {}
        for key, value in pairs:
            if key.endswith("[]"):
                body.setdefault(key[:-2], []).append(_form_value(value))
            else:
                body[key] = _form_value(value)
        return body
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ValidationError({"body": ["The request body must be a JSON object (or form-encoded fields)."]})
    return body


def site_of(store: Store, request: Request, body: dict) -> Site:
    """The site named by `site_id` in the query, else the body (400 naming the problem)."""
    raw = request.query_params.get("site_id")
    if (raw is None or raw == "") and "site_id" in body:
        raw = body["site_id"]
    if raw is None or raw == "":
        raise ValidationError({"site_id": ["The site id field is required (query parameter site_id)."]})
    try:
        site_id = int(raw) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        site_id = None
    if site_id is None:
        raise ValidationError({"site_id": ["The site id must be an integer."]})
    if "site_id" in body and request.query_params.get("site_id") not in (None, "") and body["site_id"] != site_id:
        raise ValidationError({"site_id": ["The site id in the body must match the site_id query parameter."]})
    account = store.site_owner.get(site_id)
    if account is None:
        raise ValidationError({"site_id": [f"The selected site id {site_id} is invalid."]})
    return account.sites[site_id]


def open_endpoint(handler, *, protected: bool):
    """Wrap `handler(OpenCall) -> (status, payload)` into a Starlette endpoint (None → 204)."""

    async def endpoint(request: Request) -> Response:
        sandbox: Sandbox = request.app.state.sandbox
        started = time.perf_counter()
        knobs = sandbox.knobs
        raw = await request.body()
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms / 1000)
        account: Account | None = None
        customer: dict | None = None
        fault = None
        # From here on nothing awaits, so a write is applied atomically.
        try:
            body = parse_body(raw, request.headers.get("content-type", ""))
            site = site_of(sandbox.store, request, body)
            account = sandbox.store.account_of(site.id)
            if forced := sandbox.faults.forced_429(knobs):
                fault = "force_429"
                raise forced
            if knobs.open_rate_limit is not None:
                retry_after = sandbox.limiter.hit(f"open:{site.id}", knobs.open_rate_limit)
                if retry_after is not None:
                    raise RateLimited(retry_after)
            if injected := sandbox.faults.server_error(knobs):
                fault = "error"
                raise injected
            sandbox.run_due_jobs()
            claims = None
            if protected:
                customer, claims = tokens.authenticate(
                    sandbox.store, sandbox.jwt_secret, request.headers.get("authorization"), site.id
                )
            body.pop("site_id", None)
            issuer = f"{request.url.scheme}://{request.url.netloc}{BASE}/customer"
            call = OpenCall(
                sandbox, account, site, customer, claims, request.path_params, request.query_params, body, issuer
            )
            status, payload = handler(call)
            response = Response(status_code=status) if payload is None else JSONResponse(payload, status)
        except APIError as exc:
            response = JSONResponse(exc.body(), exc.status, headers=exc.headers)
        except Exception:
            logger.exception("sandbox handler failed: %s %s", request.method, request.url.path)
            response = JSONResponse({"error": {"status": 500, "message": "Internal sandbox error."}}, 500)
        sandbox.log.record(
            api="open",
            account=account.slug if account else None,
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            status=response.status_code,
            # Auth bodies carry passwords: not even their hash goes to the log.
            body=b"" if request.url.path.startswith(f"{BASE}/auth/") else raw,
            duration_ms=(time.perf_counter() - started) * 1000,
            fault=fault,
            customer=customer["id"] if customer else None,
        )
        return response

    return endpoint
