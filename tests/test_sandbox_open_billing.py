"""The Open API sandbox's money and profile writes over real HTTP (OPEN_API.md §5.4–§5.7,
§5.9, §6) and the shared world with the Core API in both directions: subscribe, price
preview, cancel (three modes), reactivate, renew, payment methods, addresses, invoice pay,
newsletters."""

import pytest

from tests.support.sandbox import ACME_SITE, ACME_SITE_2, OTHER_SITE, READER, SUBSCRIBERS

GB = SUBSCRIBERS[3]  # site 27: an account with taxes enabled


def plan_named(sbx, nickname, site_id=ACME_SITE, account="acme"):
    plans = sbx.ok("GET", "/plans", site_id=site_id, account=account, params={"limit": 100})
    return next(p for p in plans if p["nickname"] == nickname)


def core_all(sbx, kind, site_id=ACME_SITE, account="acme"):
    """Every object of a Core list, page by page."""
    items, page = [], 1
    while True:
        response = sbx.api("GET", f"/{kind}", site_id=site_id, account=account, params={"limit": 100, "page": page})
        assert response.status_code == 200, response.text
        items += response.json()["data"]
        if page >= response.json()["meta"]["last_page"]:
            return items
        page += 1


def core_charges_of(sbx, invoice_id):
    return [c for c in core_all(sbx, "charges") if c["invoice_id"] == invoice_id]


def core_subscriptions_of(sbx, customer_id):
    return sbx.ok("GET", f"/customers/{customer_id}", params={"expand": "subscriptions"})["subscriptions"]


def core_invoices_of(sbx, customer_id):
    return [i for i in core_all(sbx, "invoices") if i["customer_id"] == customer_id]


@pytest.fixture
def me(sdk):
    """READER logged in: (customer resource, token)."""
    customer = sdk.login(READER)
    return customer, customer["token"]


def refused(response, status, text=None):
    assert response.status_code == status, response.text
    if text is not None:
        assert text in response.text, response.text
    return response.json()


# --- subscribe (§5.4) ----------------------------------------------------------------------------------


def test_subscribe_with_a_saved_card_bills_and_core_sees_it(sdk, fresh_sbx, me):
    customer, token = me
    weekly = plan_named(fresh_sbx, "Weekly Pass")
    data = sdk.ok(
        "POST", "/subscription", token=token, json={"plan_id": weekly["id"], "source_id": customer["sources"][0]["id"]}
    )["data"]
    new = next(s for s in data["subscriptions"] if s["plan"] == weekly["id"])
    assert new["status"] == "active" and data["auth_token"] == data["token"]
    core = fresh_sbx.ok("GET", f"/subscriptions/{new['id']}", params={"expand": "latest_invoice"})
    assert core["user_id"] == customer["id"] and core["latest_invoice"]["status"] == "paid"
    charges = core_charges_of(fresh_sbx, core["latest_invoice"]["id"])
    assert [c["amount"] for c in charges] == [weekly["amount"]]


def test_subscribe_to_a_trial_plan_starts_a_trial_and_bills_nothing(sdk, fresh_sbx, me):
    customer, token = me
    monthly = plan_named(fresh_sbx, "Digital Monthly")
    data = sdk.ok(
        "POST", "/subscription", token=token, json={"plan_id": monthly["id"], "source_id": customer["sources"][0]["id"]}
    )["data"]
    new = max(data["subscriptions"], key=lambda s: s["id"])
    assert new["status"] == "trialing" and new["latest_invoice"] is None and new["trial_end"]


