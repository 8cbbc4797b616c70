"""The auth epoch changes with every change a token check could see (accounts.auth_epoch):
saves and deletes (signals) and bulk changes, which send no signals, alike.

Each watched model is changed every way Django offers; a change that leaves the epoch as it
was fails here. Watched models of other apps (DOT's, the user model) cannot get the
epoch-bumping QuerySet, so the project must not change them in bulk outside helpers that
bump: the source is searched for such calls."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from accounts import auth_epoch
from accounts.auth_epoch import PublishingQuerySet
from accounts.models import Account, Connection, Membership, Site, TokenBinding
from devtools.servers import ROOT

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit bumps run at once

OWN_MODELS = [Account, Site, Membership, Connection, TokenBinding]


def epoch(redis_client) -> bytes | None:
    return redis_client.get(auth_epoch.epoch_key())


def changes_epoch(redis_client, change) -> bool:
    auth_epoch.bump()
    before = epoch(redis_client)
    change()
    return epoch(redis_client) != before


@pytest.fixture
def rows(demo_users):
    """One row of each of the accounts app's watched models (the demo data's)."""
    connection_user = get_user_model().objects.get(username="demo")
    account = Account.objects.get(slug="acme")
    application = get_application_model().objects.create(
        name="epoch-test",
        client_type="public",
        authorization_grant_type="authorization-code",
        redirect_uris="http://127.0.0.1/cb",
    )
    connection = Connection.objects.create(user=connection_user, account=account, application=application)
    token = get_access_token_model().objects.create(
        user=connection_user,
        application=application,
        token="epoch-test-token",
        expires=timezone.now() + timezone.timedelta(hours=1),
        scope="read",
    )
    binding = TokenBinding.objects.create(access_token=token, connection=connection)
    return {
        Account: account,
        Site: Site.objects.filter(account=account).first(),
        Membership: Membership.objects.filter(account=account).first(),
        Connection: connection,
        TokenBinding: binding,
    }


def test_every_watched_model_of_this_project_bumps_on_bulk_changes():
    """Each model of the accounts app a token check reads has the publishing QuerySet,
    on every manager (related managers derive from the default one)."""
    own = [m for m in auth_epoch.WATCHED if m._meta.app_label == "accounts"]
    assert set(own) == set(OWN_MODELS)
    for model in own:
        for manager in model._meta.managers:
            assert issubclass(manager._queryset_class, PublishingQuerySet), (model, manager)


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda m: m.__name__)
def test_a_bulk_update_changes_the_epoch(redis_client, rows, model):
    row = rows[model]
    field = {
        Account: "name",
        Site: "name",
        Membership: "role",
        Connection: "revoked_by",
        TokenBinding: "connection_id",
    }[model]
    value = getattr(row, field)
    assert changes_epoch(redis_client, lambda: model.objects.filter(pk=row.pk).update(**{field: value}))


@pytest.mark.parametrize("model", OWN_MODELS, ids=lambda m: m.__name__)
def test_a_bulk_delete_changes_the_epoch(redis_client, rows, model):
    row = rows[model]
    assert changes_epoch(redis_client, lambda: model.objects.filter(pk=row.pk).delete())


def test_a_save_and_a_related_manager_update_change_the_epoch(redis_client, rows):
    account = rows[Account]
    assert changes_epoch(redis_client, account.save)
    # Through a related manager (account.connections): the same QuerySet.
    assert changes_epoch(redis_client, lambda: account.connections.update(revoked_by="x"))


def test_bookkeeping_alone_leaves_the_epoch(redis_client, rows):
    connection = rows[Connection]
    assert not changes_epoch(
        redis_client, lambda: Connection.objects.filter(pk=connection.pk).update(last_used_at=timezone.now())
    )


# `Model.objects….update(`, `.bulk_update(`, `.bulk_create(` on a watched model of another app.
FOREIGN = r"(User|get_user_model\(\)|AccessToken|get_access_token_model\(\)|Application|get_application_model\(\))"
BULK = re.compile(FOREIGN + r"\.objects\b[^\n]*?\.(update|bulk_update|bulk_create)\(")


def test_no_bulk_change_of_another_apps_watched_model_in_the_project():
    foreign = [m for m in auth_epoch.WATCHED if m._meta.app_label != "accounts"]
    assert {m.__name__ for m in foreign} == {"AccessToken", "Application", get_user_model().__name__}
    found = []
    for package in ("accounts", "mcp_bridge", "ops", "pelcro_gateway"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if BULK.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "bulk changes that send no signal, so change no auth epoch:\n" + "\n".join(found)


def test_the_search_finds_such_a_call():
    assert BULK.search("get_access_token_model().objects.filter(user=u).update(expires=now)")
    assert BULK.search("User.objects.bulk_update(users, ['is_active'])")
    assert not BULK.search("Connection.objects.filter(pk=1).update(revoked_at=now)")
