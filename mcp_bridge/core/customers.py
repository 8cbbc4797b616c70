"""Customer tools: list, get (the customer 360 view), create, update, delete (Core API
/customers, CORE_API.md §8.2)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mcp_bridge.core.addresses import Address
from mcp_bridge.core.calls import core_api
from mcp_bridge.core.previews import (
    IRREVERSIBLE,
    Verdict,
    changes,
    core_request,
    counted,
    customer_label,
    described,
    merged_metadata,
    missing,
    money,
    preview,
    read_customer,
    read_state,
    send,
    where,
)
from mcp_bridge.core.results import object_result, page_result, structured_result
from mcp_bridge.core.shapes import (
    HAS_METADATA_KEY,
    MATCH_FIELD,
    METADATA_FILTER,
    CoreMetadata,
    CoreObject,
    FilterQuery,
    FilterText,
    IdList,
    Match,
    MetadataKey,
    Timestamp,
    embedded,
    expand_param,
    sort_field,
)
from mcp_bridge.core.subscriptions import Subscription
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Metadata, Page, SiteInput, id_field, require_a_change
from mcp_bridge.runtime.writes import ALWAYS, UpstreamRequest, WritePreview

# --- Shapes ------------------------------------------------------------------------------


class Customer(CoreObject):
    """A customer of one site (CORE_API.md §8.2). `subscriptions` and `addresses` are there
    when asked for with expand."""

    id: int
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    name: str | None = None
    phone: str | None = None
    old_provider_id: str | None = None
    email_confirm: bool | None = None
    email_hardbounce: bool | None = None
    mail_marketing: bool | None = None
    tele_marketing: bool | None = None
    metadata: CoreMetadata = None
    organization: int | dict[str, Any] | None = None
    default_source_id: int | None = None
    default_source: dict[str, Any] | None = None
    balance: int | None = Field(None, description="Credit the customer can spend, in cents (minor units).")
    currency: str | None = None
    is_imported: bool | None = None
    has_password: bool | None = None
    password_last_updated_at: Timestamp | None = None
    subscriptions: list[embedded(Subscription, "a subscription, as get_subscription returns it")] | None = Field(
        None, description="With expand subscriptions."
    )
    addresses: list[embedded(Address, "an address, as get_address returns it")] | None = Field(
        None, description="With expand addresses."
    )
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class DeletedCustomer(CoreObject):
    deleted: bool
    customer_id: int


CustomerExpand = Literal["subscriptions", "addresses", "defaultSource", "organization"]
EXPAND_FIELD: Any = Field(
    None,
    max_length=4,
    description="Related objects to embed in the same request: subscriptions, addresses, defaultSource (the "
    "default payment method), organization.",
)


class ListCustomersInput(ListInput):
    sort: sort_field(("id", "email")) | None = None
    email: FilterText | None = Field(None, description="Only the customer with exactly this email.")
    email_contains: FilterText | None = Field(
        None, description="Only customers whose email contains this text (case-insensitive), e.g. @acme.com."
    )
    first_name: FilterText | None = Field(None, description="Only customers with exactly this first name.")
    last_name: FilterText | None = Field(None, description="Only customers with exactly this last name.")
    ids: IdList | None = Field(None, description="Only customers with these ids.")
    metadata: dict[MetadataKey, FilterText] | None = METADATA_FILTER
    has_metadata_key: str | None = HAS_METADATA_KEY
    match: Match = MATCH_FIELD
    expand: list[CustomerExpand] | None = EXPAND_FIELD

    @model_validator(mode="after")
    def _one_email_filter(self) -> ListCustomersInput:
        if self.email and self.email_contains:
            raise ValueError("give email (exact) or email_contains, not both")
        return self

    def query(self) -> dict[str, Any]:
        filters = (
            FilterQuery(self.match)
            .eq("id", *(self.ids or []))
            .eq("email", self.email)
            .like("email", self.email_contains)
            .eq("first_name", self.first_name)
            .eq("last_name", self.last_name)
            .metadata(self.metadata, self.has_metadata_key)
        )
        return self.list_query() | filters.params | expand_param(self.expand)


class GetCustomerInput(SiteInput):
    customer_id: int = id_field("customer")
    expand: list[CustomerExpand] = Field(
        ["subscriptions", "addresses"],
        max_length=4,
        description="Related objects embedded in the same request (default: subscriptions and addresses, the "
        "customer's 360 view); [] for the customer alone. Also: defaultSource, organization.",
    )


class CustomerIdInput(SiteInput):
    customer_id: int = id_field("customer")


def _phone_digits(value: str | None) -> str | None:
    if value is not None and not 5 <= len(re.sub(r"\D", "", value)) <= 20:
        raise ValueError("a phone number needs 5 to 20 digits (other characters are dropped by Pelcro)")
    return value


class CustomerFields(SiteInput):
    first_name: str | None = Field(None, max_length=255)
    last_name: str | None = Field(None, max_length=255)
    display_name: str | None = Field(None, max_length=100, description="Name to show; up to 100 characters.")
    phone: str | None = Field(None, max_length=40, description="5 to 20 digits; spaces, dashes, + are dropped.")
    metadata: Metadata | None = None
    mail_marketing: bool | None = Field(None, description="Consents to marketing email.")
    tele_marketing: bool | None = Field(None, description="Consents to marketing calls.")

    _phone = field_validator("phone")(classmethod(lambda cls, v: _phone_digits(v)))

    def body(self) -> dict[str, Any]:
        body = self.model_dump(exclude={"site_id", "customer_id", "metadata"}, exclude_none=True)
        if self.metadata is not None:
            body["metadata"] = self.metadata  # kept whole: a null value in it removes that key
        return body


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class CreateCustomerInput(CustomerFields):
    email: str | None = Field(
        None, max_length=255, pattern=EMAIL_PATTERN, description="Email address (unique on the site)."
    )
    old_provider_id: str | None = Field(
        None, max_length=191, description="The customer's id in a system you migrated from (unique in the account)."
    )

    @model_validator(mode="after")
    def _needs_an_identity(self) -> CreateCustomerInput:
        if not (self.email or self.display_name or self.old_provider_id):
            raise ValueError("give an email, a display_name or an old_provider_id")
        return self

    def request(self) -> UpstreamRequest:
        return core_request("POST", "/customers", self.site_id, body=self.body())


class UpdateCustomerInput(CustomerFields):
    customer_id: int = id_field("customer")
    email: str | None = Field(None, max_length=255, pattern=EMAIL_PATTERN, description="New email address.")
    default_source_id: int | None = Field(
        None, ge=1, description="One of the customer's saved payment methods, to become the default."
    )

    @model_validator(mode="after")
    def _something(self) -> UpdateCustomerInput:
        require_a_change(self, UpdateCustomerInput, "site_id", "customer_id")
        return self

    def request(self) -> UpstreamRequest:
        return core_request("PUT", f"/customers/{self.customer_id}", self.site_id, body=self.body())


def delete_request(args: CustomerIdInput) -> UpstreamRequest:
    return core_request("DELETE", f"/customers/{args.customer_id}", args.site_id)


def _customer_line(customer: Customer, site_id: int, verb: str = "Customer") -> str:
    who = customer.email or customer.display_name or customer.name or "no email"
    line = f"{verb} {customer.id} ({who}) on site {site_id}"
    if customer.balance:
        line += f", credit balance {customer.balance} cents"
    if customer.subscriptions is not None:
        states = ", ".join(f"{s.id} {s.status}" for s in customer.subscriptions) or "none"
        line += f"; subscriptions: {states}"
    if customer.addresses is not None:
        line += f"; {len(customer.addresses)} address(es)"
    return line + "."


# --- Previews (dry_run) --------------------------------------------------------------------

CUSTOMERS_RULES = "CORE_API.md §8.2 (customers)"
# RFC 6761 §6: names under these never resolve, so Pelcro's DNS check of an e-mail domain
# (CORE_API.md §8.2) refuses them whatever the DNS; other domains it checks on the real call.
NEVER_RESOLVES = frozenset({"invalid", "test", "example", "localhost"})
ENDED = ("canceled", "expired")


def _email_rules(verdict: Verdict, email: str) -> None:
    domain = email.rsplit("@", 1)[1].lower().rstrip(".")
    if domain.rsplit(".", 1)[-1] in NEVER_RESOLVES:
        verdict.refuse(
            f"The e-mail domain {domain} has no mail server (a reserved name that never resolves, RFC 6761), so "
            "Pelcro's DNS check of the e-mail refuses it.",
            "CORE_API.md §8.2: email passes a DNS check",
        )
    else:
        verdict.unchecked(f"Pelcro's DNS check of the e-mail domain {domain} (it makes it on the real call)")


def _email_taken(verdict: Verdict, email: str, found: list[dict[str, Any]], own_id: int | None, site_id: int) -> None:
    # Pelcro keeps e-mails in lower case; the filter may match more than this address.
    wanted = email.casefold()
    other = next((c for c in found if (c.get("email") or "").casefold() == wanted and c.get("id") != own_id), None)
    if other is not None:
        verdict.refuse(
            f"The e-mail {email} is already taken on site {site_id} (by customer {other['id']}).",
            "CORE_API.md §8.2: email is unique per site",
        )


def _stored(name: str, value: Any) -> Any:
    """`value` as the customer will hold it: Pelcro keeps a phone number's digits only."""
    return re.sub(r"\D", "", value) if name == "phone" and isinstance(value, str) else value