@pytest.mark.parametrize(
    "token, status, text",
    [
        ("tok_visa", 200, None),
        ("tok_mastercard_5555", 200, None),
        ("tok_chargeDeclined_decline", 404, "Your card was declined."),
        ("tok_expired_card", 404, "Your card has expired."),
        ("tok_bad_cvc", 404, "security code is incorrect"),
        ("tok_processing_error", 404, "error occurred while processing"),
        ("card_4242424242424242", 404, "Invalid payment token."),
    ],
)
def test_subscribe_with_a_gateway_token(sdk, fresh_sbx, me, token, status, text):
    _, jwt_token = me
    weekly = plan_named(fresh_sbx, "Weekly Pass")
    before = len(sdk.ok("GET", "/payment_methods", token=jwt_token)["data"])
    response = sdk.call(
        "POST",
        "/subscription",
        token=jwt_token,
        json={"plan_id": weekly["id"], "payment_gateway": "stripe", "gateway_token": token},
    )
    body = refused(response, status, text)
    methods = sdk.ok("GET", "/payment_methods", token=jwt_token)["data"]
    if status == 200:
        assert len(methods) == before + 1 and any(s["plan"] == weekly["id"] for s in body["data"]["subscriptions"])
    else:
        assert len(methods) == before and body["error"]["status"] == 404


def test_subscribe_with_a_3ds_token_returns_a_payment_intent_and_leaves_the_invoice_open(sdk, fresh_sbx, me):
    _, token = me
    weekly = plan_named(fresh_sbx, "Weekly Pass")
    body = sdk.ok(
        "POST", "/subscription", token=token, json={"plan_id": weekly["id"], "gateway_token": "tok_3ds_required"}
    )
    intent = body["payment_intent"]
    assert intent["status"] == "requires_action" and intent["client_secret"] and intent["amount"] == weekly["amount"]
    core = fresh_sbx.ok("GET", f"/subscriptions/{intent['subscription_id']}", params={"expand": "latest_invoice"})
    assert core["status"] == "incomplete" and core["latest_invoice"]["status"] == "open"
    trial = plan_named(fresh_sbx, "Digital Annual")
    body = sdk.ok("POST", "/subscription", token=token, json={"plan_id": trial["id"], "gateway_token": "tok_3ds"})
    assert body["setup_intent"]["status"] == "requires_action"


def test_subscribe_refusals(sdk, fresh_sbx, me):
    customer, token = me
    source = customer["sources"][0]["id"]
    weekly = plan_named(fresh_sbx, "Weekly Pass")
    archived = plan_named(fresh_sbx, "Legacy Print Monthly")
    printed = plan_named(fresh_sbx, "Print + Digital Monthly")
    other_plan = plan_named(fresh_sbx, "Weekly Pass", site_id=OTHER_SITE, account="other")
    cases = [
        ({"source_id": source}, 400, "plan_id"),
        ({"plan_id": "x", "source_id": source}, 400, "plan_id"),
        ({"plan_id": archived["id"], "source_id": source}, 404, "Invalid plan provided."),
        ({"plan_id": other_plan["id"], "source_id": source}, 404, "Invalid plan provided."),
        ({"plan_id": weekly["id"]}, 400, "payment is required"),
        ({"plan_id": weekly["id"], "source_id": 99999999}, 404, "not found"),
        ({"plan_id": weekly["id"], "source_id": source, "coupon_code": "NOPE"}, 404, "Invalid coupon code."),
        ({"plan_id": weekly["id"], "source_id": source, "coupon_code": "SPRING25"}, 404, "redeemed until"),
        ({"plan_id": weekly["id"], "source_id": source, "coupon_code": "FREEMONTH"}, 404, "maximum number"),
        ({"plan_id": weekly["id"], "source_id": source, "coupon_code": "ANNUAL30"}, 404, "other plans"),
        ({"plan_id": printed["id"], "source_id": source}, 400, "ships"),
        ({"plan_id": weekly["id"], "source_id": source, "address_id": 99999999}, 404, "not found"),
        ({"plan_id": weekly["id"], "source_id": source, "domains": ["example.com"]}, 404, "membership"),
        ({"plan_id": weekly["id"], "source_id": source, "quantity": 0}, 400, "quantity"),
        ({"plan_id": weekly["id"], "source_id": source, "user_id": 1}, 400, "user_id"),
        ({"plan_id": weekly["id"], "source_id": source, "gateway_token": "tok_visa"}, 400, "not both"),
    ]
    count = len(core_subscriptions_of(fresh_sbx, customer["id"]))
    for body, status, text in cases:
        refused(sdk.call("POST", "/subscription", token=token, json=body), status, text)
    assert len(core_subscriptions_of(fresh_sbx, customer["id"])) == count


