"""The account as Pelcro describes it (GET /account): its rate limit and sites, stored on the
gateway's account; manual entry for keys that cannot read /account."""

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Account, Site
from accounts.upstream_account import UpstreamAccount, UpstreamSite, record_read_failure, store_upstream_account


@pytest.fixture
def account(db):
    account = Account.objects.create(name="Acme", slug="acme-up")
    account.set_api_key("sbx_key_for_tests")
    account.save()
    return account


def info(limit=360, sites=((14, "Acme Daily"), (15, "Acme Weekly"))):
    return UpstreamAccount(rate_limit=limit, sites=tuple(UpstreamSite(i, n, f"https://s{i}.example") for i, n in sites))


def test_an_account_without_a_read_uses_the_default(account, settings):
    assert account.api_core_rate_limit is None and account.rate_limit_source == Account.LimitSource.DEFAULT
    assert account.rate_limit == settings.PELCRO_GATEWAY["RATE_LIMIT"] == 120


def test_the_upstream_answer_sets_limit_and_sites(account):
    report = store_upstream_account(account, info())
    account.refresh_from_db()
    assert account.rate_limit == 360 and account.rate_limit_source == Account.LimitSource.UPSTREAM
    assert account.upstream_read_at is not None and account.upstream_read_error == ""
    sites = list(Site.objects.filter(account=account).values_list("site_id", "name", "url", "source"))
    assert sites == [
        (14, "Acme Daily", "https://s14.example", "upstream"),
        (15, "Acme Weekly", "https://s15.example", "upstream"),
    ]
    assert report.added == [14, 15] and "360/min (was 120)" in report.message()


def test_a_later_answer_updates_removes_and_keeps_manual_sites(account):
    store_upstream_account(account, info())
    Site.objects.create(site_id=99, account=account, name="Typed by hand")  # manual
    report = store_upstream_account(account, info(limit=240, sites=((14, "Acme Daily (new name)"),)))
    account.refresh_from_db()
    assert account.rate_limit == 240
    names = dict(Site.objects.filter(account=account).values_list("site_id", "name"))
    assert names == {14: "Acme Daily (new name)", 99: "Typed by hand"}
    assert report.updated == [14] and report.removed == [15] and report.manual_not_listed == [99]
    assert report.has_warnings and "99" in report.message() and "entered by hand" in report.message()


def test_a_manual_site_the_key_lists_becomes_upstream(account):
    Site.objects.create(site_id=14, account=account, name="Acme Daily")
    store_upstream_account(account, info())
    assert Site.objects.get(site_id=14).source == Site.Source.UPSTREAM


def test_a_site_of_another_gateway_account_is_not_moved(account):
    other = Account.objects.create(name="Other", slug="other-up")
    Site.objects.create(site_id=15, account=other, name="Other's")
    report = store_upstream_account(account, info())
    assert Site.objects.get(site_id=15).account == other
    assert report.taken_by_other_accounts == {15: "other-up"} and "other-up" in report.message()


def test_an_answer_without_sites_removes_nothing(account):
    store_upstream_account(account, info())
    store_upstream_account(account, info(sites=()))
    assert Site.objects.filter(account=account).count() == 2


def test_a_failed_read_keeps_what_is_stored(account):
    store_upstream_account(account, info())
    record_read_failure(account, "Pelcro rejected the API key (401)")
    account.refresh_from_db()
    assert account.rate_limit == 360 and account.rate_limit_source == Account.LimitSource.UPSTREAM
    assert account.upstream_read_error == "Pelcro rejected the API key (401)"
    store_upstream_account(account, info())
    account.refresh_from_db()
    assert account.upstream_read_error == ""


@pytest.mark.django_db(transaction=True)  # commits: the epoch changes when a change commits
def test_an_unchanged_answer_does_not_invalidate_cached_token_checks(redis_client):
    from accounts.auth_epoch import epoch_key

    account = Account.objects.create(name="Acme", slug="acme-epoch")
    store_upstream_account(account, info())
    before = redis_client.get(epoch_key())
    assert before is not None
    store_upstream_account(account, info())  # same limit, same sites: bookkeeping only
    assert redis_client.get(epoch_key()) == before
    store_upstream_account(account, info(limit=300))  # token checks carry the limit: a change counts
    assert redis_client.get(epoch_key()) != before


def test_the_admin_can_enter_a_limit_and_sites_by_hand(account, client):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-for-tests-1")
    client.force_login(admin)
    url = f"/admin/accounts/account/{account.pk}/change/"
    form = {
        "name": account.name,
        "slug": account.slug,
        "api_key": "",
        "api_core_rate_limit": "60",
        "sites-TOTAL_FORMS": "1",
        "sites-INITIAL_FORMS": "0",
        "sites-MIN_NUM_FORMS": "0",
        "sites-MAX_NUM_FORMS": "1000",
        "sites-0-site_id": "77",
        "sites-0-name": "Typed",
        "sites-0-url": "",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.rate_limit == 60 and account.rate_limit_source == Account.LimitSource.MANUAL
    assert Site.objects.get(site_id=77).source == Site.Source.MANUAL
    # Saving again without touching the limit keeps its source; clearing it means the default.
    form.update({"sites-TOTAL_FORMS": "0"})
    client.post(url, form)
    account.refresh_from_db()
    assert account.rate_limit_source == Account.LimitSource.MANUAL
    form["api_core_rate_limit"] = ""
    client.post(url, form)
    account.refresh_from_db()
    assert account.rate_limit == 120 and account.rate_limit_source == Account.LimitSource.DEFAULT