async def preview_create_customer(call: CallContext, args: CreateCustomerInput) -> WritePreview:
    """Reads the customers with the new e-mail (one list request), when an e-mail is given."""
    request = args.request()
    body = request.body or {}
    verdict = Verdict()
    if args.email:
        _email_rules(verdict, args.email)
        if "," in args.email:  # a comma separates alternatives in a filter value (CORE_API.md §5)
            verdict.unchecked("whether the e-mail is unused on the site (an address with a comma cannot be searched)")
        elif verdict.allowed:
            found = await read_state(
                call, "/customers", args.site_id, what="customers", params=FilterQuery().eq("email", args.email).params
            )
            _email_taken(verdict, args.email, found or [], None, args.site_id)
    if args.old_provider_id:
        verdict.unchecked(
            f"whether old_provider_id {args.old_provider_id!r} is unused in the account (no documented filter finds it)"
        )
    missing = [name for name in ("email", "first_name", "last_name", "phone") if not body.get(name)]
    if missing:
        verdict.unchecked(
            f"accounts on the TAP payment gateway also need {', '.join(missing)} (the account's gateway is not read)"
        )
    given = ", ".join(f"{name} {value!r}" for name, value in body.items())
    return preview(
        "create_customer",
        request,
        verdict,
        allowed="No documented rule refuses this new customer.",
        rule=CUSTOMERS_RULES,
        changed=changes(*((f"customer.{name}", None, _stored(name, value)) for name, value in body.items())),
        summary=f"On {where(call, args.site_id)}: create a new customer with {given}. Each call creates another "
        "customer; delete_customer removes one.",
    )


