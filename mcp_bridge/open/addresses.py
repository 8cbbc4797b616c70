"""The subscriber's addresses: list, add, update (OPEN_API.md §5.6; the lengths and the
state rule are Core's, CORE_API.md §8.9).

The Open API lists no addresses of its own: they are in the customer resource (§3), and
both writes answer that resource, from which the tools pick the address written.
The Open API has no address delete.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from mcp_bridge.open.calls import open_api, site_name, subscriber_of
from mcp_bridge.open.profile import read_customer
from mcp_bridge.open.shapes import NoArguments, OpenObject, parse, result
from mcp_bridge.open.site import cached_site, read_site
from mcp_bridge.runtime.addresses import COUNTRY_CODE, AddressText, needs_postal_code, needs_state, require_state, text
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.failures import before_retrying
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import NOTHING_TO_CHANGE, ToolFailure, id_field
from mcp_bridge.runtime.values import Timestamp
from mcp_bridge.runtime.writes import Change, UpstreamRequest, WritePreview

RULE = "OPEN_API.md §5.6, CORE_API.md §8.9"
ENDED = ("canceled", "expired")
AddressType = Literal["shipping", "billing"]
# What an address write sends (OPEN_API.md §5.6 fields, plus Core's company and phone).
BODY_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "line1",
    "line2",
    "city",
    "state",
    "postal_code",
    "country",
    "phone",
    "is_default",
)


class Address(OpenObject):
    """One of the subscriber's addresses."""

    id: int
    type: str | None = Field(None, description="shipping or billing.")
    is_default: bool | None = Field(None, description="The default address of its type.")
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = Field(None, description="ISO 3166-1 alpha-2, e.g. US.")
    phone: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class AddressList(BaseModel):
    site: str = Field(description="The publication, e.g. Acme Daily (site 14).")
    addresses: list[Address]


class AddressFields(AddressText):
    # CORE_API.md §8.9 "when AvaTax validation is on"; the Open site answers it as `taxes_enabled`.
    postal_code: str | None = text(45, "Required for US and CA addresses when the publication validates taxes.")

    @model_validator(mode="before")
    @classmethod
    def _country_upper(cls, values: Any) -> Any:
        if isinstance(values, dict) and isinstance(values.get("country"), str):
            values = {**values, "country": values["country"].strip().upper()}
        return values

    def body(self) -> dict[str, Any]:
        """The address fields given (not the id, nor the runtime's dry_run/idempotency_key)."""
        return self.model_dump(include=set(BODY_FIELDS), exclude_none=True)


class AddAddressInput(AddressFields):
    type: AddressType = Field("shipping", description="shipping (default) or billing.")
    line1: str = Field(min_length=1, max_length=255, description="Street and number.")
    country: str = Field(pattern=COUNTRY_CODE, description="ISO 3166-1 alpha-2 country code, e.g. US.")

    @model_validator(mode="after")
    def _state_where_needed(self) -> AddAddressInput:
        require_state(self.country, self.state)
        return self


class UpdateAddressInput(AddressFields):
    address_id: int = id_field("address (from list_my_addresses)")
    line1: str | None = text(description="Street and number.")
    country: str | None = Field(None, pattern=COUNTRY_CODE, description="ISO 3166-1 alpha-2 country code.")

    @model_validator(mode="before")
    @classmethod
    def _type_is_fixed(cls, values: Any) -> Any:
        if isinstance(values, dict) and "type" in values:
            raise ValueError("an address's type cannot change (OPEN_API.md §5.6); add a new address instead")
        return values

    @model_validator(mode="after")
    def _something(self) -> UpdateAddressInput:
        if not self.body():
            raise ValueError(NOTHING_TO_CHANGE)
        return self


# --- Reading and describing ---------------------------------------------------------------------


def addresses_of(customer: dict) -> list[Address]:
    return [parse(Address, item) for item in customer.get("addresses") or [] if isinstance(item, dict)]


