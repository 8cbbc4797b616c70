"""The sandbox's business rules over real HTTP (CORE_API.md §8): customers, subscriptions
(create, cancel), invoices (create, update, pay offline, void, uncollectible, apply
balance), offline charges, refunds, addresses and payment sources."""

import itertools
import json
import time

import pytest

from tests.support.sandbox import ACME_SITE, ACME_SITE_2, OTHER_SITE, SandboxClient
from tests.support.servers import start_sandbox

_unique = itertools.count(1)
OTHER = {"account": "other", "site_id": OTHER_SITE}


# --- helpers that build objects through the API -----------------------------------------------------


def new_customer(sbx, **fields):
    body = {"email": f"c{next(_unique)}-{time.time_ns()}@example.com", **fields}
    return sbx.ok("POST", "/customers", 201, json=body)


def plans(sbx, **where):
    return sbx.ok("GET", "/plans", params={"limit": 100}, **where)


def plan_named(sbx, nickname, **where):
    return next(p for p in plans(sbx, **where) if p["nickname"] == nickname)


def coupon_coded(sbx, code):
    return next(c for c in sbx.ok("GET", "/coupons", params={"limit": 100}) if c["code"] == code)


def with_source(sbx):
    """A new customer with a saved card (imported through the customer create)."""
    customer = sbx.ok(
        "POST",
        "/customers",
        201,
        json={
            "email": f"src{next(_unique)}@example.com",
            "import_payment_methods": True,
            "payment_gateway_id": "cus_X1",
        },
    )
    assert customer["default_source_id"] and customer["is_imported"] is True
    return customer


def subscribe(sbx, customer, plan=None, **extra):
    plan = plan or plan_named(sbx, "Digital Monthly")
    body = {"user_id": customer["id"], "plan_id": plan["id"], "quantity": 1, **extra}
    if body.get("collection_method") != "send_invoice" and "source_id" not in body:
        body["source_id"] = customer["default_source_id"]
    return sbx.ok("POST", "/subscriptions", 201, json=body)


def credit(sbx, customer_id, amount, **where):
    return sbx.ok(
        "POST",
        "/charges",
        201,
        json={"customer_id": customer_id, "amount": amount, "currency": "usd", "reference": "credit"},
        **where,
    )


def new_invoice(sbx, customer_id, status="open", amount=5000):
    return sbx.ok(
        "POST",
        "/invoices",
        201,
        json={"customer_id": customer_id, "currency": "usd", "total": amount, "status": status},
    )


def refusal(response, fragment):
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == 400
    assert fragment in body["error"]["message"], body["error"]["message"]


def errors_of(response):
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"errors"}, body
    return body["errors"]


# --- customers (§8.2) ------------------------------------------------------------------------------------


def test_create_customer_returns_201_and_the_full_object(fresh_sbx):
    sbx = fresh_sbx
    customer = sbx.ok(
        "POST",
        "/customers",
        201,
        json={
            "email": "New.Reader@Example.com",
            "first_name": "New",
            "last_name": "Reader",
            "phone": "+1 (212) 555-0100",
            "metadata": {"crm": "X1", "drop": None},
            "mail_marketing": True,
            "password": "s3cret!",
            "organization": sbx.ok(
                "GET", "/customers", params={"expand": "organization", "limit": 100, "filter[email]": "like:@"}
            )[0]["organization"]
            or None,
        },
    )
    assert customer["email"] == "new.reader@example.com" and customer["name"] == "New Reader"
    assert customer["phone"] == "12125550100"
    assert customer["metadata"] == {"crm": "X1"} and customer["has_password"] is True
    assert customer["balance"] == 0 and customer["default_source_id"] is None
    assert sbx.ok("GET", f"/customers/{customer['id']}") == customer


@pytest.mark.parametrize(
    "body", [{"email": "only@example.com"}, {"display_name": "Only A Name"}, {"old_provider_id": "legacy-only-1"}]
)
def test_one_of_email_old_provider_id_display_name_is_enough(sbx, body):
    body = {k: (f"{next(_unique)}{v}" if k != "email" else f"{next(_unique)}{v}") for k, v in body.items()}
    sbx.ok("POST", "/customers", 201, json=body)


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, {"email"}),
        ({"first_name": "No", "last_name": "Identity"}, {"email"}),
        ({"email": "not-an-email"}, {"email"}),
        ({"email": "x@mail.invalid"}, {"email"}),
        ({"display_name": "x" * 101}, {"display_name"}),
        ({"email": "p@example.com", "phone": "12-34"}, {"phone"}),
        ({"email": "p@example.com", "phone": "1" * 21}, {"phone"}),
        ({"email": "p@example.com", "first_name": "x" * 256}, {"first_name"}),
        ({"email": "p@example.com", "password_type": "bcrypt"}, {"password_type"}),
        ({"email": "p@example.com", "import_payment_methods": True}, {"payment_gateway_id"}),
        (
            {"email": "p@example.com", "import_payment_methods": True, "payment_gateway_id": "pm_1"},
            {"payment_gateway_id"},
        ),
        ({"email": "p@example.com", "default_source_id": 1}, {"default_source_id"}),
        ({"email": "p@example.com", "mail_marketing": "yes"}, {"mail_marketing"}),
        ({"email": "p@example.com", "metadata": ["a"]}, {"metadata"}),
        ({"email": "p@example.com", "organization": 1}, {"organization"}),
        ({"email": "p@example.com", "customer_id": 1}, {"customer_id"}),
    ],
)
def test_create_customer_validation(sbx, body, fields):
    assert set(errors_of(sbx.api("POST", "/customers", json=body))) == fields


def test_dns_check_can_be_skipped(sbx):
    customer = sbx.ok(
        "POST", "/customers", 201, json={"email": f"d{next(_unique)}@mail.invalid", "skip_email_dns_validations": True}
    )
    assert customer["email"].endswith("@mail.invalid")