def test_subscribe_by_invoice_a_shipped_plan_with_a_coupon_and_a_gift(sdk, fresh_sbx, me):
    customer, token = me
    printed = plan_named(fresh_sbx, "Print + Digital Monthly")
    data = sdk.ok(
        "POST",
        "/subscription",
        token=token,
        json={
            "plan_id": printed["id"],
            "pay_via_send_invoice": True,
            "address_id": customer["addresses"][0]["id"],
            "coupon_code": "welcome10",
            "gift_recipient_email": "friend@example.com",
            "gift_message": "Enjoy",
        },
    )["data"]
    new = max(data["subscriptions"], key=lambda s: s["id"])
    assert (
        new["billing"] == "send_invoice" and new["is_gift_donor"] and new["address"] == customer["addresses"][0]["id"]
    )
    invoice = fresh_sbx.ok("GET", f"/invoices/{new['latest_invoice']}")
    assert invoice["status"] == "open" and invoice["total"] == printed["amount"] - round(printed["amount"] * 0.1)
    assert data["gift_recipients"] == [
        {
            "subscription_id": new["id"],
            "email": "friend@example.com",
            "first_name": None,
            "last_name": None,
            "start_date": None,
            "message": "Enjoy",
        }
    ]


# --- price preview (§5.4 /order) -----------------------------------------------------------------------


def test_order_previews_prices_without_creating_anything(sdk, fresh_sbx, me):
    customer, token = me
    weekly = plan_named(fresh_sbx, "Weekly Pass")
    since = len(core_invoices_of(fresh_sbx, customer["id"]))
    body = sdk.ok("POST", "/order", token=token, json={"plan_id": weekly["id"], "coupon_code": "WELCOME10"})
    assert body["error"] is False
    assert body["data"] == {
        "plan_id": weekly["id"],
        "currency": "usd",
        "subtotal": 299,
        "discount": 30,
        "proration": 0,
        "taxes": [],
        "tax": 0,
        "balance_applied": 0,
        "total": 269,
    }
    current = customer["subscriptions"][0]
    prorated = sdk.ok("POST", "/order", token=token, json={"plan_id": weekly["id"], "subscription_id": current["id"]})
    assert 0 < prorated["data"]["proration"] <= 299 and prorated["data"]["total"] == 299 - prorated["data"]["proration"]
    assert len(core_invoices_of(fresh_sbx, customer["id"])) == since
    for body, status in (
        ({"plan_id": 99999999}, 404),
        ({"plan_id": weekly["id"], "coupon_code": "NOPE"}, 404),
        ({"plan_id": weekly["id"], "subscription_id": 99999999}, 404),
        ({}, 400),
    ):
        refused(sdk.call("POST", "/order", token=token, json=body), status)


def test_order_applies_the_accounts_taxes_by_address_country(sdk, fresh_sbx):
    customer = sdk.login(GB)
    plan = plan_named(fresh_sbx, "Weekly Pass", site_id=OTHER_SITE, account="other")
    data = sdk.ok("POST", "/order", site_id=OTHER_SITE, token=customer["token"], json={"plan_id": plan["id"]})["data"]
    assert data["taxes"] == [{"name": "VAT", "rate": 20.0, "amount": round(plan["amount"] * 0.2)}]
    assert data["total"] == plan["amount"] + data["tax"]


