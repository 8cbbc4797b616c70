"""The one path every Core tool call takes to the Core API.

`core_api(call, ...)` checks that the site belongs to the caller's account (from the
verified token's credentials in the `CallContext`: no query), makes the request with the
account's own API key (the caller's token never travels upstream), fills in the call's
audit record, and turns every upstream failure into a `ToolFailed`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mcp_bridge.core.client import CoreAPIResponse, get_client
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.failures import upstream_failure
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure
from mcp_bridge.upstream.errors import UpstreamError

# The one Core API request that takes no site_id (CORE_API.md §1, §8.1).
SITELESS_PATHS = frozenset({"/account"})


async def core_api(
    call: CallContext,
    method: str,
    path: str,
    site_id: int | None,
    *,
    what: str,
    params: dict[str, Any] | None = None,
    json_body: dict[str, Any] | None = None,
    check: str | None = None,
) -> CoreAPIResponse:
    """Make one Core API request for the calling account; `what` names the object for errors.

    Raises `ToolFailed`: `unknown_site` when `site_id` is not one of the account's sites
    (the same answer for another account's site: nothing leaks), `unauthorized` without a
    usable API key, and every upstream failure as `runtime.failures` maps it.

    A write (any method but GET) must say in `check` how the assistant can see whether it
    was applied, as a phrase that follows "Before trying again, " (e.g. "read invoice 7 with
    get_invoice to see whether it was finalized"): a write is never repeated automatically
    once it may have reached the upstream, and the tool error then carries
    `may_have_been_applied: true` with this advice. `site_id` is None only for the
    account's own endpoint (`GET /account`, CORE_API.md §8.1).
    """
    if method != "GET" and not check:
        raise ValueError(f"{method} {path}: a write must say how to check whether it was applied")
    if site_id is not None:
        call.require_site(site_id)  # the registry checked the tool's site_id; this is the request's
    elif path not in SITELESS_PATHS:
        raise ValueError(f"{method} {path} needs a site_id")
    credentials = call.credentials
    principal = call.principal
    record = call.record
    api_key = credentials.api_key
    if api_key is None:
        message = "The account has no usable Core API key; an account administrator must set it."
        raise ToolFailed(ToolFailure(error="unauthorized", message=message))
    try:
        response = await get_client().request(
            method,
            path,
            account_id=principal.account_id,
            api_key=api_key,
            site_id=site_id,
            params=params,
            json=json_body,
            rate_limit=credentials.rate_limit,
        )
    except UpstreamError as exc:
        record.upstream_status = exc.status or None
        raise upstream_failure(exc, what, site_id, check) from None
    record.upstream_status = response.status
    if check is None:
        return response
    record.write_accepted = check
    return replace(response, check=check)