def test_email_unique_per_site_and_old_provider_id_unique_per_account(fresh_sbx):
    sbx = fresh_sbx
    sbx.ok("POST", "/customers", 201, json={"email": "twice@example.com", "old_provider_id": "legacy-42"})
    assert set(errors_of(sbx.api("POST", "/customers", json={"email": "TWICE@example.com"}))) == {"email"}
    # Another site of the same account: the email is free, the old provider id is not.
    sbx.ok("POST", "/customers", 201, site_id=ACME_SITE_2, json={"email": "twice@example.com"})
    assert set(
        errors_of(
            sbx.api(
                "POST",
                "/customers",
                site_id=ACME_SITE_2,
                json={"email": "x@example.com", "old_provider_id": "legacy-42"},
            )
        )
    ) == {"old_provider_id"}
    # Another account may reuse it.
    sbx.ok("POST", "/customers", 201, json={"email": "y@example.com", "old_provider_id": "legacy-42"}, **OTHER)


def test_update_merges_metadata_removes_null_keys_and_checks_fields(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx, metadata={"a": "1", "b": "2"}, first_name="Old")
    updated = sbx.ok("PUT", f"/customers/{customer['id']}", json={"metadata": {"b": None, "c": 3}, "first_name": "New"})
    assert updated["metadata"] == {"a": "1", "c": 3} and updated["first_name"] == "New"
    assert updated["updated_at"] >= customer["updated_at"]
    for body, field in (
        ({"display_name": "x" * 101}, "display_name"),
        ({"phone": "1"}, "phone"),
        ({"import_payment_methods": True}, "import_payment_methods"),
        ({"balance": 5}, "balance"),
    ):
        assert field in errors_of(sbx.api("PUT", f"/customers/{customer['id']}", json=body))
    # Blanking the only identity is refused; the customer is unchanged.
    assert "email" in errors_of(sbx.api("PUT", f"/customers/{customer['id']}", json={"email": None}))
    assert sbx.ok("GET", f"/customers/{customer['id']}") == updated


def test_update_default_source_and_organization(fresh_sbx):
    sbx = fresh_sbx
    owner, stranger = with_source(sbx), with_source(sbx)
    assert "default_source_id" in errors_of(
        sbx.api("PUT", f"/customers/{owner['id']}", json={"default_source_id": stranger["default_source_id"]})
    )
    assert (
        sbx.ok("PUT", f"/customers/{owner['id']}", json={"default_source_id": owner["default_source_id"]})[
            "default_source_id"
        ]
        == owner["default_source_id"]
    )
    org = next(
        c["organization"]
        for c in sbx.ok("GET", "/customers", params={"limit": 100, "page": 1})
        + sbx.ok("GET", "/customers", params={"limit": 100, "page": 2})
        if c["organization"]
    )
    assert sbx.ok("PUT", f"/customers/{owner['id']}", json={"organization": org})["organization"] == org
    expanded = sbx.ok("GET", f"/customers/{owner['id']}", params={"expand": "organization,defaultSource"})
    assert expanded["organization"]["id"] == org and expanded["default_source"]["id"] == owner["default_source_id"]
    assert sbx.ok("PUT", f"/customers/{owner['id']}", json={"organization": None})["organization"] is None


def test_delete_customer_is_204_and_soft_deletes_and_cancels_what_it_owns(fresh_sbx):
    sbx = fresh_sbx
    customer = with_source(sbx)
    address = sbx.ok(
        "POST",
        "/addresses",
        201,
        json={"customer_id": customer["id"], "type": "shipping", "line1": "1 Road", "country": "GB"},
    )
    subscription = subscribe(sbx, customer)
    invoice_id = subscription["latest_invoice"]
    response = sbx.api("DELETE", f"/customers/{customer['id']}")
    assert response.status_code == 204 and response.content == b""
    for path in (f"/customers/{customer['id']}", f"/subscriptions/{subscription['id']}", f"/addresses/{address['id']}"):
        assert sbx.api("GET", path).status_code == 404, path
    assert sbx.api("DELETE", f"/sources/{customer['default_source_id']}").status_code == 404
    assert sbx.api("DELETE", f"/customers/{customer['id']}").status_code == 404
    # The invoice stays; its (deleted) subscription was canceled at once.
    ended = sbx.ok("GET", f"/invoices/{invoice_id}", params={"expand": "subscription"})["subscription"]
    assert ended["status"] == "canceled" and ended["ended_at"] is not None
    assert customer["id"] not in {
        c["id"] for c in sbx.ok("GET", "/customers", params={"filter[id]": f"eq:{customer['id']}"})
    }


def test_tap_gateway_accounts_need_full_contact_details(tmp_path):
    spec = {
        "accounts": [
            {
                "slug": "tap",
                "name": "Tap Media",
                "api_key": "sbx_tap_key",
                "payment_gateway": "tap",
                "sites": [{"site_id": 77, "name": "Tap Daily"}],
            }
        ],
        "users": [],
    }
    seed = tmp_path / "accounts.json"
    seed.write_text(json.dumps(spec))
    server = start_sandbox(SANDBOX_SEED_FILE=str(seed), SANDBOX_CUSTOMERS_PER_SITE="3", SANDBOX_RATE_LIMIT="10000")
    try:
        client = SandboxClient(server)
        api = dict(site_id=77, key="sbx_tap_key")
        assert client.ok("GET", "/account", site_id=None, key="sbx_tap_key")["payment_gateway"] == "tap"
        missing = client.api("POST", "/customers", json={"email": "t@example.com"}, **api)
        assert set(errors_of(missing)) == {"first_name", "last_name", "phone"}
        full = {"email": "t@example.com", "first_name": "T", "last_name": "P", "phone": "5551234567"}
        customer = client.ok("POST", "/customers", 201, json=full, **api)
        assert set(errors_of(client.api("PUT", f"/customers/{customer['id']}", json={"phone": None}, **api))) == {
            "phone"
        }
        client.close()
    finally:
        server.stop()


# --- subscriptions: create (§8.3) --------------------------------------------------------------------------


def test_create_charge_automatically_pays_the_first_invoice_with_the_source(fresh_sbx):
    sbx = fresh_sbx
    customer = with_source(sbx)
    plan = plan_named(sbx, "Digital Monthly")
    sub = subscribe(
        sbx,
        customer,
        plan,
        quantity=3,
        coupon_code="welcome10",
        auto_renew=False,
        metadata=[{"key": "channel", "value": "phone"}],
        campaign_key="spring-2026",
    )
    assert sub["status"] == "active" and sub["user_id"] == customer["id"] and sub["plan"] == plan["id"]
    assert sub["coupon"] == coupon_coded(sbx, "WELCOME10")["id"] and sub["quantity"] == 3
    assert sub["billing"] == "charge_automatically" and sub["default_source"] == customer["default_source_id"]
    assert sub["auto_renew"] is False and sub["current_period_end"] > sub["current_period_start"]
    invoice = sbx.ok("GET", f"/invoices/{sub['latest_invoice']}")
    assert invoice["status"] == "paid" and invoice["amount_paid"] == invoice["total"] == round(plan["amount"] * 3 * 0.9)
    assert invoice["payment_link"] is None and invoice["billing_reason"] == "subscription_create"


