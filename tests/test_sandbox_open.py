"""The Open API sandbox (/api/v1/sdk) over real HTTP, OPEN_API.md §1–§2, §5.1–§5.3, §6:
`site_id`, site and plans, register/login/logout/refresh, JWT claims and lifetime, 401 vs
403, the login lock-out, passwordless login, customer get/update, isolation between
customers and sites, the shared request log and fault injection."""

import time

import jwt
import pytest

from tests.support.sandbox import (
    ACME_SITE,
    ACME_SITE_2,
    OTHER_SITE,
    READER,
    SECOND,
    SUBSCRIBERS,
    OpenClient,
    SandboxClient,
)
from tests.support.servers import start_sandbox

BAD_CREDENTIALS = {"error": {"status": 404, "message": "Invalid credentials! Please try again."}}
INVALID = {"error": {"status": 401, "message": "Invalid or expired token"}}
NOT_PROVIDED = {"error": {"status": 401, "message": "Token not provided"}}
BLACKLISTED = {"error": {"status": 403, "message": "Authentication token has been blacklisted, please try again"}}
STRONG = "Str0ng-Passw0rd!"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# --- site_id (§1) --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, body, field_message",
    [
        ({}, None, "required"),
        ({"site_id": "abc"}, None, "integer"),
        ({"site_id": 999999}, None, "invalid"),
        ({"site_id": ACME_SITE}, {"site_id": ACME_SITE_2}, "must match"),
    ],
)
def test_site_id_is_required_an_integer_and_a_real_site(sdk, params, body, field_message):
    response = sdk.call(
        "POST",
        "/auth/login",
        site_id=None,
        params=params,
        json={**(body or {}), "email": READER["email"], "password": READER["password"]},
    )
    assert response.status_code == 400, response.text
    assert field_message in response.json()["errors"]["site_id"][0]


def test_site_id_may_come_in_the_body_and_form_bodies_work(sdk):
    body = {"site_id": READER["site_id"], "email": READER["email"], "password": READER["password"]}
    assert sdk.call("POST", "/auth/login", site_id=None, json=body).status_code == 200
    form = sdk.http.post("/auth/login", data=body, headers={"Accept": "application/json"})
    assert form.status_code == 200, form.text
    assert form.json()["data"]["email"] == READER["email"]


# --- site and plans (§5.2) -----------------------------------------------------------------------------


def test_site_lists_products_with_their_offered_plans_newsletters_and_settings(sdk, fresh_sbx):
    site = sdk.ok("GET", "/site")["data"]
    assert site["id"] == ACME_SITE and site["name"] == "Acme Daily" and site["default_currency"] == "usd"
    core_plans = fresh_sbx.ok("GET", "/plans", params={"limit": 100})
    offered = {p["id"] for p in core_plans if p["active"] == "active" and p["available_online"]}
    listed = {plan["id"] for product in site["products"] for plan in product["plans"]}
    assert listed == offered and len(offered) == len(core_plans) - 1  # the archived plan is not offered
    assert {p["name"] for p in site["products"]} == {"Digital", "Print"}
    assert all(p["ships"] == (p["name"] == "Print") for p in site["products"])
    assert site["newsletters"] and site["settings"] == {
        "auth_token_ttl_days": 60,
        "single_session": False,
        "passwordless_enabled": True,
        "passwordless_token_duration": 1,
        "immediate_cancel_enabled": False,
        "strong_password": True,
        "email_verify_enabled": False,
    }
    assert sdk.call("GET", "/site", site_id=ACME_SITE_2).json()["data"]["settings"]["immediate_cancel_enabled"]


