"""Address tools: list, get, create, update, delete (Core API /addresses, CORE_API.md §8.9)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.results import object_result, page_result, structured_result
from mcp_bridge.core.shapes import CoreObject, Timestamp
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput, id_field
from mcp_bridge.runtime.writes import ALWAYS

AddressType = Literal["shipping", "billing", "account_primary"]
STATE_REQUIRED = frozenset({"US", "CA", "AU"})


class Address(CoreObject):
    """A customer's address (CORE_API.md §8.9); the customer is `user_id`."""

    id: int
    user_id: int | None = Field(None, description="The customer's id.")
    type: str | None = Field(None, description="shipping, billing or account_primary.")
    is_default: bool | None = Field(None, description="The customer's default address of its type.")
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    department: str | None = None
    salutation: str | None = None
    title: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = Field(None, description="ISO 3166-1 alpha-2, e.g. US.")
    phone: str | None = None
    old_provider_id: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class AddressIdInput(SiteInput):
    address_id: int = id_field("address")


def _text(max_length: int = 255, description: str | None = None) -> Any:
    return Field(None, min_length=1, max_length=max_length, description=description)


class AddressFields(SiteInput):
    first_name: str | None = _text()
    last_name: str | None = _text()
    company: str | None = _text()
    department: str | None = _text()
    salutation: str | None = _text()
    title: str | None = _text()
    line2: str | None = _text()
    city: str | None = _text()
    state: str | None = _text(description="State or province; required for US, CA and AU addresses.")
    postal_code: str | None = _text(45)
    phone: str | None = _text(40)
    is_default: bool | None = Field(None, description="Make it the customer's default address of its type.")

    def body(self, site_id: int) -> dict[str, Any]:
        body = self.model_dump(exclude={"site_id", "address_id"}, exclude_none=True)
        return {"site_id": site_id, **body}  # Pelcro repeats site_id in the body of address writes


class CreateAddressInput(AddressFields):
    customer_id: int = id_field("customer")
    type: AddressType = Field(description="shipping, billing or account_primary.")
    line1: str = Field(min_length=1, max_length=255, description="Street and number.")
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code, e.g. US.")

    @model_validator(mode="after")
    def _state_where_needed(self) -> CreateAddressInput:
        if self.country in STATE_REQUIRED and not self.state:
            raise ValueError(f"a {self.country} address needs a state")
        return self


class UpdateAddressInput(AddressFields):
    address_id: int = id_field("address")
    type: AddressType | None = None
    line1: str | None = _text(description="Street and number.")
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 country code.")

    @model_validator(mode="after")
    def _something(self) -> UpdateAddressInput:
        if not self.model_dump(exclude={"site_id", "address_id"}, exclude_none=True):
            raise ValueError("give at least one field to change")
        return self


class DeletedAddress(CoreObject):
    deleted: bool
    address_id: int


def _line(address: Address, site_id: int, verb: str = "Address") -> str:
    where = ", ".join(p for p in (address.line1, address.city, address.state, address.country) if p)
    return f"{verb} {address.id} ({address.type}) of customer {address.user_id} on site {site_id}: {where}."


@tool(
    "list_addresses",
    title="List addresses",
    input=ListInput,
    output=Page[Address],
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def list_addresses(call: CallContext, args: ListInput):
    """List a site's addresses (all customers), a page at a time, in id order; Pelcro
    documents no sorting or filtering for addresses. For ONE customer's addresses use
    get_customer, which embeds them."""
    response = await core_api(call, "GET", "/addresses", args.site_id, what="addresses", params=args.list_query())
    return page_result(response, Address, "address", args.site_id)


@tool(
    "get_address",
    title="Get an address",
    input=AddressIdInput,
    output=Address,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def get_address(call: CallContext, args: AddressIdInput):
    """Get one address by id: its customer (user_id), type (shipping, billing,
    account_primary), whether it is the customer's default of its type, and its lines."""
    response = await core_api(
        call, "GET", f"/addresses/{args.address_id}", args.site_id, what=f"address {args.address_id}"
    )
    return object_result(response, Address, lambda a: _line(a, args.site_id))


@tool(
    "create_address",
    title="Create an address",
    input=CreateAddressInput,
    output=Address,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
)
async def create_address(call: CallContext, args: CreateAddressInput):
    """Add an address to a customer: type (shipping, billing, account_primary), line1 and
    country (ISO code) are required, and a state for US, CA and AU. is_default makes it the
    customer's default of its type. Each call creates a new address."""
    response = await core_api(
        call,
        "POST",
        "/addresses",
        args.site_id,
        what="the new address",
        json_body=args.body(args.site_id),
        check=f"read customer {args.customer_id} with get_customer (it embeds their addresses) "
        "to see whether it was created",
    )
    return object_result(response, Address, lambda a: _line(a, args.site_id, "Created address"))


@tool(
    "update_address",
    title="Update an address",
    input=UpdateAddressInput,
    output=Address,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
)
async def update_address(call: CallContext, args: UpdateAddressInput):
    """Change an address's fields (only those you give). Refused: changing the country or
    state of an address a subscription uses."""
    response = await core_api(
        call,
        "PUT",
        f"/addresses/{args.address_id}",
        args.site_id,
        what=f"address {args.address_id}",
        json_body=args.body(args.site_id),
        check=f"read address {args.address_id} with get_address to see whether it changed",
    )
    return object_result(response, Address, lambda a: _line(a, args.site_id, "Updated address"))


@tool(
    "delete_address",
    title="Delete an address",
    input=AddressIdInput,
    output=DeletedAddress,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    confirm=ALWAYS,
)
async def delete_address(call: CallContext, args: AddressIdInput):
    """Delete an address. Irreversible; deleting it again answers not found. Confirm with
    the user first."""
    await core_api(
        call,
        "DELETE",
        f"/addresses/{args.address_id}",
        args.site_id,
        what=f"address {args.address_id}",
        check=f"read address {args.address_id} with get_address: not found means it was deleted",
    )
    return structured_result(
        DeletedAddress(deleted=True, address_id=args.address_id),
        f"Deleted address {args.address_id} on site {args.site_id}.",
    )
