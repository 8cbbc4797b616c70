"""Contract: the gateway's Core API client (mcp_bridge.core.client) against the running sandbox.

Every operation of CORE_API.md through `CoreAPIClient.request`, each invoice transition
allowed and refused, pagination, sort, filter, and how 400/401/403/404/429/5xx answers
become the client's typed errors (and which of them it retries, counted in the sandbox's
request log).
"""

import asyncio

import pytest

from mcp_bridge.core.client import CoreAPIClient, CoreAPIResponse
from mcp_bridge.upstream.errors import (
    BusinessRuleError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    UpstreamUnavailable,
    ValidationFailed,
)
from mcp_bridge.upstream.gate import OpenGate
from tests.support.sandbox import ACME_SITE, KEYS, OTHER_SITE


@pytest.fixture
async def core(sbx, limiter_account, close_limiter_redis):
    """A client for the sandbox (no gateway limiter: the sandbox's own limit is what is tested)."""
    client = CoreAPIClient(sbx.base, gate=OpenGate(), max_retries=2, backoff_base=0.01, backoff_max=5.0)

    async def call(
        method, path, *, account="acme", site_id=ACME_SITE, params=None, json=None, key=None
    ) -> CoreAPIResponse:
        return await client.request(
            method,
            path,
            account_id=limiter_account,
            api_key=key or KEYS[account],
            site_id=site_id,
            params=params,
            json=json,
        )

    yield call
    await client.aclose()


async def first(core, kind, **params):
    return (await core("GET", f"/{kind}", params={"limit": 1, **params})).data[0]


async def new_customer(core, sbx, **fields):
    body = {"email": f"contract{sbx.last_seq()}@example.com", **fields}
    return (await core("POST", "/customers", json=body)).data


async def currency(core):
    return (await first(core, "plans"))["currency"]


# --- reads, lists --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["customers", "subscriptions", "invoices", "plans", "coupons", "charges", "addresses"])
async def test_list_and_get_every_resource(core, kind):
    listed = await core("GET", f"/{kind}", params={"limit": 3})
    assert listed.status == 200 and len(listed.data) == 3
    assert listed.meta["per_page"] == 3 and listed.meta["current_page"] == 1 and listed.meta["total"] >= 3
    assert set(listed.links) == {"first", "last", "prev", "next"}
    one = await core("GET", f"/{kind}/{listed.data[0]['id']}")
    assert one.status == 200 and one.data == listed.data[0] and one.meta is None


async def test_pagination_through_the_client(core):
    page1 = await core("GET", "/invoices", params={"limit": 25, "sort": "id"})
    page2 = await core("GET", "/invoices", params={"limit": 25, "sort": "id", "page": 2})
    assert page2.meta["current_page"] == 2 and page2.meta["from"] == 26
    assert page1.data[-1]["id"] < page2.data[0]["id"]
    assert {i["id"] for i in page1.data}.isdisjoint({i["id"] for i in page2.data})
    assert "page=3" in page2.links["next"] and "page=1" in page2.links["prev"]


async def test_sort_and_filter_through_the_client(core):
    ascending = (await core("GET", "/plans", params={"sort": "nickname", "limit": 100})).data
    descending = (await core("GET", "/plans", params={"sort": "-nickname", "limit": 100})).data
    names = [p["nickname"].casefold() for p in ascending]
    assert names == sorted(names)
    assert [p["nickname"].casefold() for p in descending] == sorted(names, reverse=True)
    voided = await core("GET", "/invoices", params={"filter[status]": "eq:void", "limit": 100})
    assert voided.meta["total"] > 0 and {i["status"] for i in voided.data} == {"void"}
    gmail = (await core("GET", "/customers", params={"filter[email]": "like:@gmail.com", "limit": 100})).data
    assert gmail and all(c["email"].endswith("@gmail.com") for c in gmail)
    with pytest.raises(ValidationFailed) as bad_sort:
        await core("GET", "/customers", params={"sort": "phone"})
    assert list(bad_sort.value.fields) == ["sort"]
    with pytest.raises(ValidationFailed) as bad_filter:
        await core("GET", "/charges", params={"filter[reference]": "eq:x"})
    assert list(bad_filter.value.fields) == ["filter[reference]"]


# --- writes ------------------------------------------------------------------------------------------


