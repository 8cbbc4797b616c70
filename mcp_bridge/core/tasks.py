"""Celery tasks of the Core API side: reading every account from Pelcro (`GET /account`)
on a schedule (beat: `refresh-accounts` in CELERY_BEAT_SCHEDULE, every
ACCOUNT_REFRESH_SECONDS, and once when beat starts), one task per account."""

from __future__ import annotations

from celery import shared_task

from accounts.models import Account
from mcp_bridge.core import account_refresh
from mcp_bridge.upstream.errors import RateLimited, RateLimiterUnavailable

# Redis down: the limiter fails closed; try again after this many seconds.
LIMITER_DOWN_RETRY_SECONDS = 10


@shared_task
def refresh_accounts() -> int:
    """Queue a read of every account that has an API key; returns how many."""
    ids = list(Account.objects.exclude(api_key_encrypted="").values_list("id", flat=True))
    for account_id in ids:
        refresh_account.delay(account_id)
    return len(ids)


@shared_task(bind=True, acks_late=True, max_retries=5)
def refresh_account(self, account_id: int) -> bool:
    """Read one account's rate limit and sites from Pelcro and store them. A refusal by the
    limiter is retried later; any other failure is recorded on the account (the next
    scheduled read tries again)."""
    account = Account.objects.filter(id=account_id).first()
    if account is None:
        return False
    try:
        return account_refresh.refresh_account(account, background=True).ok
    except RateLimited as exc:
        raise self.retry(exc=exc, countdown=exc.retry_after) from None
    except RateLimiterUnavailable as exc:
        raise self.retry(exc=exc, countdown=LIMITER_DOWN_RETRY_SECONDS) from None
