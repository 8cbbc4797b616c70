"""Connected apps (the person's page), the admin (accounts, connections, bulk revoke),
API-key rotation and the OAuth clean-ups."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from accounts import crypto
from accounts.maintenance import clear_expired_tokens
from accounts.models import Account, AuthorizationConsent, Connection
from devtools.oauth_client import obtain_tokens, parse_forms, refresh, signed_in
from tests.support.oauth import gateway_principal

DEMO = ("demo", "pelcro-demo-2026")


@pytest.mark.sqlite
def test_connections_page_lists_and_revokes(gateway_server, demo_users):
    url = gateway_server.url
    acme = obtain_tokens(url, *DEMO, "acme", client_name="Cursor (pelcro-acme)")
    obtain_tokens(url, *DEMO, "other", access="read", client_name="VS Code (pelcro-other)")
    obtain_tokens(url, "alice", "pelcro-alice-2026", "globex", access="read", client_name="Alice's tool")

    session = signed_in(url, *DEMO)
    page = session.get("/connections")
    assert page.status_code == 200
    assert "Cursor (pelcro-acme)" in page.text and "VS Code (pelcro-other)" in page.text
    assert "Alice&#x27;s tool" not in page.text and "Alice's tool" not in page.text  # only my own
    assert "Acme Media" in page.text and "Read and write" in page.text and "Read only" in page.text

    connection = Connection.objects.get(application__client_id=acme["client_id"])
    # Revoke is a link to a confirmation page (works without JavaScript); nothing is revoked yet.
    assert f'href="/connections/{connection.pk}/revoke"' in page.text
    confirm = session.get(f"/connections/{connection.pk}/revoke")
    assert confirm.status_code == 200 and "Revoke" in confirm.text and "cannot be undone" in confirm.text
    assert gateway_principal(url, acme["access_token"]) is not None
    revoke_form = next(f for f in parse_forms(confirm.text) if f["action"] == f"/connections/{connection.pk}/revoke")
    response = session.post(revoke_form["action"], data=revoke_form["hidden"])
    assert response.status_code == 302 and response.headers["location"] == "/connections"
    # Effective on the very next request.
    assert gateway_principal(url, acme["access_token"]) is None
    assert refresh(url, acme["client_id"], acme["refresh_token"]).json()["error"] == "invalid_grant"
    after = session.get("/connections")
    assert "can no longer use Acme Media" in after.text
    # Still listed, as revoked: when and by whom.
    active, revoked = after.text.split("<h2>Revoked</h2>", 1)
    assert "Cursor (pelcro-acme)" not in active.split("</ul>", 1)[-1]
    assert "Cursor (pelcro-acme)" in revoked and ">you<" in revoked.replace('<td data-label="By">', ">")
    connection.refresh_from_db()
    assert connection.revoked_by == "user:demo"
    session.close()


def test_revoke_needs_post_csrf_and_ownership(gateway_server, demo_users):
    url = gateway_server.url
    alice = obtain_tokens(url, "alice", "pelcro-alice-2026", "globex", access="read")
    theirs = Connection.objects.get(application__client_id=alice["client_id"])
    session = signed_in(url, *DEMO)
    page = session.get("/connections")
    token = next(f for f in parse_forms(page.text) if f["action"] == "/logout")["hidden"]["csrfmiddlewaretoken"]
    assert session.get(f"/connections/{theirs.pk}/revoke").status_code == 404  # not mine: no confirm page
    assert session.post(f"/connections/{theirs.pk}/revoke").status_code == 403  # no CSRF token
    assert (
        session.post(f"/connections/{theirs.pk}/revoke", data={"csrfmiddlewaretoken": token}).status_code == 404
    )  # not mine
    session.close()
    assert gateway_principal(url, alice["access_token"]) is not None


def test_connections_page_requires_sign_in(gateway_server):
    import httpx

    response = httpx.get(gateway_server.url + "/connections")
    assert response.status_code == 302 and response.headers["location"].startswith("/login")


# --- admin -----------------------------------------------------------------------------------


def staff_client() -> Client:
    """An in-process admin session as the demo staff user. Create it after any gateway
    sign-in: signing in re-hashes the password, which ends older sessions."""
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="demo"))
    return client


def test_admin_never_shows_the_api_key_and_sets_it_write_only(demo_users):
    admin = staff_client()
    acme = Account.objects.get(slug="acme")
    secret = next(a["api_key"] for a in demo_users["accounts"] if a["slug"] == "acme")
    page = admin.get(f"/admin/accounts/account/{acme.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert secret not in html and acme.api_key_encrypted not in html
    assert "•••• " + secret[-4:] in html

    response = admin.post(
        "/admin/accounts/account/add/",
        {
            "name": "New Co",
            "slug": "new-co",
            "api_key": "sk_live_new_key_9876",
            "sites-TOTAL_FORMS": "0",
            "sites-INITIAL_FORMS": "0",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    created = Account.objects.get(slug="new-co")
    assert created.get_api_key() == "sk_live_new_key_9876"
    assert "sk_live_new_key_9876" not in created.api_key_encrypted and created.api_key_last4 == "9876"
    listing = admin.get("/admin/accounts/account/").content.decode()
    assert "sk_live_new_key_9876" not in listing and "•••• 9876" in listing


def test_admin_bulk_revoke_kills_every_token_at_once(gateway_server, demo_users):
    url = gateway_server.url
    first = obtain_tokens(url, *DEMO, "acme", client_name="one")
    second = obtain_tokens(url, *DEMO, "other", client_name="two")
    keep = obtain_tokens(url, "alice", "pelcro-alice-2026", "globex", access="read", client_name="three")
    chosen = Connection.objects.filter(application__client_id__in=[first["client_id"], second["client_id"]])
    admin = staff_client()
    listing = admin.get("/admin/accounts/connection/")
    assert listing.status_code == 200 and "one" in listing.content.decode()

    response = admin.post(
        "/admin/accounts/connection/", {"action": "revoke", "_selected_action": [str(c.pk) for c in chosen]}
    )
    assert response.status_code == 302
    for tokens in (first, second):
        assert gateway_principal(url, tokens["access_token"]) is None
        assert refresh(url, tokens["client_id"], tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert gateway_principal(url, keep["access_token"]) is not None
    assert Connection.objects.filter(revoked_at__isnull=False).count() == 2


def test_non_staff_cannot_use_the_admin(demo_users):
    from django.contrib.auth import get_user_model

    client = Client()
    client.force_login(get_user_model().objects.get(username="alice"))
    assert client.get("/admin/accounts/connection/").status_code == 302


# --- key rotation and clean-ups ---------------------------------------------------------------


def test_rotate_api_keys_reencrypts_under_the_first_key(db):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(API_KEY_ENCRYPTION_KEYS=[old]):
        account = Account(name="Rot", slug="rot")
        account.set_api_key("sk_rotate_me_1234")
        account.save()
        Account.objects.create(name="No key", slug="nokey")
    with override_settings(API_KEY_ENCRYPTION_KEYS=[new, old]):
        call_command("rotate_api_keys")
    account.refresh_from_db()
    with override_settings(API_KEY_ENCRYPTION_KEYS=[new]):  # the old key can now be dropped
        assert account.get_api_key() == "sk_rotate_me_1234"
        assert crypto.decrypt(account.api_key_encrypted) == "sk_rotate_me_1234"
    with override_settings(API_KEY_ENCRYPTION_KEYS=[old]), pytest.raises(ValueError):
        account.get_api_key()


def test_rotate_api_keys_refuses_a_key_it_cannot_read(db):
    stranger, current = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(API_KEY_ENCRYPTION_KEYS=[stranger]):
        account = Account(name="Lost", slug="lost")
        account.set_api_key("sk_lost_0000")
        account.save()
    before = Account.objects.get(pk=account.pk).api_key_encrypted
    with override_settings(API_KEY_ENCRYPTION_KEYS=[current]), pytest.raises(CommandError, match="lost"):
        call_command("rotate_api_keys")
    assert Account.objects.get(pk=account.pk).api_key_encrypted == before  # nothing changed


def test_clear_expired_tokens(gateway_server, demo_users):
    url = gateway_server.url
    live = obtain_tokens(url, *DEMO, "acme", client_name="live")
    dead = obtain_tokens(url, *DEMO, "other", client_name="dead")
    AccessToken = get_access_token_model()
    long_ago = timezone.now() - timezone.timedelta(days=400)
    AccessToken.objects.filter(application__client_id=dead["client_id"]).update(expires=long_ago)
    AuthorizationConsent.objects.filter(application__client_id=dead["client_id"]).update(created_at=long_ago)
    get_grant_model().objects.create(
        user=Connection.objects.first().user,
        application=Connection.objects.first().application,
        code="stale-code",
        expires=long_ago,
        redirect_uri="http://127.0.0.1:1/cb",
    )

    assert clear_expired_tokens() == 1
    assert not AccessToken.objects.filter(application__client_id=dead["client_id"], binding__isnull=False).exists()
    assert not get_refresh_token_model().objects.filter(application__client_id=dead["client_id"]).exists()
    assert not get_grant_model().objects.filter(code="stale-code").exists()
    assert gateway_principal(url, live["access_token"]) is not None
