"""The Core API sandbox over real HTTP (CORE_API.md §1–§7): keys and sites, account and
sites, envelopes, pagination, sorting, filtering, expand, Unix timestamps, the old request
shapes refused, the admin API and the request log."""

import hashlib
import json
import subprocess
import sys

import httpx
import pytest

from devtools.servers import ROOT
from tests.support.sandbox import ACME_SITE, ACME_SITE_2, DEMO, KEYS, OTHER_SITE, SITES, SandboxClient
from tests.support.servers import SANDBOX_ADMIN_TOKEN, start_sandbox

KINDS = ("customers", "subscriptions", "invoices", "plans", "coupons", "charges", "addresses")
LISTED = KINDS + ("refunds",)
# Documented fields each object must carry (CORE_API.md §8), and which of them are Unix times.
FIELDS = {
    "customers": {
        "id",
        "email",
        "email_confirm",
        "email_hardbounce",
        "first_name",
        "last_name",
        "display_name",
        "name",
        "username",
        "phone",
        "salutation",
        "title",
        "tin",
        "old_provider_id",
        "phone_confirm",
        "mail_marketing",
        "tele_marketing",
        "metadata",
        "organization",
        "default_source_id",
        "default_source",
        "has_password",
        "password_last_updated_at",
        "is_imported",
        "created_at",
        "updated_at",
        "balance",
        "currency",
    },
    "subscriptions": {
        "id",
        "user_id",
        "plan",
        "coupon",
        "address",
        "default_source",
        "latest_invoice",
        "address_required",
        "billing",
        "status",
        "quantity",
        "cancel_at_period_end",
        "cancel_at",
        "canceled_at",
        "created",
        "current_period_start",
        "current_period_end",
        "ended_at",
        "trial_start",
        "trial_end",
        "expires_at",
        "renews_at",
        "canceled_by",
        "canceled_by_type",
        "cancel_reason",
        "days_until_due",
        "due_date",
        "is_gift_donor",
        "is_gift_recipient",
        "is_redeemed",
        "gift_code",
        "shipments_remaining",
        "schedule",
        "auto_renew",
    },
    "invoices": {
        "id",
        "subscription_id",
        "amount_due",
        "amount_paid",
        "amount_remaining",
        "auto_advance",
        "billing",
        "billing_reason",
        "currency",
        "description",
        "due_date",
        "ending_balance",
        "hosted_invoice_url",
        "invoice_pdf",
        "is_imported",
        "number",
        "paid",
        "period_start",
        "period_end",
        "customer_id",
        "status",
        "total",
        "subtotal",
        "line_items",
        "metadata",
        "payment_link",
        "created_at",
        "paid_at",
        "voided_at",
    },
    "plans": {
        "id",
        "product_id",
        "nickname",
        "description",
        "type",
        "active",
        "amount",
        "currency",
        "interval",
        "interval_count",
        "auto_renew",
        "available_online",
        "renewal_strategy",
        "countries",
        "domains",
        "entitlements",
        "image",
        "gift_description",
        "agency_id",
        "agency_remit_rate",
        "group_owner_plan_id",
        "apple_product_id",
        "allow_send_invoice",
        "is_hidden",
        "is_donation",
        "is_imported",
        "metadata",
        "trial_period_days",
        "created_at",
    },
    "coupons": {
        "id",
        "name",
        "code",
        "percent_off",
        "amount_off",
        "currency",
        "duration",
        "redeem_by",
        "max_redemptions",
        "plans",
        "metadata",
        "created_at",
        "updated_at",
        "times_redeemed",
    },
    "charges": {
        "id",
        "invoice_id",
        "amount",
        "amount_refunded",
        "description",
        "paid",
        "refunded",
        "offline",
        "status",
        "statement_descriptor",
        "reference",
        "offline_entered_by",
        "metadata",
        "created_at",
        "updated_at",
        "deleted_at",
        "customer_id",
        "currency",
        "payment_category",
    },
    "addresses": {
        "id",
        "user_id",
        "type",
        "is_default",
        "line1",
        "country",
        "first_name",
        "last_name",
        "line2",
        "city",
        "state",
        "postal_code",
        "company",
        "salutation",
        "title",
        "department",
        "phone",
        "old_provider_id",
        "created_at",
        "updated_at",
    },
    "refunds": {"id", "charge_id", "user_id", "amount", "currency", "status", "reason", "created_at"},
}
TIMES = {
    "customers": ("created_at", "updated_at", "password_last_updated_at"),
    "subscriptions": (
        "created",
        "current_period_start",
        "current_period_end",
        "canceled_at",
        "cancel_at",
        "ended_at",
        "trial_start",
        "trial_end",
        "expires_at",
        "renews_at",
    ),
    "invoices": ("created_at", "due_date", "period_start", "period_end", "paid_at", "voided_at"),
    "plans": ("created_at",),
    "coupons": ("created_at", "updated_at", "redeem_by"),
    "charges": ("created_at", "updated_at", "deleted_at"),
    "addresses": ("created_at", "updated_at"),
    "refunds": ("created_at",),
}


def first_id(sbx, kind, account="acme", site_id=ACME_SITE):
    return sbx.ok("GET", f"/{kind}", account=account, site_id=site_id, params={"limit": 1})[0]["id"]


def errors_of(response, status=400):
    assert response.status_code == status, response.text
    return response.json()["errors"]


# --- keys, sites, account, object ownership ------------------------------------------------------------