async def preview_update_customer(call: CallContext, args: UpdateCustomerInput) -> WritePreview:
    """Reads the customer (one request): with a new e-mail, one list request finds both the
    customer and whoever already has that e-mail (filters OR-ed)."""
    request = args.request()
    body = request.body or {}
    verdict = Verdict()
    what = f"customer {args.customer_id}"
    if args.email and "," not in args.email:
        query = FilterQuery("any").eq("id", args.customer_id).eq("email", args.email).params
        found = await read_state(call, "/customers", args.site_id, what="customers", params=query) or []
        customer = next((c for c in found if c.get("id") == args.customer_id), None)
    else:
        found = []
        customer = await read_customer(call, args.site_id, args.customer_id)
    if customer is None:
        return missing("update_customer", request, call, args.site_id, what, "update", verdict=verdict)
    if args.email:
        _email_rules(verdict, args.email)
        if "," in args.email:
            verdict.unchecked("whether the e-mail is unused on the site (an address with a comma cannot be searched)")
        _email_taken(verdict, args.email, found, args.customer_id, args.site_id)
    source_id = args.default_source_id
    if source_id is not None and source_id != customer.get("default_source_id"):
        verdict.unchecked(f"whether payment method {source_id} is one of this customer's (only theirs is accepted)")
    triples: list[tuple[str, Any, Any]] = []
    for name, value in body.items():
        if name == "metadata":
            before = customer.get("metadata") or {}
            after = merged_metadata(before, value)
            triples += [(f"customer.metadata.{key}", before.get(key), after.get(key)) for key in value]
        else:
            triples.append((f"customer.{name}", customer.get(name), _stored(name, value)))
    changed = changes(*triples)
    effect = described(changed, "customer.")
    return preview(
        "update_customer",
        request,
        verdict,
        allowed="No documented rule refuses this update.",
        rule=CUSTOMERS_RULES,
        changed=changed,
        summary=f"On {where(call, args.site_id)}: update {customer_label(customer, args.customer_id)}: "
        + (effect or "nothing would change (every value given is already set)")
        + ".",
    )