def test_create_send_invoice_leaves_it_open_and_trial_bills_nothing(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    sub = subscribe(sbx, customer, collection_method="send_invoice")
    invoice = sbx.ok("GET", f"/invoices/{sub['latest_invoice']}")
    assert invoice["status"] == "open" and invoice["payment_link"] and invoice["due_date"] > invoice["created_at"]
    trial = subscribe(sbx, customer, collection_method="send_invoice", trial_period_days=14)
    assert trial["status"] == "trialing" and trial["latest_invoice"] is None
    assert trial["trial_end"] - trial["trial_start"] == 14 * 86400
    later = subscribe(
        sbx,
        customer,
        collection_method="send_invoice",
        start_date=int(time.time()) + 86400 * 5,
        billing_behavior="bill_on_start_date",
    )
    assert later["latest_invoice"] is None and later["current_period_start"] > time.time()


def test_create_with_old_provider_id_aliases(fresh_sbx):
    sbx = fresh_sbx
    customer = sbx.ok(
        "POST",
        "/customers",
        201,
        json={"old_provider_id": "cus_alias_1", "import_payment_methods": True, "payment_gateway_id": "cus_gw"},
    )
    plan = plan_named(sbx, "Digital Annual")
    body = {
        "customer_old_provider_id": "cus_alias_1",
        "plan_old_provider_id": plan["old_provider_id"],
        "quantity": 1,
        "source_id": customer["default_source_id"],
    }
    sub = sbx.ok("POST", "/subscriptions", 201, json=body)
    assert sub["user_id"] == customer["id"] and sub["plan"] == plan["id"]
    # Both id and alias: they must name the same object.
    other_plan = plan_named(sbx, "Digital Monthly")
    assert "plan_old_provider_id" in errors_of(
        sbx.api("POST", "/subscriptions", json={**body, "plan_id": other_plan["id"]})
    )
    assert sbx.api("POST", "/subscriptions", json={**body, "plan_old_provider_id": "plan_nope"}).status_code == 404


def subscription_cases():
    """(name, body changes, status, error field or refusal fragment)."""
    future = int(time.time()) + 86400 * 40
    return [
        ("quantity missing", {"quantity": None}, 400, "quantity"),
        ("quantity 0", {"quantity": 0}, 400, "quantity"),
        ("quantity 100001", {"quantity": 100_001}, 400, "quantity"),
        ("quantity as text", {"quantity": "1"}, 400, "quantity"),
        ("no user", {"user_id": None}, 400, "user_id"),
        ("no plan", {"plan_id": None}, 400, "plan_id"),
        ("no source for charge_automatically", {"source_id": None}, 400, "source_id"),
        ("bad collection method", {"collection_method": "invoice"}, 400, "collection_method"),
        ("customer_id (old shape)", {"customer_id": 1}, 400, "customer_id"),
        ("coupon_id (old shape)", {"coupon_id": 1}, 400, "coupon_id"),
        ("unknown coupon code", {"coupon_code": "NOPE"}, 400, "coupon_code"),
        ("trial and period end", {"trial_period_days": 7, "current_period_end": future}, 400, "trial_period_days"),
        ("period end in the past", {"current_period_end": 1_000_000_000}, 400, "current_period_end"),
        (
            "next invoice date differs",
            {"current_period_end": future, "next_invoice_date": future + 1},
            400,
            "next_invoice_date",
        ),
        ("next invoice date alone", {"next_invoice_date": future}, 400, "next_invoice_date"),
        ("future start without billing behavior", {"start_date": future}, 400, "billing_behavior"),
        ("bad billing behavior", {"start_date": future, "billing_behavior": "later"}, 400, "billing_behavior"),
        ("domains on a regular plan", {"domains": ["example.com"]}, 400, "domains"),
        ("metadata as an object", {"metadata": {"a": 1}}, 400, "metadata"),
        ("campaign key too short", {"campaign_key": "ab"}, 400, "campaign_key"),
        ("campaign key with spaces", {"campaign_key": "spring sale"}, 400, "campaign_key"),
        ("gift donor without recipient", {"is_gift_donor": True}, 400, "gift_recipient_email"),
        (
            "gift donor with donor link",
            {"is_gift_donor": True, "gift_recipient_email": "g@example.com", "gift_donor_subscription_id": 5},
            400,
            "is_gift_donor",
        ),
        ("trial days over 730", {"trial_period_days": 731}, 400, "trial_period_days"),
        ("restricted coupon", {"coupon_code": "ANNUAL30"}, 400, "restricted to other plans"),
        ("expired coupon", {"coupon_code": "SPRING25"}, 400, "could only be redeemed until"),
        ("used-up coupon", {"coupon_code": "FREEMONTH"}, 400, "maximum number of redemptions"),
        ("archived plan", {"plan": "Legacy Print Monthly"}, 400, "archived"),
        ("missing customer", {"user_id": 1}, 404, None),
        ("another account's plan", {"plan": ("other", "Digital Monthly")}, 404, None),
    ]


@pytest.mark.parametrize(
    "name, changes, status, expected", subscription_cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_create_subscription_is_refused(sbx, name, changes, status, expected):
    customer = with_source(sbx)
    body = {
        "user_id": customer["id"],
        "plan_id": plan_named(sbx, "Digital Monthly")["id"],
        "quantity": 1,
        "source_id": customer["default_source_id"],
    }
    changes = dict(changes)
    plan = changes.pop("plan", None)
    if isinstance(plan, tuple):
        body["plan_id"] = plan_named(sbx, plan[1], **OTHER)["id"]
    elif plan:
        body["plan_id"] = plan_named(sbx, plan)["id"]
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}
    since = sbx.last_seq()
    response = sbx.api("POST", "/subscriptions", json=body)
    assert response.status_code == status, (name, response.text)
    if status == 400 and expected in response.json().get("errors", {}):
        pass
    elif status == 400:
        refusal(response, expected)
    # Nothing was created: the customer still has no subscription.
    expanded = sbx.ok("GET", f"/customers/{customer['id']}", params={"expand": "subscriptions"})
    assert expanded["subscriptions"] == [] and len(sbx.log(since)) == 2


def test_source_and_address_must_be_the_customers(sbx):
    customer, stranger = with_source(sbx), with_source(sbx)
    plan = plan_named(sbx, "Digital Monthly")
    body = {"user_id": customer["id"], "plan_id": plan["id"], "quantity": 1, "source_id": stranger["default_source_id"]}
    assert "source_id" in errors_of(sbx.api("POST", "/subscriptions", json=body))
    address = sbx.ok(
        "POST",
        "/addresses",
        201,
        json={"customer_id": stranger["id"], "type": "shipping", "line1": "2 Road", "country": "DE"},
    )
    body.update(source_id=customer["default_source_id"], address_id=address["id"])
    assert "address_id" in errors_of(sbx.api("POST", "/subscriptions", json=body))


def test_a_customer_at_the_maximum_of_subscriptions_is_refused(sbx):
    customer = new_customer(sbx)
    for _ in range(25):
        subscribe(sbx, customer, collection_method="send_invoice", trial_period_days=1)
    refusal(
        sbx.api(
            "POST",
            "/subscriptions",
            json={
                "user_id": customer["id"],
                "quantity": 1,
                "plan_id": plan_named(sbx, "Digital Monthly")["id"],
                "collection_method": "send_invoice",
            },
        ),
        "maximum of 25",
    )


def test_coupon_redemptions_are_counted(fresh_sbx):
    sbx = fresh_sbx
    before = coupon_coded(sbx, "LOYAL20")["times_redeemed"]
    subscribe(sbx, with_source(sbx), coupon_code="LOYAL20")
    assert coupon_coded(sbx, "LOYAL20")["times_redeemed"] == before + 1
    annual = plan_named(sbx, "Digital Annual")
    sub = subscribe(sbx, with_source(sbx), annual, coupon_code="ANNUAL30")
    assert sbx.ok("GET", f"/invoices/{sub['latest_invoice']}")["total"] == round(annual["amount"] * 0.7)


# --- subscriptions: cancel (DELETE /subscriptions/{id}) ------------------------------------------------------


def test_cancel_at_period_end_then_now(fresh_sbx):
    sbx = fresh_sbx
    sub = subscribe(sbx, with_source(sbx))
    path = f"/subscriptions/{sub['id']}"
    scheduled = sbx.ok("DELETE", path, json={"mode": "period_end", "reason": "Moving abroad"})
    assert scheduled["status"] == "active" and scheduled["cancel_at_period_end"] is True
    assert scheduled["cancel_at"] == sub["current_period_end"] and abs(scheduled["canceled_at"] - time.time()) < 120
    assert scheduled["cancel_reason"] == "Moving abroad" and scheduled["ended_at"] is None
    refusal(sbx.api("DELETE", path, json={"mode": "period_end"}), "already set to cancel")
    ended = sbx.ok("DELETE", path, json={"mode": "now"})
    assert ended["status"] == "canceled" and ended["ended_at"] == ended["canceled_at"]
    refusal(sbx.api("DELETE", path, json={"mode": "now"}), "already canceled")
    assert sbx.ok("GET", path) == ended


@pytest.mark.parametrize(
    "body, field",
    [
        (None, "mode"),
        ({}, "mode"),
        ({"mode": "immediately"}, "mode"),
        ({"mode": "now", "reason": "x" * 256}, "reason"),
        ({"mode": "now", "at_period_end": True}, "at_period_end"),
        ({"mode": 1}, "mode"),
    ],
)
def test_cancel_validation(sbx, body, field):
    sub = subscribe(sbx, with_source(sbx))
    assert field in errors_of(sbx.api("DELETE", f"/subscriptions/{sub['id']}", json=body))
    assert sbx.ok("GET", f"/subscriptions/{sub['id']}")["status"] == "active"


def all_subscriptions(sbx):
    return [s for page in range(1, 6) for s in sbx.ok("GET", "/subscriptions", params={"limit": 100, "page": page})]


@pytest.mark.parametrize(
    "kind, fragment",
    [
        ("gift", "gift recipient"),
        ("agency", "managed by an agency"),
        ("incomplete", "pending payment"),
    ],
)
def test_cancel_refusals(fresh_sbx, kind, fragment):
    sbx = fresh_sbx
    if kind == "agency":
        sub = subscribe(sbx, with_source(sbx), plan_named(sbx, "Agency Print Annual"))
    else:
        subs = all_subscriptions(sbx)
        sub = next(s for s in subs if (s["is_gift_recipient"] if kind == "gift" else s["status"] == "incomplete"))
    for mode in ("period_end", "now"):
        refusal(sbx.api("DELETE", f"/subscriptions/{sub['id']}", json={"mode": mode}), fragment)
    assert sbx.ok("GET", f"/subscriptions/{sub['id']}")["status"] == sub["status"]


# --- invoices (§8.4) ----------------------------------------------------------------------------------------


def test_create_invoice_from_line_items_with_tax_or_from_a_total(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    invoice = sbx.ok(
        "POST",
        "/invoices",
        201,
        json={
            "customer_id": customer["id"],
            "currency": "USD",
            "period_start": 1_800_000_000,
            "period_end": 1_800_086_400,
            "due_date": 1_800_000_000,
            "billing_reason": "order_create",
            "line_items": [
                {"description": "Back issue", "unit_price": 450, "quantity": 2, "tax_name": "VAT", "tax_rate": 10},
                {"description": "Postage", "unit_price": 100, "quantity": 1},
            ],
        },
    )
    assert invoice["currency"] == "usd" and invoice["status"] == "draft" and invoice["billing_reason"] == "order_create"
    assert invoice["subtotal"] == 1000 and invoice["total"] == invoice["amount_due"] == 1090
    assert invoice["amount_remaining"] == 1090 and invoice["amount_paid"] == 0 and invoice["payment_link"] is None
    assert invoice["hosted_invoice_url"] is None and invoice["period_start"] == 1_800_000_000
    assert invoice["line_items"][0] == {
        "description": "Back issue",
        "unit_price": 450,
        "quantity": 2,
        "amount": 900,
        "tax_name": "VAT",
        "tax_rate": 10,
    }
    paid = sbx.ok(
        "POST",
        "/invoices",
        201,
        json={
            "customer_old_provider_id": None,
            "customer_id": customer["id"],
            "currency": "usd",
            "total": 700,
            "status": "paid",
        },
    )
    assert paid["status"] == "paid" and paid["amount_paid"] == 700 and paid["amount_remaining"] == 0 and paid["paid_at"]
    opened = new_invoice(sbx, customer["id"])
    assert opened["payment_link"] and opened["hosted_invoice_url"] and opened["invoice_pdf"]


def invoice_cases(customer_id, other_customer_sub):
    base = {"customer_id": customer_id, "currency": "usd", "total": 100}
    return [
        ({"currency": "usd", "total": 100}, "customer_id"),
        ({**base, "currency": None}, "currency"),
        ({**base, "currency": "dollars"}, "currency"),
        ({**base, "currency": "jpy"}, "currency"),
        ({"customer_id": customer_id, "currency": "usd"}, "line_items"),
        ({**base, "line_items": [{"description": "x", "unit_price": 1, "quantity": 1}]}, "total"),
        ({**base, "total": None, "line_items": [{"description": "x", "unit_price": 1}]}, "line_items.0.quantity"),
        ({**base, "total": None, "line_items": [{"description": "x", "quantity": 1}]}, "line_items.0.unit_price"),
        (
            {**base, "total": None, "line_items": [{"unit_price": 1, "quantity": 1, "tax_name": "VAT"}]},
            "line_items.0.tax_rate",
        ),
        (
            {**base, "total": None, "line_items": [{"unit_price": 1, "quantity": 1, "tax_rate": 5}]},
            "line_items.0.tax_name",
        ),
        ({**base, "total": None, "line_items": []}, "line_items"),
        ({**base, "period_start": 200, "period_end": 100}, "period_end"),
        ({**base, "period_start": 1_800_000_000, "due_date": 1_700_000_000}, "due_date"),
        ({**base, "status": "past_due"}, "status"),
        ({**base, "billing_reason": "gift"}, "billing_reason"),
        ({**base, "subscription_id": other_customer_sub}, "subscription_id"),
        ({**base, "description": "x"}, "description"),
        ({**base, "customer_old_provider_id": "does-not-exist"}, None),
    ]


def test_create_invoice_validation(sbx):
    customer, stranger = new_customer(sbx), with_source(sbx)
    stranger_sub = subscribe(sbx, stranger)
    for body, field in invoice_cases(customer["id"], stranger_sub["id"]):
        body = {k: v for k, v in body.items() if v is not None}
        response = sbx.api("POST", "/invoices", json=body)
        if field is None:
            assert response.status_code == 404, body
        else:
            assert field in errors_of(response), (body, response.text)


def test_update_invoice_is_metadata_only(fresh_sbx):
    sbx = fresh_sbx
    invoice = sbx.ok(
        "POST", "/invoices", 201, json={"customer_id": new_customer(sbx)["id"], "currency": "usd", "total": 100}
    )
    updated = sbx.ok("PUT", f"/invoices/{invoice['id']}", json={"metadata": {"po": "A-1", "x": 1}})
    assert updated["metadata"] == {"po": "A-1", "x": 1}
    updated = sbx.ok("PUT", f"/invoices/{invoice['id']}", json={"metadata": {"x": None}})
    assert updated["metadata"] == {"po": "A-1"}
    for body in ({}, {"due_date": 1_900_000_000}, {"status": "open"}, {"total": 5}, {"metadata": "po"}):
        errors_of(sbx.api("PUT", f"/invoices/{invoice['id']}", json=body))
    paid = new_invoice(sbx, invoice["customer_id"], status="paid")
    assert sbx.ok("PUT", f"/invoices/{paid['id']}", json={"metadata": {"k": "v"}})["metadata"] == {"k": "v"}


# The invoice state machine: every (state, action) pair, allowed or refused with a message.
STATES = ("draft", "open", "past_due", "partly_paid", "paid", "void", "uncollectible", "advance", "forced")
ACTIONS = ("pay_offline", "void", "uncollectible", "apply_balance", "offline_charge")
ALLOWED = {
    "draft": {"void"},
    "open": set(ACTIONS),
    "past_due": set(ACTIONS),
    "partly_paid": {"pay_offline", "uncollectible", "apply_balance", "offline_charge"},
    "paid": set(),
    "void": set(),
    "uncollectible": set(),
    "advance": {"pay_offline", "uncollectible", "apply_balance", "offline_charge"},
    "forced": {"void", "uncollectible", "apply_balance", "offline_charge"},
}
VOID_REFUSAL = {
    "partly_paid": "partly paid",
    "advance": "advance invoice",
    "paid": "paid",
    "void": "void",
    "uncollectible": "uncollectible",
}


def invoice_in(sbx, state):
    """An invoice in `state` (made through the API, or taken from the seed)."""
    if state in ("past_due", "advance"):
        invoices = [
            i
            for page in range(1, 8)
            for i in sbx.ok(
                "GET",
                "/invoices",
                params={
                    "limit": 100,
                    "page": page,
                    "filter[status]": "eq:past_due" if state == "past_due" else "eq:open",
                },
            )
        ]
        return next(i for i in invoices if i["amount_paid"] == 0 and (state != "advance" or i["is_advance"]))
    customer = new_customer(sbx)
    if state == "forced":
        sub = subscribe(sbx, customer, collection_method="send_invoice")
        sbx.ok("DELETE", f"/subscriptions/{sub['id']}", json={"mode": "now"})
        return sbx.ok("GET", f"/invoices/{sub['latest_invoice']}")
    if state == "partly_paid":
        credit(sbx, customer["id"], 1000)
        invoice = new_invoice(sbx, customer["id"])
        invoice = sbx.ok("POST", f"/invoices/{invoice['id']}/apply_balance")
        assert invoice["amount_paid"] == 1000 and invoice["amount_remaining"] == 4000 and invoice["status"] == "open"
        return invoice
    invoice = new_invoice(sbx, customer["id"], status="draft" if state == "draft" else "open")
    if state == "paid":
        return sbx.ok(
            "POST", f"/invoices/{invoice['id']}/pay_offline", json={"reference": "CHK-1", "payment_category": "2"}
        )
    if state in ("void", "uncollectible"):
        return sbx.ok("POST", f"/invoices/{invoice['id']}/{state}")
    return invoice


def act(sbx, action, invoice):
    path = f"/invoices/{invoice['id']}"
    if action == "pay_offline":
        return sbx.api("POST", path + "/pay_offline", json={"reference": "WIRE-9", "payment_category": "3"})
    if action == "apply_balance":
        credit(sbx, invoice["customer_id"], 250)
        return sbx.api("POST", path + "/apply_balance")
    if action == "offline_charge":
        return sbx.api(
            "POST",
            "/charges",
            json={
                "customer_id": invoice["customer_id"],
                "invoice_id": invoice["id"],
                "amount": invoice["amount_remaining"] or 1,
                "currency": invoice["currency"],
                "reference": "LOCKBOX-1",
                "payment_category": "5",
            },
        )
    return sbx.api("POST", f"{path}/{action}")


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", STATES)
def test_invoice_state_machine(fresh_sbx, state, action):
    sbx = fresh_sbx
    invoice = invoice_in(sbx, state)
    credit_before = sbx.ok("GET", f"/customers/{invoice['customer_id']}")["balance"]
    response = act(sbx, action, invoice)
    after = sbx.ok("GET", f"/invoices/{invoice['id']}")
    assert after["amount_remaining"] == after["amount_due"] - after["amount_paid"]
    if action not in ALLOWED[state]:
        assert response.status_code == 400, (state, action, response.text)
        assert set(response.json()) == {"error"}
        if action == "void" and state in VOID_REFUSAL:
            assert VOID_REFUSAL[state] in response.json()["error"]["message"]
        if state == "forced":
            assert "forcefully canceled" in response.json()["error"]["message"]
        assert {k: v for k, v in after.items() if k != "updated_at"} == {
            k: v for k, v in invoice.items() if k != "updated_at"
        }
        return
    assert response.status_code in (200, 201), (state, action, response.text)
    expected = {"pay_offline": "paid", "offline_charge": "paid", "void": "void", "uncollectible": "uncollectible"}
    if action in expected:
        assert after["status"] == expected[action]
    if action in ("pay_offline", "offline_charge"):
        assert after["amount_remaining"] == 0 and after["paid"] is True and after["paid_at"]
        assert after["payment_link"] is None
    if action == "apply_balance":
        assert after["amount_paid"] == invoice["amount_paid"] + 250 and after["status"] == invoice["status"]
        customer = sbx.ok("GET", f"/customers/{invoice['customer_id']}")
        assert customer["balance"] == credit_before  # the 250 credited for this action was spent
    if action == "void":
        assert after["voided_at"]
    if action == "uncollectible":
        # Terminal: nothing moves it any more.
        for later in ("void", "pay_offline", "uncollectible"):
            assert act(sbx, later, after).status_code == 400


def test_apply_balance_covers_the_whole_amount_and_needs_credit(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    invoice = new_invoice(sbx, customer["id"], amount=800)
    refusal(sbx.api("POST", f"/invoices/{invoice['id']}/apply_balance"), "no credit balance")
    credit(sbx, customer["id"], 1000)
    paid = sbx.ok("POST", f"/invoices/{invoice['id']}/apply_balance")
    assert paid["status"] == "paid" and paid["amount_remaining"] == 0 and paid["ending_balance"] == 200
    assert sbx.ok("GET", f"/customers/{customer['id']}")["balance"] == 200
    assert "reference" in errors_of(
        sbx.api("POST", f"/invoices/{invoice['id']}/apply_balance", json={"reference": "x"})
    )


def test_paying_a_past_due_subscriptions_invoice_reactivates_it(fresh_sbx):
    sbx = fresh_sbx
    subs = [s for s in all_subscriptions(sbx) if s["status"] == "past_due" and s["latest_invoice"]]
    sub = subs[0]
    invoice = sbx.ok("GET", f"/invoices/{sub['latest_invoice']}")
    assert invoice["status"] == "past_due"
    sbx.ok("POST", f"/invoices/{invoice['id']}/pay_offline", json={"reference": "CHK-7", "payment_category": "6"})
    assert sbx.ok("GET", f"/subscriptions/{sub['id']}")["status"] == "active"


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "reference"),
        ({"reference": "x"}, "payment_category"),
        ({"reference": "x", "payment_category": 2}, "payment_category"),
        ({"reference": "x", "payment_category": "1"}, "payment_category"),
        ({"reference": "x", "payment_category": "7"}, "payment_category"),
        ({"reference": "x" * 256, "payment_category": "2"}, "reference"),
        ({"reference": "x", "category": "2"}, "category"),
        ({"reference": "x", "payment_category": "2", "amount": 5}, "amount"),
    ],
)
def test_pay_offline_validation(sbx, body, field):
    invoice = new_invoice(sbx, new_customer(sbx)["id"])
    assert field in errors_of(sbx.api("POST", f"/invoices/{invoice['id']}/pay_offline", json=body))