# --- cancel, reactivate, renew (§5.4) ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [None, "current_period_end", "last_period_end"])
def test_cancel_at_period_end_shows_in_core_and_reactivate_undoes_it(sdk, fresh_sbx, me, mode):
    customer, token = me
    sub = customer["subscriptions"][0]
    body = {"subscription_id": sub["id"], "reason": "Too many newsletters"}
    if mode:
        body["mode"] = mode
    sdk.ok("POST", "/subscription/cancel", token=token, json=body)
    core = core_subscriptions_of(fresh_sbx, customer["id"])[0]
    assert core["status"] == "active" and core["cancel_at_period_end"] is True
    assert core["cancel_at"] == sub["current_period_end"] and core["cancel_reason"] == "Too many newsletters"
    refused(sdk.call("POST", "/subscription/cancel", token=token, json=body), 404, "already set to cancel")
    sdk.ok("POST", "/subscription/reactivate", token=token, json={"subscription_id": sub["id"]})
    core = fresh_sbx.ok("GET", f"/subscriptions/{sub['id']}")
    assert core["cancel_at_period_end"] is False and core["auto_renew"] is True and core["renews_at"]
    refused(
        sdk.call("POST", "/subscription/reactivate", token=token, json={"subscription_id": sub["id"]}),
        404,
        "nothing to reactivate",
    )


def test_cancel_now_only_where_the_site_allows_it(sdk, fresh_sbx, me):
    customer, token = me
    sub = customer["subscriptions"][0]["id"]
    refused(
        sdk.call("POST", "/subscription/cancel", token=token, json={"subscription_id": sub, "mode": "now"}),
        404,
        "Immediate cancellation is not enabled",
    )
    assert fresh_sbx.ok("GET", f"/subscriptions/{sub}")["status"] == "active"
    sdk.settings(ACME_SITE, immediate_cancel_enabled=True)
    data = sdk.ok("POST", "/subscription/cancel", token=token, json={"subscription_id": sub, "mode": "now"})["data"]
    assert next(s for s in data["subscriptions"] if s["id"] == sub)["status"] == "canceled"
    core = [s for s in core_subscriptions_of(fresh_sbx, customer["id"]) if s["status"] == "canceled"]
    assert [s["id"] for s in core] == [sub] and core[0]["ended_at"]
    refused(
        sdk.call("POST", "/subscription/cancel", token=token, json={"subscription_id": sub}), 404, "already canceled"
    )
    refused(sdk.call("POST", "/subscription/reactivate", token=token, json={"subscription_id": sub}), 404)


def test_cancel_validation(sdk, me):
    _, token = me
    for body, status in (
        ({}, 400),
        ({"subscription_id": 1, "mode": "period_end"}, 400),
        ({"subscription_id": 99999999}, 404),
        ({"subscription_id": "x"}, 400),
    ):
        refused(sdk.call("POST", "/subscription/cancel", token=token, json=body), status)


def test_reactivate_refuses_a_plan_that_does_not_auto_renew(sdk, fresh_sbx, me):
    customer, token = me
    day = plan_named(fresh_sbx, "Day Pass")
    data = sdk.ok(
        "POST", "/subscription", token=token, json={"plan_id": day["id"], "source_id": customer["sources"][0]["id"]}
    )["data"]
    sub = max(data["subscriptions"], key=lambda s: s["id"])["id"]
    sdk.ok("POST", "/subscription/cancel", token=token, json={"subscription_id": sub})
    refused(
        sdk.call("POST", "/subscription/reactivate", token=token, json={"subscription_id": sub}),
        404,
        "not on an auto-renewing plan",
    )