def _card(source: dict[str, Any] | None, source_id: int | None) -> str:
    if source and source.get("last4"):
        return f"{source.get('brand') or 'card'} ending {source['last4']}, id {source_id}"
    return f"payment method {source_id}"


async def preview_delete_customer(call: CallContext, args: CustomerIdInput) -> WritePreview:
    """Reads the customer with their subscriptions, addresses and default payment method
    (one request, expand): what the delete takes with it (CORE_API.md §8.2)."""
    what = f"customer {args.customer_id}"
    customer = await read_customer(call, args.site_id, args.customer_id, "subscriptions", "addresses", "defaultSource")
    if customer is None:
        return missing(
            "delete_customer",
            delete_request(args),
            call,
            args.site_id,
            what,
            "delete",
            summary=f"delete {what}, which does not exist there (or is already deleted).",
            irreversible=True,
        )
    verdict = Verdict()
    subscriptions = customer.get("subscriptions") or []
    addresses = customer.get("addresses") or []
    ending = [s for s in subscriptions if s.get("status") not in ENDED]
    source_id = customer.get("default_source_id")
    changed = changes(
        ("customer.deleted", False, True),
        *((f"subscription {s['id']}.status", s.get("status"), "canceled") for s in ending),
        ("customer.subscriptions", len(subscriptions), 0),
        ("customer.addresses", len(addresses), 0),
        ("customer.default_source_id", source_id, None),
    )
    canceled = ", ".join(f"{s['id']} ({s.get('status')}, plan {s.get('plan')})" for s in ending)
    parts = [
        counted(len(subscriptions), "subscription")
        + (f" ({len(ending)} not ended, CANCELED AT ONCE: {canceled})" if ending else ""),
        counted(len(addresses), "address", "addresses"),
        "their saved payment methods"
        + (f" (the default: {_card(customer.get('default_source'), source_id)})" if source_id else ""),
        "memberships and social logins",
    ]
    balance = customer.get("balance")
    credit = f" They have a credit balance of {money(balance, customer.get('currency'))}." if balance else ""
    return preview(
        "delete_customer",
        delete_request(args),
        verdict,
        allowed="No documented rule refuses deleting this customer.",
        rule="CORE_API.md §8.2 (delete customer)",
        changed=changed,
        summary=f"On {where(call, args.site_id)}: delete {customer_label(customer, args.customer_id)}. Pelcro also "
        f"deletes their {'; '.join(parts)}.{credit} {IRREVERSIBLE}",
        irreversible=True,
    )


# --- Tools -------------------------------------------------------------------------------


