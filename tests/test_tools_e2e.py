"""Every tool, end to end: the real SDK client over Streamable HTTP, a token from the real
OAuth flow, the live gateway and the sandbox, in both protocol eras. Each result's
structuredContent is checked against what the sandbox itself answers with the account's
own key."""

import uuid
from datetime import UTC, datetime

import pytest

from mcp_bridge.servers import TOOLS
from tests.support.mcp import CORE_TOOLS, ERAS, mcp_session

pytestmark = pytest.mark.sqlite

SITE = 14  # acme


def ok(result) -> dict:
    assert not result.is_error, result.content[0].text
    assert result.content[0].text  # the short summary
    return result.structured_content


def same_object(structured: dict, truth: dict) -> None:
    """Every field the sandbox returns is in the structured result, with the same value."""
    for key, value in truth.items():
        assert structured.get(key) == value, (key, structured.get(key), value)


def same_page(structured: dict, envelope: dict) -> None:
    meta = envelope["meta"]
    assert len(structured["items"]) == len(envelope["data"])
    for item, expected in zip(structured["items"], envelope["data"], strict=True):
        same_object(item, expected)
    assert structured["page"] == meta["current_page"]
    assert structured["per_page"] == meta["per_page"]
    assert structured["total"] == meta["total"]
    assert structured["last_page"] == meta["last_page"]
    assert structured["has_more"] == (meta["current_page"] < meta["last_page"])


class Tools:
    """Calls tools through one client and remembers which were called."""

    def __init__(self, client):
        self.client = client
        self.called: set[str] = set()

    async def __call__(self, name: str, **arguments):
        self.called.add(name)
        return await self.client.call_tool(name, {"site_id": SITE, **arguments})


def listing(truth, path: str, **params) -> dict:
    response = truth.api("GET", path, site_id=SITE, params=params)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("mode", ERAS)