def test_void_and_uncollectible_take_no_body(sbx):
    invoice = new_invoice(sbx, new_customer(sbx)["id"])
    for action in ("void", "uncollectible"):
        assert "reason" in errors_of(sbx.api("POST", f"/invoices/{invoice['id']}/{action}", json={"reason": "x"}))


# --- offline charges (§8.7) ---------------------------------------------------------------------------------


def test_offline_charge_without_invoice_credits_the_balance_and_sets_the_currency(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    assert customer["currency"] is None
    charge = sbx.ok(
        "POST",
        "/charges",
        201,
        json={
            "customer_id": customer["id"],
            "amount": 1234,
            "currency": "USD",
            "reference": "CHK-1001",
            "payment_category": "2",
        },
    )
    assert charge["currency"] == "usd" and charge["payment_category"] == "2" and charge["invoice_id"] is None
    assert charge["offline"] is True and charge["paid"] is True and charge["status"] == "succeeded"
    assert charge["reference"] == "CHK-1001" and charge["metadata"] == {}
    after = sbx.ok("GET", f"/customers/{customer['id']}")
    assert after["balance"] == 1234 and after["currency"] == "usd"
    no_category = sbx.ok(
        "POST", "/charges", 201, json={"customer_id": customer["id"], "amount": 1, "currency": "usd", "reference": "R"}
    )
    assert no_category["payment_category"] is None


def test_offline_charge_for_an_invoice_must_equal_its_remaining_amount(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    invoice = new_invoice(sbx, customer["id"], amount=3000)
    body = {"customer_id": customer["id"], "invoice_id": invoice["id"], "currency": "usd", "reference": "W-1"}
    for amount in (2999, 3001, 1):
        refusal(sbx.api("POST", "/charges", json={**body, "amount": amount}), "must equal")
    charge = sbx.ok("POST", "/charges", 201, json={**body, "amount": 3000})
    assert charge["invoice_id"] == invoice["id"]
    assert sbx.ok("GET", f"/invoices/{invoice['id']}")["status"] == "paid"
    assert sbx.ok("GET", f"/customers/{customer['id']}")["balance"] == 0


def test_offline_charge_invoice_alias_and_ownership(fresh_sbx):
    sbx = fresh_sbx
    seeded = next(
        i
        for page in range(1, 8)
        for i in sbx.ok("GET", "/invoices", params={"limit": 100, "page": page, "filter[status]": "eq:open"})
        if i["old_provider_id"] and i["amount_paid"] == 0
    )
    body = {
        "customer_id": seeded["customer_id"],
        "invoice_old_provider_id": seeded["old_provider_id"],
        "amount": seeded["amount_remaining"],
        "currency": seeded["currency"],
        "reference": "ALIAS",
    }
    stranger = new_customer(sbx)
    assert "invoice_id" in errors_of(sbx.api("POST", "/charges", json={**body, "customer_id": stranger["id"]}))
    assert sbx.ok("POST", "/charges", 201, json=body)["invoice_id"] == seeded["id"]


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"customer_id": None}, "customer_id"),
        ({"amount": 0}, "amount"),
        ({"amount": 2_147_483_648}, "amount"),
        ({"amount": None}, "amount"),
        ({"reference": None}, "reference"),
        ({"reference": "x" * 256}, "reference"),
        ({"currency": None}, "currency"),
        ({"currency": "us"}, "currency"),
        ({"currency": "eur"}, "currency"),
        ({"payment_category": 3}, "payment_category"),
        ({"payment_category": "1"}, "payment_category"),
        ({"metadata": {"a": 1}}, "metadata"),
        ({"status": "succeeded"}, "status"),
    ],
)
def test_offline_charge_validation(sbx, changes, field):
    body = {"customer_id": new_customer(sbx)["id"], "amount": 100, "currency": "usd", "reference": "R", **changes}
    assert field in errors_of(sbx.api("POST", "/charges", json={k: v for k, v in body.items() if v is not None}))