def test_plan_by_query_or_body_and_its_refusals(sdk, fresh_sbx):
    plans = fresh_sbx.ok("GET", "/plans", params={"limit": 100})
    live = next(p for p in plans if p["active"] == "active")
    archived = next(p for p in plans if p["active"] != "active")
    other_site = fresh_sbx.ok("GET", "/plans", site_id=OTHER_SITE, account="other", params={"limit": 1})[0]
    assert sdk.ok("GET", "/plan", params={"plan_id": live["id"]})["data"]["id"] == live["id"]
    shown = sdk.ok("POST", "/plan", json={"plan_id": live["id"]})["data"]
    assert shown["product"]["id"] == live["product_id"] and "address_required" in shown
    for plan_id, status in ((archived["id"], 404), (other_site["id"], 404), (123456789, 404)):
        response = sdk.call("GET", "/plan", params={"plan_id": plan_id})
        assert response.status_code == status and response.json()["error"]["message"] == "Invalid plan provided."
    for params in ({}, {"plan_id": "x"}):
        assert "plan_id" in sdk.call("GET", "/plan", params=params).json()["errors"]


# --- login, tokens (§2) --------------------------------------------------------------------------------


def test_every_demo_subscriber_logs_in_on_its_site_with_a_documented_jwt(sdk, fresh_sbx):
    assert len({s["site_id"] for s in SUBSCRIBERS}) >= 3
    for subscriber in SUBSCRIBERS:
        customer = sdk.login(subscriber)
        assert customer["auth_token"] == customer["token"]
        claims = claims_of(customer["token"])
        assert set(claims) == {"iss", "iat", "exp", "nbf", "jti", "sub", "prv", "site_id"}
        assert claims["sub"] == str(customer["id"]) and claims["site_id"] == subscriber["site_id"]
        assert claims["iss"].endswith("/api/v1/sdk/customer") and claims["nbf"] == claims["iat"]
        assert claims["exp"] - claims["iat"] == 60 * 86400
        assert jwt.get_unverified_header(customer["token"])["alg"] == "HS256"
        # Each has a card, a live subscription, an open invoice and an address (demo data).
        assert customer["sources"] and customer["addresses"] and customer["default_source"]
        assert any(s["status"] == "active" for s in customer["subscriptions"])
        assert any(i["status"] == "open" for i in customer["invoices"])
        # ...and is the same customer in the Core API.
        account = {14: "acme", 15: "acme", 27: "other", 31: "globex", 32: "globex"}[subscriber["site_id"]]
        core = fresh_sbx.ok("GET", f"/customers/{customer['id']}", account=account, site_id=subscriber["site_id"])
        assert core["email"] == subscriber["email"]
        assert "pbkdf2" not in str(core) and not any("hash" in key for key in core)


def test_token_lifetime_follows_the_sites_auth_token_ttl_days(sdk):
    sdk.settings(ACME_SITE, auth_token_ttl_days=7)
    claims = claims_of(sdk.login()["token"])
    assert claims["exp"] - claims["iat"] == 7 * 86400
    for bad in (
        {"auth_token_ttl_days": 0},
        {"auth_token_ttl_days": 366},
        {"auth_token_ttl_days": "7"},
        {"auth_token_ttl_days": True},
        {"single_session": "yes"},
        {"no_such_setting": True},
    ):
        assert sdk.sbx.admin.patch(f"/sites/{ACME_SITE}/open", json=bad).status_code == 400
    assert sdk.sbx.admin.get(f"/sites/{ACME_SITE}/open").json()["data"]["auth_token_ttl_days"] == 7
    assert sdk.sbx.admin.patch("/sites/999999/open", json={}).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"email": READER["email"], "password": "wrong-Passw0rd!"},
        {"email": "nobody@acme-daily.example.com", "password": READER["password"]},
        {"username": "no_such_user", "password": READER["password"]},
        {"email": SUBSCRIBERS[3]["email"], "password": SUBSCRIBERS[3]["password"]},  # a customer of another site
    ],
)
def test_login_failures_all_answer_the_same_404(sdk, body):
    response = sdk.call("POST", "/auth/login", json=body)
    assert response.status_code == 404 and response.json() == BAD_CREDENTIALS


