"""One sign-in path, one lock-out (accounts/sign_in.py): /login, /admin/login/ and the
admin's change-password form share their counters, and the lock-out says nothing about
which names exist or belong together. Against the strict gateway (3 failures per name,
5 per IP); each test's clients come from their own loopback addresses (127.0.0.x), so the
per-IP cap only applies where a test means it to.
"""

from __future__ import annotations

import itertools
import re

import httpx
import pytest
from django.contrib.auth import authenticate

from tests.support.oauth import QuickScryptHasher, parse_forms
from tests.test_login import LOCKED

DEMO = ("demo", "pelcro-demo-2026")  # staff (demo/accounts.json)
ALICE = ("alice", "pelcro-alice-2026")  # not staff
_addresses = itertools.count(2)


def client_from_new_address(url: str) -> httpx.Client:
    """An httpx client whose connections come from a loopback address of its own."""
    address = f"127.0.0.{next(_addresses) % 250 + 2}"
    return httpx.Client(base_url=url, timeout=10, transport=httpx.HTTPTransport(local_address=address))


def post_form(client: httpx.Client, page_path: str, form_id: str | None, fields: dict) -> httpx.Response:
    """GET a page, then POST its form (by id, else the first one that is not the page
    header's sign-out form) like a browser."""
    page = client.get(page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    forms = parse_forms(page.text)
    form = next(f for f in forms if f["id"] == form_id or (form_id is None and f["id"] != "logout-form"))
    return client.post(form["action"] or page_path, data={**form["hidden"], **fields})


def login(client, username, password):
    return post_form(client, "/login", None, {"username": username, "password": password, "next": "/connections"})


def admin_login(client, username, password):
    return post_form(client, "/admin/login/?next=/admin/", "login-form", {"username": username, "password": password})


def page_text(response: httpx.Response) -> str:
    """The answer without what differs per request (CSRF tokens, echoed name)."""
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.text)
    return re.sub(r'name="username"[^>]*value="[^"]*"', 'name="username"', text)


@pytest.mark.sqlite
def test_admin_login_shares_the_lock_out_with_login(strict_gateway, demo_users):
    url = strict_gateway.url
    client = client_from_new_address(url)
    for _ in range(3):  # LOGIN_MAX_FAILURES at the admin's sign-in page
        response = admin_login(client, "demo", "guess")
        assert response.status_code == 200 and "do not match" in response.text
    response = admin_login(client, *DEMO)
    assert response.status_code == 429 and LOCKED in response.text
    assert login(client_from_new_address(url), *DEMO).status_code == 429  # the same counter at /login

    # And the other way round: guesses at /login lock the admin's page too.
    other = client_from_new_address(url)
    for _ in range(3):
        assert login(other, "Demo@Example.com", "guess").status_code == 200
    assert admin_login(client_from_new_address(url), "demo@example.com", DEMO[1]).status_code == 429


def test_admin_login_signs_staff_in_and_refuses_others_like_a_wrong_password(strict_gateway, demo_users):
    url = strict_gateway.url
    staff = client_from_new_address(url)
    response = admin_login(staff, *DEMO)
    assert response.status_code == 302 and response.headers["location"] == "/admin/"
    assert staff.get("/admin/").status_code == 200
    # A non-staff account with its right password gets the wrong-password answer.
    refused = admin_login(client_from_new_address(url), *ALICE)
    wrong = admin_login(client_from_new_address(url), "alice", "guess")
    assert refused.status_code == wrong.status_code == 200
    assert page_text(refused) == page_text(wrong)


