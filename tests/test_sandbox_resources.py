"""The sandbox's business rules over real HTTP: customers, subscriptions, the invoice state machine, offline charges."""

import pytest

from tests.fixtures_sandbox import ACME_SITE

# --- helpers that build objects through the API ---------------------------------------------------


def new_customer(sbx, **fields):
    body = {"email": f"c{sbx.last_seq()}-{len(fields)}@example.com", **fields}
    return sbx.ok("POST", "/customers", 201, json=body)


def plan_named(sbx, nickname):
    return next(p for p in sbx.ok("GET", "/plans", params={"limit": 100}) if p["nickname"] == nickname)


def coupon_coded(sbx, code):
    return next(c for c in sbx.ok("GET", "/coupons", params={"limit": 100}) if c["code"] == code)


def currency(sbx):
    return plan_named(sbx, "Digital Monthly")["currency"]


def new_invoice(sbx, customer_id, state="draft", amount=5000):
    """An invoice of `amount` brought into `state` through the API."""
    body = {"customer_id": customer_id, "currency": currency(sbx), "total": amount,
            "status": "draft" if state in ("draft", "void_draft") else "open"}
    invoice = sbx.ok("POST", "/invoices", 201, json=body)
    path = f"/invoices/{invoice['id']}"
    if state == "partly_paid":
        sbx.ok("POST", "/charges", 201, json={"customer_id": customer_id, "amount": amount // 5, "currency": body["currency"],
                                              "reference": "part", "payment_category": 3, "invoice_id": invoice["id"]})
    elif state == "paid":
        sbx.ok("POST", path + "/pay_offline", json={"reference": "CHK-1", "category": 2})
    elif state in ("void", "void_draft"):
        sbx.ok("POST", path + "/void")
    elif state == "uncollectible":
        sbx.ok("POST", path + "/uncollectible")
    invoice = sbx.ok("GET", path)
    assert invoice["status"] == {"partly_paid": "open", "void_draft": "void"}.get(state, state)
    return invoice


def assert_consistent(invoice):
    assert invoice["amount_remaining"] == invoice["amount_due"] - invoice["amount_paid"]
    assert invoice["total"] == invoice["amount_due"] == sum(line["amount"] for line in invoice["line_items"])
    assert all(line["amount"] == line["unit_price"] * line["quantity"] for line in invoice["line_items"])


def business_error(response, fragment):
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == 400
    assert fragment in body["error"]["message"], body["error"]["message"]


def field_errors(response):
    assert response.status_code == 400, response.text
    return response.json()["errors"]


# --- customers -----------------------------------------------------------------------------------------


def test_create_customer(fresh_sbx):
    sbx = fresh_sbx
    response = sbx.api("POST", "/customers", json={
        "email": "Ada.Lovelace@Example.com", "first_name": "Ada", "last_name": "Lovelace", "phone": "+44 20 7946 0000",
        "metadata": {"crm": "A-1", "drop": None}, "mail_marketing": True, "site_id": ACME_SITE,
    })
    assert response.status_code == 201
    customer = response.json()["data"]
    assert customer["email"] == "ada.lovelace@example.com"
    assert (customer["first_name"], customer["last_name"], customer["balance"], customer["deleted_at"]) == ("Ada", "Lovelace", 0, None)
    assert customer["metadata"] == {"crm": "A-1"}
    assert customer["mail_marketing"] is True and customer["tele_marketing"] is False
    assert sbx.ok("GET", f"/customers/{customer['id']}") == customer
    # An organisation with a display name only is fine; so is reusing an email on another site.
    assert sbx.ok("POST", "/customers", 201, json={"display_name": "Springfield Library"})["email"] is None
    assert sbx.api("POST", "/customers", json={"email": "ada.lovelace@example.com"}, site_id=15).status_code == 201