# --- refunds (§8.8) ------------------------------------------------------------------------------------------


def test_cancel_refunds_is_queued_and_applied_later_only_to_pending_ones(fresh_sbx):
    sbx = fresh_sbx
    refunds = sbx.ok("GET", "/refunds", params={"limit": 100})
    pending = [r for r in refunds if r["status"] == "to_issue" and r["created_at"]]
    undated = next(r for r in refunds if r["status"] == "to_issue" and r["created_at"] is None)
    issued = next(r for r in refunds if r["status"] == "issued")
    ids = f"{pending[0]['id']},{issued['id']},{undated['id']}"
    response = sbx.api("POST", "/refunds/cancelled", json={"refund_ids": ids})
    assert response.status_code == 202 and response.json() == {"data": {"queued": [pending[0]["id"]]}}
    # Not immediately: the job runs later.
    assert {r["id"]: r["status"] for r in sbx.ok("GET", "/refunds", params={"limit": 100})}[
        pending[0]["id"]
    ] == "to_issue"
    assert sbx.admin.post("/jobs/run").json() == {"data": {"ran": 1}}
    statuses = {r["id"]: r["status"] for r in sbx.ok("GET", "/refunds", params={"limit": 100})}
    assert statuses[pending[0]["id"]] == "canceled" and statuses[issued["id"]] == "issued"
    assert statuses[undated["id"]] == "to_issue"


