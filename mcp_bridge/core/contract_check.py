"""The contract check: the gateway's Core API requests, sent to a real Core API (Pelcro
staging) or the sandbox, with every answer validated against the contract's shapes.

`make contract-check` runs it (`manage.py contract_check`); `tests/test_contract_check.py`
runs the same code against the sandbox in `make test`. Each row of the result says which
operation, the request sent (method, path, query, body field names: never values or the
key), the HTTP status, and whether the answer matched CORE_API.md (the resource models of
`mcp_bridge.core`, validated with `contract_validate`: Unix timestamps, documented types,
the list envelope of §3).

Read-only by default: lists, gets and the customer 360 view (expand). With `writes=True`
(env `CONTRACT_CHECK_WRITES=1`) it also creates a customer, an address, invoices, offline
payments and a subscription on the target, exercises the documented writes on them, and
deletes the customer and address at the end. Objects it cannot delete through the Core
API (invoices, charges, a canceled subscription) stay: use a staging account.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError

from mcp_bridge.core.account import PelcroAccount
from mcp_bridge.core.addresses import Address
from mcp_bridge.core.charges import Charge
from mcp_bridge.core.client import CoreAPIClient, CoreAPIResponse
from mcp_bridge.core.coupons import Coupon
from mcp_bridge.core.customers import Customer
from mcp_bridge.core.invoices import Invoice
from mcp_bridge.core.plans import Plan
from mcp_bridge.core.refunds import Refund
from mcp_bridge.core.shapes import ListEnvelope, contract_validate
from mcp_bridge.core.subscriptions import Subscription
from mcp_bridge.upstream.errors import UpstreamError
from mcp_bridge.upstream.gate import OpenGate

# The sandbox's demo account "acme" (demo/accounts.json): what `make contract-check` uses
# when no target is given (scripts/contract_check.sh starts a sandbox for it).
ENV_BASE_URL, ENV_API_KEY, ENV_SITE_ID, ENV_WRITES = (
    "CONTRACT_CHECK_BASE_URL",
    "CONTRACT_CHECK_API_KEY",
    "CONTRACT_CHECK_SITE_ID",
    "CONTRACT_CHECK_WRITES",
)


@dataclass(frozen=True)
class Target:
    """A Core API to check: base URL (…/api/v1/core), an account API key, one of its sites."""

    base_url: str
    api_key: str = field(repr=False)
    site_id: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Target:
        missing = [name for name in (ENV_BASE_URL, ENV_API_KEY, ENV_SITE_ID) if not environ.get(name)]
        if missing:
            raise ValueError(f"set {', '.join(missing)} (see README, 'Checking the gateway against Pelcro')")
        try:
            site_id = int(environ[ENV_SITE_ID])
        except ValueError:
            raise ValueError(f"{ENV_SITE_ID} must be an integer site id") from None
        return cls(environ[ENV_BASE_URL].rstrip("/"), environ[ENV_API_KEY], site_id)


@dataclass
class CheckRow:
    operation: str
    request: str
    status: int | None = None
    outcome: str = "ok"  # ok | mismatch | error | skipped
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome in ("ok", "skipped")


def _describe(method: str, path: str, params: dict | None, body: dict | None) -> str:
    text = f"{method} {path}"
    if params:
        text += "?" + urlencode(params, safe="[],:.-@")
    if body:
        text += " {" + ",".join(body) + "}"
    return text


def _problems(exc: ValidationError, limit: int = 3) -> str:
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:limit]]
    more = exc.error_count() - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class ContractCheck:
    """One run of the checks against `target`; `rows` collects the results."""

    def __init__(self, target: Target, client: CoreAPIClient, *, writes: bool = False):
        self.target, self.client, self.writes = target, client, writes
        self.rows: list[CheckRow] = []
        self.plan_id: int | None = None  # a listed plan, for the subscription write

    async def request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        model: type[BaseModel] | None = None,
        many: bool = False,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        expect_status: int | None = None,
        site: bool = True,
    ) -> Any:
        """Send one request and record its row. Returns the validated object (or list of
        them), or None when the request failed or the answer did not match."""
        row = CheckRow(operation, _describe(method, path, params, body))
        self.rows.append(row)
        try:
            response: CoreAPIResponse = await self.client.request(
                method,
                path,
                account_id=0,
                api_key=self.target.api_key,
                site_id=self.target.site_id if site else None,
                params=params,
                json=body,
            )
        except UpstreamError as exc:
            row.status = exc.status or None
            if expect_status is not None and exc.status == expect_status:
                row.detail = f"refused as documented: {exc.message}"
                return None
            row.outcome, row.detail = "error", exc.message
            return None
        row.status = response.status
        if expect_status is not None and response.status != expect_status:
            row.outcome, row.detail = "mismatch", f"expected HTTP {expect_status}"
            return None
        try:
            if model is None:
                if response.data not in (None, "", [], {}):
                    raise ValueError("expected an empty answer")
                return True
            if many:
                envelope = {"data": response.data, "links": response.links, "meta": response.meta}
                contract_validate(ListEnvelope, envelope)
                return [contract_validate(model, item) for item in response.data]
            return contract_validate(model, response.data)
        except ValidationError as exc:
            row.outcome, row.detail = "mismatch", _problems(exc)
        except ValueError as exc:
            row.outcome, row.detail = "mismatch", str(exc)
        return None

    def skip(self, operation: str, request: str, why: str) -> None:
        self.rows.append(CheckRow(operation, request, outcome="skipped", detail=why))

    def fail(self, why: str) -> None:
        """The last row's answer had the right shape but not the documented content."""
        row = self.rows[-1]
        if row.outcome == "ok":
            row.outcome, row.detail = "mismatch", why

    async def first_id(self, operation: str, path: str, model: type[BaseModel], **params: Any) -> int | None:
        items = await self.request(operation, "GET", path, model=model, many=True, params={"limit": 2, **params})
        return items[0].id if items else None

    async def get(self, operation: str, path: str, object_id: int | None, model: type[BaseModel], **params: Any):
        if object_id is None:
            self.skip(operation, f"GET {path}/{{id}}", "nothing listed to get")
            return None
        return await self.request(operation, "GET", f"{path}/{object_id}", model=model, params=params or None)

    # --- the checks ----------------------------------------------------------------------

    async def run(self) -> list[CheckRow]:
        account = await self.request("get account", "GET", "/account", model=PelcroAccount, site=False)
        if account is not None and self.target.site_id not in {s.id for s in account.sites}:
            self.fail(f"site {self.target.site_id} is not among the account's sites")
        await self.reads()
        if self.writes:
            await self.write_cycle(account)
        return self.rows

    async def reads(self) -> None:
        customer_id = await self.first_id("list customers", "/customers", Customer)
        ordered = await self.request(
            "list customers, sorted", "GET", "/customers", model=Customer, many=True, params={"limit": 5, "sort": "-id"}
        )
        if ordered and [c.id for c in ordered] != sorted((c.id for c in ordered), reverse=True):
            self.fail("sort=-id did not sort by id descending")
        found = await self.request(
            "list customers, filtered",
            "GET",
            "/customers",
            model=Customer,
            many=True,
            params={"limit": 5, "filter[email]": "like:@"},
        )
        if found and any("@" not in (c.email or "") for c in found):
            self.fail("filter[email]=like:@ returned a customer without @ in the email")
        full = await self.get(
            "customer 360 (expand)", "/customers", customer_id, Customer, expand="subscriptions,addresses"
        )
        if full is not None and (full.subscriptions is None or full.addresses is None):
            self.fail("expand=subscriptions,addresses did not embed both lists")

        subscription_id = await self.first_id("list subscriptions", "/subscriptions", Subscription)
        await self.get("get subscription (expand plan)", "/subscriptions", subscription_id, Subscription, expand="plan")
        invoice_id = await self.first_id("list invoices, sorted", "/invoices", Invoice, sort="-created_at")
        paid = await self.request(
            "list invoices, filtered",
            "GET",
            "/invoices",
            model=Invoice,
            many=True,
            params={"limit": 5, "filter[status]": "eq:paid"},
        )
        if paid and any(i.status != "paid" for i in paid):
            self.fail("filter[status]=eq:paid returned other states")
        await self.get("get invoice", "/invoices", invoice_id, Invoice)
        plans = await self.request(
            "list plans, sorted", "GET", "/plans", model=Plan, many=True, params={"limit": 20, "sort": "nickname"}
        )
        await self.get("get plan", "/plans", plans[0].id if plans else None, Plan)
        # For the subscription write: an active plan of the publisher itself (agency-managed
        # subscriptions cannot be canceled through the Core API).
        self.plan_id = next(
            (p.id for p in plans or [] if p.active == "active" and not getattr(p, "agency_id", None)), None
        )
        coupon_id = await self.first_id("list coupons", "/coupons", Coupon)
        await self.get("get coupon", "/coupons", coupon_id, Coupon)
        charge_id = await self.first_id("list charges", "/charges", Charge)
        await self.get("get charge", "/charges", charge_id, Charge)
        await self.request(
            "list refunds (include charge)",
            "GET",
            "/refunds",
            model=Refund,
            many=True,
            params={"limit": 2, "include": "charge"},
        )
        address_id = await self.first_id("list addresses", "/addresses", Address)
        await self.get("get address", "/addresses", address_id, Address)
        # Never sent: POST /refunds/cancelled. Refunds cannot be created through the Core
        # API, so a check could only cancel real pending refunds.

    async def write_cycle(self, account: PelcroAccount | None) -> None:
        site = self.target.site_id
        currency = ((account.default_currency if account else None) or "usd").lower()
        stamp = int(time.time())
        customer = await self.request(
            "create customer",
            "POST",
            "/customers",
            model=Customer,
            body={
                "email": f"contract-check-{stamp}@example.com",
                "first_name": "Contract",
                "last_name": "Check",
                "skip_email_dns_validations": True,
            },
        )
        if customer is None:
            self.skip("writes", "—", "no customer was created; the other writes need one")
            return
        cid = customer.id
        updated = await self.request(
            "update customer (metadata)",
            "PUT",
            f"/customers/{cid}",
            model=Customer,
            body={"metadata": {"contract_check": str(stamp)}},
        )
        if updated is not None and (updated.metadata or {}).get("contract_check") != str(stamp):
            self.fail("the metadata was not merged in")
        address = await self.request(
            "create address",
            "POST",
            "/addresses",
            model=Address,
            body={
                "site_id": site,
                "customer_id": cid,
                "type": "billing",
                "line1": "1 Contract Street",
                "city": "Toronto",
                "state": "ON",
                "postal_code": "M5V 1A1",
                "country": "CA",
            },
        )
        if address is not None:
            await self.request(
                "update address",
                "PUT",
                f"/addresses/{address.id}",
                model=Address,
                body={"site_id": site, "line2": "Suite 2"},
            )
        full = await self.request(
            "customer 360 after writes",
            "GET",
            f"/customers/{cid}",
            model=Customer,
            params={"expand": "subscriptions,addresses"},
        )
        if full is not None and address is not None and address.id not in {a.id for a in full.addresses or []}:
            self.fail("the new address is not embedded")

        line = {"description": "Contract check", "unit_price": 1000, "quantity": 1}
        invoice = await self.request(
            "create invoice (open)",
            "POST",
            "/invoices",
            model=Invoice,
            body={"customer_id": cid, "currency": currency, "line_items": [line], "status": "open"},
        )
        if invoice is not None:
            await self.request(
                "update invoice (metadata)",
                "PUT",
                f"/invoices/{invoice.id}",
                model=Invoice,
                body={"metadata": {"contract_check": str(stamp)}},
            )
            await self.request(
                "offline charge to balance",
                "POST",
                "/charges",
                model=Charge,
                body={
                    "customer_id": cid,
                    "amount": 400,
                    "currency": currency,
                    "reference": f"CC-{stamp}",
                    "payment_category": "2",
                },
            )
            applied = await self.request(
                "apply balance", "POST", f"/invoices/{invoice.id}/apply_balance", model=Invoice
            )
            if applied is not None and applied.amount_remaining != 600:
                self.fail(f"expected 600 cents remaining, got {applied.amount_remaining}")
            paid = await self.request(
                "pay offline",
                "POST",
                f"/invoices/{invoice.id}/pay_offline",
                model=Invoice,
                body={"reference": f"CC-{stamp}-2", "payment_category": "3"},
            )
            if paid is not None and paid.status != "paid":
                self.fail(f"expected paid, got {paid.status}")
        for operation, path_end, final in (
            ("void invoice", "void", "void"),
            ("mark invoice uncollectible", "uncollectible", "uncollectible"),
        ):
            other = await self.request(
                f"create invoice to {path_end}",
                "POST",
                "/invoices",
                model=Invoice,
                body={"customer_id": cid, "currency": currency, "total": 500, "status": "open"},
            )
            if other is not None:
                done = await self.request(operation, "POST", f"/invoices/{other.id}/{path_end}", model=Invoice)
                if done is not None and done.status != final:
                    self.fail(f"expected {final}, got {done.status}")
        plan_id = self.plan_id
        if plan_id is None:
            self.skip("create subscription", "POST /subscriptions", "no active plan of the publisher listed")
        else:
            subscription = await self.request(
                "create subscription",
                "POST",
                "/subscriptions",
                model=Subscription,
                body={"user_id": cid, "plan_id": plan_id, "quantity": 1, "collection_method": "send_invoice"},
            )
            if subscription is not None:
                canceled = await self.request(
                    "cancel subscription (now)",
                    "DELETE",
                    f"/subscriptions/{subscription.id}",
                    model=Subscription,
                    body={"mode": "now", "reason": "contract check"},
                )
                if canceled is not None and canceled.status != "canceled":
                    self.fail(f"expected canceled, got {canceled.status}")
        if address is not None:
            await self.request("delete address", "DELETE", f"/addresses/{address.id}")
        await self.request("delete customer", "DELETE", f"/customers/{cid}")


async def run_contract_check(
    target: Target,
    *,
    writes: bool = False,
    client: CoreAPIClient | None = None,
) -> list[CheckRow]:
    """Run every check against `target` and return the rows (see the module docstring)."""
    own = client is None
    client = client or CoreAPIClient(target.base_url, gate=OpenGate(), max_retries=3, backoff_base=0.5)
    try:
        return await ContractCheck(target, client, writes=writes).run()
    finally:
        if own:
            await client.aclose()


def format_table(rows: list[CheckRow], width: int = 70) -> str:
    """The rows as a plain-text table: operation, request sent, status, contract."""

    def clip(text: str, size: int) -> str:
        return text if len(text) <= size else text[: size - 1] + "…"

    header = ("operation", "request sent", "status", "contract")
    body = [
        (r.operation, clip(r.request, width), str(r.status or "—"), r.outcome + (f": {r.detail}" if r.detail else ""))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(line)) for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 8)
    failed = sum(not r.passed for r in rows)
    lines.append("")
    lines.append(
        f"{len(rows)} checks: {len(rows) - failed} passed"
        f" ({sum(r.outcome == 'skipped' for r in rows)} skipped), {failed} failed."
    )
    return "\n".join(lines)