@pytest.mark.parametrize("body, errors", [
    ({}, {"email": ["The email field is required when display name is not present."]}),
    ({"email": "not-an-email"}, {"email": ["The email must be a valid email address."]}),
    ({"email": 42}, {"email": ["The email must be a string."]}),
    ({"email": "a@example.com", "first_name": "x" * 256}, {"first_name": ["The first name may not be greater than 255 characters."]}),
    ({"email": "a@example.com", "last_name": "y" * 256, "display_name": "z" * 256},
     {"last_name": ["The last name may not be greater than 255 characters."],
      "display_name": ["The display name may not be greater than 255 characters."]}),
    ({"email": "a@example.com", "metadata": ["a"]}, {"metadata": ["The metadata must be an object."]}),
    ({"email": "a@example.com", "metadata": {"k": {"nested": 1}}}, {"metadata.k": ["The metadata.k value must be a string, number, boolean or null."]}),
    ({"email": "a@example.com", "mail_marketing": "yes"}, {"mail_marketing": ["The mail marketing field must be true or false."]}),
    ({"email": "a@example.com", "tele_marketing": None}, {"tele_marketing": ["The tele marketing field may not be null."]}),
    ({"email": "a@example.com", "nickname": "Al"}, {"nickname": ["The nickname field is not allowed here."]}),
])
def test_create_customer_validation_field_by_field(sbx, body, errors):
    before = sbx.api("GET", "/customers").json()["meta"]["total"]
    response = sbx.api("POST", "/customers", json=body)
    assert response.status_code == 400
    assert response.json() == {"errors": errors}
    assert sbx.api("GET", "/customers").json()["meta"]["total"] == before


def test_email_is_unique_per_site(fresh_sbx):
    sbx = fresh_sbx
    taken = sbx.ok("GET", "/customers", params={"filter[email]": "like:%@%", "limit": 1})[0]
    assert field_errors(sbx.api("POST", "/customers", json={"email": taken["email"].upper()})) == {
        "email": ["The email has already been taken."]}
    other = new_customer(sbx)
    assert "email" in field_errors(sbx.api("PUT", f"/customers/{other['id']}", json={"email": taken["email"]}))
    # Keeping one's own email is not a clash.
    assert sbx.ok("PUT", f"/customers/{taken['id']}", json={"email": taken["email"]})["email"] == taken["email"]


def test_update_customer_merges_metadata_and_removes_null_keys(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx, first_name="Grace", last_name="Hopper", metadata={"a": "1", "b": 2, "c": True})
    updated = sbx.ok("PUT", f"/customers/{customer['id']}", json={"metadata": {"b": None, "c": False, "d": "new"}, "last_name": "Murray"})
    assert updated["metadata"] == {"a": "1", "c": False, "d": "new"}
    assert (updated["first_name"], updated["last_name"], updated["email"]) == ("Grace", "Murray", customer["email"])
    assert updated["updated_at"] >= customer["updated_at"]
    assert sbx.ok("GET", f"/customers/{customer['id']}")["metadata"] == {"a": "1", "c": False, "d": "new"}
    # Untouched metadata stays when the field is absent; a null name clears it.
    cleared = sbx.ok("PUT", f"/customers/{customer['id']}", json={"first_name": None})
    assert cleared["first_name"] is None and cleared["metadata"] == updated["metadata"]