def test_renew_bills_one_more_period(sdk, fresh_sbx, me):
    customer, token = me
    sub = customer["subscriptions"][0]
    plan = plan_named(fresh_sbx, "Digital Monthly")
    data = sdk.ok(
        "POST", "/subscription/renew", token=token, json={"subscription_id": sub["id"], "plan_id": plan["id"]}
    )["data"]
    renewed = next(s for s in data["subscriptions"] if s["id"] == sub["id"])
    assert renewed["current_period_end"] > sub["current_period_end"]
    invoice = fresh_sbx.ok("GET", f"/invoices/{renewed['latest_invoice']}")
    assert invoice["status"] == "paid" and invoice["period_start"] == sub["current_period_end"]
    for body, text in (
        ({"plan_id": plan["id"]}, "subscription_id"),
        ({"subscription_id": sub["id"]}, "plan_id"),
        ({"subscription_id": sub["id"], "plan_id": 99999999}, "Invalid plan"),
        ({"subscription_id": sub["id"], "plan_id": plan["id"], "gateway_token": "tok_decline"}, "declined"),
        ({"subscription_id": 99999999, "plan_id": plan["id"]}, "not found"),
    ):
        refused(sdk.call("POST", "/subscription/renew", token=token, json=body), 400, text)


# --- payment methods (§5.5) ----------------------------------------------------------------------------


def test_payment_methods_create_set_default_and_delete(sdk, fresh_sbx, me):
    customer, token = me
    first = customer["sources"][0]["id"]
    listed = sdk.ok("GET", "/payment_methods", token=token)["data"]
    assert [(m["id"], m["is_default"], m["deletable"], m["object"]) for m in listed] == [
        (first, True, False, "payment_method")
    ]
    new = sdk.ok("POST", "/payment_methods", 201, token=token, json={"token": "tok_mastercard_5555"})["data"]
    assert (new["brand"], new["last4"], new["is_default"], new["deletable"]) == ("mastercard", "5555", False, True)
    assert set(new) == {
        "id",
        "object",
        "type",
        "brand",
        "last4",
        "exp_month",
        "exp_year",
        "is_default",
        "deletable",
        "gateway",
        "created_at",
    }
    made_default = sdk.ok("PUT", f"/payment_methods/{new['id']}", token=token, json={"is_default": True})["data"]
    assert made_default["is_default"] is True
    assert fresh_sbx.ok("GET", f"/customers/{customer['id']}")["default_source_id"] == new["id"]
    # The old default is still used by the live subscription; the new one is the default.
    refused(sdk.call("DELETE", f"/payment_methods/{first}", token=token), 400, "used by a subscription")
    refused(sdk.call("DELETE", f"/payment_methods/{new['id']}", token=token), 400, "default payment method")
    spare = sdk.ok("POST", "/payment_methods", 201, token=token, json={"token": "pm_amex_0005"})["data"]
    assert sdk.ok("DELETE", f"/payment_methods/{spare['id']}", token=token)["data"]["id"] == spare["id"]
    assert spare["id"] not in {m["id"] for m in sdk.ok("GET", "/payment_methods", token=token)["data"]}
    assert spare["id"] not in {s["id"] for s in sdk.ok("POST", "/customer", token=token)["data"]["sources"]}
    refused(sdk.call("DELETE", f"/payment_methods/{spare['id']}", token=token), 404)


def test_payment_method_refusals(sdk, me):
    customer, token = me
    first = customer["sources"][0]["id"]
    for body, status, text in (
        ({}, 404, "token field is required"),
        ({"token": "tok_decline"}, 404, "declined"),
        ({"token": "tok_visa", "payment_gateway": "paypal"}, 400, "payment_gateway"),
        ({"token": "nope"}, 404, "Invalid payment token"),
    ):
        refused(sdk.call("POST", "/payment_methods", token=token, json=body), status, text)
    three_ds = sdk.ok("POST", "/payment_methods", 201, token=token, json={"token": "tok_3ds"})
    assert three_ds["setup_intent"]["status"] == "requires_action"
    for body, text in (
        ({}, "is_default"),
        ({"payment_gateway": "stripe"}, "exp_month"),
        ({"is_default": "yes"}, "is_default"),
    ):
        refused(sdk.call("PUT", f"/payment_methods/{first}", token=token, json=body), 400, text)
    updated = sdk.ok(
        "PUT",
        f"/payment_methods/{first}",
        token=token,
        json={"payment_gateway": "stripe", "exp_month": 3, "exp_year": 2040},
    )["data"]
    assert (updated["exp_month"], updated["exp_year"]) == (3, 2040)