async def test_customer_create_update_delete(core, sbx):
    created = await core(
        "POST",
        "/customers",
        json={"email": f"ct{sbx.last_seq()}@example.com", "first_name": "Ada", "metadata": {"a": 1, "b": 2}},
    )
    assert created.status == 201
    customer = created.data
    updated = (
        await core("PUT", f"/customers/{customer['id']}", json={"last_name": "King", "metadata": {"a": None, "c": 3}})
    ).data
    assert (updated["first_name"], updated["last_name"], updated["metadata"]) == ("Ada", "King", {"b": 2, "c": 3})
    plan = await first(core, "plans", **{"sort": "id"})
    sub = (
        await core(
            "POST",
            "/subscriptions",
            json={"user_id": customer["id"], "plan_id": plan["id"], "quantity": 1, "collection_method": "send_invoice"},
        )
    ).data
    deleted = await core("DELETE", f"/customers/{customer['id']}")
    assert deleted.status == 204 and deleted.data is None
    ended = (await core("GET", f"/invoices/{sub['latest_invoice']}", params={"expand": "subscription"})).data
    assert ended["subscription"]["status"] == "canceled"
    for path in (f"/customers/{customer['id']}", f"/subscriptions/{sub['id']}"):
        with pytest.raises(NotFound):
            await core("GET", path)


async def test_validation_errors_arrive_field_by_field(core):
    with pytest.raises(ValidationFailed) as caught:
        await core("POST", "/customers", json={"email": "nope", "first_name": "x" * 300})
    assert caught.value.status == 400
    assert caught.value.fields == {
        "email": ["The email must be a valid email address."],
        "first_name": ["The first name may not be greater than 255 characters."],
    }


async def test_subscription_create_and_cancel(core, sbx):
    customer = await new_customer(core, sbx)
    plan = next(p for p in (await core("GET", "/plans", params={"limit": 100})).data if p["active"] == "active")
    created = await core(
        "POST",
        "/subscriptions",
        json={
            "user_id": customer["id"],
            "plan_id": plan["id"],
            "quantity": 1,
            "collection_method": "send_invoice",
            "trial_period_days": 5,
        },
    )
    assert created.status == 201 and created.data["status"] == "trialing"
    path = f"/subscriptions/{created.data['id']}"
    later = (await core("DELETE", path, json={"mode": "period_end", "reason": "contract test"})).data
    assert later["cancel_at_period_end"] is True and later["status"] == "trialing"
    now = (await core("DELETE", path, json={"mode": "now"})).data
    assert now["status"] == "canceled"
    with pytest.raises(BusinessRuleError, match="already canceled"):
        await core("DELETE", path, json={"mode": "now"})


async def test_invoice_lifecycle_allowed_transitions(core, sbx):
    customer = await new_customer(core, sbx)
    cur = await currency(core)
    draft = await core(
        "POST",
        "/invoices",
        json={
            "customer_id": customer["id"],
            "currency": cur,
            "line_items": [{"description": "Back issue", "unit_price": 450, "quantity": 2}],
        },
    )
    assert draft.status == 201 and draft.data["status"] == "draft" and draft.data["total"] == 900
    edited = (await core("PUT", f"/invoices/{draft.data['id']}", json={"metadata": {"po": "9"}})).data
    assert edited["metadata"] == {"po": "9"} and edited["status"] == "draft"
    opened = (
        await core(
            "POST",
            "/invoices",
            json={
                "customer_id": customer["id"],
                "currency": cur,
                "status": "open",
                "line_items": [{"description": "Archive", "unit_price": 1500, "quantity": 1}],
            },
        )
    ).data
    path = f"/invoices/{opened['id']}"
    paid = (await core("POST", path + "/pay_offline", json={"reference": "CHK-7", "payment_category": "2"})).data
    assert (paid["status"], paid["amount_paid"], paid["amount_remaining"]) == ("paid", 1500, 0)

    to_void = (
        await core("POST", "/invoices", json={"customer_id": customer["id"], "currency": cur, "total": 700})
    ).data
    assert (await core("POST", f"/invoices/{to_void['id']}/void")).data["status"] == "void"
    to_write_off = (
        await core(
            "POST", "/invoices", json={"customer_id": customer["id"], "currency": cur, "total": 800, "status": "open"}
        )
    ).data
    assert (await core("POST", f"/invoices/{to_write_off['id']}/uncollectible")).data["status"] == "uncollectible"


