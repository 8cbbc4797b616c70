"""The Core API sandbox over real HTTP: keys and sites, envelopes, lists, seed data, admin API, request log."""

import hashlib
import json
import subprocess
import sys

import httpx
import pytest

from devtools.servers import ROOT
from sandbox.invoices import STATUSES as INVOICE_STATUSES
from sandbox.subscriptions import STATUSES as SUBSCRIPTION_STATUSES
from tests.fixtures_sandbox import ACME_SITE, ACME_SITE_2, DEMO, KEYS, OTHER_SITE, SITES, SandboxClient
from tests.fixtures_servers import SANDBOX_ADMIN_TOKEN, start_sandbox

KINDS = ("customers", "subscriptions", "invoices", "plans", "coupons", "charges")
FIELDS = {
    "customers": {"id", "email", "first_name", "last_name", "display_name", "phone", "metadata", "mail_marketing",
                  "tele_marketing", "balance", "created_at", "updated_at", "deleted_at"},
    "subscriptions": {"id", "customer_id", "plan_id", "coupon_id", "status", "quantity", "auto_renew",
                      "current_period_start", "current_period_end", "cancel_at_period_end", "canceled_at",
                      "trial_end", "created_at"},
    "invoices": {"id", "customer_id", "subscription_id", "status", "currency", "line_items", "total", "amount_due",
                 "amount_paid", "amount_remaining", "due_date", "billing_reason", "metadata", "created_at", "paid_at",
                 "voided_at"},
    "plans": {"id", "product_id", "nickname", "amount", "currency", "interval", "interval_count", "active",
              "auto_renew", "created_at"},
    "coupons": {"id", "name", "code", "percent_off", "amount_off", "currency", "duration", "redeem_by",
                "max_redemptions", "times_redeemed", "created_at"},
    "charges": {"id", "customer_id", "invoice_id", "amount", "amount_refunded", "currency", "status", "paid",
                "refunded", "offline", "reference", "payment_category", "created_at"},
}


def first_id(sbx, kind, account="acme", site_id=ACME_SITE):
    return sbx.ok("GET", f"/{kind}", account=account, site_id=site_id, params={"limit": 1})[0]["id"]


# --- keys, sites, object ownership ---------------------------------------------------------------