def test_login_validation_and_username_login(sdk):
    assert "password" in sdk.call("POST", "/auth/login", json={"email": READER["email"]}).json()["errors"]
    assert "email" in sdk.call("POST", "/auth/login", json={"password": "x"}).json()["errors"]
    customer = sdk.ok(
        "POST", "/auth/register", json={"email": "user.name@example.com", "password": STRONG, "username": "reader_77"}
    )["data"]
    again = sdk.ok("POST", "/auth/login", json={"username": "READER_77", "password": STRONG})["data"]
    assert again["id"] == customer["id"]


def test_lockout_after_ten_failures_then_lifted_when_the_window_passes(sdk):
    sdk.sbx.configure(login_lockout_window=3)
    wrong = {"email": READER["email"], "password": "wrong-Passw0rd!"}
    for _ in range(10):
        assert sdk.call("POST", "/auth/login", json=wrong).status_code == 404
    right = {"email": READER["email"], "password": READER["password"]}
    locked = sdk.call("POST", "/auth/login", json=right)
    assert locked.status_code == 429 and "Too many login attempts" in locked.json()["error"]["message"]
    assert 1 <= int(locked.headers["Retry-After"]) <= 3
    # Another subscriber is not locked out by it.
    assert (
        sdk.call("POST", "/auth/login", json={"email": SECOND["email"], "password": SECOND["password"]}).status_code
        == 200
    )
    time.sleep(3.2)
    assert sdk.call("POST", "/auth/login", json=right).status_code == 200


def test_nine_failures_then_a_success_clears_the_count(sdk):
    wrong = {"email": READER["email"], "password": "wrong-Passw0rd!"}
    for _ in range(9):
        sdk.call("POST", "/auth/login", json=wrong)
    sdk.login()
    for _ in range(9):
        assert sdk.call("POST", "/auth/login", json=wrong).status_code == 404
    assert sdk.call("POST", "/auth/login", json={**wrong, "password": READER["password"]}).status_code == 200


@pytest.mark.parametrize(
    "header, expected",
    [
        (None, NOT_PROVIDED),
        ("Bearer", NOT_PROVIDED),
        ("Basic abc", NOT_PROVIDED),
        ("Bearer not-a-jwt", INVALID),
        ("Bearer " + jwt.encode({"sub": "1"}, "another-signing-key-of-32-bytes-or-more", algorithm="HS256"), INVALID),
    ],
)
def test_missing_and_bad_tokens_are_401_with_the_documented_messages(sdk, header, expected):
    headers = {"Authorization": header} if header else {}
    for method, path in (("POST", "/customer"), ("GET", "/payment_methods"), ("POST", "/subscription/cancel")):
        response = sdk.call(method, path, headers=headers, json={})
        assert response.status_code == 401 and response.json() == expected, (path, response.text)


def test_expired_not_yet_valid_and_claimless_tokens_are_401():
    """A sandbox with a known signing key, so the test can forge tokens it signed."""
    server = start_sandbox(SANDBOX_JWT_SECRET="test-signing-key-of-32-bytes-or-more", SANDBOX_CUSTOMERS_PER_SITE="5")
    try:
        client = OpenClient(SandboxClient(server))
        good = claims_of(client.login()["token"])
        now = int(time.time())
        forged = {
            "expired": {**good, "iat": now - 7200, "nbf": now - 7200, "exp": now - 60},
            "not yet valid": {**good, "nbf": now + 3600},
            "no jti": {k: v for k, v in good.items() if k != "jti"},
            "no site_id": {k: v for k, v in good.items() if k != "site_id"},
        }
        for name, claims in forged.items():
            token = jwt.encode(claims, "test-signing-key-of-32-bytes-or-more", algorithm="HS256")
            response = client.call("POST", "/customer", token=token)
            assert response.status_code == 401 and response.json() == INVALID, name
        still_good = jwt.encode(good, "test-signing-key-of-32-bytes-or-more", algorithm="HS256")
        assert client.call("POST", "/customer", token=still_good).status_code == 200
        client.close()
    finally:
        server.stop()