def test_at_most_200_payment_methods(sdk, me):
    _, token = me
    for number in range(199):
        assert sdk.call("POST", "/payment_methods", token=token, json={"token": f"tok_{number}"}).status_code == 201
    refused(sdk.call("POST", "/payment_methods", token=token, json={"token": "tok_one_more"}), 404, "at most 200")


def test_deprecated_source_endpoint_makes_the_new_card_the_default(sdk, me):
    _, token = me
    data = sdk.ok("POST", "/source", token=token, json={"token": "tok_discover_1117"})["data"]
    assert data["default_source"]["last4"] == "1117" and len(data["sources"]) == 2
    refused(sdk.call("POST", "/source", token=token, json={}), 400, "token")


# --- addresses (§5.6) ----------------------------------------------------------------------------------


def test_address_create_and_update_follow_core_rules(sdk, fresh_sbx, me):
    customer, token = me
    body = sdk.ok(
        "POST",
        "/address",
        token=token,
        json={"line1": "2 New Road", "country": "gb", "city": "London", "first_name": "Rita"},
    )
    assert body["meta"] == {"account_id": 101, "site_id": ACME_SITE, "features": []}
    new = max(body["data"]["addresses"], key=lambda a: a["id"])
    assert (new["type"], new["country"], new["user_id"]) == ("shipping", "GB", customer["id"])
    assert fresh_sbx.ok("GET", f"/addresses/{new['id']}")["line1"] == "2 New Road"
    updated = sdk.ok("PUT", f"/address/{new['id']}", token=token, json={"city": "Leeds", "type": "shipping"})
    assert next(a for a in updated["data"]["addresses"] if a["id"] == new["id"])["city"] == "Leeds"
    assert updated["meta"]["site_id"] == ACME_SITE
    for method, path, payload, status, field in (
        ("POST", "/address", {"country": "GB"}, 400, "line1"),
        ("POST", "/address", {"line1": "x"}, 400, "country"),
        ("POST", "/address", {"line1": "x", "country": "US"}, 400, "state"),
        ("POST", "/address", {"line1": "x", "country": "GB", "type": "office"}, 400, "type"),
        ("POST", "/address", {"line1": "x", "country": "GB", "customer_id": 1}, 400, "customer_id"),
        ("POST", "/address", {"line1": "x" * 256, "country": "GB"}, 400, "line1"),
        ("PUT", f"/address/{new['id']}", {"type": "billing"}, 400, "type"),
        ("PUT", "/address/99999999", {"city": "x"}, 404, None),
    ):
        response = refused(sdk.call(method, path, token=token, json=payload), status)
        if field:
            assert field in response["errors"], response


# --- invoices (§5.7) -----------------------------------------------------------------------------------


def test_pay_an_open_invoice_with_a_saved_card_and_core_sees_it_paid(sdk, fresh_sbx, me):
    customer, token = me
    invoice = next(i for i in customer["invoices"] if i["status"] == "open")
    data = sdk.ok(
        "POST", f"/invoices/{invoice['id']}/pay", token=token, json={"source_id": customer["sources"][0]["id"]}
    )["data"]
    assert next(i for i in data["invoices"] if i["id"] == invoice["id"])["status"] == "paid"
    core = fresh_sbx.ok("GET", f"/invoices/{invoice['id']}")
    assert core["status"] == "paid" and core["amount_remaining"] == 0 and core["amount_paid"] == invoice["amount_due"]
    charges = core_charges_of(fresh_sbx, invoice["id"])
    assert [(c["amount"], c["status"], c["offline"]) for c in charges] == [
        (invoice["amount_remaining"], "succeeded", False)
    ]
    refused(
        sdk.call(
            "POST", f"/invoices/{invoice['id']}/pay", token=token, json={"source_id": customer["sources"][0]["id"]}
        ),
        404,
        "already paid",
    )


