"""The subscriber's saved payment methods (cards): list, choose the default, delete
(OPEN_API.md §5.5, `GET|PUT|DELETE /payment_methods[/{id}]`).

Adding a card is not a tool: it takes card data, which never passes through the gateway
(issue 14); the subscriber adds cards on the publication's website.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from mcp_bridge.card_data import ADD_A_CARD
from mcp_bridge.open.calls import open_api, site_name, subscriber_of
from mcp_bridge.open.shapes import NoArguments, OpenObject, parse, result
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import ToolInput, id_field
from mcp_bridge.runtime.values import Timestamp
from mcp_bridge.runtime.writes import ALWAYS, Change, UpstreamRequest, WritePreview

RULE = "OPEN_API.md §5.5"


class PaymentMethod(OpenObject):
    """A card saved on the publication's site (never anything that could charge it)."""

    id: int = Field(description="Its id: payment_method_id of pay_invoice and the tools below.")
    type: str | None = Field(None, description="card.")
    brand: str | None = Field(None, description="visa, mastercard, amex, discover, ...")
    last4: str | None = Field(None, description="The card number's last 4 digits.")
    exp_month: int | None = None
    exp_year: int | None = None
    is_default: bool | None = Field(None, description="The card renewals and payments use unless told otherwise.")
    deletable: bool | None = Field(
        None, description="False for the default card and for one a subscription that has not ended uses."
    )
    created_at: Timestamp | None = None


class PaymentMethodList(BaseModel):
    site: str = Field(description="The publication, e.g. Acme Daily (site 14).")
    payment_methods: list[PaymentMethod]
    default_id: int | None = Field(description="The default card's id, if any.")


class DeletedPaymentMethod(BaseModel):
    deleted: bool
    payment_method: PaymentMethod = Field(description="The card as it was.")


class PaymentMethodIdInput(ToolInput):
    payment_method_id: int = id_field("saved payment method (from list_my_payment_methods)")


def card_name(method: PaymentMethod) -> str:
    return f"{method.brand or 'card'} ending {method.last4 or '????'} (payment method {method.id})"


async def read_methods(call: CallContext) -> list[PaymentMethod]:
    """The subscriber's saved cards (`GET /payment_methods`), one upstream read."""
    response = await open_api(call, "GET", "/payment_methods", what="your payment methods")
    return [parse(PaymentMethod, item) for item in response.data or [] if isinstance(item, dict)]


def not_yours(call: CallContext, method_id: int) -> str:
    # One answer for an unknown id, another customer's and another site's (nothing leaks).
    return f"Payment method {method_id} not found among your cards at {site_name(call)}."


def request(call: CallContext, method: str, method_id: int, body: dict | None = None) -> UpstreamRequest:
    return UpstreamRequest(
        method=method,
        path=f"/payment_methods/{method_id}",
        query={"site_id": subscriber_of(call).site_id},
        body=body,
    )


# --- Previews ------------------------------------------------------------------------------


async def preview_set_default(call: CallContext, args: PaymentMethodIdInput) -> WritePreview:
    methods = await read_methods(call)
    method = next((m for m in methods if m.id == args.payment_method_id), None)
    current = next((m for m in methods if m.is_default), None)
    where = site_name(call)
    send = request(call, "PUT", args.payment_method_id, {"is_default": True})
    if method is None:
        verdict = not_yours(call, args.payment_method_id)
        return WritePreview(
            tool="set_default_payment_method",
            would_send=send,
            allowed=False,
            verdict=verdict,
            rule=RULE,
            summary=f"Make payment method {args.payment_method_id} your default at {where}: refused. {verdict}",
        )
    changes = []
    if not method.is_default:
        changes.append(Change(field=f"payment method {method.id} is_default", before=False, after=True))
        if current is not None:
            changes.append(Change(field=f"payment method {current.id} is_default", before=True, after=False))
    instead = f", instead of your {card_name(current)}" if current is not None and current is not method else ""
    effect = "It already is: nothing changes." if method.is_default else "It can be changed back at any time."
    return WritePreview(
        tool="set_default_payment_method",
        would_send=send,
        allowed=True,
        verdict="The card is yours." + (" It is already your default." if method.is_default else ""),
        rule=RULE,
        changes=changes,
        summary=f"Make your {card_name(method)} the default payment method at {where}{instead}: renewals and "
        f"payments use it from now on. {effect}",
    )