def test_cancel_all_refunds_runs_after_the_job_delay(fresh_sbx):
    sbx = fresh_sbx
    sbx.configure(job_delay=0.3)
    pending = {
        r["id"]
        for r in sbx.ok("GET", "/refunds", params={"limit": 100})
        if r["status"] == "to_issue" and r["created_at"]
    }
    response = sbx.api("POST", "/refunds/cancelled", json={"refund_ids": "all"})
    assert response.status_code == 202 and set(response.json()["data"]["queued"]) == pending
    time.sleep(0.4)
    statuses = {r["id"]: r["status"] for r in sbx.ok("GET", "/refunds", params={"limit": 100})}
    assert all(statuses[i] == "canceled" for i in pending)
    # The other account's refunds were not touched.
    assert any(r["status"] == "to_issue" for r in sbx.ok("GET", "/refunds", params={"limit": 100}, **OTHER))


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "refund_ids"),
        ({"refund_ids": [1, 2]}, "refund_ids"),
        ({"refund_ids": "1;2"}, "refund_ids"),
        ({"refund_ids": "none"}, "refund_ids"),
        ({"refund_ids": ""}, "refund_ids"),
        ({"ids": "all"}, "ids"),
    ],
)
def test_cancel_refunds_validation(sbx, body, field):
    assert field in errors_of(sbx.api("POST", "/refunds/cancelled", json=body))