def test_missing_or_invalid_key_is_401_with_the_documented_body(sbx):
    for headers in ({}, {"Authorization": "Bearer sbx_nope"}, {"Authorization": f"Basic {KEYS['acme']}"}):
        for path in ("/customers", "/account", "/no/such/thing"):
            response = sbx.http.get(path, params={"site_id": ACME_SITE}, headers=headers)
            assert response.status_code == 401
            assert response.json() == {"error": {"status": 401, "message": "Unauthenticated."}}
            assert response.headers["www-authenticate"] == "Bearer"


def test_site_id_is_required_and_an_integer(sbx):
    assert errors_of(sbx.api("GET", "/customers", site_id=None)) == {"site_id": ["The site id field is required."]}
    assert list(errors_of(sbx.api("GET", "/customers", site_id=None, params={"site_id": "fourteen"}))) == ["site_id"]
    assert "site_id" in errors_of(
        sbx.api("POST", "/customers", json={"email": "x@example.com", "site_id": ACME_SITE_2})
    )


def test_a_key_cannot_reach_another_accounts_site(sbx):
    for kind in LISTED:
        response = sbx.api("GET", f"/{kind}", account="acme", site_id=OTHER_SITE)
        assert response.status_code == 403, kind
        assert response.json()["error"]["status"] == 403
    assert sbx.api("GET", "/sites", site_id=OTHER_SITE).status_code == 403
    # A site that exists nowhere answers exactly like someone else's: no existence oracle.
    nowhere = sbx.api("GET", "/customers", site_id=999_999)
    assert nowhere.status_code == 403
    assert nowhere.json() == {"error": {"status": 403, "message": "This API key cannot access site 999999."}}
    before = sbx.api("GET", "/customers", account="other", site_id=OTHER_SITE).json()["meta"]["total"]
    assert sbx.api("POST", "/customers", site_id=OTHER_SITE, json={"email": "intruder@example.com"}).status_code == 403
    assert sbx.api("GET", "/customers", account="other", site_id=OTHER_SITE).json()["meta"]["total"] == before
    assert sbx.api("GET", "/customers", site_id=ACME_SITE_2).status_code == 200


@pytest.mark.parametrize("slug", [a["slug"] for a in DEMO["accounts"]])
def test_get_account_needs_no_site_and_lists_the_accounts_sites_and_limit(sbx, slug):
    spec = next(a for a in DEMO["accounts"] if a["slug"] == slug)
    account = sbx.ok("GET", "/account", account=slug, site_id=None)
    assert account == {
        "id": spec["account_id"],
        "company": spec["name"],
        "country": spec["country"],
        "default_currency": spec["default_currency"],
        "is_enterprise": spec["is_enterprise"],
        "taxes_enabled": spec["taxes_enabled"],
        "api_core_rate_limit": spec["api_core_rate_limit"],
        "payment_gateway": spec["payment_gateway"],
        "sites": [
            {"id": s["site_id"], "name": s["name"], "url": account["sites"][i]["url"]}
            for i, s in enumerate(spec["sites"])
        ],
    }
    assert all(site["url"].startswith("https://") for site in account["sites"])
    # GET /account takes no query at all.
    assert list(errors_of(sbx.api("GET", "/account", account=slug, site_id=None, params={"expand": "sites"}))) == [
        "expand"
    ]


def test_the_demo_accounts_have_different_limits():
    limits = {a["slug"]: a["api_core_rate_limit"] for a in DEMO["accounts"]}
    assert limits["acme"] == 120 and limits["other"] == 360 and len(set(limits.values())) == len(limits)


def test_get_site(sbx):
    for site_id in SITES["acme"]:
        site = sbx.ok("GET", "/sites", site_id=site_id)
        assert site["id"] == site_id and {
            "name",
            "link",
            "slug",
            "default_locale",
            "country_code",
            "support_email",
            "logo",
        } <= set(site)
    assert list(errors_of(sbx.api("GET", "/sites", params={"expand": "x"}))) == ["expand"]


def test_another_accounts_or_sites_objects_are_404(sbx):
    for kind in KINDS:
        foreign = first_id(sbx, kind, account="other", site_id=OTHER_SITE)
        response = sbx.api("GET", f"/{kind}/{foreign}")
        assert response.status_code == 404, kind
        assert response.json()["error"]["status"] == 404
        assert sbx.api("GET", f"/{kind}/{foreign}", account="other", site_id=OTHER_SITE).status_code == 200
    sibling = first_id(sbx, "customers", site_id=ACME_SITE_2)
    assert sbx.api("GET", f"/customers/{sibling}").status_code == 404


def test_writes_on_another_accounts_objects_are_404_and_change_nothing(fresh_sbx):
    sbx = fresh_sbx
    other = {"account": "other", "site_id": OTHER_SITE}
    customer = first_id(sbx, "customers", **other)
    invoice = sbx.ok("GET", "/invoices", params={"filter[status]": "eq:open", "limit": 1}, **other)[0]
    address = first_id(sbx, "addresses", **other)
    attempts = [
        ("PUT", f"/customers/{customer}", {"first_name": "Mallory"}),
        ("DELETE", f"/customers/{customer}", None),
        ("POST", f"/invoices/{invoice['id']}/void", None),
        ("POST", f"/invoices/{invoice['id']}/pay_offline", {"reference": "x", "payment_category": "2"}),
        ("POST", f"/invoices/{invoice['id']}/apply_balance", None),
        ("PUT", f"/addresses/{address}", {"city": "Nowhere"}),
        ("DELETE", f"/addresses/{address}", None),
        ("POST", "/charges", {"customer_id": customer, "amount": 100, "currency": "usd", "reference": "x"}),
    ]
    for method, path, body in attempts:
        assert sbx.api(method, path, json=body).status_code == 404, (method, path)
    assert sbx.ok("GET", f"/customers/{customer}", **other)["first_name"] != "Mallory"
    assert sbx.ok("GET", f"/invoices/{invoice['id']}", **other) == invoice