async def test_invoice_refused_transitions_are_business_rule_errors(core, sbx):
    customer = await new_customer(core, sbx)
    cur = await currency(core)
    invoice = (
        await core(
            "POST", "/invoices", json={"customer_id": customer["id"], "currency": cur, "total": 5000, "status": "open"}
        )
    ).data
    path = f"/invoices/{invoice['id']}"
    with pytest.raises(ValidationFailed) as caught:
        await core("PUT", path, json={"due_date": 1_900_000_000})
    assert caught.value.status == 400 and list(caught.value.fields) == ["due_date"]
    await core(
        "POST",
        "/charges",
        json={
            "customer_id": customer["id"],
            "amount": 1000,
            "currency": cur,
            "reference": "credit",
            "payment_category": "4",
        },
    )
    partly = (await core("POST", path + "/apply_balance")).data
    assert (partly["amount_paid"], partly["amount_remaining"]) == (1000, 4000)
    with pytest.raises(BusinessRuleError, match="partly paid"):
        await core("POST", path + "/void")
    await core("POST", path + "/pay_offline", json={"reference": "CASH-1", "payment_category": "6"})
    for action, message in (
        ("/void", "cannot be voided"),
        ("/uncollectible", "Only an open or past_due"),
        ("/pay_offline", "already paid"),
        ("/apply_balance", "only open or past_due"),
    ):
        with pytest.raises(BusinessRuleError, match=message):
            await core(
                "POST",
                path + action,
                json={"reference": "again", "payment_category": "2"} if action == "/pay_offline" else None,
            )
    draft = (await core("POST", "/invoices", json={"customer_id": customer["id"], "currency": cur, "total": 100})).data
    with pytest.raises(BusinessRuleError, match="draft"):
        await core("POST", f"/invoices/{draft['id']}/pay_offline", json={"reference": "x", "payment_category": "2"})
    with pytest.raises(BusinessRuleError, match="Only an open or past_due"):
        await core("POST", f"/invoices/{draft['id']}/uncollectible")
    final = (await core("GET", path)).data
    assert (final["status"], final["amount_paid"], final["amount_remaining"]) == ("paid", 5000, 0)


async def test_offline_charges(core, sbx):
    customer = await new_customer(core, sbx)
    cur = await currency(core)
    credit = await core(
        "POST",
        "/charges",
        json={
            "customer_id": customer["id"],
            "amount": 1200,
            "currency": cur,
            "reference": "WIRE-1",
            "payment_category": "3",
        },
    )
    assert credit.status == 201 and credit.data["offline"] and credit.data["status"] == "succeeded"
    assert (await core("GET", f"/customers/{customer['id']}")).data["balance"] == 1200
    invoice = (
        await core(
            "POST", "/invoices", json={"customer_id": customer["id"], "currency": cur, "total": 300, "status": "open"}
        )
    ).data
    paying = await core(
        "POST",
        "/charges",
        json={
            "customer_id": customer["id"],
            "amount": 300,
            "currency": cur,
            "reference": "CHK-2",
            "payment_category": "2",
            "invoice_id": invoice["id"],
        },
    )
    assert paying.data["invoice_id"] == invoice["id"]
    assert (await core("GET", f"/invoices/{invoice['id']}")).data["status"] == "paid"
    with pytest.raises(BusinessRuleError, match="already paid"):
        await core(
            "POST",
            "/charges",
            json={
                "customer_id": customer["id"],
                "amount": 1,
                "currency": cur,
                "reference": "CHK-3",
                "payment_category": "2",
                "invoice_id": invoice["id"],
            },
        )
    with pytest.raises(ValidationFailed) as caught:
        await core(
            "POST",
            "/charges",
            json={"customer_id": customer["id"], "amount": 0, "currency": cur, "reference": "x", "payment_category": 9},
        )
    assert set(caught.value.fields) == {"amount", "payment_category"}


# --- status mappings ----------------------------------------------------------------------------------


async def test_401_403_404_mappings(core, sbx):
    since = sbx.last_seq()
    with pytest.raises(Unauthorized) as unauthorized:
        await core("GET", "/customers", key="sbx_not_a_key")
    assert unauthorized.value.status == 401
    with pytest.raises(Forbidden) as forbidden:
        await core("GET", "/customers", site_id=OTHER_SITE)
    assert forbidden.value.status == 403
    foreign = (await core("GET", "/invoices", account="other", site_id=OTHER_SITE, params={"limit": 1})).data[0]
    with pytest.raises(NotFound) as not_found:
        await core("GET", f"/invoices/{foreign['id']}")
    assert not_found.value.status == 404 and str(foreign["id"]) in not_found.value.message
    with pytest.raises(NotFound):
        await core("POST", f"/invoices/{foreign['id']}/void")
    # None of these is retried.
    assert [e["status"] for e in sbx.log(since)] == [401, 403, 200, 404, 404]