def address_line(address: Address) -> str:
    where = ", ".join(
        p for p in (address.line1, address.city, address.state, address.postal_code, address.country) if p
    )
    default = "default " if address.is_default else ""
    return f"{default}{address.type or ''} address {address.id} ({where})".replace("  ", " ")


def in_use(customer: dict, address_id: int) -> bool:
    """Whether one of the customer's subscriptions (ended ones too: CORE_API.md §8.9 "used by
    a subscription") uses the address."""
    return any(isinstance(s, dict) and s.get("address") == address_id for s in customer.get("subscriptions") or [])


def request(call: CallContext, method: str, path: str, body: dict[str, Any]) -> UpstreamRequest:
    return UpstreamRequest(method=method, path=path, query={"site_id": subscriber_of(call).site_id}, body=body)


# --- Previews -------------------------------------------------------------------------------


async def preview_add_address(call: CallContext, args: AddAddressInput) -> WritePreview:
    """The one read is the site's configuration: whether it validates taxes decides the
    postal-code rule; the other rules are the input's own (type, line1, country, state)."""
    where = site_name(call)
    site = await read_site(call)
    body = {"type": args.type, **args.body()}
    allowed, verdict = True, "The address meets the publication's rules."
    if site.taxes_enabled and needs_postal_code(args.country, args.postal_code):
        allowed = False
        verdict = f"The postal code field is required when country is {args.country} (the publication validates taxes)."
    place = ", ".join(p for p in (args.line1, args.city, args.state, args.postal_code, args.country) if p)
    changes = [Change(field=f"new {args.type} address", before=None, after=place)]
    if args.is_default:
        changes.append(Change(field=f"your default {args.type} address", before="the current one", after="the new one"))
    summary = (
        f"Add a {args.type} address at {where}: {place}"
        + (f", as your default {args.type} address" if args.is_default else "")
        + ". It can be changed later with update_address."
    )
    if not allowed:
        summary = f"Add a {args.type} address at {where}: refused. {verdict}"
    return WritePreview(
        tool="add_address",
        would_send=request(call, "POST", "/address", body),
        allowed=allowed,
        verdict=verdict,
        rule=RULE,
        changes=changes if allowed else [],
        summary=summary,
    )


async def update_verdict(
    call: CallContext, customer: dict, args: UpdateAddressInput
) -> tuple[bool, str, Address | None, list[str]]:
    """Pelcro's rules for `PUT /address/{id}` on the current state, in its order: the
    address must be the subscriber's (another customer's or site's is "not found", as an
    unknown id); US/CA/AU need a state; country and state are fixed while a subscription
    uses it; US/CA need a postal code when the publication validates taxes. Returns
    (allowed, verdict, the address, rules not checked). The tax setting comes from the site
    configuration the gateway keeps (`open.site.cached_site`), so the preview's one read
    stays the customer resource (issue 15 item 3); with no copy kept that rule is named as
    not checked."""
    address = next((a for a in addresses_of(customer) if a.id == args.address_id), None)
    if address is None:
        return False, f"Address {args.address_id} not found among your addresses at {site_name(call)}.", None, []
    country = args.country or address.country
    state = args.state or address.state
    if needs_state(country, state):
        return False, f"The state field is required when country is {country}.", address, []
    not_checked = []
    if needs_postal_code(country, args.postal_code or address.postal_code):
        site = await cached_site(call)
        if site is None or site.taxes_enabled is None:
            not_checked.append(
                f"whether the publication validates taxes (then a {country} address needs a postal code): "
                "get_site shows it"
            )
        elif site.taxes_enabled:
            return (
                False,
                f"The postal code field is required when country is {country} (the publication validates taxes).",
                address,
                [],
            )
    if in_use(customer, address.id):
        for name in ("country", "state"):
            new = getattr(args, name)
            if new is not None and new != getattr(address, name):
                return False, f"The {name} cannot change while a subscription uses this address.", address, []
    return True, "The address is yours and the change meets the publication's rules.", address, not_checked