def test_unknown_ids_paths_and_methods(sbx):
    assert sbx.api("GET", "/customers/1").status_code == 404
    assert sbx.api("GET", "/customers/abc").status_code == 404
    assert sbx.api("GET", "/refunds/1").status_code == 404  # refunds are listed only
    response = sbx.api("DELETE", f"/invoices/{first_id(sbx, 'invoices')}")
    assert response.status_code == 405 and response.json()["error"]["status"] == 405
    for method, path in (("POST", "/plans"), ("PUT", f"/coupons/{first_id(sbx, 'coupons')}"), ("GET", "/sources/1")):
        assert sbx.api(method, path).status_code in (404, 405)


# --- objects -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LISTED)
def test_objects_have_the_documented_fields_and_unix_times(sbx, kind):
    items = sbx.ok("GET", f"/{kind}", params={"limit": 100})
    assert items
    for obj in items:
        assert FIELDS[kind] <= set(obj), FIELDS[kind] - set(obj)
        assert "site_id" not in obj and not any(key.startswith("_") for key in obj)
        for name in TIMES[kind]:
            value = obj[name]
            assert value is None or (
                isinstance(value, int) and not isinstance(value, bool) and 1_000_000_000 < value < 4_000_000_000
            ), (kind, name, value)
        if obj.get("currency") is not None:
            assert len(obj["currency"]) == 3 and obj["currency"].islower()
    if kind != "refunds":
        one = sbx.ok("GET", f"/{kind}/{items[0]['id']}")
        assert one == items[0]
    assert any(obj[TIMES[kind][0]] is not None for obj in items)


def test_plans_carry_active_as_a_string_and_charges_hide_pelcro_metadata(sbx):
    plans = sbx.ok("GET", "/plans", params={"limit": 100})
    assert {p["active"] for p in plans} == {"active", "archived"}
    charges = sbx.ok("GET", "/charges", params={"limit": 100, "page": 1})
    for page in range(2, 8):
        charges += sbx.ok("GET", "/charges", params={"limit": 100, "page": page})
    offline = [c for c in charges if c["offline"] and c["metadata"]]
    assert offline and all(not key.lower().startswith("pelcro") for c in offline for key in c["metadata"])
    assert all(c["payment_category"] in (None, "2", "3", "4", "5", "6") for c in charges)


def test_seed_covers_the_states_the_rules_need(sbx):
    def count(kind, **params):
        return sbx.api("GET", f"/{kind}", params={"limit": 1, **params}).json()["meta"]["total"]

    for status in ("draft", "open", "past_due", "paid", "void", "uncollectible"):
        assert count("invoices", **{"filter[status]": f"eq:{status}"}) > 0, status
    open_invoices = sbx.ok("GET", "/invoices", params={"filter[status]": "oreq:open,past_due", "limit": 100})
    assert any(0 < inv["amount_paid"] < inv["amount_due"] for inv in open_invoices)
    for inv in open_invoices:
        assert inv["amount_remaining"] == inv["amount_due"] - inv["amount_paid"]
        assert inv["payment_link"] is not None
    statuses = {
        s["status"]
        for page in range(1, 5)
        for s in sbx.ok("GET", "/subscriptions", params={"limit": 100, "page": page})
    }
    assert {"active", "trialing", "past_due", "incomplete", "canceled"} <= statuses
    subs = [s for page in range(1, 5) for s in sbx.ok("GET", "/subscriptions", params={"limit": 100, "page": page})]
    assert any(s["latest_invoice"] for s in subs) and any(s["is_gift_recipient"] for s in subs)
    assert any(s["cancel_at_period_end"] for s in subs)
    refunds = sbx.ok("GET", "/refunds", params={"limit": 100})
    assert {"to_issue", "issued", "canceled"} <= {r["status"] for r in refunds}
    assert any(r["status"] == "to_issue" and r["created_at"] is None for r in refunds)
    customers = [c for page in range(1, 4) for c in sbx.ok("GET", "/customers", params={"limit": 100, "page": page})]
    assert any(c["balance"] > 0 for c in customers) and any(c["default_source_id"] for c in customers)
    assert count("addresses") > 50 and count("customers") >= 150


def test_ids_are_unique_across_the_whole_sandbox(sbx):
    seen = set()
    for slug, sites in SITES.items():
        for site_id in sites:
            for kind in ("plans", "coupons"):
                items = sbx.ok("GET", f"/{kind}", account=slug, site_id=site_id, params={"limit": 100})
                assert not seen & {item["id"] for item in items}
                seen |= {item["id"] for item in items}


# --- pagination ----------------------------------------------------------------------------------------