# --- addresses (§8.9) -----------------------------------------------------------------------------------------


def address_body(owner, **extra):
    return {
        "customer_id": owner,
        "type": "shipping",
        "line1": "10 Main St",
        "country": "US",
        "state": "NY",
        "city": "New York",
        **extra,
    }


def test_create_address_and_one_default_per_type(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    first = sbx.ok("POST", "/addresses", 201, json=address_body(customer["id"], is_default=True, site_id=ACME_SITE))
    assert first["user_id"] == customer["id"] and first["is_default"] is True and first["updated_at"] is None
    billing = sbx.ok("POST", "/addresses", 201, json=address_body(customer["id"], type="billing", is_default=True))
    second = sbx.ok(
        "POST",
        "/addresses",
        201,
        json=address_body(customer["id"], line1="20 Main St", is_default=True, country="ca", state="ON"),
    )
    assert second["country"] == "CA"
    assert sbx.ok("GET", f"/addresses/{first['id']}")["is_default"] is False
    assert sbx.ok("GET", f"/addresses/{billing['id']}")["is_default"] is True
    full = sbx.ok("GET", f"/customers/{customer['id']}", params={"expand": "addresses"})
    assert {a["id"] for a in full["addresses"]} == {first["id"], billing["id"], second["id"]}


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"customer_id": None}, "customer_id"),
        ({"type": None}, "type"),
        ({"type": "home"}, "type"),
        ({"line1": None}, "line1"),
        ({"line1": "x" * 256}, "line1"),
        ({"country": None}, "country"),
        ({"country": "USA"}, "country"),
        ({"state": None}, "state"),
        ({"country": "AU", "state": None}, "state"),
        ({"country": "CA", "state": None}, "state"),
        ({"postal_code": "1" * 46}, "postal_code"),
        ({"old_provider_id": "x" * 192}, "old_provider_id"),
        ({"is_default": "yes"}, "is_default"),
        ({"site_id": ACME_SITE_2}, "site_id"),
        ({"user_id": 1}, "user_id"),
    ],
)
def test_create_address_validation(sbx, changes, field):
    body = {k: v for k, v in address_body(new_customer(sbx)["id"], **changes).items() if v is not None}
    assert field in errors_of(sbx.api("POST", "/addresses", json=body))


