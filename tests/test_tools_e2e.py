"""Every tool, end to end: the real SDK client over Streamable HTTP, a token from the real
OAuth flow, the live gateway and the sandbox, in both protocol eras. Each result's
structuredContent is checked against what the sandbox itself answers with the account's
own key (its Unix times given as ISO 8601 UTC), and the sandbox's request log shows what
the gateway sent (CORE_API.md request shapes, one request for the customer 360 view)."""

import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest

from mcp_bridge.servers import TOOLS
from tests.support.mcp import CORE_TOOLS, ERAS, mcp_session

pytestmark = pytest.mark.sqlite

SITE = 14  # acme
# Core object times that do not end in _at (CORE_API.md §8.3, §8.4, §8.6).
TIME_KEYS = {
    "created",
    "current_period_start",
    "current_period_end",
    "trial_start",
    "trial_end",
    "due_date",
    "period_start",
    "period_end",
    "redeem_by",
}


def as_the_model_sees_it(value, key: str = ""):
    """A sandbox answer with Unix times as ISO 8601 UTC and empty PHP maps as objects."""
    if isinstance(value, dict):
        return {k: as_the_model_sees_it(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return {} if key == "metadata" and value == [] else [as_the_model_sees_it(v) for v in value]
    if (key in TIME_KEYS or key.endswith("_at")) and isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def ok(result) -> dict:
    assert not result.is_error, result.content[0].text
    assert result.content[0].text  # the short summary
    return result.structured_content


def same_object(structured: dict, truth: dict) -> None:
    """Every field the sandbox returns is in the structured result, with the same value."""
    for key, value in as_the_model_sees_it(truth).items():
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


def sent(truth, since: int) -> list[tuple[str, str, dict]]:
    """(method, path, query) of every request the gateway sent since `since`."""
    return [
        (e["method"], e["path"].removeprefix("/api/v1/core"), parse_qs(e["query"]))
        for e in truth.log(since=since, account="acme")
    ]


@pytest.mark.parametrize("mode", ERAS)
async def test_every_tool_against_the_sandbox(mcp_env, truth, mode):
    # Confirmations off (the owner's choice at consent): each write runs at once, audited
    # `waived` (tests/test_confirmation.py covers asking).
    token = mcp_env.token("acme", confirm_writes=False)
    async with mcp_session(mcp_env.url, token, mode) as client:
        # Listing first makes the SDK client validate every result against its outputSchema.
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert listed >= CORE_TOOLS
        call = Tools(client)

        # --- The account -------------------------------------------------------------------
        account = ok(await client.call_tool("get_account", {}))
        call.called.add("get_account")
        same_object(account, truth.ok("GET", "/account", site_id=None))
        assert [s["id"] for s in account["sites"]] == [14, 15] and account["api_core_rate_limit"] >= 1

        # --- Customers: filters with their operators, the 360 view ----------------------------
        page = ok(await call("list_customers", per_page=5, sort="-id"))
        same_page(page, listing(truth, "/customers", limit=5, sort="-id"))
        assert page["has_more"] is True
        second = ok(await call("list_customers", per_page=5, sort="-id", page=2))
        same_page(second, listing(truth, "/customers", limit=5, sort="-id", page=2))
        customer = page["items"][0]
        by_email = ok(await call("list_customers", email=customer["email"]))
        assert [c["id"] for c in by_email["items"]] == [customer["id"]] and by_email["total"] == 1
        part = customer["email"].split("@")[0][1:5]
        same_page(
            ok(await call("list_customers", email_contains=part, per_page=50)),
            listing(truth, "/customers", limit=50, **{"filter[email]": f"like:{part}"}),
        )
        same_page(
            ok(await call("list_customers", ids=[customer["id"], second["items"][0]["id"]])),
            listing(truth, "/customers", **{"filter[id]": f"eq:{customer['id']},{second['items'][0]['id']}"}),
        )
        tagged = next(c for c in listing(truth, "/customers", limit=100)["data"] if c["metadata"])
        key, value = next(iter(tagged["metadata"].items()))
        with_value = ok(await call("list_customers", metadata={key: str(value)}, per_page=100))
        same_page(with_value, listing(truth, "/customers", limit=100, **{f"filter[metadata.{key}]": f"eq:{value}"}))
        assert tagged["id"] in {c["id"] for c in with_value["items"]}
        assert all(c["metadata"][key] == value for c in with_value["items"])
        same_page(
            ok(await call("list_customers", has_metadata_key=key, per_page=100)),
            listing(truth, "/customers", limit=100, **{"filter[metadata]": f"has:{key}"}),
        )
        either = ok(
            await call("list_customers", email=customer["email"], first_name="Nobody-Has-This-Name", match="any")
        )
        same_page(
            either,
            listing(
                truth,
                "/customers",
                **{"filter[email]": f"oreq:{customer['email']}", "filter[first_name]": "oreq:Nobody-Has-This-Name"},
            ),
        )
        assert customer["id"] in {c["id"] for c in either["items"]}

        with_both = next(
            c
            for c in listing(truth, "/customers", limit=100, expand="subscriptions,addresses")["data"]
            if c["subscriptions"] and c["addresses"]
        )
        before = truth.last_seq()
        full = ok(await call("get_customer", customer_id=with_both["id"]))
        # The 360 view is ONE upstream request (the sandbox's log is the proof).
        assert sent(truth, before) == [
            ("GET", f"/customers/{with_both['id']}", {"site_id": ["14"], "expand": ["subscriptions,addresses"]})
        ]
        same_object(
            full,
            truth.ok(
                "GET", f"/customers/{with_both['id']}", site_id=SITE, params={"expand": "subscriptions,addresses"}
            ),
        )
        assert full["subscriptions"] and full["addresses"]
        assert full["subscriptions"][0]["current_period_end"].endswith("Z")
        bare = ok(await call("get_customer", customer_id=with_both["id"], expand=[]))
        assert bare.get("subscriptions") is None and bare["id"] == with_both["id"]

        # --- Subscriptions, invoices, plans, coupons, charges, refunds, addresses -------------
        subscriptions = ok(await call("list_subscriptions", per_page=3, sort="-status"))
        same_page(subscriptions, listing(truth, "/subscriptions", limit=3, sort="-status"))
        subscription = full["subscriptions"][0]
        with_plan = ok(await call("get_subscription", subscription_id=subscription["id"], expand=["plan"]))
        same_object(
            with_plan, truth.ok("GET", f"/subscriptions/{subscription['id']}", site_id=SITE, params={"expand": "plan"})
        )
        assert with_plan["plan"]["id"] and with_plan["user_id"] == with_both["id"]

        owed = ok(await call("list_invoices", status_in=["open", "past_due"], sort="-created_at", per_page=20))
        same_page(
            owed, listing(truth, "/invoices", limit=20, sort="-created_at", **{"filter[status]": "eq:open,past_due"})
        )
        assert owed["items"] and {i["status"] for i in owed["items"]} <= {"open", "past_due"}
        invoice = owed["items"][0]
        same_object(
            ok(await call("get_invoice", invoice_id=invoice["id"])),
            truth.ok("GET", f"/invoices/{invoice['id']}", site_id=SITE),
        )

        plans = ok(await call("list_plans", sort="-nickname", per_page=100))
        same_page(plans, listing(truth, "/plans", limit=100, sort="-nickname"))
        plan = next(p for p in plans["items"] if p["active"] == "active")
        same_object(
            ok(await call("get_plan", plan_id=plan["id"])), truth.ok("GET", f"/plans/{plan['id']}", site_id=SITE)
        )
        coupons = ok(await call("list_coupons"))
        same_page(coupons, listing(truth, "/coupons"))
        same_object(
            ok(await call("get_coupon", coupon_id=coupons["items"][0]["id"])),
            truth.ok("GET", f"/coupons/{coupons['items'][0]['id']}", site_id=SITE),
        )
        charges = ok(await call("list_charges", per_page=4))
        same_page(charges, listing(truth, "/charges", limit=4))
        same_object(
            ok(await call("get_charge", charge_id=charges["items"][0]["id"])),
            truth.ok("GET", f"/charges/{charges['items'][0]['id']}", site_id=SITE),
        )
        refunds = ok(await call("list_refunds", include_charge=True, per_page=50))
        same_page(refunds, listing(truth, "/refunds", limit=50, include="charge"))
        assert all(r["charge"]["id"] == r["charge_id"] for r in refunds["items"])
        addresses = ok(await call("list_addresses", per_page=3))
        same_page(addresses, listing(truth, "/addresses", limit=3))
        same_object(
            ok(await call("get_address", address_id=addresses["items"][0]["id"])),
            truth.ok("GET", f"/addresses/{addresses['items'][0]['id']}", site_id=SITE),
        )

        # --- Customers and addresses: create, update -------------------------------------------
        email = f"e2e-{uuid.uuid4().hex[:10]}@example.com"
        created = ok(
            await call(
                "create_customer",
                email=email,
                first_name="Ada",
                last_name="Lovelace",
                phone="+1 (416) 555-0100",
                metadata={"source": "mcp-test", "seats": 3},
                mail_marketing=True,
            )
        )
        new_id = created["id"]
        assert created["email"] == email and created["created_at"].endswith("Z")
        same_object(created, truth.ok("GET", f"/customers/{new_id}", site_id=SITE))
        updated = ok(
            await call(
                "update_customer", customer_id=new_id, first_name="Augusta", metadata={"source": None, "tier": "gold"}
            )
        )
        assert updated["first_name"] == "Augusta" and updated["last_name"] == "Lovelace"
        assert updated["metadata"] == {"seats": 3, "tier": "gold"}
        home = ok(
            await call(
                "create_address",
                customer_id=new_id,
                type="shipping",
                line1="12 Analytical Row",
                city="Albany",
                state="NY",
                postal_code="12207",
                country="US",
                is_default=True,
            )
        )
        assert (home["user_id"], home["type"], home["is_default"]) == (new_id, "shipping", True)
        moved = ok(await call("update_address", address_id=home["id"], line2="Apt 3"))
        assert moved["line2"] == "Apt 3" and moved["line1"] == "12 Analytical Row"
        same_object(moved, truth.ok("GET", f"/addresses/{home['id']}", site_id=SITE))

        # --- Invoices: open → balance applied → paid offline; void; write off -------------------
        bill = ok(
            await call(
                "create_invoice",
                customer_id=new_id,
                currency="USD",
                status="open",
                due_date="2027-01-31",
                line_items=[{"description": "Annual print", "unit_price": 12000, "quantity": 2}],
            )
        )
        assert (bill["status"], bill["total"], bill["currency"], bill["due_date"]) == (
            "open",
            24000,
            "usd",
            "2027-01-31T00:00:00Z",
        )
        same_object(bill, truth.ok("GET", f"/invoices/{bill['id']}", site_id=SITE))
        tagged_bill = ok(await call("update_invoice", invoice_id=bill["id"], metadata={"po": "PO-7"}))
        assert tagged_bill["metadata"] == {"po": "PO-7"} and tagged_bill["total"] == 24000
        credit = ok(
            await call(
                "create_offline_charge",
                customer_id=new_id,
                amount=4000,
                currency="usd",
                reference="WIRE-9",
                payment_category="wire",
            )
        )
        assert (credit["status"], credit["offline"], credit["invoice_id"], credit["payment_category"]) == (
            "succeeded",
            True,
            None,
            "3",
        )
        same_object(
            ok(await call("get_charge", charge_id=credit["id"])),
            truth.ok("GET", f"/charges/{credit['id']}", site_id=SITE),
        )
        assert truth.ok("GET", f"/customers/{new_id}", site_id=SITE)["balance"] == 4000
        applied = ok(await call("apply_invoice_balance", invoice_id=bill["id"]))
        assert (applied["status"], applied["amount_remaining"]) == ("open", 20000)
        assert truth.ok("GET", f"/customers/{new_id}", site_id=SITE)["balance"] == 0
        paid = ok(
            await call("pay_invoice_offline", invoice_id=bill["id"], reference="CHQ-1001", payment_category="check")
        )
        assert (paid["status"], paid["amount_remaining"]) == ("paid", 0)
        same_object(paid, truth.ok("GET", f"/invoices/{bill['id']}", site_id=SITE))

        to_void = ok(await call("create_invoice", customer_id=new_id, currency="usd", total=3000, status="open"))
        voided = ok(await call("void_invoice", invoice_id=to_void["id"]))
        assert voided["status"] == "void" and voided["voided_at"].endswith("Z")
        again = await call("void_invoice", invoice_id=to_void["id"])
        assert again.is_error and again.structured_content["error"] == "refused"
        assert again.structured_content["upstream_status"] == 400
        bad_debt = ok(await call("create_invoice", customer_id=new_id, currency="usd", total=4000, status="open"))
        written_off = ok(await call("mark_invoice_uncollectible", invoice_id=bad_debt["id"]))
        assert written_off["status"] == "uncollectible"
        same_object(written_off, truth.ok("GET", f"/invoices/{bad_debt['id']}", site_id=SITE))

        # --- Subscriptions: create (Pelcro's fields), cancel at period end, then now -----------
        before = truth.last_seq()
        subscribed = ok(
            await call(
                "create_subscription",
                customer_id=new_id,
                plan_id=plan["id"],
                quantity=2,
                collection_method="send_invoice",
            )
        )
        assert (subscribed["user_id"], subscribed["plan"], subscribed["quantity"]) == (new_id, plan["id"], 2)
        same_object(subscribed, truth.ok("GET", f"/subscriptions/{subscribed['id']}", site_id=SITE))
        ending = ok(
            await call(
                "cancel_subscription", subscription_id=subscribed["id"], mode="period_end", reason="moving abroad"
            )
        )
        assert ending["status"] == subscribed["status"] and ending["cancel_at_period_end"] is True
        ended = ok(
            await call("cancel_subscription", subscription_id=subscribed["id"], mode="now", reason="moving abroad")
        )
        assert ended["status"] == "canceled"
        same_object(ended, truth.ok("GET", f"/subscriptions/{subscribed['id']}", site_id=SITE))
        assert [(m, p) for m, p, _ in sent(truth, before) if m != "GET"] == [
            ("POST", "/subscriptions"),
            ("DELETE", f"/subscriptions/{subscribed['id']}"),
            ("DELETE", f"/subscriptions/{subscribed['id']}"),
        ]

        # --- Refunds: cancel a pending one ---------------------------------------------------------
        # Only pending refunds with a creation date can be canceled (CORE_API.md §8.8); one per era.
        pending = [
            r for r in listing(truth, "/refunds", limit=100)["data"] if r["status"] == "to_issue" and r["created_at"]
        ][ERAS.index(mode)]
        queued = ok(await call("cancel_refunds", refund_ids=[pending["id"]]))
        assert queued["queued"] == [pending["id"]]

        # --- Delete: the address, then the customer ------------------------------------------------
        assert ok(await call("delete_address", address_id=home["id"])) == {"deleted": True, "address_id": home["id"]}
        assert truth.api("GET", f"/addresses/{home['id']}", site_id=SITE).status_code == 404
        deleted = ok(await call("delete_customer", customer_id=new_id))
        assert deleted == {"deleted": True, "customer_id": new_id}
        assert truth.api("GET", f"/customers/{new_id}", site_id=SITE).status_code == 404
        gone = await call("get_customer", customer_id=new_id)
        assert gone.is_error and gone.structured_content["error"] == "not_found"

        assert call.called == CORE_TOOLS


# --- Account isolation ---------------------------------------------------------------------


def arguments_reaching(truth, account: str, site_id: int) -> dict[str, dict]:
    """For every tool that takes a site, arguments naming real objects of `site_id`: if the
    site check were missing, each call would act on that account's data."""

    def first(path):
        return truth.ok("GET", path, account=account, site_id=site_id, params={"limit": 1})[0]["id"]

    customer, subscription, invoice = first("/customers"), first("/subscriptions"), first("/invoices")
    plan, coupon, charge = first("/plans"), first("/coupons"), first("/charges")
    refund, address = first("/refunds"), first("/addresses")
    return {
        "list_customers": {},
        "get_customer": {"customer_id": customer},
        "create_customer": {"email": f"intruder-{uuid.uuid4().hex[:6]}@example.com"},
        "update_customer": {"customer_id": customer, "first_name": "Mallory"},
        "delete_customer": {"customer_id": customer},
        "list_subscriptions": {},
        "get_subscription": {"subscription_id": subscription},
        "create_subscription": {
            "customer_id": customer,
            "plan_id": plan,
            "quantity": 1,
            "collection_method": "send_invoice",
        },
        "cancel_subscription": {"subscription_id": subscription, "mode": "now", "reason": "x"},
        "list_invoices": {},
        "get_invoice": {"invoice_id": invoice},
        "create_invoice": {"customer_id": customer, "currency": "usd", "total": 100},
        "update_invoice": {"invoice_id": invoice, "metadata": {"owned": "yes"}},
        "pay_invoice_offline": {"invoice_id": invoice, "reference": "R-1", "payment_category": "check"},
        "void_invoice": {"invoice_id": invoice},
        "mark_invoice_uncollectible": {"invoice_id": invoice},
        "apply_invoice_balance": {"invoice_id": invoice},
        "list_plans": {},
        "get_plan": {"plan_id": plan},
        "list_coupons": {},
        "get_coupon": {"coupon_id": coupon},
        "list_charges": {},
        "get_charge": {"charge_id": charge},
        "create_offline_charge": {"customer_id": customer, "amount": 100, "currency": "usd", "reference": "R-2"},
        "list_refunds": {},
        "cancel_refunds": {"refund_ids": [refund]},
        "list_addresses": {},
        "get_address": {"address_id": address},
        "create_address": {"customer_id": customer, "type": "billing", "line1": "1 Main St", "country": "GB"},
        "update_address": {"address_id": address, "city": "Elsewhere"},
        "delete_address": {"address_id": address},
        "start_export": {"kind": "customers"},
        "get_export": {"job_id": str(uuid.uuid4())},
    }


@pytest.mark.parametrize("mode", ERAS)
async def test_a_token_for_one_account_gets_nothing_from_another_accounts_site(mcp_env, truth, mode):
    targets = {27: arguments_reaching(truth, "other", 27), 31: arguments_reaching(truth, "globex", 31)}
    # Every tool is covered; get_account and list_recent_writes take no site: they read the
    # caller's own account and connection (list_recent_writes: tests/test_idempotency.py).
    assert set(targets[27]) == set(TOOLS) - {"get_account", "list_recent_writes"}
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
        mine = (await client.call_tool("get_account", {})).structured_content
        assert mine["company"] == "Acme Media" and {s["id"] for s in mine["sites"]} == {14, 15}
    # Nothing at all reached the upstream for those sites.
    reached = [
        entry
        for entry in truth.log(since=before)
        if "site_id=27" in entry["query"] or "site_id=31" in entry["query"] or "site_id=99999" in entry["query"]
    ]
    assert reached == []