async def preview_update_address(call: CallContext, args: UpdateAddressInput) -> WritePreview:
    where = site_name(call)
    customer = await read_customer(call)
    allowed, verdict, address, not_checked = await update_verdict(call, customer, args)
    changes = []
    if address is not None:
        for name, after in args.body().items():
            before = getattr(address, name)
            if before != after:
                changes.append(Change(field=name, before=before, after=after))
    if allowed and address is not None:
        what = ", ".join(f"{c.field} {c.before!r} → {c.after!r}" for c in changes) or "nothing changes"
        summary = f"Update your {address_line(address)} at {where}: {what}. It can be changed again later."
    else:
        summary = f"Update address {args.address_id} at {where}: refused. {verdict}"
    return WritePreview(
        tool="update_address",
        would_send=request(call, "PUT", f"/address/{args.address_id}", args.body()),
        allowed=allowed,
        verdict=verdict,
        rule=RULE,
        changes=changes if allowed else [],
        summary=summary,
        not_checked=not_checked,
    )


def written(response, customer: dict, pick) -> Address:
    """The address a write answered (inside the customer resource it returns)."""
    address = next((a for a in sorted(addresses_of(customer), key=lambda a: -a.id) if pick(a)), None)
    if address is None:
        # Pelcro said yes but the address is not in its answer: the write was most likely made.
        raise ToolFailed(
            ToolFailure(
                error="upstream_error",
                may_have_been_applied=True,
                message=f"The Open API accepted the address ({response.status}) but its answer does not show it. "
                f"{before_retrying(response.check)}",
            )
        )
    return address


# --- Tools -------------------------------------------------------------------------------


@tool(
    "list_my_addresses",
    title="List my addresses",
    input=NoArguments,
    output=AddressList,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def list_my_addresses(call: CallContext, args: NoArguments):
    """The signed-in subscriber's addresses at this publication (shipping and billing),
    each with its id (address_id of update_address) and whether it is the default of its
    type."""
    listing = AddressList(site=site_name(call), addresses=addresses_of(await read_customer(call)))
    return result(listing, f"{len(listing.addresses)} address(es) at {listing.site}.")


@tool(
    "add_address",
    title="Add an address",
    input=AddAddressInput,
    output=Address,
    read_only=False,
    destructive=False,
    idempotent=False,
    open_world=True,
    server="open",
    preview=preview_add_address,
)
async def add_address(call: CallContext, args: AddAddressInput):
    """Add an address for the signed-in subscriber: line1 and country (ISO code, e.g. US)
    are required, a state for US, CA and AU, and a postal code for US and CA when the
    publication validates taxes. type is shipping (default) or billing; is_default makes it
    the default of its type. Each call adds a new address (no confirmation needed; there is
    no address delete here, but update_address changes it)."""
    body = {"type": args.type, **args.body()}
    response = await open_api(
        call,
        "POST",
        "/address",
        what="the new address",
        json=body,
        check="list your addresses with list_my_addresses to see whether it was added",
    )
    customer = response.data if isinstance(response.data, dict) else {}
    address = written(
        response, customer, lambda a: (a.type, a.line1, a.country) == (args.type, args.line1, args.country)
    )
    return result(address, f"Added your {address_line(address)} at {site_name(call)}.")


@tool(
    "update_address",
    title="Update one of my addresses",
    input=UpdateAddressInput,
    output=Address,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
    preview=preview_update_address,
)
async def update_address(call: CallContext, args: UpdateAddressInput):
    """Change fields of one of the subscriber's addresses (address_id from
    list_my_addresses; only the fields given change). Its type cannot change. Refused:
    changing the country or state of an address a subscription uses, a US/CA/AU address
    without a state, a US/CA one without a postal code when the publication validates
    taxes; another customer's address is not found. No confirmation needed."""
    response = await open_api(
        call,
        "PUT",
        f"/address/{args.address_id}",
        what=f"address {args.address_id}",
        json=args.body(),
        check=f"list your addresses with list_my_addresses to see whether address {args.address_id} changed",
    )
    customer = response.data if isinstance(response.data, dict) else {}
    address = written(response, customer, lambda a: a.id == args.address_id)
    return result(address, f"Updated your {address_line(address)} at {site_name(call)}.")
