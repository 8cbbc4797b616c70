"""Customer tools: list, get, create, update, delete (Core API /customers)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import object_result, page_result, parse, structured_result
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import (
    ListInput,
    Metadata,
    Page,
    SiteInput,
    Timestamp,
    UpstreamObject,
    contains_filter,
    eq_filter,
    id_field,
)

# --- Shapes ------------------------------------------------------------------------------


class Customer(UpstreamObject):
    id: int
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    phone: str | None = None
    metadata: dict[str, Any] | None = None
    mail_marketing: bool | None = None
    tele_marketing: bool | None = None
    balance: int | None = Field(None, description="Credit balance in cents (minor units).")
    created_at: Timestamp = None
    updated_at: Timestamp = None
    deleted_at: Timestamp = Field(None, description="Set once the customer is deleted.")


class DeletedCustomer(UpstreamObject):
    deleted: bool
    customer_id: int
    customer: Customer | None = Field(None, description="The customer as it is after deletion, if returned.")


CustomerSort = Literal["id", "-id", "email", "-email"]


class ListCustomersInput(ListInput):
    sort: CustomerSort | None = Field(None, description="Sort field; prefix with - for descending. Default: id.")
    email: str | None = Field(None, max_length=255, description="Only the customer with exactly this email.")
    email_contains: str | None = Field(
        None, min_length=1, max_length=255, description="Only customers whose email contains this text."
    )
    first_name: str | None = Field(None, max_length=255, description="Only customers with exactly this first name.")
    last_name: str | None = Field(None, max_length=255, description="Only customers with exactly this last name.")


class CustomerIdInput(SiteInput):
    customer_id: int = id_field("customer")


class CustomerFields(SiteInput):
    first_name: str | None = Field(None, max_length=255)
    last_name: str | None = Field(None, max_length=255)
    display_name: str | None = Field(None, max_length=100, description="Name to show when there is no email.")
    phone: str | None = Field(None, max_length=40)
    metadata: Metadata | None = None
    mail_marketing: bool | None = Field(None, description="Consents to marketing email.")
    tele_marketing: bool | None = Field(None, description="Consents to marketing calls.")

    def body(self) -> dict[str, Any]:
        body = self.model_dump(exclude={"site_id", "customer_id", "metadata"}, exclude_none=True)
        if self.metadata is not None:
            body["metadata"] = self.metadata  # kept whole: a null value in it removes that key
        return body


class CreateCustomerInput(CustomerFields):
    email: str | None = Field(None, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$", description="Email address.")

    @model_validator(mode="after")
    def _needs_a_name(self) -> CreateCustomerInput:
        if not self.email and not self.display_name:
            raise ValueError("give an email or a display_name")
        return self


class UpdateCustomerInput(CustomerFields):
    customer_id: int = id_field("customer")
    email: str | None = Field(None, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$", description="New email address.")


# --- Tools -------------------------------------------------------------------------------


@tool(
    "list_customers", title="List customers", input=ListCustomersInput, output=Page[Customer],
    read_only=True, destructive=False, idempotent=True, open_world=True,
)
async def list_customers(call: CallContext, args: ListCustomersInput):
    """List the customers of a site, a page at a time.

    Filter by exact email, first_name or last_name (case-insensitive), or by part of the
    email (email_contains); sort by id or email (prefix - for descending).
    Deleted customers are not listed. `balance` is in cents. The result says how many
    customers match (`total`) and whether more pages exist (`has_more`).
    """
    query = args.list_query() | eq_filter(email=args.email, first_name=args.first_name, last_name=args.last_name)
    if args.email_contains and not args.email:
        query |= contains_filter(email=args.email_contains)
    response = await core_api(call, "GET", "/customers", args.site_id, what="customers", params=query)
    return page_result(response, Customer, "customer", args.site_id)


@tool(
    "get_customer", title="Get a customer", input=CustomerIdInput, output=Customer,
    read_only=True, destructive=False, idempotent=True, open_world=True,
)
async def get_customer(call: CallContext, args: CustomerIdInput):
    """Get one customer by id: contact details, marketing consents, metadata, and credit
    `balance` in cents."""
    response = await core_api(call, "GET", f"/customers/{args.customer_id}", args.site_id, what=f"customer {args.customer_id}")
    return object_result(response, Customer, f"Customer {args.customer_id} on site {args.site_id}.")


@tool(
    "create_customer", title="Create a customer", input=CreateCustomerInput, output=Customer,
    read_only=False, destructive=False, idempotent=False, open_world=True,
)
async def create_customer(call: CallContext, args: CreateCustomerInput):
    """Create a customer on a site. Needs an email or a display_name; first_name and
    last_name are at most 255 characters. Each call creates a new customer, so check with
    list_customers (email filter) first if the customer may already exist."""
    response = await core_api(
        call, "POST", "/customers", args.site_id, what="the new customer", json_body=args.body(),
        check="look for it with list_customers (filter by email) to see whether it was created",
    )
    return object_result(response, Customer, lambda c: f"Created customer {c.id} on site {args.site_id}.")


@tool(
    "update_customer", title="Update a customer", input=UpdateCustomerInput, output=Customer,
    read_only=False, destructive=False, idempotent=True, open_world=True,
)
async def update_customer(call: CallContext, args: UpdateCustomerInput):
    """Change a customer's fields. Only the fields you give change; leave out (or pass
    null for) the rest. `metadata` is merged: keys you give are set, a key whose value is
    null is removed, other keys stay."""
    response = await core_api(
        call, "PUT", f"/customers/{args.customer_id}", args.site_id, what=f"customer {args.customer_id}",
        json_body=args.body(), check=f"read customer {args.customer_id} with get_customer to see whether it changed",
    )
    return object_result(response, Customer, f"Updated customer {args.customer_id} on site {args.site_id}.")


@tool(
    "delete_customer", title="Delete a customer", input=CustomerIdInput, output=DeletedCustomer,
    read_only=False, destructive=True, idempotent=True, open_world=True,
)
async def delete_customer(call: CallContext, args: CustomerIdInput):
    """Delete a customer (a soft delete: it disappears from the API).

    This also CANCELS ALL OF THE CUSTOMER'S ACTIVE SUBSCRIPTIONS, and cannot be undone
    through these tools. Confirm with the user first. Deleting an already deleted
    customer answers not found.
    """
    response = await core_api(
        call, "DELETE", f"/customers/{args.customer_id}", args.site_id, what=f"customer {args.customer_id}",
        check=f"read customer {args.customer_id} with get_customer to see whether it was deleted "
        "(deleted_at is set, or it is not found)",
    )
    customer = parse(Customer, response.data, response) if isinstance(response.data, dict) else None
    return structured_result(
        DeletedCustomer(deleted=True, customer_id=args.customer_id, customer=customer),
        f"Deleted customer {args.customer_id} on site {args.site_id}; their active subscriptions are canceled.",
    )