def test_a_token_of_another_site_is_401_there(sdk):
    token = sdk.login()["token"]
    for site_id in (ACME_SITE_2, OTHER_SITE):
        response = sdk.call("POST", "/customer", site_id=site_id, token=token)
        assert response.status_code == 401 and response.json() == INVALID


PROTECTED = [
    ("POST", "/auth/logout"),
    ("POST", "/customer/refresh"),
    ("POST", "/customer"),
    ("PUT", "/customer"),
    ("POST", "/subscription"),
    ("POST", "/order"),
    ("POST", "/subscription/cancel"),
    ("POST", "/subscription/reactivate"),
    ("POST", "/subscription/renew"),
    ("GET", "/payment_methods"),
    ("POST", "/payment_methods"),
    ("PUT", "/payment_methods/1"),
    ("DELETE", "/payment_methods/1"),
    ("POST", "/source"),
    ("POST", "/address"),
    ("PUT", "/address/1"),
    ("POST", "/invoices/1/pay"),
    ("GET", "/subscriptions/1/members/list"),
    ("POST", "/subscriptions/1/members/invite"),
    ("DELETE", "/subscriptions/1/members/1"),
]


def test_every_protected_operation_refuses_no_token_another_sites_and_a_blacklisted_one(sdk):
    """401 without a token, 401 with another site's, 403 once blacklisted; nothing runs."""
    other_site = sdk.login(SUBSCRIBERS[2])["token"]  # a customer of site 15
    blacklisted = sdk.login()["token"]
    sdk.ok("POST", "/auth/logout", token=blacklisted)
    since = sdk.sbx.last_seq()
    for method, path in PROTECTED:
        assert sdk.call(method, path, json={}).json() == NOT_PROVIDED, path
        assert sdk.call(method, path, json={}, token=other_site).json() == INVALID, path
        assert sdk.call(method, path, json={}, token=blacklisted).json() == BLACKLISTED, path
    assert all(e["customer"] is None for e in sdk.sbx.log(since))  # no call ran as anyone


def test_logout_blacklists_the_token_403_and_answers_without_token(sdk):
    token = sdk.login()["token"]
    out = sdk.ok("POST", "/auth/logout", token=token)["data"]
    assert out["auth_token"] is None and out["token"] is None and out["email"] == READER["email"]
    for method, path in (("POST", "/customer"), ("POST", "/auth/logout"), ("POST", "/customer/refresh")):
        response = sdk.call(method, path, token=token)
        assert response.status_code == 403 and response.json() == BLACKLISTED
    assert sdk.call("POST", "/customer", token=sdk.login()["token"]).status_code == 200


def test_refresh_gives_a_new_token_and_blacklists_the_old(sdk):
    old = sdk.login()["token"]
    new = sdk.ok("POST", "/customer/refresh", token=old)["data"]["auth_token"]
    assert claims_of(new)["jti"] != claims_of(old)["jti"]
    assert sdk.call("POST", "/customer", token=old).json() == BLACKLISTED
    assert sdk.call("POST", "/customer", token=new).status_code == 200


def test_single_session_blacklists_earlier_logins(sdk):
    first = sdk.login()["token"]
    second = sdk.login()["token"]
    assert sdk.call("POST", "/customer", token=first).status_code == 200  # off by default
    sdk.settings(ACME_SITE, single_session=True)
    third = sdk.login()["token"]
    for earlier in (first, second):
        assert sdk.call("POST", "/customer", token=earlier).json() == BLACKLISTED
    assert sdk.call("POST", "/customer", token=third).status_code == 200


