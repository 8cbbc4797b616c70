"""`GET /account` and `GET /sites` (CORE_API.md §8.1).

The account (no `site_id`): `id`, `company`, `country`, `default_currency`,
`is_enterprise`, `taxes_enabled`, `api_core_rate_limit` (the limit this sandbox enforces
for it, unless the `rate_limit` override knob is set), `payment_gateway`, `sites`
[{`id`, `name`, `url`}]. A site: `id`, `name`, `link`, `slug`, `default_locale`,
`country_code`, `support_email`, `logo`, **chosen** `currency`.
"""

from __future__ import annotations

from sandbox.store import Account, Site


def account_view(account: Account) -> dict:
    return {
        "id": account.id,
        "company": account.name,
        "country": account.country,
        "default_currency": account.default_currency,
        "is_enterprise": account.is_enterprise,
        "taxes_enabled": account.taxes_enabled,
        "api_core_rate_limit": account.api_core_rate_limit,
        "payment_gateway": account.payment_gateway,
        "sites": [{"id": site.id, "name": site.name, "url": site.url} for site in account.sites.values()],
    }


def site_view(site: Site) -> dict:
    return {
        "id": site.id,
        "name": site.name,
        "link": site.url,
        "slug": site.slug,
        "default_locale": site.default_locale,
        "country_code": site.country_code,
        "support_email": f"support@{site.slug}.example.com",
        "logo": None,
        "currency": site.currency,
    }