def test_state_is_optional_outside_us_ca_au_and_deleted_customers_are_404(fresh_sbx):
    sbx = fresh_sbx
    customer = new_customer(sbx)
    sbx.ok("POST", "/addresses", 201, json=address_body(customer["id"], country="GB", state=None))
    assert sbx.api("DELETE", f"/customers/{customer['id']}").status_code == 204
    assert sbx.api("POST", "/addresses", json=address_body(customer["id"])).status_code == 404


def test_tax_accounts_need_postal_codes_and_refuse_is_default_updated(fresh_sbx):
    sbx = fresh_sbx
    customer = sbx.ok("POST", "/customers", 201, json={"email": "tax@example.com"}, **OTHER)
    body = address_body(customer["id"])
    assert "postal_code" in errors_of(sbx.api("POST", "/addresses", json=body, **OTHER))
    assert "is_default_updated" in errors_of(
        sbx.api("POST", "/addresses", json={**body, "postal_code": "10001", "is_default_updated": True}, **OTHER)
    )
    sbx.ok("POST", "/addresses", 201, json={**body, "postal_code": "10001"}, **OTHER)
    # The same body needs no postal code on an account without taxes.
    sbx.ok("POST", "/addresses", 201, json=address_body(new_customer(sbx)["id"]))


def test_is_default_updated_moves_active_subscriptions(fresh_sbx):
    sbx = fresh_sbx
    customer = with_source(sbx)
    active, ended = subscribe(sbx, customer), subscribe(sbx, customer)
    sbx.ok("DELETE", f"/subscriptions/{ended['id']}", json={"mode": "now"})
    address = sbx.ok(
        "POST", "/addresses", 201, json=address_body(customer["id"], is_default=True, is_default_updated=True)
    )
    assert sbx.ok("GET", f"/subscriptions/{active['id']}")["address"] == address["id"]
    assert sbx.ok("GET", f"/subscriptions/{ended['id']}")["address"] is None


def test_update_address_rules(fresh_sbx):
    sbx = fresh_sbx
    customer = with_source(sbx)
    address = sbx.ok("POST", "/addresses", 201, json=address_body(customer["id"], old_provider_id="adr-1"))
    path = f"/addresses/{address['id']}"
    changed = sbx.ok("PUT", path, json={"city": "Brooklyn", "state": "NJ"})
    assert changed["city"] == "Brooklyn" and changed["state"] == "NJ" and changed["updated_at"]
    assert "customer_id" in errors_of(sbx.api("PUT", path, json={"customer_id": new_customer(sbx)["id"]}))
    assert "state" in errors_of(sbx.api("PUT", path, json={"state": None}))
    other = sbx.ok("POST", "/addresses", 201, json=address_body(customer["id"]))
    assert "old_provider_id" in errors_of(
        sbx.api("PUT", f"/addresses/{other['id']}", json={"old_provider_id": "adr-1"})
    )
    subscribe(sbx, customer, address_id=address["id"])
    for body, field in (({"country": "CA", "state": "ON"}, "country"), ({"state": "CA"}, "state")):
        assert field in errors_of(sbx.api("PUT", path, json=body))
    assert sbx.ok("PUT", path, json={"line2": "Apt 4", "state": "NJ", "country": "US"})["line2"] == "Apt 4"


def test_delete_address_is_204_unless_a_subscription_uses_it(fresh_sbx):
    sbx = fresh_sbx
    customer = with_source(sbx)
    used = sbx.ok("POST", "/addresses", 201, json=address_body(customer["id"]))
    free = sbx.ok("POST", "/addresses", 201, json=address_body(customer["id"], type="billing"))
    sub = subscribe(sbx, customer, address_id=used["id"])
    refusal(sbx.api("DELETE", f"/addresses/{used['id']}"), "Cannot delete address already associated to a subscription")
    response = sbx.api("DELETE", f"/addresses/{free['id']}")
    assert response.status_code == 204 and response.content == b""
    assert sbx.api("GET", f"/addresses/{free['id']}").status_code == 404
    sbx.ok("DELETE", f"/subscriptions/{sub['id']}", json={"mode": "now"})
    assert sbx.api("DELETE", f"/addresses/{used['id']}").status_code == 204


# --- payment sources (§8.10) ------------------------------------------------------------------------------------


def test_delete_source_refused_while_a_subscription_uses_it(fresh_sbx):
    sbx = fresh_sbx
    customer = with_source(sbx)
    source_id = customer["default_source_id"]
    sub = subscribe(sbx, customer)
    response = sbx.api("DELETE", f"/sources/{source_id}")
    assert response.status_code == 400
    assert response.json() == {
        "error": {"status": 400, "message": "Cannot delete source already associated to a subscription"}
    }
    sbx.ok("DELETE", f"/subscriptions/{sub['id']}", json={"mode": "now"})
    assert sbx.api("DELETE", f"/sources/{source_id}").status_code == 204
    assert sbx.ok("GET", f"/customers/{customer['id']}")["default_source_id"] is None
    assert sbx.api("DELETE", f"/sources/{source_id}").status_code == 404