def delete_verdict(call: CallContext, methods: list[PaymentMethod], method_id: int) -> tuple[bool, str]:
    """Pelcro's rules for deleting a card (OPEN_API.md §5.5): only one of the subscriber's
    own, never the default, never one a subscription that has not ended uses."""
    method = next((m for m in methods if m.id == method_id), None)
    if method is None:
        return False, not_yours(call, method_id)
    if method.is_default:
        return False, "The default payment method cannot be deleted; make another one the default first."
    if method.deletable is False:
        return False, "Cannot delete a payment method used by a subscription."
    return True, "The card is yours, not the default, and no subscription uses it."


async def preview_delete(call: CallContext, args: PaymentMethodIdInput) -> WritePreview:
    methods = await read_methods(call)
    allowed, verdict = delete_verdict(call, methods, args.payment_method_id)
    method = next((m for m in methods if m.id == args.payment_method_id), None)
    where = site_name(call)
    if allowed and method is not None:
        summary = (
            f"Delete your {card_name(method)} at {where}. It cannot be undone: to use this card again, the "
            "subscriber adds it again on the publication's website."
        )
        changes = [Change(field=f"payment method {method.id}", before="saved", after="deleted")]
    else:
        summary = f"Delete payment method {args.payment_method_id} at {where}: refused. {verdict}"
        changes = []
    return WritePreview(
        tool="delete_payment_method",
        would_send=request(call, "DELETE", args.payment_method_id),
        allowed=allowed,
        verdict=verdict,
        rule=RULE,
        changes=changes,
        summary=summary,
        irreversible=True,
    )


# --- Tools -------------------------------------------------------------------------------


@tool(
    "list_my_payment_methods",
    title="List my saved payment methods",
    input=NoArguments,
    output=PaymentMethodList,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def list_my_payment_methods(call: CallContext, args: NoArguments):
    """The cards the signed-in subscriber saved on this publication's site: id, brand, last
    4 digits, expiry, whether it is the default and whether it may be deleted. Use an id as
    payment_method_id of pay_invoice, set_default_payment_method or delete_payment_method.
    Cards are added on the publication's website only (never here)."""
    methods = await read_methods(call)
    default = next((m for m in methods if m.is_default), None)
    listing = PaymentMethodList(
        site=site_name(call), payment_methods=methods, default_id=default.id if default else None
    )
    line = f"{len(methods)} saved card(s) at {listing.site}"
    line += f"; default: {card_name(default)}." if default else ". " + ("No default card." if methods else ADD_A_CARD)
    return result(listing, line)


@tool(
    "set_default_payment_method",
    title="Make a saved card my default",
    input=PaymentMethodIdInput,
    output=PaymentMethod,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
    preview=preview_set_default,
)
async def set_default_payment_method(call: CallContext, args: PaymentMethodIdInput):
    """Make one of the subscriber's saved cards (payment_method_id from
    list_my_payment_methods) their default: renewals and payments use it from then on.
    Can be changed back at any time; no confirmation needed. Another customer's card is
    not found."""
    response = await open_api(
        call,
        "PUT",
        f"/payment_methods/{args.payment_method_id}",
        what=f"payment method {args.payment_method_id}",
        json={"is_default": True},
        check="list your cards with list_my_payment_methods to see which one is the default",
    )
    method = parse(PaymentMethod, response.data, response)
    return result(method, f"Your {card_name(method)} is now your default payment method at {site_name(call)}.")


@tool(
    "delete_payment_method",
    title="Delete a saved card",
    input=PaymentMethodIdInput,
    output=DeletedPaymentMethod,
    read_only=False,
    destructive=True,
    idempotent=True,
    open_world=True,
    server="open",
    preview=preview_delete,
    confirm=ALWAYS,
)
async def delete_payment_method(call: CallContext, args: PaymentMethodIdInput):
    """Delete one of the subscriber's saved cards (payment_method_id from
    list_my_payment_methods). IRREVERSIBLE: a person must confirm every call. Refused for
    the default card (make another the default first) and for a card a subscription that
    has not ended uses; another customer's card is not found. Deleting it again answers not
    found. dry_run: true says whether it would be allowed.
    """
    response = await open_api(
        call,
        "DELETE",
        f"/payment_methods/{args.payment_method_id}",
        what=f"payment method {args.payment_method_id}",
        check="list your cards with list_my_payment_methods to see whether it is still there",
    )
    method = parse(PaymentMethod, response.data, response)
    gone = DeletedPaymentMethod(deleted=True, payment_method=method)
    return result(gone, f"Deleted your {card_name(method)} at {site_name(call)}.")
