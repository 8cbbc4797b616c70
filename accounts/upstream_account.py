"""What Pelcro says about an account (`GET /account`), stored on the gateway's account.

`GET /account` (CORE_API.md §8.1, [acct-get]) answers with the key's account: its
`api_core_rate_limit` (requests per minute, CORE_API.md §2) and its `sites`. The gateway
reads it when an admin saves an API key and on a schedule (the Celery task
`mcp_bridge.tasks.refresh_accounts`); the request itself is made by the Core API client
(`mcp_bridge`), this module only stores the answer:

- the limit becomes the account's limit (`rate_limit_source` upstream), which the shared
  limiter uses from then on (minus its safety margin);
- every listed site is created or updated (`source` upstream). A site the key no longer
  lists is removed if it came from an earlier read, and kept (but reported) if an admin
  entered it by hand. A listed site that belongs to another gateway account is not moved
  (reported): one key's answer never takes a site from another account.

A failed read keeps what is stored and records why (`upstream_read_error`), so an admin
sees it and can enter sites and a limit by hand for keys that may not read `/account`.
Writes that change nothing a token check reads use `update()` (no signal), so the hourly
read does not invalidate every process's cached token checks (`accounts.auth_epoch`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Site

logger = logging.getLogger(__name__)

ERROR_MAX_LENGTH = Account._meta.get_field("upstream_read_error").max_length


@dataclass(frozen=True)
class UpstreamSite:
    site_id: int
    name: str
    url: str = ""


@dataclass(frozen=True)
class UpstreamAccount:
    """The part of a `GET /account` answer the gateway keeps."""

    rate_limit: int  # data.api_core_rate_limit, requests per minute
    sites: tuple[UpstreamSite, ...]
    company: str = ""


@dataclass
class StoreReport:
    """What storing one `GET /account` answer changed, for the admin and the logs."""

    rate_limit: int
    previous_limit: int
    added: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    manual_not_listed: list[int] = field(default_factory=list)
    taken_by_other_accounts: dict[int, str] = field(default_factory=dict)  # site_id -> that account's slug

    @property
    def has_warnings(self) -> bool:
        return bool(self.manual_not_listed or self.taken_by_other_accounts)

    def message(self) -> str:
        parts = [
            f"rate limit {self.rate_limit}/min"
            + (f" (was {self.previous_limit})" if self.previous_limit != self.rate_limit else "")
        ]
        for label, ids in (
            ("sites added", self.added),
            ("sites updated", self.updated),
            ("sites removed (no longer listed)", self.removed),
        ):
            if ids:
                parts.append(f"{label}: {', '.join(map(str, ids))}")
        text = "Read from Pelcro (GET /account): " + "; ".join(parts) + "."
        if self.manual_not_listed:
            text += (
                f" Site(s) {', '.join(map(str, self.manual_not_listed))} were entered by hand but this key "
                "does not list them: Pelcro will refuse calls to them with this key."
            )
        for site_id, slug in self.taken_by_other_accounts.items():
            text += (
                f" Site {site_id} is listed by this key but belongs to the gateway account '{slug}': "
                "not moved; fix the two accounts' keys."
            )
        return text


@transaction.atomic
def store_upstream_account(account: Account, info: UpstreamAccount) -> StoreReport:
    """Store a successful `GET /account` answer on `account` (see the module docstring)."""
    account = Account.objects.select_for_update().get(pk=account.pk)
    report = StoreReport(rate_limit=info.rate_limit, previous_limit=account.rate_limit)
    now = timezone.now()
    if account.api_core_rate_limit != info.rate_limit or account.rate_limit_source != Account.LimitSource.UPSTREAM:
        account.api_core_rate_limit = info.rate_limit
        account.rate_limit_source = Account.LimitSource.UPSTREAM
        account.upstream_read_at, account.upstream_read_error = now, ""
        # A saved limit changes token checks (they carry it): the save bumps the auth epoch.
        account.save(
            update_fields=["api_core_rate_limit", "rate_limit_source", "upstream_read_at", "upstream_read_error"]
        )
    else:
        Account.objects.filter(pk=account.pk).update(upstream_read_at=now, upstream_read_error="")

    listed = {site.site_id: site for site in info.sites}
    existing = {site.site_id: site for site in Site.objects.filter(site_id__in=listed).select_related("account")}
    for site_id, upstream in listed.items():
        name, url = upstream.name[:200] or f"Site {site_id}", upstream.url[:500]
        site = existing.get(site_id)
        if site is None:
            Site.objects.create(site_id=site_id, account=account, name=name, url=url, source=Site.Source.UPSTREAM)
            report.added.append(site_id)
        elif site.account_id != account.pk:
            report.taken_by_other_accounts[site_id] = site.account.slug
        elif (site.name, site.url, site.source) != (name, url, Site.Source.UPSTREAM):
            site.name, site.url, site.source = name, url, Site.Source.UPSTREAM
            site.save(update_fields=["name", "url", "source"])
            report.updated.append(site_id)
    unlisted = Site.objects.filter(account=account).exclude(site_id__in=listed)
    if listed:  # an answer without sites is not taken as "the account lost all its sites"
        for site in unlisted:
            if site.source == Site.Source.UPSTREAM:
                report.removed.append(site.site_id)
                site.delete()
            else:
                report.manual_not_listed.append(site.site_id)
    if report.has_warnings:
        logger.warning("account %s: %s", account.slug, report.message())
    return report


def record_read_failure(account: Account, reason: str) -> None:
    """A `GET /account` attempt failed: keep what is stored, remember why (no signal)."""
    Account.objects.filter(pk=account.pk).update(upstream_read_error=reason[:ERROR_MAX_LENGTH])
    account.upstream_read_error = reason[:ERROR_MAX_LENGTH]


def set_manual_limit(account: Account, limit: int | None) -> None:
    """An admin typed a limit (or cleared it): it applies until a read of `/account` succeeds."""
    account.api_core_rate_limit = limit
    account.rate_limit_source = Account.LimitSource.MANUAL if limit else Account.LimitSource.DEFAULT
