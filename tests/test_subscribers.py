"""Subscribers (issue 14 item 3, DESIGN.md "The Open server"): a subscriber is a gateway
user record of its own kind, one per site + Pelcro customer id, that can never act as an
operator; the Pelcro JWT of its connection is encrypted at rest like API keys; a per-site
switch says whether the site's subscribers may sign in (on for the demo sites)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.test import RequestFactory, override_settings
from django.utils import timezone
from oauth2_provider.models import Application

from accounts.demo import load_demo_spec, seed_demo
from accounts.models import Account, Connection, Site, Subscriber, SubscriberCredential
from accounts.sign_in import SignInBackend
from accounts.subscribers import SubscriberNameTaken, is_subscriber, subscriber_for

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjQyfQ.c2lnbmF0dXJl"


@pytest.fixture
def sites(db):
    account = Account.objects.create(name="Acme", slug="acme-sub")
    return (
        Site.objects.create(site_id=9014, account=account, name="Daily", subscriber_access_enabled=True),
        Site.objects.create(site_id=9015, account=account, name="Weekly"),
    )


def test_a_subscriber_is_a_user_that_can_never_be_an_operator(sites):
    subscriber = subscriber_for(sites[0], 42, "rita@example.com")
    user = subscriber.user
    assert user.username == "subscriber.9014.42"
    assert not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser
    assert user.email == ""  # operator sign-in resolves e-mail addresses: a subscriber's never matches
    assert not user.memberships.exists()
    assert subscriber.email == "rita@example.com" and is_subscriber(user)


def test_one_subscriber_per_site_and_customer(sites):
    first = subscriber_for(sites[0], 42, "rita@example.com")
    again = subscriber_for(sites[0], 42, "rita.new@example.com")
    assert again.pk == first.pk and again.email == "rita.new@example.com"  # the e-mail Pelcro reports now
    other_site = subscriber_for(sites[1], 42, "rita@example.com")
    assert other_site.pk != first.pk and other_site.user_id != first.user_id
    assert get_user_model().objects.filter(username__startswith="subscriber.").count() == 2
    with transaction.atomic(), pytest.raises(IntegrityError):
        Subscriber.objects.create(
            user=get_user_model().objects.create(username="x"), site=sites[0], customer_id=42, email="dup@example.com"
        )


def test_an_operator_username_is_never_taken_over(sites):
    get_user_model().objects.create_user("subscriber.9014.7", password="operator-pass-1")
    with pytest.raises(SubscriberNameTaken):
        subscriber_for(sites[0], 7, "x@example.com")
    assert not Subscriber.objects.exists()


def test_an_operator_record_without_a_password_is_never_taken_over_either(sites):
    """Only what a deleted subscriber left (no subscriber record, no usable password, not
    staff, no memberships) is taken up again by the customer's sign-in."""
    from accounts.models import Membership

    staff = get_user_model().objects.create_user("subscriber.9014.8", password=None, is_staff=True)
    member = get_user_model().objects.create_user("subscriber.9014.9", password=None)
    Membership.objects.create(user=member, account=sites[0].account, role=Membership.Role.MEMBER)
    for customer_id in (8, 9):
        with pytest.raises(SubscriberNameTaken):
            subscriber_for(sites[0], customer_id, "x@example.com")
    left = subscriber_for(sites[0], 10, "ten@example.com").user
    Subscriber.objects.filter(user=left).delete()
    assert subscriber_for(sites[0], 10, "ten@example.com").user_id == left.pk
    assert not staff.has_usable_password() and not member.has_usable_password()


def test_operator_sign_in_and_sessions_refuse_a_subscriber(sites):
    user = subscriber_for(sites[0], 43, "sam@example.com").user
    # Even if a password were set on the record behind the gateway's back:
    user.set_password("Known-Pass-1!")
    user.save()
    request = RequestFactory().post("/login", REMOTE_ADDR="10.9.9.9")
    assert authenticate(request, username=user.username, password="Known-Pass-1!") is None
    # An operator session naming the subscriber's user id is not restored.
    assert SignInBackend().get_user(user.pk) is None
    operator = get_user_model().objects.create_user("op1", password="Operator-Pass-1!")
    assert SignInBackend().get_user(operator.pk) == operator


def test_the_pelcro_jwt_is_encrypted_at_rest_and_rotated_with_the_api_keys(sites):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    subscriber = subscriber_for(sites[0], 44, "w@example.com")
    application = Application.objects.create(
        name="App",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1/cb",
    )
    connection = Connection.objects.create(
        user=subscriber.user, application=application, account=sites[0].account, access=Connection.Access.READ
    )
    expires = timezone.now() + timedelta(days=60)
    with override_settings(API_KEY_ENCRYPTION_KEYS=[old]):
        credential = SubscriberCredential(connection=connection)
        credential.set_jwt(JWT, expires)
        credential.save()
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT jwt_encrypted FROM accounts_subscribercredential")
        (stored,) = cursor.fetchone()
    assert JWT not in stored and "eyJ" not in stored
    with override_settings(API_KEY_ENCRYPTION_KEYS=[new, old]):
        call_command("rotate_api_keys")
    credential.refresh_from_db()
    with override_settings(API_KEY_ENCRYPTION_KEYS=[new]):  # the old key can now be dropped
        assert credential.get_jwt() == JWT
    assert credential.expires_at == expires
    with override_settings(API_KEY_ENCRYPTION_KEYS=[old]), pytest.raises(ValueError):
        credential.get_jwt()
    # Revoked by Pelcro reads as such on the connections page.
    connection.revoked_by = "pelcro"
    assert "publication" in connection.revoked_by_display()


def test_rotation_refuses_a_jwt_it_cannot_read(sites):
    stranger, current = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    subscriber = subscriber_for(sites[0], 45, "l@example.com")
    application = Application.objects.create(
        name="App",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="http://127.0.0.1/cb",
    )
    connection = Connection.objects.create(user=subscriber.user, application=application, account=sites[0].account)
    with override_settings(API_KEY_ENCRYPTION_KEYS=[stranger]):
        credential = SubscriberCredential(connection=connection)
        credential.set_jwt(JWT, timezone.now())
        credential.save()
    with override_settings(API_KEY_ENCRYPTION_KEYS=[current]), pytest.raises(CommandError, match=str(connection.pk)):
        call_command("rotate_api_keys")


def test_subscriber_access_is_off_by_default_and_on_for_the_demo_sites(db):
    account = Account.objects.create(name="Fresh", slug="fresh")
    assert not Site.objects.create(site_id=9100, account=account, name="New").subscriber_access_enabled
    spec = seed_demo()
    demo_sites = {s["site_id"] for a in spec["accounts"] for s in a["sites"]}
    assert (
        demo_sites
        and set(Site.objects.filter(subscriber_access_enabled=True).values_list("site_id", flat=True)) == demo_sites
    )
    # Every demo subscriber's site has it on.
    assert {s["site_id"] for s in load_demo_spec()["subscribers"]} <= demo_sites
