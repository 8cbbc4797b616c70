"""The one path every Open tool call takes to the Open API (docs/OPEN_API.md).

`open_api(call, ...)` acts for the connection's subscriber only: the site and the customer
come from the verified token (`Credentials.subscriber`), never from tool arguments (Open
tools take no `site_id` or `customer_id`, `runtime.registry` refuses to declare one). It
makes the request with the connection's Pelcro JWT (`credentials.SubscriberCaller`:
refreshed before it expires, the connection ended when Pelcro refuses it), through the
shared limiter (the account's limit, the site's and the subscriber's budgets), fills in the call's audit record (site, customer, upstream status), and
turns every upstream failure into a `ToolFailed`:

- Pelcro refused the JWT (401, or 403 blacklisted: signed out elsewhere, a single-session
  login elsewhere, OPEN_API.md §2): the connection is already revoked when this raises, so
  the tool says the sign-in ended and the app's next MCP request gets `invalid_token`;
- 404 is "refused" with Pelcro's own message: the Open API answers 404 for unknown ids AND
  for many business rules (OPEN_API.md §4), and for another customer's id exactly as for
  an unknown one, which this passes on unchanged (nothing leaks);
- 400 with fields is `validation_failed`, other 400s are `refused`; rate limits, outages and
  writes of unknown fate as `runtime.failures` maps them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from accounts.principal import SubscriberIdentity
from mcp_bridge.models import ToolCall
from mcp_bridge.open.client import READING_POSTS, CustomerTokenRejected, OpenAPIResponse, get_client
from mcp_bridge.open.credentials import SubscriberCaller
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.failures import upstream_failure
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure
from mcp_bridge.upstream.errors import BusinessRuleError, NotFound, RateLimited, UpstreamError, ValidationFailed
from mcp_bridge.upstream.limiter import open_budgets


def subscriber_of(call: CallContext) -> SubscriberIdentity:
    """The subscriber (site + Pelcro customer id) the call's verified token acts for.

    Only Open server tokens carry one (`accounts.tokens.open_credentials`), and only the
    Open server serves Open tools, so a missing one is a wiring bug, not a caller error."""
    subscriber = call.credentials.subscriber
    if subscriber is None:
        raise RuntimeError("an Open tool was called without a subscriber's token")
    return subscriber


def site_name(call: CallContext) -> str:
    """The connection's site as people read it, e.g. "Acme Daily (site 14)"."""
    site_id = subscriber_of(call).site_id
    name = call.credentials.sites.get(site_id)
    return f"{name} (site {site_id})" if name else f"site {site_id}"


async def open_api(
    call: CallContext,
    method: str,
    path: str,
    *,
    what: str,
    params: dict[str, Any] | None = None,
    json: dict[str, Any] | None = None,
    check: str | None = None,
    public: bool = False,
) -> OpenAPIResponse:
    """Make one Open API request on the connection's site, as its subscriber.

    `what` names the object for errors ("subscription 7"). `public` calls (`GET /site`,
    `/plan`, the newsletter endpoints: OPEN_API.md §5.2, §5.9) carry no JWT; every other
    call carries the subscriber's. Raises `ToolFailed` (module docstring).

    A write (any method but GET) must say in `check` how the subscriber can see whether it
    was applied, as a phrase that follows "Before trying again, " (e.g. "list your
    subscriptions with list_my_subscriptions to see whether it is set to cancel"): a write
    is never repeated once it may have reached Pelcro, and the tool error then carries
    `may_have_been_applied: true` with this advice. The POSTs that only read
    (`client.READING_POSTS`: get customer, the `/order` price preview) need none, and are
    retried like GETs.
    """
    if method != "GET" and (method, path) not in READING_POSTS and not check:
        raise ValueError(f"{method} {path}: a write must say how to check whether it was applied")
    subscriber = subscriber_of(call)
    principal = call.principal
    record = call.record
    record.site_id = subscriber.site_id
    record.customer_id = subscriber.customer_id
    client = get_client()
    # The account's limit, then the site's and this subscriber's budgets (upstream.limiter).
    rate_limit = call.credentials.rate_limit
    budgets = open_budgets(subscriber.site_id, subscriber.customer_id)
    try:
        if public:
            response = await client.request(
                method,
                path,
                account_id=principal.account_id,
                site_id=subscriber.site_id,
                params=params,
                json=json,
                rate_limit=rate_limit,
                budgets=budgets,
            )
        else:
            caller = SubscriberCaller(
                client=client,
                connection_id=principal.connection_id,
                site_id=subscriber.site_id,
                account_id=principal.account_id,
                rate_limit=rate_limit,
                budgets=budgets,
            )
            response = await caller.call(method, path, params=params, json=json)
    except CustomerTokenRejected as exc:
        record.upstream_status = exc.status or None
        raise sign_in_ended(call, exc.status or None) from None
    except UpstreamError as exc:
        record.upstream_status = exc.status or None
        raise open_failure(exc, what, call, check) from None
    record.upstream_status = response.status
    if check is None:
        return response
    record.write_accepted = check
    return replace(response, check=check)


def sign_in_ended(call: CallContext, status: int | None = None) -> ToolFailed:
    """The failure of a call whose Pelcro sign-in is over (the connection is revoked)."""
    message = (
        f"Your sign-in to {site_name(call)} has ended: the publication no longer accepts it (for "
        "example you signed out on its site or on another device). This connection is now closed; "
        "reconnect the app and sign in again. Nothing was changed."
    )
    return ToolFailed(
        ToolFailure(error="unauthorized", message=message, upstream_status=status), ToolCall.Outcome.ERROR
    )


def open_failure(exc: UpstreamError, what: str, call: CallContext, check: str | None = None) -> ToolFailed:
    """The `ToolFailed` for an Open API failure (module docstring); `check` as in `open_api`."""
    status = exc.status or None
    where = site_name(call)
    if isinstance(exc, ValidationFailed):
        return ToolFailed(
            ToolFailure(
                error="validation_failed",
                message=f"{where} refused the request for {what}: fix the fields below and try again.",
                upstream_status=status,
                fields=exc.fields,
            )
        )
    if isinstance(exc, NotFound | BusinessRuleError):
        return ToolFailed(
            ToolFailure(
                error="refused", message=f"{where} refused this ({what}): {exc.message}", upstream_status=status
            )
        )
    if isinstance(exc, RateLimited) and exc.scope is not None:
        # One of the Open budgets (upstream.limiter.open_budgets): nothing was sent.
        message = (
            f"Too many requests to {where}: the gateway's limit for {exc.scope} is reached, so "
            f"nothing was sent. Try again in {exc.retry_after} s."
        )
        return ToolFailed(
            ToolFailure(error="rate_limited", message=message, retry_after=exc.retry_after),
            ToolCall.Outcome.RATE_LIMITED,
        )
    return upstream_failure(exc, what, subscriber_of(call).site_id, check)