def test_invoice_pay_refusals_and_3ds(sdk, fresh_sbx, me):
    customer, token = me
    invoice = next(i for i in customer["invoices"] if i["status"] == "open")["id"]
    source = customer["sources"][0]["id"]
    for body, status, text in (
        ({}, 400, "source_id"),
        ({"source_id": 99999999}, 404, "not found"),
        ({"gateway_token": "tok_decline"}, 404, "declined"),
    ):
        refused(sdk.call("POST", f"/invoices/{invoice}/pay", token=token, json=body), status, text)
    intent = sdk.ok("POST", f"/invoices/{invoice}/pay", token=token, json={"gateway_token": "tok_3ds"})[
        "payment_intent"
    ]
    assert intent["status"] == "requires_action" and intent["invoice_id"] == invoice
    assert fresh_sbx.ok("GET", f"/invoices/{invoice}")["status"] == "open"
    fresh_sbx.ok("POST", f"/invoices/{invoice}/void")
    refused(sdk.call("POST", f"/invoices/{invoice}/pay", token=token, json={"source_id": source}), 404, "void")
    refused(sdk.call("POST", "/invoices/99999999/pay", token=token, json={"source_id": source}), 404, "not found")


# --- the shared world, Core → Open ---------------------------------------------------------------------


def test_core_changes_show_in_the_subscribers_resource(sdk, fresh_sbx, me):
    customer, token = me
    sub = customer["subscriptions"][0]["id"]
    invoice = next(i for i in customer["invoices"] if i["status"] == "open")["id"]
    fresh_sbx.ok("DELETE", f"/subscriptions/{sub}", json={"mode": "now", "reason": "Support"})
    fresh_sbx.ok("POST", f"/invoices/{invoice}/pay_offline", json={"reference": "CHK-1", "payment_category": "2"})
    address = fresh_sbx.ok(
        "POST",
        "/addresses",
        201,
        json={"customer_id": customer["id"], "type": "billing", "line1": "9 Core St", "country": "GB"},
    )
    data = sdk.ok("POST", "/customer", token=token)["data"]
    assert next(s for s in data["subscriptions"] if s["id"] == sub)["status"] == "canceled"
    assert next(i for i in data["invoices"] if i["id"] == invoice)["status"] == "paid"
    assert address["id"] in {a["id"] for a in data["addresses"]}
    assert fresh_sbx.api("DELETE", f"/customers/{customer['id']}").status_code == 204
    assert sdk.call("POST", "/customer", token=token).status_code == 401  # a deleted customer's token is dead


# --- newsletters (§5.9) --------------------------------------------------------------------------------


def test_newsletter_subscribe_get_update_unsubscribe(sdk):
    created = sdk.ok(
        "POST",
        "/newsletter",
        201,
        json={"email": "Fan@Example.com", "source": "WEB", "lists": "default", "consent_type": "explicit"},
    )["data"]
    assert created["email"] == "fan@example.com" and created["source"] == "web"
    assert (created["consent_url"], created["consent_text"], created["consent_ip"]) == ("", "", "")
    assert created["consent_type"] == "explicit"
    assert sdk.ok("GET", "/newsletter/fan@example.com")["data"] == created
    updated = sdk.ok("PUT", "/newsletter/fan@example.com", json={"first_name": "Fan", "source": "Mail"})["data"]
    assert updated["first_name"] == "Fan" and updated["source"] == "mail"
    refused(sdk.call("POST", "/newsletter", json={"email": "fan@example.com"}), 400, "already subscribed")
    refused(sdk.call("GET", "/newsletter/fan@example.com", site_id=ACME_SITE_2), 404)  # per site
    sdk.ok("POST", "/newsletter", 201, site_id=ACME_SITE_2, json={"email": "fan@example.com"})
    assert sdk.call("DELETE", "/newsletter/fan@example.com").status_code == 204
    refused(sdk.call("GET", "/newsletter/fan@example.com"), 404)
    refused(sdk.call("PUT", "/newsletter/fan@example.com", json={"first_name": "x"}), 400)
    assert sdk.ok("GET", "/newsletter/fan@example.com", site_id=ACME_SITE_2)["data"]["source"] == "web"
    for body, field in (
        ({}, "email"),
        ({"email": "bad"}, "email"),
        ({"email": "a@example.com", "source": "fax"}, "source"),
        ({"email": "b@example.com", "lists": 3}, "lists"),
    ):
        assert field in refused(sdk.call("POST", "/newsletter", json=body), 400)["errors"]