async def test_every_tool_against_the_sandbox(mcp_env, truth, mode):
    token = mcp_env.token("acme")
    async with mcp_session(mcp_env.url, token, mode) as client:
        # Listing first makes the SDK client validate every result against its outputSchema.
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert listed >= CORE_TOOLS
        call = Tools(client)

        # --- Reads -------------------------------------------------------------------------
        page = ok(await call("list_customers", per_page=5, sort="-id"))
        same_page(page, listing(truth, "/customers", limit=5, sort="-id"))
        assert page["has_more"] is True
        second = ok(await call("list_customers", per_page=5, sort="-id", page=2))
        same_page(second, listing(truth, "/customers", limit=5, sort="-id", page=2))
        customer = page["items"][0]
        by_email = ok(await call("list_customers", email=customer["email"].upper()))
        assert [c["id"] for c in by_email["items"]] == [customer["id"]] and by_email["total"] == 1
        part = customer["email"].split("@")[0][2:7]
        same_page(ok(await call("list_customers", email_contains=part, per_page=50)),
                  listing(truth, "/customers", limit=50, **{"filter[email]": f"like:{part}"}))
        same_object(ok(await call("get_customer", customer_id=customer["id"])),
                    truth.ok("GET", f"/customers/{customer['id']}", site_id=SITE))

        subscriptions = ok(await call("list_subscriptions", per_page=3, sort="-status"))
        same_page(subscriptions, listing(truth, "/subscriptions", limit=3, sort="-status"))
        subscription = subscriptions["items"][0]
        same_object(ok(await call("get_subscription", subscription_id=subscription["id"])),
                    truth.ok("GET", f"/subscriptions/{subscription['id']}", site_id=SITE))

        invoices = ok(await call("list_invoices", status="open", per_page=20))
        same_page(invoices, listing(truth, "/invoices", limit=20, **{"filter[status]": "eq:open"}))
        assert invoices["items"] and {i["status"] for i in invoices["items"]} == {"open"}
        same_page(ok(await call("list_invoices", status="paid", sort="-id", per_page=4)),
                  listing(truth, "/invoices", limit=4, sort="-id", **{"filter[status]": "eq:paid"}))
        invoice = invoices["items"][0]
        same_object(ok(await call("get_invoice", invoice_id=invoice["id"])),
                    truth.ok("GET", f"/invoices/{invoice['id']}", site_id=SITE))

        plans = ok(await call("list_plans", sort="-nickname", per_page=100))
        same_page(plans, listing(truth, "/plans", limit=100, sort="-nickname"))
        names = [p["nickname"].casefold() for p in plans["items"]]
        assert names == sorted(names, reverse=True)
        plan = next(p for p in plans["items"] if p["active"] == "active" and not p["agency_id"])
        same_object(ok(await call("get_plan", plan_id=plan["id"])), truth.ok("GET", f"/plans/{plan['id']}", site_id=SITE))

        coupons = ok(await call("list_coupons"))
        same_page(coupons, listing(truth, "/coupons"))
        coupon = coupons["items"][0]
        same_object(ok(await call("get_coupon", coupon_id=coupon["id"])),
                    truth.ok("GET", f"/coupons/{coupon['id']}", site_id=SITE))

        charges = ok(await call("list_charges", per_page=4, page=3))
        same_page(charges, listing(truth, "/charges", limit=4, page=3))
        charge = charges["items"][0]
        same_object(ok(await call("get_charge", charge_id=charge["id"])),
                    truth.ok("GET", f"/charges/{charge['id']}", site_id=SITE))

        # --- Customers: create, update -------------------------------------------------------
        email = f"E2E-{uuid.uuid4().hex[:10]}@Example.com"
        created = ok(await call("create_customer", email=email, first_name="Ada", last_name="Lovelace",
                                metadata={"source": "mcp-test", "seats": 3}, mail_marketing=True))
        new_id = created["id"]
        assert created["email"] == email.lower() and created["balance"] == 0
        same_object(created, truth.ok("GET", f"/customers/{new_id}", site_id=SITE))
        updated = ok(await call("update_customer", customer_id=new_id, first_name="Augusta",
                                metadata={"source": None, "tier": "gold"}))
        assert updated["first_name"] == "Augusta" and updated["last_name"] == "Lovelace"
        assert updated["metadata"] == {"seats": 3, "tier": "gold"}
        same_object(updated, truth.ok("GET", f"/customers/{new_id}", site_id=SITE))

        # --- Invoices: draft, metadata update, open → pay offline --------------------------------
        draft = ok(await call("create_invoice", customer_id=new_id, currency="USD", due_date="2027-01-31",
                              line_items=[{"description": "Annual print", "unit_price": 12000, "quantity": 2}]))
        due = int(datetime(2027, 1, 31, tzinfo=UTC).timestamp())  # the Core API speaks Unix seconds
        assert (draft["status"], draft["total"], draft["currency"], draft["due_date"]) == ("draft", 24000, "usd", due)
        same_object(draft, truth.ok("GET", f"/invoices/{draft['id']}", site_id=SITE))
        edited = ok(await call("update_invoice", invoice_id=draft["id"], metadata={"po": "PO-7"}))
        assert (edited["total"], edited["status"], edited["metadata"]) == (24000, "draft", {"po": "PO-7"})
        owed = ok(await call("create_invoice", customer_id=new_id, currency="usd", status="open",
                             line_items=[{"description": "Digital add-on", "unit_price": 5000}]))
        paid = ok(await call("pay_invoice_offline", invoice_id=owed["id"], reference="CHQ-1001", category=2))
        assert (paid["status"], paid["amount_paid"], paid["amount_remaining"]) == ("paid", 5000, 0)
        same_object(paid, truth.ok("GET", f"/invoices/{owed['id']}", site_id=SITE))
        last_page = listing(truth, "/charges", limit=100)["meta"]["last_page"]
        cheque = [c for c in listing(truth, "/charges", limit=100, page=last_page)["data"] if c["invoice_id"] == owed["id"]]
        assert [(c["amount"], c["reference"], c["offline"], c["payment_category"]) for c in cheque] == [
            (5000, "CHQ-1001", True, "2")]

        # --- Invoices: void (and its refusal once void), write off ------------------------------
        to_void = ok(await call("create_invoice", customer_id=new_id, currency="usd", total=3000, status="open"))
        voided = ok(await call("void_invoice", invoice_id=to_void["id"]))
        assert voided["status"] == "void" and voided["voided_at"]
        same_object(voided, truth.ok("GET", f"/invoices/{to_void['id']}", site_id=SITE))
        again = await call("void_invoice", invoice_id=to_void["id"])
        assert again.is_error and again.structured_content["error"] == "refused"
        assert "void" in again.content[0].text and again.structured_content["upstream_status"] == 400
        bad_debt = ok(await call("create_invoice", customer_id=new_id, currency="usd", total=4000, status="open"))
        written_off = ok(await call("mark_invoice_uncollectible", invoice_id=bad_debt["id"]))
        assert written_off["status"] == "uncollectible"
        same_object(written_off, truth.ok("GET", f"/invoices/{bad_debt['id']}", site_id=SITE))

        # --- Charges: an offline payment credited to the balance -------------------------------
        wire = ok(await call("create_offline_charge", customer_id=new_id, amount=2500, currency="usd",
                             reference="WIRE-9", payment_category=3))
        assert (wire["status"], wire["paid"], wire["offline"], wire["invoice_id"]) == ("succeeded", True, True, None)
        same_object(ok(await call("get_charge", charge_id=wire["id"])),
                    truth.ok("GET", f"/charges/{wire['id']}", site_id=SITE))
        assert truth.ok("GET", f"/customers/{new_id}", site_id=SITE)["balance"] == 2500

        # --- Subscriptions: create, cancel at period end, cancel now --------------------------
        subscribed = ok(await call("create_subscription", customer_id=new_id, plan_id=plan["id"], quantity=2))
        assert (subscribed["status"], subscribed["plan"], subscribed["quantity"]) == ("active", plan["id"], 2)
        assert subscribed["user_id"] == new_id and subscribed["billing"] == "send_invoice"
        same_object(subscribed, truth.ok("GET", f"/subscriptions/{subscribed['id']}", site_id=SITE))
        first_bill = truth.ok("GET", f"/invoices/{subscribed['latest_invoice']}", site_id=SITE)
        assert (first_bill["subscription_id"], first_bill["status"]) == (subscribed["id"], "open")
        ending = ok(await call("cancel_subscription", subscription_id=subscribed["id"], at_period_end=True))
        assert ending["status"] == "active" and ending["cancel_at_period_end"] is True
        ended = ok(await call("cancel_subscription", subscription_id=subscribed["id"]))
        assert ended["status"] == "canceled"
        same_object(ended, truth.ok("GET", f"/subscriptions/{subscribed['id']}", site_id=SITE))

        # --- Customers: delete (soft) ----------------------------------------------------------
        deleted = ok(await call("delete_customer", customer_id=new_id))
        assert deleted["deleted"] is True and deleted["customer_id"] == new_id
        assert deleted.get("customer") is None  # the Core API answers a delete with an empty body
        assert truth.api("GET", f"/customers/{new_id}", site_id=SITE).status_code == 404
        gone = await call("get_customer", customer_id=new_id)
        assert gone.is_error and gone.structured_content["error"] == "not_found"

        assert call.called == CORE_TOOLS