def test_pagination_meta_and_links(sbx):
    first = sbx.api("GET", "/customers").json()
    total = first["meta"]["total"]
    last_page = -(-total // 10)
    assert len(first["data"]) == 10  # default limit
    meta = first["meta"]
    assert {k: meta[k] for k in ("current_page", "from", "last_page", "per_page", "to", "total")} == {
        "current_page": 1,
        "from": 1,
        "last_page": last_page,
        "per_page": 10,
        "to": 10,
        "total": total,
    }
    assert meta["path"] == sbx.base + "/customers"
    assert first["links"]["prev"] is None and first["links"]["first"].endswith("page=1")
    assert first["links"]["last"].endswith(f"page={last_page}")
    # meta.links: Laravel's previous / pages (a window with "...") / next.
    labels = [link["label"] for link in meta["links"]]
    assert labels[0] == "&laquo; Previous" and labels[-1] == "Next &raquo;"
    assert "..." in labels and labels[1:3] == ["1", "2"] and labels[-3:-1] == [str(last_page - 1), str(last_page)]
    assert [link["label"] for link in meta["links"] if link["active"]] == ["1"]
    assert meta["links"][-1]["url"] == first["links"]["next"]
    # Walk every page through links.next: each customer exactly once, sorted by -id.
    seen, url, pages = [], sbx.base + f"/customers?site_id={ACME_SITE}&limit=37&sort=-id", 0
    while url and pages < 20:
        page = httpx.get(url, headers={"Authorization": f"Bearer {KEYS['acme']}"}).json()
        seen += [c["id"] for c in page["data"]]
        url, pages = page["links"]["next"], pages + 1
    assert len(seen) == len(set(seen)) == total and seen == sorted(seen, reverse=True)
    beyond = sbx.api("GET", "/customers", params={"page": 9999}).json()
    assert beyond["data"] == [] and beyond["meta"]["from"] is None and beyond["links"]["next"] is None
    assert len(sbx.ok("GET", "/customers", params={"limit": 100})) == 100
    # Default order: id ascending.
    ids = [c["id"] for c in sbx.ok("GET", "/invoices", params={"limit": 100})]
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": -5}, "limit"),
        ({"page": 0}, "page"),
        ({"page": "x"}, "page"),
    ],
)
def test_bad_page_or_limit_is_400(sbx, params, field):
    assert list(errors_of(sbx.api("GET", "/invoices", params=params))) == [field]


# --- sorting (§4) --------------------------------------------------------------------------------------

SORTABLE = {
    "customers": ("email", "id"),
    "invoices": ("created_at", "id", "status"),
    "plans": ("id", "nickname"),
    "subscriptions": ("status",),
    "coupons": (),
    "charges": (),
    "refunds": (),
    "addresses": (),
}
NOT_SORTABLE = {
    "customers": ("created_at", "first_name", "balance"),
    "invoices": ("amount_due", "customer_id", "total"),
    "plans": ("amount", "created_at"),
    "subscriptions": ("id", "created_at", "created"),
    "coupons": ("id", "code"),
    "charges": ("id", "amount", "created_at"),
    "refunds": ("id",),
    "addresses": ("id",),
}


@pytest.mark.parametrize("kind", LISTED)
def test_sort_only_on_the_documented_fields(sbx, kind):
    for field in SORTABLE[kind]:
        for descending in (False, True):
            items = sbx.ok("GET", f"/{kind}", params={"sort": ("-" if descending else "") + field, "limit": 100})
            values = [item[field] for item in items if item[field] is not None]
            assert len(values) > 1
            key = (lambda v: v.casefold()) if isinstance(values[0], str) else (lambda v: v)
            assert [key(v) for v in values] == sorted(map(key, values), reverse=descending), (kind, field)
    for field in NOT_SORTABLE[kind]:
        for prefix in ("", "-"):
            errors = errors_of(sbx.api("GET", f"/{kind}", params={"sort": prefix + field}))
            assert list(errors) == ["sort"] and field in errors["sort"][0]


def test_several_sort_keys_apply_left_to_right(sbx):
    items = sbx.ok("GET", "/invoices", params={"sort": "status,-id", "limit": 100})
    keys = [(item["status"], -item["id"]) for item in items]
    assert keys == sorted(keys)


# --- filtering (§5) ------------------------------------------------------------------------------------


def all_customers(sbx):
    return [c for page in range(1, 4) for c in sbx.ok("GET", "/customers", params={"limit": 100, "page": page})]


def test_filter_eq_is_exact_case_insensitive_and_takes_a_comma_list(sbx):
    people = [c for c in all_customers(sbx) if c["email"]][:3]
    exact = sbx.ok("GET", "/customers", params={"filter[email]": f"eq:{people[0]['email'].upper()}"})
    assert [c["id"] for c in exact] == [people[0]["id"]]
    # The op: prefix is optional (eq).
    assert sbx.ok("GET", "/customers", params={"filter[email]": people[0]["email"]}) == exact
    several = sbx.ok("GET", "/customers", params={"filter[email]": "eq:" + ",".join(p["email"] for p in people)})
    assert sorted(c["id"] for c in several) == sorted(p["id"] for p in people)
    by_id = sbx.ok("GET", "/customers", params={"filter[id]": f"eq:{people[1]['id']},{people[2]['id']}"})
    assert [c["id"] for c in by_id] == sorted([people[1]["id"], people[2]["id"]])


def test_filter_like_is_a_case_insensitive_substring(sbx):
    customers = all_customers(sbx)
    needle = "GMAIL"
    expected = {c["id"] for c in customers if c["email"] and "gmail" in c["email"].lower()}
    found = sbx.api("GET", "/customers", params={"filter[email]": f"like:{needle}", "limit": 100}).json()
    assert found["meta"]["total"] == len(expected) > 0
    either = sbx.api("GET", "/customers", params={"filter[email]": "like:gmail,yahoo", "limit": 1}).json()
    assert either["meta"]["total"] == len(
        {c["id"] for c in customers if c["email"] and ("gmail" in c["email"] or "yahoo" in c["email"])}
    )


def test_plain_filters_and_or_filters_combine_like_sql(sbx):
    customers = all_customers(sbx)
    target = next(c for c in customers if c["first_name"] and c["last_name"])
    both = sbx.ok(
        "GET",
        "/customers",
        params={
            "filter[first_name]": f"eq:{target['first_name']}",
            "filter[last_name]": f"eq:{target['last_name']}",
            "limit": 100,
        },
    )
    assert all((c["first_name"], c["last_name"]) == (target["first_name"], target["last_name"]) for c in both)
    # first_name=A AND ... OR last_name=B: either.
    params = {
        "filter[first_name]": f"eq:{target['first_name']}",
        "filter[last_name]": f"oreq:{target['last_name']}",
        "limit": 1,
    }
    expected = {
        c["id"] for c in customers if c["first_name"] == target["first_name"] or c["last_name"] == target["last_name"]
    }
    assert sbx.api("GET", "/customers", params=params).json()["meta"]["total"] == len(expected)
    ored = {"filter[email]": "orlike:gmail", "filter[last_name]": f"oreq:{target['last_name']}", "limit": 1}
    expected = {
        c["id"] for c in customers if (c["email"] and "gmail" in c["email"]) or c["last_name"] == target["last_name"]
    }
    assert sbx.api("GET", "/customers", params=ored).json()["meta"]["total"] == len(expected)