def test_update_customer_validation(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    errors = field_errors(sbx.api("PUT", f"/customers/{customer['id']}", json={"email": "nope", "phone": "1" * 41, "metadata": "x"}))
    assert set(errors) == {"email", "phone", "metadata"}
    # Neither an email nor a display name would be left.
    assert field_errors(sbx.api("PUT", f"/customers/{customer['id']}", json={"email": None})) == {
        "email": ["The email field is required when display name is not present."]}
    assert sbx.ok("GET", f"/customers/{customer['id']}") == customer
    assert sbx.api("PUT", "/customers/1", json={"first_name": "x"}).status_code == 404


def test_soft_delete_cancels_live_subscriptions(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    plan = plan_named(sbx, "Digital Monthly")
    active = sbx.ok("POST", "/subscriptions", 201, json={"customer_id": customer["id"], "plan_id": plan["id"]})
    trialing = sbx.ok("POST", "/subscriptions", 201, json={"customer_id": customer["id"], "plan_id": plan["id"], "trial_period_days": 7})
    ended = sbx.ok("POST", "/subscriptions", 201, json={"customer_id": customer["id"], "plan_id": plan["id"]})
    ended = sbx.ok("POST", f"/subscriptions/{ended['id']}/cancel")
    bystander = sbx.ok("POST", "/subscriptions", 201, json={"customer_id": new_customer(sbx)["id"], "plan_id": plan["id"]})

    deleted = sbx.api("DELETE", f"/customers/{customer['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["data"]["deleted_at"] is not None
    for sub in (active, trialing):
        now = sbx.ok("GET", f"/subscriptions/{sub['id']}")
        assert now["status"] == "canceled" and now["canceled_at"] and now["auto_renew"] is False
    assert sbx.ok("GET", f"/subscriptions/{ended['id']}") == ended  # already canceled: untouched
    assert sbx.ok("GET", f"/subscriptions/{bystander['id']}")["status"] == "active"
    # Gone from the API, kept for its history.
    assert sbx.api("GET", f"/customers/{customer['id']}").status_code == 404
    assert sbx.api("DELETE", f"/customers/{customer['id']}").status_code == 404
    assert sbx.ok("GET", "/customers", params={"filter[email]": f"eq:{customer['email']}"}) == []
    assert sbx.api("GET", "/subscriptions", params={"filter[customer_id]": f"eq:{customer['id']}"}).json()["meta"]["total"] == 3
    assert sbx.api("POST", "/invoices", json={"customer_id": customer["id"], "currency": plan["currency"], "total": 100}).status_code == 404


def test_seeded_past_due_customer_delete_cancels_it(fresh_sbx):
    sbx = fresh_sbx
    past_due = sbx.ok("GET", "/subscriptions", params={"filter[status]": "eq:past_due", "limit": 1})[0]
    sbx.ok("DELETE", f"/customers/{past_due['customer_id']}")
    assert sbx.ok("GET", f"/subscriptions/{past_due['id']}")["status"] == "canceled"


# --- subscriptions ---------------------------------------------------------------------------------------


def test_create_subscription_active_with_first_invoice_and_coupon(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    plan = plan_named(sbx, "Print + Digital Monthly")
    coupon = coupon_coded(sbx, "WELCOME10")
    response = sbx.api("POST", "/subscriptions", json={"customer_id": customer["id"], "plan_id": plan["id"],
                                                        "coupon_id": coupon["id"], "quantity": 2})
    assert response.status_code == 201
    sub = response.json()["data"]
    assert (sub["status"], sub["customer_id"], sub["plan_id"], sub["coupon_id"], sub["quantity"]) == (
        "active", customer["id"], plan["id"], coupon["id"], 2)
    assert sub["current_period_end"] > sub["current_period_start"] and sub["trial_end"] is None
    assert sub["cancel_at_period_end"] is False and sub["canceled_at"] is None
    invoices = sbx.ok("GET", "/invoices", params={"filter[customer_id]": f"eq:{customer['id']}"})
    assert len(invoices) == 1
    invoice = invoices[0]
    expected = plan["amount"] * 2 - round(plan["amount"] * 2 * 10 / 100)
    assert (invoice["status"], invoice["subscription_id"], invoice["amount_due"], invoice["billing_reason"]) == (
        "open", sub["id"], expected, "subscription_create")
    assert coupon_coded(sbx, "WELCOME10")["times_redeemed"] == coupon["times_redeemed"] + 1


def test_create_subscription_with_trial_has_no_invoice(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    sub = sbx.ok("POST", "/subscriptions", 201, json={"customer_id": customer["id"], "plan_id": plan_named(sbx, "Digital Annual")["id"],
                                                      "trial_period_days": 14, "auto_renew": False})
    assert sub["status"] == "trialing" and sub["trial_end"] == sub["current_period_end"] and sub["auto_renew"] is False
    assert sbx.ok("GET", "/invoices", params={"filter[customer_id]": f"eq:{customer['id']}"}) == []


def test_create_subscription_refusals(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    plan = plan_named(sbx, "Digital Monthly")
    assert field_errors(sbx.api("POST", "/subscriptions", json={})) == {
        "customer_id": ["The customer id field is required."], "plan_id": ["The plan id field is required."]}
    assert set(field_errors(sbx.api("POST", "/subscriptions", json={
        "customer_id": "1", "plan_id": plan["id"], "quantity": 0, "trial_period_days": -1}))) == {"customer_id", "quantity", "trial_period_days"}
    business_error(sbx.api("POST", "/subscriptions", json={"customer_id": customer["id"], "plan_id": plan_named(sbx, "Legacy Print Monthly")["id"]}),
                   "is not active")
    business_error(sbx.api("POST", "/subscriptions", json={"customer_id": customer["id"], "plan_id": plan["id"],
                                                           "coupon_id": coupon_coded(sbx, "SPRING25")["id"]}), "expired")
    business_error(sbx.api("POST", "/subscriptions", json={"customer_id": customer["id"], "plan_id": plan["id"],
                                                           "coupon_id": coupon_coded(sbx, "FREEMONTH")["id"]}), "maximum number of redemptions")
    assert sbx.api("POST", "/subscriptions", json={"customer_id": 1, "plan_id": plan["id"]}).status_code == 404
    assert sbx.api("POST", "/subscriptions", json={"customer_id": customer["id"], "plan_id": 1}).status_code == 404
    assert sbx.ok("GET", "/subscriptions", params={"filter[customer_id]": f"eq:{customer['id']}"}) == []


def test_cancel_subscription_now_and_at_period_end(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    plan = plan_named(sbx, "Digital Monthly")
    sub = sbx.ok("POST", "/subscriptions", 201, json={"customer_id": customer["id"], "plan_id": plan["id"]})
    path = f"/subscriptions/{sub['id']}/cancel"
    later = sbx.ok("POST", path, json={"at_period_end": True})
    assert (later["status"], later["cancel_at_period_end"], later["auto_renew"]) == ("active", True, False)
    business_error(sbx.api("POST", path, json={"at_period_end": True}), "already set to cancel")
    assert field_errors(sbx.api("POST", path, json={"at_period_end": "soon"})) == {
        "at_period_end": ["The at period end field must be true or false."]}
    now = sbx.ok("POST", path)
    assert now["status"] == "canceled" and now["canceled_at"] and now["ended_at"]
    business_error(sbx.api("POST", path), "already canceled")
    business_error(sbx.api("POST", path, json={"at_period_end": True}), "already canceled")
    assert sbx.api("POST", "/subscriptions/1/cancel").status_code == 404


# --- invoices ---------------------------------------------------------------------------------------------


def test_create_invoice_from_line_items_or_total(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    cur = currency(sbx)
    draft = sbx.ok("POST", "/invoices", 201, json={
        "customer_id": customer["id"], "currency": cur, "due_date": "2031-01-31", "metadata": {"po": "77"},
        "line_items": [{"description": "Back issue", "unit_price": 450, "quantity": 3}, {"description": "Delivery", "unit_price": 600}],
    })
    assert (draft["status"], draft["total"], draft["amount_due"], draft["amount_paid"], draft["amount_remaining"]) == ("draft", 1950, 1950, 0, 1950)
    assert draft["line_items"][1] == {"description": "Delivery", "unit_price": 600, "quantity": 1, "amount": 600}
    assert (draft["due_date"], draft["metadata"], draft["billing_reason"], draft["subscription_id"]) == ("2031-01-31", {"po": "77"}, "manual", None)
    opened = sbx.ok("POST", "/invoices", 201, json={"customer_id": customer["id"], "currency": cur, "total": 1234, "status": "open"})
    assert (opened["status"], opened["amount_remaining"], len(opened["line_items"])) == ("open", 1234, 1)
    assert_consistent(opened)


@pytest.mark.parametrize("body, fields", [
    ({}, {"customer_id", "currency", "line_items"}),
    ({"currency": "USD", "total": 100}, {"customer_id", "currency"}),
    ({"currency": "usd", "total": 100, "line_items": [{"description": "x", "unit_price": 1}]}, {"customer_id", "total"}),
    ({"currency": "usd", "total": 0}, {"customer_id", "total"}),
    ({"currency": "usd", "line_items": []}, {"customer_id", "line_items"}),
    ({"currency": "usd", "line_items": [{"unit_price": -1, "quantity": 0, "colour": "red"}]},
     {"customer_id", "line_items.0.description", "line_items.0.unit_price", "line_items.0.quantity", "line_items.0.colour"}),
    ({"currency": "usd", "total": 5, "status": "paid", "due_date": "tomorrow"}, {"customer_id", "status", "due_date"}),
])
def test_create_invoice_validation_field_by_field(sbx, body, fields):
    assert set(field_errors(sbx.api("POST", "/invoices", json=body))) == fields


def test_invoice_subscription_must_be_the_customers(fresh_sbx):
    sbx = fresh_sbx
    sub = sbx.ok("GET", "/subscriptions", params={"limit": 1})[0]
    stranger = new_customer(sbx)
    assert field_errors(sbx.api("POST", "/invoices", json={"customer_id": stranger["id"], "currency": currency(sbx), "total": 10,
                                                            "subscription_id": sub["id"]})) == {
        "subscription_id": [f"Subscription {sub['id']} does not belong to customer {stranger['id']}."]}
    ok = sbx.ok("POST", "/invoices", 201, json={"customer_id": sub["customer_id"], "currency": currency(sbx), "total": 10, "subscription_id": sub["id"]})
    assert ok["subscription_id"] == sub["id"]


STATES = ("draft", "open", "partly_paid", "paid", "void", "void_draft", "uncollectible")
# Which source states allow each action (CORE_API.md, plus: only an open invoice takes a payment).
ALLOWED = {
    "edit": {"draft"},
    "finalize": {"draft"},
    "metadata": set(STATES),
    "pay_offline": {"open", "partly_paid"},
    "void": {"draft", "open"},
    "uncollectible": {"open", "partly_paid"},
}
RESULT = {"finalize": "open", "pay_offline": "paid", "void": "void", "uncollectible": "uncollectible"}


def act(sbx, action, invoice_id):
    path = f"/invoices/{invoice_id}"
    return {
        "edit": lambda: sbx.api("PUT", path, json={"due_date": "2032-02-02", "line_items": [{"description": "New", "unit_price": 777, "quantity": 2}]}),
        "finalize": lambda: sbx.api("PUT", path, json={"status": "open"}),
        "metadata": lambda: sbx.api("PUT", path, json={"metadata": {"note": "checked"}}),
        "pay_offline": lambda: sbx.api("POST", path + "/pay_offline", json={"reference": "CHK-42", "category": 2}),
        "void": lambda: sbx.api("POST", path + "/void"),
        "uncollectible": lambda: sbx.api("POST", path + "/uncollectible"),
    }[action]()


@pytest.mark.parametrize("action", list(ALLOWED))
@pytest.mark.parametrize("state", STATES)
def test_invoice_transitions(sbx, state, action):
    customer = new_customer(sbx)
    invoice = new_invoice(sbx, customer["id"], state)
    response = act(sbx, action, invoice["id"])
    after = sbx.ok("GET", f"/invoices/{invoice['id']}")
    assert_consistent(after)
    if state not in ALLOWED[action]:
        business_error(response, f"nvoice {invoice['id']}")
        assert after == invoice  # a refused transition changes nothing
        return
    assert response.status_code == 200, response.text
    assert response.json()["data"] == after
    assert after["status"] == RESULT.get(action, invoice["status"])
    if action == "edit":
        assert (after["due_date"], after["total"], after["amount_remaining"]) == ("2032-02-02", 1554, 1554)
    if action == "metadata":
        assert after["metadata"] == {"note": "checked"}
    if action == "pay_offline":
        assert (after["amount_paid"], after["amount_remaining"]) == (after["amount_due"], 0)
        assert after["paid_at"] is not None
        charges = sbx.ok("GET", "/charges", params={"filter[customer_id]": f"eq:{customer['id']}", "sort": "-id"})
        assert (charges[0]["invoice_id"], charges[0]["amount"], charges[0]["reference"], charges[0]["payment_category"]) == (
            invoice["id"], invoice["amount_remaining"], "CHK-42", 2)
        assert charges[0]["offline"] and charges[0]["paid"] and charges[0]["status"] == "succeeded"
    if action == "void":
        assert after["voided_at"] is not None
    if action == "finalize":
        assert after["finalized_at"] is not None


def test_void_refusal_names_partial_payment(sbx):
    invoice = new_invoice(sbx, new_customer(sbx)["id"], "partly_paid")
    business_error(act(sbx, "void", invoice["id"]), "partly paid (1000 of 5000)")


def test_pay_offline_validation(sbx):
    invoice = new_invoice(sbx, new_customer(sbx)["id"], "open")
    path = f"/invoices/{invoice['id']}/pay_offline"
    assert field_errors(sbx.api("POST", path, json={})) == {
        "reference": ["The reference field is required."], "category": ["The category field is required."]}
    for category in (1, 7, "2"):
        assert list(field_errors(sbx.api("POST", path, json={"reference": "r", "category": category}))) == ["category"]
    assert list(field_errors(sbx.api("POST", path, json={"reference": "r" * 256, "category": 6}))) == ["reference"]
    assert sbx.ok("GET", f"/invoices/{invoice['id']}") == invoice


def test_paying_a_past_due_subscriptions_invoice_reactivates_it(fresh_sbx):
    sbx = fresh_sbx
    for sub in sbx.ok("GET", "/subscriptions", params={"filter[status]": "eq:past_due", "limit": 100}):
        open_invoices = sbx.ok("GET", "/invoices", params={"filter[customer_id]": f"eq:{sub['customer_id']}", "filter[status]": "eq:open"})
        mine = [inv for inv in open_invoices if inv["subscription_id"] == sub["id"]]
        if len(mine) == 1:
            break
    else:
        pytest.fail("the seed has no past-due subscription with one open invoice")
    paid = sbx.ok("POST", f"/invoices/{mine[0]['id']}/pay_offline", json={"reference": "WIRE-9", "category": 3})
    assert paid["status"] == "paid"
    assert sbx.ok("GET", f"/subscriptions/{sub['id']}")["status"] == "active"


# --- offline charges ----------------------------------------------------------------------------------------


def charge_body(customer_id, cur, **extra):
    return {"customer_id": customer_id, "amount": 2500, "currency": cur, "reference": "CHK-100", "payment_category": 2, **extra}


def test_offline_charge_without_invoice_credits_the_balance(sbx):
    customer = new_customer(sbx)
    cur = currency(sbx)
    response = sbx.api("POST", "/charges", json=charge_body(customer["id"], cur))
    assert response.status_code == 201
    charge = response.json()["data"]
    assert (charge["amount"], charge["currency"], charge["status"], charge["paid"], charge["offline"], charge["invoice_id"],
            charge["reference"], charge["payment_category"], charge["amount_refunded"], charge["refunded"]) == (
        2500, cur, "succeeded", True, True, None, "CHK-100", 2, 0, False)
    sbx.ok("POST", "/charges", 201, json=charge_body(customer["id"], cur, amount=1, payment_category=6))
    assert sbx.ok("GET", f"/customers/{customer['id']}")["balance"] == 2501
    assert sbx.ok("GET", f"/charges/{charge['id']}") == charge


def test_offline_charge_pays_an_invoice_in_parts(sbx):
    customer = new_customer(sbx)
    cur = currency(sbx)
    invoice = new_invoice(sbx, customer["id"], "open", amount=5000)
    first = sbx.ok("POST", "/charges", 201, json=charge_body(customer["id"], cur, amount=2000, invoice_id=invoice["id"]))
    assert first["invoice_id"] == invoice["id"]
    part = sbx.ok("GET", f"/invoices/{invoice['id']}")
    assert (part["status"], part["amount_paid"], part["amount_remaining"]) == ("open", 2000, 3000)
    business_error(sbx.api("POST", "/charges", json=charge_body(customer["id"], cur, amount=3001, invoice_id=invoice["id"])), "remaining amount (3000)")
    sbx.ok("POST", "/charges", 201, json=charge_body(customer["id"], cur, amount=3000, invoice_id=invoice["id"]))
    paid = sbx.ok("GET", f"/invoices/{invoice['id']}")
    assert (paid["status"], paid["amount_paid"], paid["amount_remaining"]) == ("paid", 5000, 0) and paid["paid_at"]
    assert sbx.ok("GET", f"/customers/{customer['id']}")["balance"] == 0  # paid an invoice, credited nothing
    business_error(sbx.api("POST", "/charges", json=charge_body(customer["id"], cur, amount=1, invoice_id=invoice["id"])), "already paid")


@pytest.mark.parametrize("state", ["draft", "void", "uncollectible"])
def test_offline_charge_refuses_an_invoice_that_cannot_be_paid(sbx, state):
    customer = new_customer(sbx)
    invoice = new_invoice(sbx, customer["id"], state)
    business_error(sbx.api("POST", "/charges", json=charge_body(customer["id"], currency(sbx), amount=100, invoice_id=invoice["id"])),
                   f"Invoice {invoice['id']}")
    assert sbx.ok("GET", f"/invoices/{invoice['id']}") == invoice
    assert sbx.ok("GET", "/charges", params={"filter[customer_id]": f"eq:{customer['id']}"}) == []


def test_offline_charge_validation(sbx):
    customer = new_customer(sbx)
    cur = currency(sbx)
    invoice = new_invoice(sbx, new_customer(sbx)["id"], "open")
    assert set(field_errors(sbx.api("POST", "/charges", json={}))) == {"customer_id", "amount", "currency", "reference", "payment_category"}
    for extra, field in (({"amount": 0}, "amount"), ({"amount": 2_147_483_648}, "amount"), ({"amount": 10.5}, "amount"),
                         ({"currency": "us"}, "currency"), ({"reference": ""}, "reference"), ({"reference": "r" * 256}, "reference"),
                         ({"payment_category": 1}, "payment_category"), ({"payment_category": 7}, "payment_category"),
                         ({"invoice_id": "x"}, "invoice_id")):
        assert list(field_errors(sbx.api("POST", "/charges", json=charge_body(customer["id"], cur, **extra)))) == [field], extra
    assert sbx.api("POST", "/charges", json=charge_body(customer["id"], cur, amount=2_147_483_647)).status_code == 201
    # The invoice must be this customer's and in its currency.
    other_cur = "eur" if cur != "eur" else "usd"
    assert set(field_errors(sbx.api("POST", "/charges", json=charge_body(customer["id"], other_cur, invoice_id=invoice["id"])))) == {
        "invoice_id", "currency"}
    assert sbx.api("POST", "/charges", json=charge_body(customer["id"], cur, invoice_id=1)).status_code == 404
    assert sbx.ok("GET", f"/invoices/{invoice['id']}") == invoice
