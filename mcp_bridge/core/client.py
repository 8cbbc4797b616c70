"""Async client for the Pelcro Core API (docs/CORE_API.md).

`CoreAPIClient` is the upstream HTTP client base (`upstream.http`) with the Core API's
shape: the account's API key as a bearer token, `site_id` on every request, answers in a
`{"data", "meta", "links"}` envelope, and errors mapped to `upstream.errors` (400/422 with
`errors` → `ValidationFailed`, other 400/409/422 → `BusinessRuleError`, 401, 403, 404).
One client per event loop per process (`get_client()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from mcp_bridge.per_loop import PerLoop
from mcp_bridge.upstream.errors import (
    BusinessRuleError,
    Forbidden,
    NotFound,
    Unauthorized,
    UpstreamError,
    ValidationFailed,
    error_message,
)
from mcp_bridge.upstream.gate import RequestGate
from mcp_bridge.upstream.http import UpstreamClient
from mcp_bridge.upstream.limiter import client_options


@dataclass(frozen=True)
class CoreAPIResponse:
    status: int
    data: Any
    meta: dict[str, Any] | None = None
    links: dict[str, Any] | None = None
    # For the answer to a write made by a tool: how to see whether it was applied (set by
    # `mcp_bridge.core.calls.core_api`), so an unreadable answer can say what to look at.
    check: str | None = None


class CoreAPIClient(UpstreamClient):
    """The Core API over `UpstreamClient`: build it with a gate (`build_client()` does)."""

    name = "Core API"

    async def request(
        self,
        method: str,
        path: str,
        *,
        account_id: int,
        api_key: str,
        site_id: int | None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        background: bool = False,
        rate_limit: int | None = None,
    ) -> CoreAPIResponse:
        """Make one Core API call for `account_id` on `site_id` with the account's key, with
        retries where they are safe (`upstream.http`), within the account's `rate_limit`
        (its own requests per minute; None: the default). `GET /account` takes no site
        (`site_id=None`, CORE_API.md §1). Raises an `UpstreamError`; an
        `UpstreamUnavailable` with `maybe_processed=True` means the write was sent once and
        its fate is unknown."""
        return await self.send(
            method,
            path,
            account_id=account_id,
            params={"site_id": site_id, **(params or {})},
            json=json,
            headers={"Authorization": f"Bearer {api_key}"},
            background=background,
            rate_limit=rate_limit,
        )

    def parse(self, response: httpx.Response, *, unsure: bool) -> CoreAPIResponse:
        """The answer as data or a typed error. `unsure`: the request was a write, so an
        answer that cannot be read must say the change may have been applied."""
        status = response.status_code
        body = self.read_body(response, unsure=unsure)
        if body is None:
            return CoreAPIResponse(status=status, data=None)
        if status < 400:
            return CoreAPIResponse(status=status, data=body["data"], meta=body.get("meta"), links=body.get("links"))
        raise _error(status, body)


def _error(status: int, body: Any) -> UpstreamError:
    """The typed error of a 4xx answer (docs/CORE_API.md "Errors")."""
    if status in (400, 422) and isinstance(body, dict) and isinstance(body.get("errors"), dict):
        fields = {
            str(name): [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for name, msgs in body["errors"].items()
        }
        return ValidationFailed(fields, status=status)
    if status in (400, 409, 422):
        return BusinessRuleError(error_message(body, "The Core API refused the request"), status=status)
    if status == 401:
        return Unauthorized("The Core API rejected this account's API key", status=401)
    if status == 403:
        return Forbidden(error_message(body, "This account's API key may not access that site or object"))
    if status == 404:
        return NotFound(error_message(body, "Not found"))
    return UpstreamError(error_message(body, f"Core API answered {status}"), status=status)


# --- One client per event loop --------------------------------------------------------------


def build_client(gate: RequestGate | None = None) -> CoreAPIClient:
    """A client from settings; its gate is the shared Redis limiter unless `gate` is given."""
    return CoreAPIClient(settings.PELCRO_GATEWAY["CORE_API_BASE_URL"], **client_options(gate))


_clients: PerLoop[CoreAPIClient] = PerLoop(build_client)


def get_client() -> CoreAPIClient:
    """This process's client for the running event loop (httpx pools are loop-bound)."""
    return _clients.get()