# --- Account isolation ---------------------------------------------------------------------


def arguments_reaching(truth, account: str, site_id: int) -> dict[str, dict]:
    """For every tool, arguments naming real objects of `site_id`: if the site check were
    missing, each call would act on that account's data."""
    def first(path):
        return truth.ok("GET", path, account=account, site_id=site_id, params={"limit": 1})[0]["id"]

    customer, subscription, invoice = first("/customers"), first("/subscriptions"), first("/invoices")
    plan, coupon, charge = first("/plans"), first("/coupons"), first("/charges")
    return {
        "list_customers": {}, "get_customer": {"customer_id": customer},
        "create_customer": {"email": f"intruder-{uuid.uuid4().hex[:6]}@example.com"},
        "update_customer": {"customer_id": customer, "first_name": "Mallory"},
        "delete_customer": {"customer_id": customer},
        "list_subscriptions": {}, "get_subscription": {"subscription_id": subscription},
        "create_subscription": {"customer_id": customer, "plan_id": plan},
        "cancel_subscription": {"subscription_id": subscription},
        "list_invoices": {}, "get_invoice": {"invoice_id": invoice},
        "create_invoice": {"customer_id": customer, "currency": "usd", "total": 100},
        "update_invoice": {"invoice_id": invoice, "metadata": {"owned": "yes"}},
        "pay_invoice_offline": {"invoice_id": invoice, "reference": "R-1", "category": 2},
        "void_invoice": {"invoice_id": invoice}, "mark_invoice_uncollectible": {"invoice_id": invoice},
        "list_plans": {}, "get_plan": {"plan_id": plan}, "list_coupons": {}, "get_coupon": {"coupon_id": coupon},
        "list_charges": {}, "get_charge": {"charge_id": charge},
        "create_offline_charge": {"customer_id": customer, "amount": 100, "currency": "usd", "reference": "R-2",
                                  "payment_category": 2},
        "start_export": {"kind": "customers"}, "get_export": {"job_id": str(uuid.uuid4())},
    }


@pytest.mark.parametrize("mode", ERAS)
async def test_a_token_for_one_account_gets_nothing_from_another_accounts_site(mcp_env, truth, mode):
    targets = {27: arguments_reaching(truth, "other", 27), 31: arguments_reaching(truth, "globex", 31)}
    assert set(targets[27]) == set(TOOLS)  # every tool is covered
    before = truth.last_seq()
    token = mcp_env.token("acme")
    async with mcp_session(mcp_env.url, token, mode) as client:
        for site_id, arguments in targets.items():
            for name, args in arguments.items():
                foreign = await client.call_tool(name, {"site_id": site_id, **args})
                unknown = await client.call_tool(name, {"site_id": 99999, **args})
                assert foreign.is_error and unknown.is_error, name
                assert foreign.structured_content["error"] == unknown.structured_content["error"], name
                assert foreign.structured_content["error"] in ("unknown_site", "not_found"), name
                # The same answer whether the site exists elsewhere or not at all.
                text = foreign.content[0].text
                assert text == unknown.content[0].text.replace("99999", str(site_id)), name
                assert not any(name in text for name in ("Other Press", "Other Gazette", "Globex", "other)"))
    # Nothing at all reached the upstream for those sites.
    reached = [entry for entry in truth.log(since=before) if "site_id=27" in entry["query"]
               or "site_id=31" in entry["query"] or "site_id=99999" in entry["query"]]
    assert reached == []