# --- register (§5.1) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password, strong, ok",
    [
        (STRONG, True, True),
        ("Sh0rt!", True, False),
        ("no-digits-Here!", True, False),
        ("n0symbolsHere", True, False),
        ("N0-LOWER-CASE!", True, False),
        ("n0-upper-case!", True, False),
        ("A1!" + "a" * 28, True, False),  # 31 characters
        ("simple", False, True),
        ("short", False, False),
    ],
)
def test_register_password_rules(sdk, password, strong, ok):
    sdk.settings(ACME_SITE, strong_password=strong)
    response = sdk.call("POST", "/auth/register", json={"email": "new.reader@example.com", "password": password})
    if ok:
        assert response.status_code == 200, response.text
        assert claims_of(response.json()["data"]["token"])["sub"] == str(response.json()["data"]["id"])
    else:
        assert response.status_code == 400 and "password" in response.json()["errors"], response.text


def test_register_creates_a_core_customer_and_refuses_bad_or_taken_fields(sdk, fresh_sbx):
    body = {
        "email": "New.Reader@Example.com",
        "password": STRONG,
        "first_name": "New",
        "last_name": "Reader",
        "phone": "+1 (212) 555-0100",
        "metadata": {"plan": "x"},
        "username": "new_reader",
        "language": "fr",
    }
    customer = sdk.ok("POST", "/auth/register", json=body)["data"]
    assert customer["email"] == "new.reader@example.com" and customer["phone"] == "12125550100"
    assert customer["language"] == "fr" and customer["subscriptions"] == [] and customer["sources"] == []
    # Languages other than en, fr, it, ko, es, de fall back to en (OPEN_API.md §1).
    for sent, kept in (("PT", "en"), ("DE", "de")):
        again = sdk.ok("PUT", "/customer", token=customer["token"], json={"language": sent})["data"]
        assert again["language"] == kept
    core = fresh_sbx.ok("GET", f"/customers/{customer['id']}")
    assert core["email"] == "new.reader@example.com" and core["has_password"] is True and core["name"] == "New Reader"
    cases = [
        ({"email": "new.reader@example.com", "password": STRONG}, "email"),  # duplicate (case-insensitive)
        ({"email": READER["email"], "password": STRONG}, "email"),
        ({"email": "not-an-email", "password": STRONG}, "email"),
        ({"password": STRONG}, "email"),
        ({"email": "x@example.com"}, "password"),
        ({"email": "y@example.com", "password": STRONG, "username": "bad name!"}, "username"),
        ({"email": "z@example.com", "password": STRONG, "shoe_size": 9}, "shoe_size"),
    ]
    for bad, field in cases:
        response = sdk.call("POST", "/auth/register", json=bad)
        assert response.status_code == 400 and field in response.json()["errors"], (bad, response.text)
    # Unique per account: the email is taken on the account's other site too.
    response = sdk.call(
        "POST", "/auth/register", site_id=ACME_SITE_2, json={"email": READER["email"], "password": STRONG}
    )
    assert response.status_code == 400 and "email" in response.json()["errors"]
    assert (
        sdk.call(
            "POST", "/auth/register", site_id=OTHER_SITE, json={"email": READER["email"], "password": STRONG}
        ).status_code
        == 200
    )


# --- customer get / update (§5.3) ----------------------------------------------------------------------


def test_get_customer_returns_the_resource_with_a_fresh_token(sdk):
    token = sdk.login()["token"]
    customer = sdk.ok("POST", "/customer", token=token)["data"]
    for key in ("subscriptions", "addresses", "sources", "invoices", "gift_recipients"):
        assert isinstance(customer[key], list)
    assert customer["auth_token"] == customer["token"] != token
    assert sdk.call("POST", "/customer", token=token).status_code == 200  # the old one stays valid