def test_metadata_filters(sbx):
    customers = all_customers(sbx)
    with_source = {c["id"] for c in customers if "source" in c["metadata"]}
    web = {c["id"] for c in customers if c["metadata"].get("source") == "web"}
    assert 0 < len(web) < len(with_source)

    def total(params):
        return sbx.api("GET", "/customers", params={"limit": 1, **params}).json()["meta"]["total"]

    assert total({"filter[metadata]": "has:source"}) == len(with_source)
    assert total({"filter[metadata.source]": "eq:web"}) == len(web)
    assert total({"filter[metadata.source]": "like:WE"}) == len(web)
    assert total({"filter[metadata]": "has:no_such_key"}) == 0
    nothing_or_source = {"filter[metadata]": "has:no_such_key", "filter[metadata.source]": "oreq:web"}
    assert total(nothing_or_source) == len(web)
    assert total({"filter[metadata]": "orhas:crm_id"}) == len({c["id"] for c in customers if "crm_id" in c["metadata"]})
    invoices = sbx.api("GET", "/invoices", params={"filter[metadata]": "has:po_number", "limit": 100}).json()
    assert invoices["meta"]["total"] > 0 and all("po_number" in i["metadata"] for i in invoices["data"])
    # The filter survives in the pagination links.
    assert "filter%5Bmetadata%5D=has%3Apo_number" in invoices["links"]["first"]


def test_invoice_filters_by_id_and_status(sbx):
    one = sbx.ok("GET", "/invoices", params={"limit": 1})[0]
    assert [i["id"] for i in sbx.ok("GET", "/invoices", params={"filter[id]": f"eq:{one['id']}"})] == [one["id"]]
    paid = sbx.api("GET", "/invoices", params={"filter[status]": "eq:paid", "limit": 100}).json()
    assert paid["meta"]["total"] > 0 and all(i["status"] == "paid" for i in paid["data"])


@pytest.mark.parametrize(
    "kind, params, field",
    [
        ("customers", {"filter[phone]": "eq:1"}, "filter[phone]"),
        ("customers", {"filter[created_at]": "eq:1"}, "filter[created_at]"),
        ("customers", {"filter[email]": "gt:a"}, "filter[email]"),
        ("customers", {"filter[email]": "has:a"}, "filter[email]"),
        ("customers", {"filter[metadata]": "eq:source"}, "filter[metadata]"),
        ("customers", {"filter[metadata]": "has:"}, "filter[metadata]"),
        ("customers", {"filter[email]": "eq:"}, "filter[email]"),
        ("customers", {"filter[id]": "eq:abc"}, "filter[id]"),
        ("invoices", {"filter[customer_id]": "eq:1"}, "filter[customer_id]"),
        ("invoices", {"filter[subscription_id]": "eq:1"}, "filter[subscription_id]"),
        ("subscriptions", {"filter[status]": "eq:active"}, "filter[status]"),
        ("subscriptions", {"filter[customer_id]": "eq:1"}, "filter[customer_id]"),
        ("charges", {"filter[status]": "eq:failed"}, "filter[status]"),
        ("charges", {"filter[customer_id]": "eq:1"}, "filter[customer_id]"),
        ("plans", {"filter[amount]": "eq:999"}, "filter[amount]"),
        ("plans", {"filter[metadata]": "has:x"}, "filter[metadata]"),
        ("coupons", {"filter[code]": "eq:SAVE5"}, "filter[code]"),
        ("refunds", {"filter[status]": "eq:to_issue"}, "filter[status]"),
        ("addresses", {"filter[user_id]": "eq:1"}, "filter[user_id]"),
        ("charges", {"filter": "status"}, "filter"),
        ("charges", {"filter[]": "x"}, "filter[]"),
    ],
)
def test_undocumented_filter_attribute_or_operator_is_400(sbx, kind, params, field):
    assert list(errors_of(sbx.api("GET", f"/{kind}", params=params))) == [field]


@pytest.mark.parametrize(
    "kind, param",
    [
        ("customers", "per_page"),
        ("customers", "q"),
        ("invoices", "customer_id"),
        ("plans", "expand"),
        ("refunds", "expand"),
        ("customers", "include"),
        ("subscriptions", "status"),
    ],
)
def test_undocumented_query_parameters_are_400(sbx, kind, param):
    assert list(errors_of(sbx.api("GET", f"/{kind}", params={param: "x"}))) == [param]


# --- expand (§6) ---------------------------------------------------------------------------------------


