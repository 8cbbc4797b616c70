"""Customer tools: list, get (the customer 360 view), create, update, delete (Core API
/customers, CORE_API.md §8.2)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mcp_bridge.core.addresses import Address
from mcp_bridge.core.calls import core_api
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
from mcp_bridge.runtime.schemas import ListInput, Metadata, Page, SiteInput, id_field
from mcp_bridge.runtime.writes import ALWAYS

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


class UpdateCustomerInput(CustomerFields):
    customer_id: int = id_field("customer")
    email: str | None = Field(None, max_length=255, pattern=EMAIL_PATTERN, description="New email address.")
    default_source_id: int | None = Field(
        None, ge=1, description="One of the customer's saved payment methods, to become the default."
    )


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
)
async def create_customer(call: CallContext, args: CreateCustomerInput):
    """Create a customer on a site. Needs an email, a display_name (up to 100 characters) or
    an old_provider_id; an email must be unique on the site. Each call creates a new
    customer, so check with list_customers (email filter) first if they may exist."""
    response = await core_api(
        call,
        "POST",
        "/customers",
        args.site_id,
        what="the new customer",
        json_body=args.body(),
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
)
async def update_customer(call: CallContext, args: UpdateCustomerInput):
    """Change a customer's fields. Only the fields you give change. `metadata` is merged:
    keys you give are set, a key whose value is null is removed, other keys stay.
    default_source_id must be one of the customer's own payment methods."""
    response = await core_api(
        call,
        "PUT",
        f"/customers/{args.customer_id}",
        args.site_id,
        what=f"customer {args.customer_id}",
        json_body=args.body(),
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
)
async def delete_customer(call: CallContext, args: CustomerIdInput):
    """Delete a customer. IRREVERSIBLE: Pelcro also deletes their subscriptions (active
    ones are CANCELED AT ONCE), memberships, payment methods, addresses and social logins.
    Confirm with the user first. Deleting an already deleted customer answers not found.
    """
    await core_api(
        call,
        "DELETE",
        f"/customers/{args.customer_id}",
        args.site_id,
        what=f"customer {args.customer_id}",
        check=f"read customer {args.customer_id} with get_customer: not found means it was deleted",
    )
    return structured_result(
        DeletedCustomer(deleted=True, customer_id=args.customer_id),
        f"Deleted customer {args.customer_id} on site {args.site_id}; their subscriptions are canceled and their "
        "payment methods and addresses deleted.",
    )