def test_update_is_partial_merges_metadata_and_an_email_change_resets_email_confirm(sdk, fresh_sbx):
    login = sdk.login()
    assert login["email_confirm"] is True
    token = login["token"]
    sdk.ok("PUT", "/customer", token=token, json={"metadata": {"a": "1", "b": "2"}})
    updated = sdk.ok("PUT", "/customer", token=token, json={"first_name": "Rosa", "metadata": {"b": None, "c": 3}})[
        "data"
    ]
    assert updated["first_name"] == "Rosa" and updated["last_name"] == login["last_name"]
    assert updated["metadata"] == {"a": "1", "c": 3} and updated["email_confirm"] is True
    assert updated["token"] and updated["token"] != token
    quiet = sdk.ok("PUT", "/customer", token=token, json={"email": "quiet@example.com"})["data"]
    assert quiet["email_confirm"] is False  # reset, but no verification mail: the site does not verify
    assert sdk.sbx.admin.get("/outbox").json()["data"] == []
    sdk.settings(ACME_SITE, email_verify_enabled=True)
    changed = sdk.ok("PUT", "/customer", token=token, json={"email": "rosa@example.com"})["data"]
    assert changed["email"] == "rosa@example.com" and changed["email_confirm"] is False
    mails = sdk.sbx.admin.get("/outbox", params={"to": "rosa@example.com"}).json()["data"]
    assert [m["type"] for m in mails] == ["email_verification"]
    core = fresh_sbx.ok("GET", f"/customers/{login['id']}")
    assert core["email"] == "rosa@example.com" and core["first_name"] == "Rosa" and core["email_confirm"] is False
    for bad, field in (
        ({"password": STRONG}, "password"),
        ({"email": SECOND["email"]}, "email"),
        ({"email": "nope"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"metadata": []}, "metadata"),
    ):
        response = sdk.call("PUT", "/customer", token=token, json=bad)
        assert response.status_code == 400 and field in response.json()["errors"], (bad, response.text)


# --- passwordless (§5.1) -------------------------------------------------------------------------------


def test_passwordless_request_and_one_time_login(sdk):
    assert sdk.ok("POST", "/auth/passwordless/request", json={"email": READER["email"]})["data"]["message"]
    mail = sdk.sbx.admin.get("/outbox", params={"site_id": ACME_SITE}).json()["data"][-1]
    assert mail["type"] == "passwordless_login" and mail["to"] == READER["email"]
    assert mail["expires_at"] - mail["sent_at"] == 86400  # passwordless_token_duration: 1 day
    customer = sdk.ok("POST", "/auth/passwordless/login", json={"token": mail["token"]})["data"]
    assert customer["email"] == READER["email"] and customer["auth_token"]
    assert sdk.call("POST", "/auth/passwordless/login", json={"token": mail["token"]}).status_code == 404  # used
    assert sdk.call("POST", "/auth/passwordless/request", json={"email": "nobody@example.com"}).status_code == 404
    for _ in range(4):
        assert sdk.call("POST", "/auth/passwordless/request", json={"email": READER["email"]}).status_code == 200
    throttled = sdk.call("POST", "/auth/passwordless/request", json={"email": READER["email"]})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
    sdk.settings(ACME_SITE, passwordless_enabled=False)
    assert sdk.call("POST", "/auth/passwordless/request", json={"email": SECOND["email"]}).status_code == 400


# --- isolation, request log, faults --------------------------------------------------------------------