def test_customer_expand_embeds_its_relations_in_one_request(fresh_sbx):
    sbx = fresh_sbx
    customer = next(c for c in all_customers(sbx) if c["default_source_id"] and c["organization"])
    plain = sbx.ok("GET", f"/customers/{customer['id']}")
    assert "addresses" not in plain and "subscriptions" not in plain and plain["default_source"] is None
    since = sbx.last_seq()
    full = sbx.ok(
        "GET", f"/customers/{customer['id']}", params={"expand": "addresses,defaultSource,organization,subscriptions"}
    )
    assert len(sbx.log(since)) == 1
    assert full["default_source"]["id"] == customer["default_source_id"]
    assert full["organization"]["id"] == customer["organization"] and "name" in full["organization"]
    assert all(a["user_id"] == customer["id"] for a in full["addresses"])
    assert all(s["user_id"] == customer["id"] for s in full["subscriptions"])
    subs = [
        s
        for page in range(1, 5)
        for s in sbx.ok("GET", "/subscriptions", params={"limit": 100, "page": page})
        if s["user_id"] == customer["id"]
    ]
    assert sorted(s["id"] for s in full["subscriptions"]) == sorted(s["id"] for s in subs)
    listed = sbx.ok("GET", "/customers", params={"expand": "subscriptions", "limit": 5})
    assert all(isinstance(c["subscriptions"], list) for c in listed)


def test_subscription_invoice_address_expand_and_refund_include(sbx):
    subs = sbx.ok(
        "GET", "/subscriptions", params={"limit": 100, "expand": "address,plan,coupon,default_source,latest_invoice"}
    )
    with_all = next(s for s in subs if s["address"] and s["default_source"] and s["latest_invoice"])
    assert with_all["plan"]["nickname"] and with_all["address"]["line1"] and with_all["default_source"]["last4"]
    assert with_all["latest_invoice"]["subscription_id"] == with_all["id"]
    plain = sbx.ok("GET", f"/subscriptions/{with_all['id']}")
    assert plain["plan"] == with_all["plan"]["id"] and plain["latest_invoice"] == with_all["latest_invoice"]["id"]
    invoice = sbx.ok("GET", f"/invoices/{with_all['latest_invoice']['id']}", params={"expand": "subscription"})
    assert invoice["subscription"]["id"] == with_all["id"] and invoice["subscription_id"] == with_all["id"]
    address = sbx.ok("GET", f"/addresses/{with_all['address']['id']}", params={"expand": "user"})
    assert address["user"]["id"] == address["user_id"] == with_all["user_id"]
    refunds = sbx.ok("GET", "/refunds", params={"include": "charge", "limit": 20})
    assert all(r["charge"]["id"] == r["charge_id"] and r["charge"]["customer_id"] == r["user_id"] for r in refunds)
    assert all("charge" not in r for r in sbx.ok("GET", "/refunds", params={"limit": 20}))


@pytest.mark.parametrize(
    "path, token",
    [
        ("/customers", "default_source"),
        ("/customers", "invoices"),
        ("/customers", "charges"),
        ("/subscriptions", "customer"),
        ("/subscriptions", "invoices"),
        ("/invoices", "customer"),
        ("/invoices", "subscription_id"),
        ("/addresses", "customer"),
        ("/refunds?include=", "user"),
    ],
)
def test_unknown_expand_token_is_400(sbx, path, token):
    if path.startswith("/refunds"):
        errors = errors_of(sbx.api("GET", "/refunds", params={"include": token}))
        assert list(errors) == ["include"]
        return
    assert list(errors_of(sbx.api("GET", path, params={"expand": token}))) == ["expand"]
    one = first_id(sbx, path.strip("/"))
    assert list(errors_of(sbx.api("GET", f"{path}/{one}", params={"expand": f"{token}"}))) == ["expand"]


# --- the old request shapes are gone (issue 10) --------------------------------------------------------


def old_shapes(sbx):
    customer = next(c for c in all_customers(sbx) if c["default_source_id"])
    plan = next(p for p in sbx.ok("GET", "/plans", params={"limit": 100}) if p["active"] == "active")
    coupon = sbx.ok("GET", "/coupons", params={"limit": 1})[0]
    subscription = next(s for s in sbx.ok("GET", "/subscriptions", params={"limit": 100}) if s["status"] == "active")
    draft = sbx.ok("GET", "/invoices", params={"filter[status]": "eq:draft", "limit": 1})[0]
    open_ = sbx.ok("GET", "/invoices", params={"filter[status]": "eq:open", "limit": 1})[0]
    return [
        # (what, method, path, params, body, status, error key or None)
        (
            "subscription with customer_id/coupon_id",
            "POST",
            "/subscriptions",
            None,
            {
                "customer_id": customer["id"],
                "plan_id": plan["id"],
                "coupon_id": coupon["id"],
                "quantity": 1,
                "source_id": customer["default_source_id"],
            },
            400,
            "customer_id",
        ),
        (
            "subscription without quantity",
            "POST",
            "/subscriptions",
            None,
            {"user_id": customer["id"], "plan_id": plan["id"], "source_id": customer["default_source_id"]},
            400,
            "quantity",
        ),
        (
            "subscription with trial + auto_renew only (no source)",
            "POST",
            "/subscriptions",
            None,
            {"user_id": customer["id"], "plan_id": plan["id"], "quantity": 1},
            400,
            "source_id",
        ),
        (
            "POST /subscriptions/{id}/cancel",
            "POST",
            f"/subscriptions/{subscription['id']}/cancel",
            None,
            {"at_period_end": True},
            404,
            None,
        ),
        (
            "cancel with at_period_end",
            "DELETE",
            f"/subscriptions/{subscription['id']}",
            None,
            {"at_period_end": True},
            400,
            "at_period_end",
        ),
        ("cancel without mode", "DELETE", f"/subscriptions/{subscription['id']}", None, None, 400, "mode"),
        ("customers sorted by created_at", "GET", "/customers", {"sort": "-created_at"}, None, 400, "sort"),
        ("plans sorted by amount", "GET", "/plans", {"sort": "amount"}, None, 400, "sort"),
        (
            "invoices filtered by customer_id",
            "GET",
            "/invoices",
            {"filter[customer_id]": f"eq:{customer['id']}"},
            None,
            400,
            "filter[customer_id]",
        ),
        (
            "subscriptions filtered by status",
            "GET",
            "/subscriptions",
            {"filter[status]": "eq:active"},
            None,
            400,
            "filter[status]",
        ),
        (
            "subscriptions filtered by customer_id",
            "GET",
            "/subscriptions",
            {"filter[customer_id]": f"eq:{customer['id']}"},
            None,
            400,
            "filter[customer_id]",
        ),
        (
            "charges filtered by customer_id",
            "GET",
            "/charges",
            {"filter[customer_id]": f"eq:{customer['id']}"},
            None,
            400,
            "filter[customer_id]",
        ),
        (
            "invoice update with due_date",
            "PUT",
            f"/invoices/{draft['id']}",
            None,
            {"due_date": "2030-01-01"},
            400,
            "due_date",
        ),
        ("invoice update with status", "PUT", f"/invoices/{draft['id']}", None, {"status": "open"}, 400, "status"),
        (
            "invoice update with line_items",
            "PUT",
            f"/invoices/{draft['id']}",
            None,
            {"line_items": [{"description": "x", "unit_price": 1, "quantity": 1}]},
            400,
            "line_items",
        ),
        (
            "invoice created with metadata",
            "POST",
            "/invoices",
            None,
            {"customer_id": customer["id"], "currency": "usd", "total": 100, "metadata": {"a": 1}},
            400,
            "metadata",
        ),
        (
            "invoice created with an ISO due_date",
            "POST",
            "/invoices",
            None,
            {"customer_id": customer["id"], "currency": "usd", "total": 100, "due_date": "2030-01-01"},
            400,
            "due_date",
        ),
        (
            "pay_offline with integer category",
            "POST",
            f"/invoices/{open_['id']}/pay_offline",
            None,
            {"reference": "CHK-1", "category": 2},
            400,
            "category",
        ),
        (
            "offline charge with integer payment_category",
            "POST",
            "/charges",
            None,
            {"customer_id": customer["id"], "amount": 100, "currency": "usd", "reference": "x", "payment_category": 2},
            400,
            "payment_category",
        ),
        (
            "customer display_name over 100",
            "POST",
            "/customers",
            None,
            {"display_name": "x" * 101},
            400,
            "display_name",
        ),
    ]