@tool(
    "list_customers",
    title="List customers",
    input=ListCustomersInput,
    output=Page[Customer],
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def list_customers(call: CallContext, args: ListCustomersInput):
    """List the customers of a site, a page at a time.

    Filters (Pelcro's documented ones): email (exact) or email_contains (part of it,
    case-insensitive), first_name, last_name, ids (a list), metadata ({"key": "value"},
    exact) and has_metadata_key. By default an item must match all filters; match "any"
    ORs them. Sort by id or email (prefix - for descending). expand embeds subscriptions
    or addresses in the same request. `balance` is in cents; times are ISO 8601 UTC.
    `total` says how many match, `has_more` whether another page exists.
    """
    response = await core_api(call, "GET", "/customers", args.site_id, what="customers", params=args.query())
    return page_result(response, Customer, "customer", args.site_id)


@tool(
    "get_customer",
    title="Get a customer (360 view)",
    input=GetCustomerInput,
    output=Customer,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def get_customer(call: CallContext, args: GetCustomerInput):
    """Get one customer by id with, by default, their subscriptions and addresses, all in
    one Core API request (expand). Contact details, marketing consents, metadata, credit
    `balance` in cents; times are ISO 8601 UTC.

    This is the way to see one customer's subscriptions. Pelcro's Core API has no
    documented way to list one customer's invoices or charges (list_invoices and
    list_charges cannot filter by customer): say so rather than paging through all of them.
    """
    response = await core_api(
        call,
        "GET",
        f"/customers/{args.customer_id}",
        args.site_id,
        what=f"customer {args.customer_id}",
        params=expand_param(args.expand),
    )
    return object_result(response, Customer, lambda c: _customer_line(c, args.site_id))


@tool(
    "create_customer",
    title="Create a customer",
    input=CreateCustomerInput,
    output=Customer,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    preview=preview_create_customer,
)
async def create_customer(call: CallContext, args: CreateCustomerInput):
    """Create a customer on a site. Needs an email, a display_name (up to 100 characters) or
    an old_provider_id; an email must be unique on the site. Each call creates a new
    customer, so check with list_customers (email filter) first if they may exist."""
    response = await send(
        call,
        args.request(),
        what="the new customer",
        check="look for it with list_customers (email filter) to see whether it was created",
    )
    return object_result(response, Customer, lambda c: _customer_line(c, args.site_id, "Created customer"))


@tool(
    "update_customer",
    title="Update a customer",
    input=UpdateCustomerInput,
    output=Customer,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
    preview=preview_update_customer,
)
async def update_customer(call: CallContext, args: UpdateCustomerInput):
    """Change a customer's fields. Only the fields you give change. `metadata` is merged:
    keys you give are set, a key whose value is null is removed, other keys stay.
    default_source_id must be one of the customer's own payment methods."""
    response = await send(
        call,
        args.request(),
        what=f"customer {args.customer_id}",
        check=f"read customer {args.customer_id} with get_customer to see whether it changed",
    )
    return object_result(response, Customer, lambda c: _customer_line(c, args.site_id, "Updated customer"))


@tool(
    "delete_customer",
    title="Delete a customer",
    input=CustomerIdInput,
    output=DeletedCustomer,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    confirm=ALWAYS,
    preview=preview_delete_customer,
)
async def delete_customer(call: CallContext, args: CustomerIdInput):
    """Delete a customer. IRREVERSIBLE: Pelcro also deletes their subscriptions (active
    ones are CANCELED AT ONCE), memberships, payment methods, addresses and social logins.
    Confirm with the user first. Deleting an already deleted customer answers not found.
    """
    await send(
        call,
        delete_request(args),
        what=f"customer {args.customer_id}",
        check=f"read customer {args.customer_id} with get_customer: not found means it was deleted",
    )
    return structured_result(
        DeletedCustomer(deleted=True, customer_id=args.customer_id),
        f"Deleted customer {args.customer_id} on site {args.site_id}; their subscriptions are canceled and their "
        "payment methods and addresses deleted.",
    )