async def test_upstream_429_with_a_long_retry_after_is_raised_at_once(core, sbx):
    sbx.admin.delete("/limits")
    sbx.configure(rate_limit=3, rate_window=30)
    try:
        for _ in range(3):
            await core("GET", "/plans")
        since = sbx.last_seq()
        with pytest.raises(RateLimited) as caught:
            await core("GET", "/plans")
        assert caught.value.source == "upstream" and 28 <= caught.value.retry_after <= 30
        assert [e["status"] for e in sbx.log(since)] == [429]  # too long a wait to retry
    finally:
        sbx.restore_config()
        sbx.admin.delete("/limits")


async def test_upstream_429_with_a_short_retry_after_is_retried_even_for_writes(core, sbx):
    sbx.configure(force_429=True)
    since = sbx.last_seq()
    body = {"email": f"retry{since}@example.com"}
    with pytest.raises(RateLimited) as caught:
        await core("POST", "/customers", json=body)
    assert caught.value.retry_after == 1
    entries = sbx.log(since)
    # A 429 means "not processed", so the write was safely sent again: same body each time.
    assert [e["status"] for e in entries] == [429, 429, 429]
    assert len({e["body_sha256"] for e in entries}) == 1
    assert entries[0]["body_sha256"] is not None
    sbx.configure(force_429=False)
    assert (await core("GET", "/customers", params={"filter[email]": f"eq:{body['email']}"})).data == []


async def test_5xx_is_retried_for_reads_but_never_for_writes(core, sbx):
    sbx.configure(error_rate=1)
    since = sbx.last_seq()
    with pytest.raises(UpstreamUnavailable) as read_error:
        await core("GET", "/plans")
    assert read_error.value.maybe_processed is False and read_error.value.status >= 500
    assert [e["method"] for e in sbx.log(since)] == ["GET"] * 3  # first try + 2 retries
    since = sbx.last_seq()
    with pytest.raises(UpstreamUnavailable) as write_error:
        await core("POST", "/customers", json={"email": f"fivexx{since}@example.com"})
    assert write_error.value.maybe_processed is True
    assert [(e["method"], e["fault"]) for e in sbx.log(since)] == [("POST", "error")]  # sent exactly once


@pytest.mark.parametrize("method", ["PUT", "DELETE", "POST"])
async def test_a_write_of_any_method_is_never_resent_after_a_5xx(core, sbx, method):
    customer = await new_customer(core, sbx)
    path = f"/customers/{customer['id']}" if method != "POST" else "/customers"
    body = None if method == "DELETE" else {"email": f"x{sbx.last_seq()}@example.com"}
    sbx.configure(error_rate=1)
    since = sbx.last_seq()
    with pytest.raises(UpstreamUnavailable) as caught:
        await core(method, path, json=body)
    assert caught.value.maybe_processed is True and caught.value.status >= 500
    assert "may or may not have been applied" in caught.value.message
    assert [(e["method"], e["fault"]) for e in sbx.log(since)] == [(method, "error")]


async def test_a_timed_out_write_is_sent_once_and_a_timed_out_read_is_retried(sbx, limiter_account):
    """Latency past the client's timeout: the upstream gets (and later applies) the write."""
    client = CoreAPIClient(sbx.base, gate=OpenGate(), timeout=0.3, max_retries=2, backoff_base=0.01)
    customer = (
        await client.request(
            "POST",
            "/customers",
            account_id=limiter_account,
            api_key=KEYS["acme"],
            site_id=ACME_SITE,
            json={"email": f"slow{sbx.last_seq()}@example.com"},
        )
    ).data
    sbx.configure(latency_ms=800)
    try:
        since = sbx.last_seq()
        for method, path, body in [
            ("PUT", f"/customers/{customer['id']}", {"first_name": "Slow"}),
            ("DELETE", f"/customers/{customer['id']}", None),
            ("POST", "/customers", {"email": f"slow2{since}@example.com"}),
        ]:
            with pytest.raises(UpstreamUnavailable) as caught:
                await client.request(
                    method, path, account_id=limiter_account, api_key=KEYS["acme"], site_id=ACME_SITE, json=body
                )
            assert caught.value.maybe_processed is True and "timed out" in caught.value.message
        with pytest.raises(UpstreamUnavailable) as read:
            await client.request("GET", "/plans", account_id=limiter_account, api_key=KEYS["acme"], site_id=ACME_SITE)
        assert read.value.maybe_processed is False
        await asyncio.sleep(1.0)  # the last ones finish inside the sandbox
        assert [e["method"] for e in sbx.log(since)] == ["PUT", "DELETE", "POST", "GET", "GET", "GET"]
    finally:
        sbx.restore_config()
        await client.aclose()
