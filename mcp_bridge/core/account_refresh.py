"""Reading an account from Pelcro (`GET /account`) and storing what it says.

`read_account` makes the request through the Core API client (so through the shared
limiter, like every upstream request); `refresh_account` is the blocking entry point the
admin (on saving a key) and the Celery task `core.tasks.refresh_account` (on a schedule)
use: it reads and stores (`accounts.upstream_account`), or records why it could not.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pydantic import ValidationError

from accounts.models import Account
from accounts.upstream_account import (
    StoreReport,
    UpstreamAccount,
    UpstreamSite,
    record_read_failure,
    store_upstream_account,
)
from mcp_bridge.core.account import PelcroAccount
from mcp_bridge.core.client import CoreAPIClient, build_client
from mcp_bridge.upstream.errors import (
    Forbidden,
    NotFound,
    RateLimited,
    RateLimiterUnavailable,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
)
from mcp_bridge.upstream.redis_clients import close_redis_for_loop

logger = logging.getLogger(__name__)


def as_upstream_account(account: PelcroAccount) -> UpstreamAccount:
    """What the gateway keeps of a `GET /account` answer."""
    return UpstreamAccount(
        rate_limit=account.api_core_rate_limit,
        sites=tuple(UpstreamSite(s.id, s.name, s.url or "") for s in account.sites),
        company=account.company or "",
    )


class AccountUnreadable(Exception):
    """`GET /account` gave no usable answer; `message` says why, for an admin."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


async def read_account(
    client: CoreAPIClient, *, account_id: int, api_key: str, background: bool = False
) -> PelcroAccount:
    """`GET /account` with `api_key` (no `site_id`), validated.

    Raises the client's `UpstreamError`s, or `AccountUnreadable` when the answer does not
    have the documented shape."""
    response = await client.request(
        "GET", "/account", account_id=account_id, api_key=api_key, site_id=None, background=background
    )
    try:
        return PelcroAccount.model_validate(response.data)
    except ValidationError as exc:
        raise AccountUnreadable(
            f"GET /account answered without the documented account shape ({exc.error_count()} problem(s))"
        ) from None


def explain(exc: UpstreamError) -> str:
    """Why a `GET /account` failed, in the words an admin needs."""
    if isinstance(exc, Unauthorized):
        return "Pelcro rejected the API key (401): check that it was copied whole and is still active."
    if isinstance(exc, (Forbidden, NotFound)):
        return (
            f"This API key may not read GET /account ({exc.status}): enter the account's sites (and its "
            "rate limit, if not the default 120) by hand."
        )
    if isinstance(exc, RateLimited):
        return f"The account's rate limit was reached; the next scheduled read will try again ({exc.message})."
    if isinstance(exc, UpstreamUnavailable):
        return f"Pelcro could not be reached: {exc.message}."
    return f"GET /account failed: {exc.message}"


@dataclass(frozen=True)
class RefreshOutcome:
    ok: bool
    message: str
    report: StoreReport | None = None


def refresh_account(account: Account, *, background: bool = True) -> RefreshOutcome:
    """Read `account` from Pelcro and store its limit and sites (blocking; for the admin and
    Celery). A failure is recorded on the account and returned, never raised, except
    `RateLimited` / `RateLimiterUnavailable` when `background` (a Celery task retries)."""
    try:
        api_key = account.get_api_key()
    except ValueError:
        message = "The account has no usable API key (none stored, or encrypted with a retired key)."
        record_read_failure(account, message)
        return RefreshOutcome(False, message)
    try:
        info = asyncio.run(_read(account, api_key, background))
    except UpstreamError as exc:
        if background and isinstance(exc, RateLimited | RateLimiterUnavailable):
            raise  # the Celery task retries later
        message = explain(exc)
    except AccountUnreadable as exc:
        message = exc.message
    else:
        report = store_upstream_account(account, as_upstream_account(info))
        account.refresh_from_db()
        return RefreshOutcome(True, report.message(), report)
    logger.warning("account %s: GET /account failed: %s", account.slug, message)
    record_read_failure(account, message)
    return RefreshOutcome(False, message)


async def _read(account: Account, api_key: str, background: bool) -> PelcroAccount:
    client = build_client()
    try:
        return await read_account(client, account_id=account.pk, api_key=api_key, background=background)
    finally:
        await client.aclose()
        await close_redis_for_loop()