def test_missing_or_invalid_key_is_401(sbx):
    for headers in ({}, {"Authorization": "Bearer sbx_nope"}, {"Authorization": f"Basic {KEYS['acme']}"}):
        response = sbx.http.get("/customers", params={"site_id": ACME_SITE}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["status"] == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_site_id_is_required_and_an_integer(sbx):
    response = sbx.api("GET", "/customers", site_id=None)
    assert response.status_code == 400
    assert response.json() == {"errors": {"site_id": ["The site id field is required."]}}
    response = sbx.api("GET", "/customers", site_id=None, params={"site_id": "fourteen"})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["site_id"]
    response = sbx.api("POST", "/customers", json={"email": "x@example.com", "site_id": ACME_SITE_2})
    assert response.status_code == 400
    assert "site_id" in response.json()["errors"]


def test_a_key_cannot_reach_another_accounts_site(sbx):
    for kind in KINDS:
        response = sbx.api("GET", f"/{kind}", account="acme", site_id=OTHER_SITE)
        assert response.status_code == 403, kind
        assert response.json()["error"]["status"] == 403
    # A site that exists nowhere answers exactly like someone else's: no existence oracle.
    nowhere = sbx.api("GET", "/customers", site_id=999_999)
    assert nowhere.status_code == 403
    assert nowhere.json()["error"]["message"] == "This API key cannot access site 999999."
    # Writes too, and nothing is created.
    before = sbx.api("GET", "/customers", account="other", site_id=OTHER_SITE).json()["meta"]["total"]
    assert sbx.api("POST", "/customers", site_id=OTHER_SITE, json={"email": "intruder@example.com"}).status_code == 403
    assert sbx.api("GET", "/customers", account="other", site_id=OTHER_SITE).json()["meta"]["total"] == before
    # The same key reaches both of its own account's sites.
    assert sbx.api("GET", "/customers", site_id=ACME_SITE_2).status_code == 200


def test_another_accounts_object_ids_are_404(sbx):
    for kind in KINDS:
        foreign = first_id(sbx, kind, account="other", site_id=OTHER_SITE)
        response = sbx.api("GET", f"/{kind}/{foreign}")
        assert response.status_code == 404, kind
        assert response.json() == {"error": {"status": 404, "message": f"{kind[:-1].capitalize()} {foreign} not found."}}
        # The owner still sees it.
        assert sbx.api("GET", f"/{kind}/{foreign}", account="other", site_id=OTHER_SITE).status_code == 200
    # An object of the key's own account but of its other site is not found on this site either.
    sibling = first_id(sbx, "customers", site_id=ACME_SITE_2)
    assert sbx.api("GET", f"/customers/{sibling}").status_code == 404


def test_writes_on_another_accounts_objects_are_404_and_change_nothing(fresh_sbx):
    sbx = fresh_sbx
    other = {"account": "other", "site_id": OTHER_SITE}
    customer = first_id(sbx, "customers", **other)
    invoice = sbx.ok("GET", "/invoices", params={"filter[status]": "eq:open", "limit": 1}, **other)[0]
    assert sbx.api("PUT", f"/customers/{customer}", json={"first_name": "Mallory"}).status_code == 404
    assert sbx.api("DELETE", f"/customers/{customer}").status_code == 404
    assert sbx.api("POST", f"/invoices/{invoice['id']}/void").status_code == 404
    assert sbx.api("POST", f"/invoices/{invoice['id']}/pay_offline", json={"reference": "x", "category": 2}).status_code == 404
    charge = {"customer_id": customer, "amount": 100, "currency": "gbp", "reference": "x", "payment_category": 2}
    assert sbx.api("POST", "/charges", json=charge).status_code == 404
    assert sbx.ok("GET", f"/customers/{customer}", **other)["first_name"] != "Mallory"
    assert sbx.ok("GET", f"/invoices/{invoice['id']}", **other) == invoice


def test_unknown_ids_paths_and_methods(sbx):
    assert sbx.api("GET", "/customers/1").status_code == 404
    assert sbx.api("GET", "/customers/abc").status_code == 404
    assert sbx.api("GET", "/refunds").json()["error"]["status"] == 404
    response = sbx.api("DELETE", f"/invoices/{first_id(sbx, 'invoices')}")
    assert response.status_code == 405
    assert response.json()["error"]["status"] == 405


# --- objects and envelopes ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_get_one_object_has_the_documented_fields(sbx, kind):
    obj_id = first_id(sbx, kind)
    response = sbx.api("GET", f"/{kind}/{obj_id}")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["data"]
    assert FIELDS[kind] <= set(body["data"]), FIELDS[kind] - set(body["data"])
    assert body["data"]["id"] == obj_id
    assert body["data"]["created_at"].endswith("Z")
    if "currency" in body["data"] and body["data"]["currency"] is not None:
        assert len(body["data"]["currency"]) == 3 and body["data"]["currency"].islower()


def test_seed_covers_every_state_and_partly_paid_invoices(sbx):
    for site_id in (ACME_SITE, OTHER_SITE):
        for status in INVOICE_STATUSES:
            assert sbx.api("GET", "/invoices", account="acme" if site_id == ACME_SITE else "other", site_id=site_id,
                           params={"filter[status]": f"eq:{status}"}).json()["meta"]["total"] > 0, (site_id, status)
        for status in SUBSCRIPTION_STATUSES:
            assert sbx.api("GET", "/subscriptions", account="acme" if site_id == ACME_SITE else "other", site_id=site_id,
                           params={"filter[status]": f"eq:{status}"}).json()["meta"]["total"] > 0, (site_id, status)
    open_invoices = sbx.ok("GET", "/invoices", params={"filter[status]": "eq:open", "limit": 100})
    assert any(0 < inv["amount_paid"] < inv["amount_due"] for inv in open_invoices)
    for inv in open_invoices:
        assert inv["amount_remaining"] == inv["amount_due"] - inv["amount_paid"]
        assert inv["total"] == sum(line["amount"] for line in inv["line_items"])
    assert sbx.api("GET", "/customers").json()["meta"]["total"] >= 150
    assert len(sbx.ok("GET", "/plans", params={"limit": 100})) >= 5
    assert len(sbx.ok("GET", "/coupons", params={"limit": 100})) >= 5


def test_ids_are_unique_across_the_whole_sandbox(sbx):
    seen = set()
    for slug, sites in SITES.items():
        for site_id in sites:
            for kind in ("plans", "coupons"):
                seen_before = len(seen)
                items = sbx.ok("GET", f"/{kind}", account=slug, site_id=site_id, params={"limit": 100})
                seen |= {item["id"] for item in items}
                assert len(seen) == seen_before + len(items)


def test_pagination_meta_and_links(sbx):
    first = sbx.api("GET", "/customers").json()
    total = first["meta"]["total"]
    assert len(first["data"]) == 10  # default limit
    assert first["meta"] | {"path": None} == {
        "current_page": 1, "from": 1, "last_page": -(-total // 10), "path": None, "per_page": 10, "to": 10, "total": total,
    }
    assert first["meta"]["path"] == sbx.base + "/customers"
    assert first["links"]["prev"] is None
    # Walk every page through links.next: each customer exactly once.
    seen, url, pages = [], sbx.base + f"/customers?site_id={ACME_SITE}&limit=37&sort=-id", 0
    while url and pages < 20:
        page = httpx.get(url, headers={"Authorization": f"Bearer {KEYS['acme']}"}).json()
        seen += [c["id"] for c in page["data"]]
        assert page["meta"]["per_page"] == 37
        if page["links"]["next"] is None:
            assert page["meta"]["current_page"] == page["meta"]["last_page"]
            assert page["meta"]["to"] == total
            assert httpx.get(page["links"]["prev"], headers={"Authorization": f"Bearer {KEYS['acme']}"}).json()["meta"]["current_page"] == page["meta"]["last_page"] - 1
        url, pages = page["links"]["next"], pages + 1
    assert len(seen) == len(set(seen)) == total
    assert seen == sorted(seen, reverse=True)
    last = sbx.api("GET", "/customers", params={"limit": 37, "page": pages}).json()
    assert last["meta"]["from"] == (pages - 1) * 37 + 1
    beyond = sbx.api("GET", "/customers", params={"page": 9999}).json()
    assert beyond["data"] == [] and beyond["meta"]["from"] is None and beyond["links"]["next"] is None
    assert len(sbx.ok("GET", "/customers", params={"limit": 100})) == 100


@pytest.mark.parametrize("params, field", [
    ({"limit": 101}, "limit"), ({"limit": 0}, "limit"), ({"limit": "ten"}, "limit"),
    ({"page": 0}, "page"), ({"page": "x"}, "page"),
])
def test_bad_page_or_limit_is_400(sbx, params, field):
    response = sbx.api("GET", "/invoices", params=params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


SORTS = {
    "customers": ("id", "email", "created_at"),
    "subscriptions": ("id", "status", "created_at"),
    "invoices": ("id", "status", "created_at"),
    "plans": ("id", "amount", "created_at"),
    "coupons": ("id", "code", "created_at"),
    "charges": ("id", "amount", "created_at"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_sort_ascending_and_descending_on_every_listed_field(sbx, kind):
    for field in SORTS[kind]:
        for descending in (False, True):
            items = sbx.ok("GET", f"/{kind}", params={"sort": ("-" if descending else "") + field, "limit": 100})
            values = [item[field] for item in items if item[field] is not None]
            assert len(values) > 1
            assert values == sorted(values, reverse=descending), (kind, field, descending)
            # Missing values come last in both directions.
            present = [item[field] is not None for item in items]
            assert present == sorted(present, reverse=True)
    response = sbx.api("GET", f"/{kind}", params={"sort": "-nickname_of_nothing"})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["sort"]


def test_sort_ties_keep_id_order_and_several_keys_apply(sbx):
    items = sbx.ok("GET", "/invoices", params={"sort": "status,-id", "limit": 100})
    keys = [(item["status"], -item["id"]) for item in items]
    assert keys == sorted(keys)


def test_filter_eq_and_like(sbx):
    customer = sbx.ok("GET", "/customers", params={"limit": 1, "filter[email]": "like:%@%"})[0]
    exact = sbx.ok("GET", "/customers", params={"filter[email]": f"eq:{customer['email'].upper()}"})
    assert [c["id"] for c in exact] == [customer["id"]]
    domain = customer["email"].split("@")[1]
    by_domain = sbx.api("GET", "/customers", params={"filter[email]": f"like:%@{domain}", "limit": 100}).json()
    assert by_domain["meta"]["total"] >= 1
    assert all(c["email"].endswith("@" + domain) for c in by_domain["data"])
    contains = sbx.ok("GET", "/customers", params={"filter[last_name]": f"like:{customer['last_name'][1:4].lower()}", "limit": 100})
    assert customer["id"] in {c["id"] for c in contains}
    assert all(customer["last_name"][1:4].lower() in c["last_name"].lower() for c in contains)
    both = sbx.ok("GET", "/customers", params={"filter[first_name]": f"eq:{customer['first_name']}",
                                               "filter[last_name]": f"eq:{customer['last_name']}", "limit": 100})
    assert customer["id"] in {c["id"] for c in both}
    assert all((c["first_name"], c["last_name"]) == (customer["first_name"], customer["last_name"]) for c in both)
    # Integer fields.
    invoices = sbx.ok("GET", "/invoices", params={"filter[customer_id]": f"eq:{customer['id']}", "limit": 100})
    assert all(inv["customer_id"] == customer["id"] for inv in invoices)
    one = sbx.ok("GET", "/invoices", params={"limit": 1})[0]
    assert [i["id"] for i in sbx.ok("GET", "/invoices", params={"filter[id]": f"eq:{one['id']}"})] == [one["id"]]
    failed = sbx.ok("GET", "/charges", params={"filter[status]": "eq:failed", "limit": 100})
    assert failed and all(c["status"] == "failed" and c["paid"] is False for c in failed)
    canceled = sbx.api("GET", "/subscriptions", params={"filter[status]": "eq:canceled"}).json()
    assert canceled["meta"]["total"] > 0 and all(s["status"] == "canceled" for s in canceled["data"])
    # The filter survives in the pagination links.
    assert "filter%5Bstatus%5D=eq%3Acanceled" in canceled["links"]["next"]


@pytest.mark.parametrize("kind, params, field", [
    ("customers", {"filter[phone]": "eq:1"}, "filter[phone]"),
    ("customers", {"filter[email]": "gt:a"}, "filter[email]"),
    ("customers", {"filter[email]": "nobody@example.com"}, "filter[email]"),
    ("invoices", {"filter[customer_id]": "eq:abc"}, "filter[customer_id]"),
    ("plans", {"filter[amount]": "eq:999"}, "filter[amount]"),
    ("charges", {"filter": "status"}, "filter"),
])
def test_unknown_filter_field_or_operator_is_400(sbx, kind, params, field):
    response = sbx.api("GET", f"/{kind}", params=params)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


# --- admin API and request log ---------------------------------------------------------------------


def test_admin_api_needs_its_token(sbx):
    assert httpx.get(sbx.url + "/_sandbox/health").json() == {"status": "ok"}
    for method, path in (("GET", "/log"), ("DELETE", "/log"), ("POST", "/reset"), ("GET", "/config"),
                         ("PUT", "/config"), ("GET", "/accounts"), ("DELETE", "/limits")):
        for headers in ({}, {"X-Sandbox-Admin": "wrong"}):
            assert httpx.request(method, sbx.url + "/_sandbox" + path, headers=headers).status_code == 401, path
    # Core API keys are no admin tokens.
    assert httpx.get(sbx.url + "/_sandbox/accounts", headers={"X-Sandbox-Admin": KEYS["acme"]}).status_code == 401


def test_admin_accounts_match_the_demo_file(sbx):
    accounts = sbx.admin.get("/accounts").json()["data"]
    assert [(a["slug"], a["name"], a["api_key"], a["sites"]) for a in accounts] == [
        (a["slug"], a["name"], a["api_key"], a["sites"]) for a in DEMO["accounts"]
    ]
    assert all(isinstance(a["requests_in_window"], int) for a in accounts)


def test_request_log_records_what_reached_the_api(fresh_sbx):
    sbx = fresh_sbx
    assert sbx.log() == []
    body = {"email": "logged@example.com", "first_name": "Log"}
    raw = json.dumps(body).encode()
    sbx.http.post("/customers", params={"site_id": ACME_SITE}, content=raw,
                  headers={"Authorization": f"Bearer {KEYS['acme']}", "Content-Type": "application/json"})
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
    assert entries[0]["seq"] < entries[1]["seq"] < entries[2]["seq"]
    assert all(e["time"].endswith("Z") and e["fault"] is None and e["duration_ms"] >= 0 for e in entries)
    # The key is never written down, not even a wrong one.
    dump = json.dumps(sbx.admin.get("/log").json())
    assert KEYS["acme"] not in dump and "sbx_wrong" not in dump
    # since= and account= narrow it; a clear keeps the sequence going.
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


def test_admin_and_seed_size_from_the_environment():
    server = start_sandbox(SANDBOX_ADMIN_TOKEN="", SANDBOX_CUSTOMERS_PER_SITE="6", SANDBOX_SEED="7")
    try:
        client = SandboxClient(server)
        # Without an admin token the admin API does not exist (health stays public).
        for path in ("/log", "/config", "/accounts"):
            assert client.admin.get(path).status_code == 404
        assert client.admin.post("/reset").status_code == 404
        assert httpx.get(server.url + "/_sandbox/health").status_code == 200
        total = client.api("GET", "/customers").json()["meta"]["total"]
        assert 1 <= total <= 6
        client.close()
    finally:
        server.stop()


def test_invalid_environment_refuses_to_start():
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--port", "1"], cwd=ROOT, capture_output=True, text=True, timeout=30,
        env={"PATH": "/usr/bin:/bin", "SANDBOX_RATE_LIMIT": "lots", "SANDBOX_ERROR_RATE": "2",
             "SANDBOX_ADMIN_TOKEN": SANDBOX_ADMIN_TOKEN},
    )
    assert result.returncode == 2
    assert "SANDBOX_RATE_LIMIT" in result.stderr and "SANDBOX_ERROR_RATE" in result.stderr


def test_the_sandbox_imports_nothing_of_the_gateway():
    code = (
        "import sys, sandbox.app, sandbox.__main__; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'accounts', 'mcp_bridge', 'pelcro_gateway', 'ops')]; "
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