def test_a_subscriber_never_reaches_another_customers_objects(sdk, fresh_sbx):
    token = sdk.login(READER)["token"]
    other = sdk.login(SECOND)
    sub = other["subscriptions"][0]["id"]
    invoice = next(i for i in other["invoices"] if i["status"] == "open")["id"]
    address, source = other["addresses"][0]["id"], other["sources"][0]["id"]
    plan = other["subscriptions"][0]["plan"]
    attempts = [
        ("POST", "/subscription/cancel", {"subscription_id": sub}, 404),
        ("POST", "/subscription/reactivate", {"subscription_id": sub}, 404),
        ("POST", "/subscription/renew", {"subscription_id": sub, "plan_id": plan}, 400),
        ("POST", "/order", {"plan_id": plan, "subscription_id": sub}, 404),
        ("POST", "/order", {"plan_id": plan, "address_id": address}, 404),
        ("POST", "/subscription", {"plan_id": plan, "source_id": source}, 404),
        ("POST", f"/invoices/{invoice}/pay", {"source_id": source}, 404),
        ("PUT", f"/address/{address}", {"city": "Elsewhere"}, 404),
        ("PUT", f"/payment_methods/{source}", {"is_default": True}, 404),
        ("DELETE", f"/payment_methods/{source}", None, 404),
    ]
    before = {
        kind: fresh_sbx.ok("GET", f"/{kind}/{obj}")
        for kind, obj in (("subscriptions", sub), ("invoices", invoice), ("addresses", address))
    }
    for method, path, body, status in attempts:
        response = sdk.call(method, path, token=token, json=body)
        assert response.status_code == status, (path, response.text)
        assert "error" in response.json(), response.text
    after = {
        kind: fresh_sbx.ok("GET", f"/{kind}/{obj}")
        for kind, obj in (("subscriptions", sub), ("invoices", invoice), ("addresses", address))
    }
    assert after == before
    mine = sdk.ok("POST", "/customer", token=token)["data"]
    assert all(s["user_id"] == mine["id"] for s in mine["subscriptions"])
    assert all(i["customer_id"] == mine["id"] for i in mine["invoices"])
    assert source not in {m["id"] for m in sdk.ok("GET", "/payment_methods", token=token)["data"]}


def test_open_requests_are_logged_with_api_open_and_never_a_token_or_password(sdk):
    since = sdk.sbx.last_seq()
    customer = sdk.login()
    sdk.ok("POST", "/customer", token=customer["token"])
    sdk.sbx.ok("GET", "/plans", params={"limit": 1})
    entries = sdk.sbx.log(since)
    assert [e["api"] for e in entries] == ["open", "open", "core"]
    assert entries[1]["account"] == "acme" and entries[1]["customer"] == customer["id"]
    assert entries[0]["body_sha256"] is None  # an /auth/ body carries a password
    assert [e["api"] for e in sdk.sbx.log(since, api="open")] == ["open", "open"]
    text = str(entries)
    assert customer["token"] not in text and READER["password"] not in text


def test_fault_injection_and_the_optional_per_site_limit_apply_to_the_open_api(sdk):
    token = sdk.login()["token"]
    sdk.sbx.configure(force_429=1)
    response = sdk.call("POST", "/customer", token=token)
    assert response.status_code == 429 and response.headers["Retry-After"]
    sdk.sbx.configure(force_429=0)
    subscription = sdk.login()["subscriptions"][0]["id"]
    sdk.sbx.configure(error_rate=1)
    response = sdk.call("POST", "/subscription/cancel", token=token, json={"subscription_id": subscription})
    assert response.status_code in (500, 502, 503)
    sdk.sbx.configure(error_rate=0)
    # An injected error happens before processing: nothing was canceled.
    assert sdk.sbx.ok("GET", f"/subscriptions/{subscription}")["cancel_at_period_end"] is False
    sdk.sbx.configure(open_rate_limit=3)
    statuses = [sdk.call("GET", "/site").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert sdk.call("GET", "/site", site_id=ACME_SITE_2).status_code == 200  # per site
    assert sdk.sbx.ok("GET", "/plans", params={"limit": 1})  # Core's budget is separate


def test_unknown_operations_answer_400(sdk):
    for method, path in (("GET", "/nothing/here"), ("POST", "/auth/idp/login"), ("PATCH", "/customer")):
        response = sdk.call(method, path, json={})
        assert response.status_code == 400 and "No Open API operation" in response.json()["error"]["message"], path
