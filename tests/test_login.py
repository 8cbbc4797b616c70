"""/login and /logout: e-mail or username, CSRF, lock-out per user and per IP."""

import httpx
import pytest

from devtools.oauth_client import parse_forms
from devtools.servers import free_port
from tests.support.servers import start_gateway

LOCKED = "Too many failed sign-in attempts"


def login(url: str, username: str, password: str, next_url: str = "/connections", client=None):
    """POST the login form like a browser; returns (response, client)."""
    client = client or httpx.Client(base_url=url, timeout=10)
    page = client.get("/login")
    token = next(f for f in parse_forms(page.text) if f["action"] == "/login")["hidden"]["csrfmiddlewaretoken"]
    response = client.post(
        "/login", data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": next_url}
    )
    return response, client


@pytest.mark.sqlite
def test_sign_in_with_username_or_email(gateway_server, demo_users):
    response, client = login(gateway_server.url, "demo", "pelcro-demo-2026")
    assert response.status_code == 302 and response.headers["location"] == "/connections"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("sessionid="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/connections").status_code == 200

    response, _ = login(gateway_server.url, "Demo@Example.com", "pelcro-demo-2026")
    assert response.status_code == 302


def test_wrong_password_shows_a_clear_message(gateway_server, demo_users):
    response, client = login(gateway_server.url, "demo", "wrong-password")
    assert response.status_code == 200
    assert "do not match" in response.text
    assert client.get("/connections").status_code == 302  # still signed out


def test_login_requires_csrf(gateway_server, demo_users):
    response = httpx.post(gateway_server.url + "/login", data={"username": "demo", "password": "pelcro-demo-2026"})
    assert response.status_code == 403


def test_next_may_not_leave_the_site(gateway_server, demo_users):
    response, _ = login(gateway_server.url, "demo", "pelcro-demo-2026", next_url="https://evil.example/")
    assert response.status_code == 302 and response.headers["location"] == "/connections"


def test_logout_is_post_only(gateway_server, demo_users):
    response, client = login(gateway_server.url, "demo", "pelcro-demo-2026")
    assert client.get("/logout").status_code == 405
    page = client.get("/connections")
    token = next(f for f in parse_forms(page.text) if f["action"] == "/logout")["hidden"]["csrfmiddlewaretoken"]
    response = client.post("/logout", data={"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.headers["location"] == "/login"
    assert client.get("/connections").status_code == 302


def test_lock_out_after_repeated_failures_for_one_user(strict_gateway, demo_users):
    url = strict_gateway.url
    for _ in range(3):  # LOGIN_MAX_FAILURES
        assert login(url, "demo", "guess")[0].status_code == 200
    # Now even the right password is refused for that name (in any case).
    response, client = login(url, "demo", "pelcro-demo-2026")
    assert response.status_code == 429
    assert LOCKED in response.text and "try again in about 1 minute" in response.text
    assert client.get("/connections").status_code == 302
    assert login(url, "DEMO", "pelcro-demo-2026")[0].status_code == 429
    # The e-mail address is another name with its own count (tests/test_sign_in.py: a shared
    # one would tell a guesser whose address it is).
    # Another person is not locked out by it.
    assert login(url, "alice", "pelcro-alice-2026")[0].status_code == 302


def test_lock_out_per_ip_across_usernames(strict_gateway, demo_users):
    url = strict_gateway.url
    for index in range(5):  # LOGIN_MAX_FAILURES_PER_IP, spread so no single user hits its cap
        assert login(url, f"nobody-{index}", "guess")[0].status_code == 200
    response, _ = login(url, "alice", "pelcro-alice-2026")
    assert response.status_code == 429 and LOCKED in response.text


def test_success_resets_the_users_failures(strict_gateway, demo_users):
    url = strict_gateway.url
    for _ in range(2):
        login(url, "alice", "guess")
    assert login(url, "alice", "pelcro-alice-2026")[0].status_code == 302
    for _ in range(2):
        assert login(url, "alice", "guess")[0].status_code == 200  # counting starts again
    assert login(url, "alice", "pelcro-alice-2026")[0].status_code == 302


def test_sign_in_still_works_when_redis_is_down(django_db_setup, django_db_blocker, demo_users):
    with django_db_blocker.unblock():
        server = start_gateway(None, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        assert login(server.url, "demo", "pelcro-demo-2026")[0].status_code == 302
        assert login(server.url, "demo", "nope")[0].status_code == 200
    finally:
        server.stop()
