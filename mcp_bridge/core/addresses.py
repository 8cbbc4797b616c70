"""Address tools: list, get, create, update, delete (Core API /addresses, CORE_API.md §8.9)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mcp_bridge.core.calls import core_api
from mcp_bridge.core.previews import (
    IRREVERSIBLE,
    Verdict,
    changes,
    core_request,
    customer_label,
    described,
    missing,
    preview,
    read_customer,
    read_state,
    send,
    where,
)
from mcp_bridge.core.results import object_result, page_result, structured_result
from mcp_bridge.core.shapes import CoreObject, Timestamp
from mcp_bridge.runtime.addresses import COUNTRY_CODE, AddressText, needs_postal_code, needs_state, require_state, text
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ListInput, Page, SiteInput, id_field, require_a_change
from mcp_bridge.runtime.writes import ALWAYS, UpstreamRequest, WritePreview

AddressType = Literal["shipping", "billing", "account_primary"]


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


class AddressFields(AddressText, SiteInput):
    is_default: bool | None = Field(None, description="Make it the customer's default address of its type.")
    department: str | None = text()
    salutation: str | None = text()
    title: str | None = text()

    def body(self, site_id: int) -> dict[str, Any]:
        body = self.model_dump(exclude={"site_id", "address_id"}, exclude_none=True)
        return {"site_id": site_id, **body}  # Pelcro repeats site_id in the body of address writes


class CreateAddressInput(AddressFields):
    customer_id: int = id_field("customer")
    type: AddressType = Field(description="shipping, billing or account_primary.")
    line1: str = Field(min_length=1, max_length=255, description="Street and number.")
    country: str = Field(pattern=COUNTRY_CODE, description="ISO 3166-1 alpha-2 country code, e.g. US.")

    @model_validator(mode="after")
    def _state_where_needed(self) -> CreateAddressInput:
        require_state(self.country, self.state)
        return self

    def request(self) -> UpstreamRequest:
        return core_request("POST", "/addresses", self.site_id, body=self.body(self.site_id))


class UpdateAddressInput(AddressFields):
    address_id: int = id_field("address")
    type: AddressType | None = None
    line1: str | None = text(description="Street and number.")
    country: str | None = Field(None, pattern=COUNTRY_CODE, description="ISO 3166-1 alpha-2 country code.")

    @model_validator(mode="after")
    def _something(self) -> UpdateAddressInput:
        require_a_change(self, UpdateAddressInput, "site_id", "address_id")
        return self

    def request(self) -> UpstreamRequest:
        return core_request("PUT", f"/addresses/{self.address_id}", self.site_id, body=self.body(self.site_id))


def delete_request(args: AddressIdInput) -> UpstreamRequest:
    return core_request("DELETE", f"/addresses/{args.address_id}", args.site_id)


class DeletedAddress(CoreObject):
    deleted: bool
    address_id: int


# --- Previews (dry_run) --------------------------------------------------------------------

ADDRESS_RULES = "CORE_API.md §8.9 (addresses)"
SHOWN = ("line1", "line2", "city", "state", "postal_code", "country")


def _postal_rule(verdict: Verdict, country: str | None, postal_code: str | None) -> None:
    if needs_postal_code(country, postal_code):
        verdict.unchecked(
            f"a {country} address needs a postal_code when the account has taxes enabled (the account's tax "
            "setting is not read)"
        )


def _one_line(address: dict[str, Any]) -> str:
    return ", ".join(str(address[k]) for k in SHOWN if address.get(k)) or "no lines"


async def preview_create_address(call: CallContext, args: CreateAddressInput) -> WritePreview:
    """Reads the customer with their addresses (one request, expand): whether they exist,
    and which address stops being their default of this type when is_default is set."""
    request = args.request()
    verdict = Verdict()
    _postal_rule(verdict, args.country, args.postal_code)  # checked before the customer (CORE_API.md §8.9)
    customer = await read_customer(call, args.site_id, args.customer_id, "addresses")
    if customer is None:
        what = f"customer {args.customer_id}"
        return missing(
            "create_address", request, call, args.site_id, what, f"add a {args.type} address to", verdict=verdict
        )
    body = {k: v for k, v in (request.body or {}).items() if k != "site_id"}
    replaced = [
        a
        for a in customer.get("addresses") or []
        if args.is_default and a.get("type") == args.type and a.get("is_default")
    ]
    changed = changes(
        # The address names its customer user_id (CORE_API.md §8.9).
        *((f"address.{'user_id' if name == 'customer_id' else name}", None, value) for name, value in body.items()),
        *((f"address {a['id']}.is_default", True, False) for a in replaced),
    )
    default = ""
    if args.is_default:
        default = f" It becomes their default {args.type} address" + (
            f" (instead of address {', '.join(str(a['id']) for a in replaced)})." if replaced else "."
        )
    return preview(
        "create_address",
        request,
        verdict,
        allowed="No rule checked refuses this new address.",
        rule=ADDRESS_RULES,
        changed=changed,
        summary=f"On {where(call, args.site_id)}: add a {args.type} address to "
        f"{customer_label(customer, args.customer_id)}: {_one_line(body)}.{default} Each call adds another address.",
    )


async def _address(call: CallContext, site_id: int, address_id: int) -> dict[str, Any] | None:
    """The address with its customer (expand user): one request."""
    return await read_state(
        call, f"/addresses/{address_id}", site_id, what=f"address {address_id}", params={"expand": "user"}
    )


def _missing(tool: str, request: UpstreamRequest, call: CallContext, args: AddressIdInput, verb: str) -> WritePreview:
    """The preview of a write to an address the site does not have (the real call: 404)."""
    what = f"address {args.address_id}"
    return missing(
        tool,
        request,
        call,
        args.site_id,
        what,
        verb,
        summary=f"{verb} {what}, which does not exist there (or is already deleted).",
        irreversible=verb == "delete",
    )


async def preview_update_address(call: CallContext, args: UpdateAddressInput) -> WritePreview:
    """Reads the address with its customer (one request): the values it changes, and the
    rules on the address as it would be (a state for US, CA, AU)."""
    request = args.request()
    verdict = Verdict()
    address = await _address(call, args.site_id, args.address_id)
    if address is None:
        return _missing("update_address", request, call, args, "update")
    body = {k: v for k, v in (request.body or {}).items() if k != "site_id"}
    after = {**address, **body}
    country, state = after.get("country"), after.get("state")
    if needs_state(country, state):
        verdict.refuse(
            f"The state field is required when country is {country}.",
            "CORE_API.md §8.9: state is required for CA, US and AU addresses",
        )
    _postal_rule(verdict, country, after.get("postal_code"))
    moved = [name for name in ("country", "state") if name in body and body[name] != address.get(name)]
    if moved:
        verdict.unchecked(
            f"whether a subscription uses this address: then its {' and '.join(moved)} cannot change "
            "(subscriptions are not read)"
        )
    changed = changes(*((f"address.{name}", address.get(name), value) for name, value in body.items()))
    effect = described(changed, "address.")
    default = (
        f" Any other default {after.get('type')} address of the customer stops being the default."
        if args.is_default and not address.get("is_default")
        else ""
    )
    return preview(
        "update_address",
        request,
        verdict,
        allowed="No rule checked refuses this update.",
        rule=ADDRESS_RULES,
        changed=changed,
        summary=f"On {where(call, args.site_id)}: update the {address.get('type')} address {args.address_id} "
        f"({_one_line(address)}) of {customer_label(address.get('user'), address.get('user_id'))}: "
        + (effect or "nothing would change (every value given is already set)")
        + f".{default}",
    )


async def preview_delete_address(call: CallContext, args: AddressIdInput) -> WritePreview:
    """Reads the address with its customer (one request). Whether a subscription uses it is
    on the subscriptions, which that request does not reach."""
    verdict = Verdict()
    address = await _address(call, args.site_id, args.address_id)
    if address is None:
        return _missing("delete_address", delete_request(args), call, args, "delete")
    verdict.unchecked("whether a subscription that has not ended uses this address (then Pelcro refuses the delete)")
    default = " It is their default address of that type." if address.get("is_default") else ""
    return preview(
        "delete_address",
        delete_request(args),
        verdict,
        allowed="No rule checked refuses deleting this address.",
        rule="CORE_API.md §8.9 (delete address)",
        changed=changes(("address.deleted", False, True)),
        summary=f"On {where(call, args.site_id)}: delete the {address.get('type')} address {args.address_id} "
        f"({_one_line(address)}) of {customer_label(address.get('user'), address.get('user_id'))}.{default} "
        f"{IRREVERSIBLE}",
        irreversible=True,
    )


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
    preview=preview_create_address,
)
async def create_address(call: CallContext, args: CreateAddressInput):
    """Add an address to a customer: type (shipping, billing, account_primary), line1 and
    country (ISO code) are required, and a state for US, CA and AU. is_default makes it the
    customer's default of its type. Each call creates a new address."""
    response = await send(
        call,
        args.request(),
        what="the new address",
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
    preview=preview_update_address,
)
async def update_address(call: CallContext, args: UpdateAddressInput):
    """Change an address's fields (only those you give). Refused: changing the country or
    state of an address a subscription uses."""
    response = await send(
        call,
        args.request(),
        what=f"address {args.address_id}",
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
    preview=preview_delete_address,
)
async def delete_address(call: CallContext, args: AddressIdInput):
    """Delete an address. Irreversible; deleting it again answers not found. Confirm with
    the user first."""
    await send(
        call,
        delete_request(args),
        what=f"address {args.address_id}",
        check=f"read address {args.address_id} with get_address: not found means it was deleted",
    )
    return structured_result(
        DeletedAddress(deleted=True, address_id=args.address_id),
        f"Deleted address {args.address_id} on site {args.site_id}.",
    )