def test_every_old_request_shape_gets_the_documented_refusal(fresh_sbx):
    sbx = fresh_sbx
    cases = old_shapes(sbx)
    since = sbx.last_seq()
    for what, method, path, params, body, status, key in cases:
        response = sbx.api(method, path, params=params, json=body)
        assert response.status_code == status, (what, response.text)
        if key is not None:
            assert key in response.json()["errors"], (what, response.json())
    # Nothing was created or changed by any of them.
    assert all(entry["status"] >= 400 for entry in sbx.log(since))


def test_timestamps_are_unix_seconds_not_iso_strings(sbx):
    customer = sbx.ok("GET", "/customers", params={"limit": 1})[0]
    assert isinstance(customer["created_at"], int)
    created = sbx.ok("POST", "/customers", 201, json={"email": f"unix-{sbx.last_seq()}@example.com"})
    assert isinstance(created["created_at"], int) and created["created_at"] == created["updated_at"]
    import time

    assert abs(created["created_at"] - time.time()) < 120


# --- admin API and request log --------------------------------------------------------------------------


def test_admin_api_needs_its_token(sbx):
    assert httpx.get(sbx.url + "/_sandbox/health").json() == {"status": "ok"}
    for method, path in (
        ("GET", "/log"),
        ("DELETE", "/log"),
        ("POST", "/reset"),
        ("GET", "/config"),
        ("PUT", "/config"),
        ("GET", "/accounts"),
        ("DELETE", "/limits"),
        ("PATCH", "/accounts/acme"),
        ("POST", "/jobs/run"),
        ("POST", "/sites/14/refunds"),
    ):
        for headers in ({}, {"X-Sandbox-Admin": "wrong"}):
            assert httpx.request(method, sbx.url + "/_sandbox" + path, headers=headers).status_code == 401, path
    assert httpx.get(sbx.url + "/_sandbox/accounts", headers={"X-Sandbox-Admin": KEYS["acme"]}).status_code == 401


def test_admin_makes_a_pending_refund_as_the_dashboard_would(fresh_sbx):
    sbx = fresh_sbx
    charge = sbx.ok("GET", "/charges", params={"limit": 1})[0]
    made = sbx.admin.post(f"/sites/{ACME_SITE}/refunds", json={"charge_id": charge["id"], "amount": 1})
    assert made.status_code == 201, made.text
    refund = made.json()["data"]
    assert (refund["charge_id"], refund["user_id"], refund["amount"], refund["status"]) == (
        charge["id"],
        charge["customer_id"],
        1,
        "to_issue",
    )
    assert refund["id"] in {r["id"] for r in sbx.ok("GET", "/refunds", params={"limit": 100})}
    for body, status, says in (
        ({"charge_id": 987_654_321}, 404, "No charge 987654321"),
        ({"charge_id": charge["id"], "amount": charge["amount"] + 1}, 400, "The amount must be"),
        ({"charge_id": charge["id"], "why": "x"}, 400, "charge_id"),
    ):
        refused = sbx.admin.post(f"/sites/{ACME_SITE}/refunds", json=body)
        assert (refused.status_code, says in refused.text) == (status, True), refused.text
    # Another account's charge is not one of this site's.
    other = sbx.ok("GET", "/charges", account="other", site_id=27, params={"limit": 1})[0]
    assert sbx.admin.post(f"/sites/{ACME_SITE}/refunds", json={"charge_id": other["id"]}).status_code == 404