def test_admin_password_change_counts_the_current_password(strict_gateway, demo_users):
    url = strict_gateway.url
    staff = client_from_new_address(url)
    assert admin_login(staff, *DEMO).status_code == 302
    fields = {"new_password1": "a-new-long-password-2026", "new_password2": "a-new-long-password-2026"}
    for _ in range(3):
        response = post_form(staff, "/admin/password_change/", None, {"old_password": "guess", **fields})
        assert response.status_code == 200 and "old password was entered incorrectly" in response.text
    response = post_form(staff, "/admin/password_change/", None, {"old_password": DEMO[1], **fields})
    assert response.status_code == 429 and LOCKED in response.text
    assert login(client_from_new_address(url), *DEMO).status_code == 429  # one counter for the name


@pytest.mark.sqlite
def test_the_lock_out_does_not_reveal_which_names_exist(strict_gateway, demo_users):
    """For a known and an unknown username, and a known and an unknown e-mail address:
    the same answers, counted the same, locked after the same number of failures; and
    locking one name of an account does not lock its other name."""
    url = strict_gateway.url
    for known, unknown in [("demo", "nobody-here"), ("demo@example.com", "ghost@example.com")]:
        answers = {}
        for name in (known, unknown):
            client = client_from_new_address(url)
            answers[name] = [login(client, name, "guess") for _ in range(4)]
        statuses = {name: [r.status_code for r in responses] for name, responses in answers.items()}
        assert statuses[known] == statuses[unknown] == [200, 200, 200, 429], statuses
        for first, second in zip(answers[known], answers[unknown], strict=True):
            assert page_text(first) == page_text(second)


def test_locking_a_username_does_not_lock_the_accounts_email(strict_gateway, demo_users):
    url = strict_gateway.url
    client = client_from_new_address(url)
    for _ in range(3):
        login(client, "alice", "guess")
    assert login(client_from_new_address(url), *ALICE).status_code == 429
    # Were the e-mail locked too, a guesser would learn that it is alice's.
    assert login(client_from_new_address(url), "alice@example.com", ALICE[1]).status_code == 302


def test_case_variants_are_one_name_whether_or_not_the_account_exists(strict_gateway, demo_users):
    """Failures as "ALICE" lock "alice" (an account) exactly as failures as "GHOST" lock
    "ghost" (none): a shared per-account counter would leave "alice" open, telling the
    guesser that this name is an account."""
    url = strict_gateway.url
    for typed, name, password in [("ALICE", "alice", ALICE[1]), ("GHOST", "ghost", "whatever")]:
        client = client_from_new_address(url)
        for _ in range(3):
            assert login(client, typed, "guess").status_code == 200
        assert login(client_from_new_address(url), name, password).status_code == 429, name


class CountingHasher(QuickScryptHasher):
    """QuickScryptHasher (the demo users' hashes) that counts its hashing work: `encode`,
    which checking a password (`verify`) runs too."""

    calls = 0

    def encode(self, password, salt, *args, **kwargs):
        CountingHasher.calls += 1
        return super().encode(password, salt, *args, **kwargs)


def test_known_and_unknown_names_cost_the_same_hashing(demo_users, settings, redis_client):
    """The timing class: one password hash for a wrong password whether or not the name is
    an account (by username or e-mail), none once the name is locked out."""
    from django.test import RequestFactory

    settings.PASSWORD_HASHERS = ["tests.test_sign_in.CountingHasher"]
    settings.REDIS_KEY_PREFIX += "sign-in-hashing:"  # counters of this test only
    factory = RequestFactory()

    def hashes(name: str, address: str) -> int:
        before = CountingHasher.calls
        request = factory.post("/login", REMOTE_ADDR=address)
        assert authenticate(request, username=name, password="guess") is None
        return CountingHasher.calls - before

    for index, name in enumerate(["demo", "demo@example.com", "nobody-here", "ghost@example.com"]):
        address = f"10.0.0.{index}"
        counts = [hashes(name, address) for _ in range(settings.PELCRO_GATEWAY["LOGIN_MAX_FAILURES"] + 1)]
        assert counts == [1] * settings.PELCRO_GATEWAY["LOGIN_MAX_FAILURES"] + [0], (name, counts)