# --- memberships (§5.8) --------------------------------------------------------------------------------


def test_membership_members_list_invite_and_remove(sdk, fresh_sbx, me):
    customer, token = me
    group = next(
        s for s in customer["subscriptions"] if fresh_sbx.ok("GET", f"/plans/{s['plan']}")["type"] == "membership"
    )
    members = sdk.ok("GET", f"/subscriptions/{group['id']}/members/list", token=token)["data"]
    assert [(m["status"], m["subscription_id"]) for m in members] == [("pending", group["id"])]
    # A seat is claimed once a customer of the site has the invitation email.
    sdk.ok("POST", "/auth/register", json={"email": members[0]["invitation_email"], "password": "Str0ng-Passw0rd!"})
    claimed = sdk.ok("GET", f"/subscriptions/{group['id']}/members/list", token=token)["data"][0]
    assert claimed["status"] == "active"
    data = sdk.ok(
        "POST",
        f"/subscriptions/{group['id']}/members/invite",
        token=token,
        json={"invitation_emails": ["a@example.com", "B@example.com"]},
    )["data"]
    assert data["auth_token"]
    mails = sdk.sbx.admin.get("/outbox", params={"to": "b@example.com"}).json()["data"]
    assert [m["type"] for m in mails] == ["membership_invitation"]
    for body, text in (
        ({"invitation_emails": ["a@example.com"]}, "Already invited"),
        ({"invitation_emails": ["c@example.com", "c@example.com"]}, "Already invited"),
        ({"invitation_emails": ["c@example.com", "d@example.com", "e@example.com"]}, "Not enough seats"),
        ({"invitation_emails": []}, "1 to 100"),
        ({"invitation_emails": ["nope"]}, "invitation_emails.0"),
    ):
        refused(sdk.call("POST", f"/subscriptions/{group['id']}/members/invite", token=token, json=body), 400, text)
    listed = sdk.ok("GET", f"/subscriptions/{group['id']}/members/list", token=token)["data"]
    assert len(listed) == 3
    removed = sdk.ok("DELETE", f"/subscriptions/{group['id']}/members/{listed[1]['id']}", token=token)
    assert removed == {"status": 200, "message": "Member deleted successfully"}
    assert len(sdk.ok("GET", f"/subscriptions/{group['id']}/members/list", token=token)["data"]) == 2
    # Not a membership, not the caller's, or not its member: the documented 400.
    regular = next(s for s in customer["subscriptions"] if s["id"] != group["id"])
    second = sdk.login(SUBSCRIBERS[1])["token"]
    for path, who in (
        (f"/subscriptions/{regular['id']}/members/list", token),
        (f"/subscriptions/{group['id']}/members/list", second),
        (f"/subscriptions/{group['id']}/members/{listed[1]['id']}", token),
    ):
        method = "DELETE" if "/list" not in path else "GET"
        assert refused(sdk.call(method, path, token=who), 400) == {
            "error": {"status": 400, "message": "Invalid subscription provided"}
        }