def test_admin_accounts_match_the_demo_file(sbx):
    accounts = sbx.admin.get("/accounts").json()["data"]
    assert [(a["slug"], a["name"], a["api_key"], a["sites"], a["api_core_rate_limit"]) for a in accounts] == [
        (
            a["slug"],
            a["name"],
            a["api_key"],
            [{"site_id": s["site_id"], "name": s["name"]} for s in a["sites"]],
            a["api_core_rate_limit"],
        )
        for a in DEMO["accounts"]
    ]
    # This session's sandbox runs with the SANDBOX_RATE_LIMIT override.
    assert all(a["effective_rate_limit"] == 1_000_000 and isinstance(a["requests_in_window"], int) for a in accounts)


def test_request_log_records_what_reached_the_api(fresh_sbx):
    sbx = fresh_sbx
    assert sbx.log() == []
    body = {"email": "logged@example.com", "first_name": "Log"}
    raw = json.dumps(body).encode()
    sbx.http.post(
        "/customers",
        params={"site_id": ACME_SITE},
        content=raw,
        headers={"Authorization": f"Bearer {KEYS['acme']}", "Content-Type": "application/json"},
    )
    sbx.api("GET", "/customers", params={"limit": 2})
    sbx.api("GET", "/customers", key="sbx_wrong")
    sbx.admin.get("/config")  # admin calls are never logged
    entries = sbx.log()
    assert [(e["account"], e["method"], e["path"], e["status"]) for e in entries] == [
        ("acme", "POST", "/api/v1/core/customers", 201),
        ("acme", "GET", "/api/v1/core/customers", 200),
        (None, "GET", "/api/v1/core/customers", 401),
    ]
    assert entries[0]["body_sha256"] == hashlib.sha256(raw).hexdigest()
    assert entries[1]["body_sha256"] is None
    assert entries[1]["query"] == f"site_id={ACME_SITE}&limit=2"
    dump = json.dumps(sbx.admin.get("/log").json())
    assert KEYS["acme"] not in dump and "sbx_wrong" not in dump
    assert [e["seq"] for e in sbx.log(since=entries[0]["seq"])] == [entries[1]["seq"], entries[2]["seq"]]
    assert len(sbx.log(account="acme")) == 2
    assert sbx.admin.delete("/log").status_code == 200
    assert sbx.log() == []
    sbx.api("GET", "/plans")
    assert [e["seq"] for e in sbx.log()] == [entries[2]["seq"] + 1]
    assert sbx.admin.get("/log", params={"since": "x"}).status_code == 400


def test_reset_restores_the_same_seed_data_and_clears_log_and_limiter(fresh_sbx):
    sbx = fresh_sbx
    before = sbx.api("GET", "/customers", params={"limit": 100, "page": 2}).json()
    customer = before["data"][0]
    sbx.ok("PUT", f"/customers/{customer['id']}", json={"first_name": "Changed"})
    sbx.ok("POST", "/customers", 201, json={"email": "extra@example.com"})
    sbx.reset()
    assert sbx.log() == []
    assert next(a for a in sbx.admin.get("/accounts").json()["data"] if a["slug"] == "acme")["requests_in_window"] == 0
    assert sbx.api("GET", "/customers", params={"limit": 100, "page": 2}).json() == before


def test_seed_is_deterministic_across_processes():
    """Two sandboxes with the same seed serve the same objects (times are laid out from today)."""
    servers = [
        start_sandbox(SANDBOX_CUSTOMERS_PER_SITE="20", SANDBOX_SEED="11", SANDBOX_RATE_LIMIT="100000") for _ in range(2)
    ]
    try:
        clients = [SandboxClient(server) for server in servers]
        for kind in LISTED:
            answers = [c.api("GET", f"/{kind}", params={"limit": 100}).json()["data"] for c in clients]
            assert answers[0] == answers[1] and answers[0], kind
        for client in clients:
            client.close()
    finally:
        for server in servers:
            server.stop()


def test_admin_and_seed_size_from_the_environment():
    server = start_sandbox(SANDBOX_ADMIN_TOKEN="", SANDBOX_CUSTOMERS_PER_SITE="6", SANDBOX_SEED="7")
    try:
        client = SandboxClient(server)
        for path in ("/log", "/config", "/accounts"):
            assert client.admin.get(path).status_code == 404
        assert client.admin.post("/reset").status_code == 404
        assert httpx.get(server.url + "/_sandbox/health").status_code == 200
        demo_subscribers = sum(1 for s in DEMO["subscribers"] if s["site_id"] == ACME_SITE)
        assert 1 + demo_subscribers <= client.api("GET", "/customers").json()["meta"]["total"] <= 6 + demo_subscribers
        client.close()
    finally:
        server.stop()


def test_invalid_environment_refuses_to_start():
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={
            "PATH": "/usr/bin:/bin",
            "SANDBOX_RATE_LIMIT": "lots",
            "SANDBOX_ERROR_RATE": "2",
            "SANDBOX_JOB_DELAY": "-1",
            "SANDBOX_ADMIN_TOKEN": SANDBOX_ADMIN_TOKEN,
        },
    )
    assert result.returncode == 2
    assert all(name in result.stderr for name in ("SANDBOX_RATE_LIMIT", "SANDBOX_ERROR_RATE", "SANDBOX_JOB_DELAY"))


def test_the_sandbox_imports_nothing_of_the_gateway_and_nothing_imports_it():
    code = (
        "import sys, sandbox.app, sandbox.__main__; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'accounts', 'mcp_bridge', 'pelcro_gateway', 'ops')]; "
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    for package in ("accounts", "mcp_bridge", "ops", "pelcro_gateway"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            assert "from sandbox" not in text and "import sandbox" not in text, path
