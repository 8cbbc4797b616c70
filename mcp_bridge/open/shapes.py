"""Shapes of the Open tools' answers, and rendering Open API answers as tool results.

Open objects are the Core ones (OPEN_API.md §3: the customer resource carries the
customer's subscriptions, addresses, sources and invoices in their Core shapes). Unlike
the Core tools' objects, these keep ONLY their typed fields (`extra="ignore"`): the
customer resource also carries the subscriber's Pelcro JWT (`auth_token`, `token`), which
must never reach the model, and nothing untyped can carry it by mistake.

Times are Unix seconds upstream and ISO 8601 UTC here (`runtime.values.Timestamp`);
amounts are integers in minor units with a lowercase currency code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mcp_types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from mcp_bridge.open.client import OpenAPIResponse
from mcp_bridge.runtime.failures import parse_answer
from mcp_bridge.runtime.results import structured_result
from mcp_bridge.runtime.schemas import ToolInput
from mcp_bridge.runtime.values import Timestamp, iso

M = TypeVar("M", bound=BaseModel)


class NoArguments(ToolInput):
    """A tool that takes no arguments (the connection says which site and customer)."""


class OpenObject(BaseModel):
    """An Open API object, reduced to its typed fields (module docstring)."""

    model_config = ConfigDict(extra="ignore")


# --- Site and plans (OPEN_API.md §5.2) --------------------------------------------------------


class Plan(OpenObject):
    """A plan the subscriber may pick (active, sold online), amounts in cents."""

    id: int
    nickname: str | None = Field(None, description="The plan's name.")
    description: str | None = None
    product_id: int | None = None
    product: str | None = Field(None, description="Its product's name, e.g. Digital or Print.")
    ships: bool | None = Field(None, description="A printed product: subscribing needs a shipping address.")
    type: str | None = Field(None, description="regular or membership.")
    amount: int | None = Field(None, description="Price per interval in cents (minor units).")
    currency: str | None = None
    interval: str | None = Field(None, description="day, week, month or year.")
    interval_count: int | None = Field(None, description="Billed every interval_count intervals.")
    auto_renew: bool | None = None
    trial_period_days: int | None = Field(None, description="Free days before the first charge.")
    allow_send_invoice: bool | None = Field(None, description="May be paid by invoice instead of a card.")
    agency_id: int | None = Field(None, description="Set when an agency manages its subscriptions.")


class Site(OpenObject):
    """The publication's public configuration (`GET /site`)."""

    id: int
    name: str | None = None
    link: str | None = Field(None, description="The publication's website (where cards are added).")
    default_currency: str | None = None
    default_locale: str | None = None
    ecommerce_enabled: bool | None = None
    passwordless_enabled: bool | None = None
    email_verify_enabled: bool | None = None
    taxes_enabled: bool | None = None
    tax_inclusive: bool | None = None
    immediate_cancel_enabled: bool | None = Field(
        None, description="Whether subscribers may cancel with immediate effect (mode now)."
    )
    plans: list[Plan] = Field(default_factory=list, description="The plans on offer, of every product.")
    newsletters: list[dict[str, Any]] = Field(default_factory=list, description="The site's newsletter lists.")


def site_from(data: dict[str, Any]) -> Site:
    """The `Site` of a `GET /site` answer: plans flattened out of `products[*].plans`
    (OPEN_API.md §5.2 **chosen** key), each with its product's name and whether it ships."""
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    plans = [
        {**plan, "product": product.get("name"), "ships": product.get("ships")}
        for product in data.get("products") or []
        if isinstance(product, dict)
        for plan in product.get("plans") or []
        if isinstance(plan, dict)
    ]
    return parse(Site, {**data, "plans": plans, "immediate_cancel_enabled": settings.get("immediate_cancel_enabled")})


# --- The customer (OPEN_API.md §5.3) ---------------------------------------------------------


class Card(OpenObject):
    """A saved payment method (card), without anything that could charge it."""

    id: int
    brand: str | None = None
    last4: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None


class Profile(OpenObject):
    """The signed-in subscriber's own profile (never their sign-in token)."""

    id: int = Field(description="Their Pelcro customer id.")
    email: str | None = None
    email_confirm: bool | None = Field(None, description="Whether the e-mail address is confirmed.")
    username: str | None = None
    display_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    salutation: str | None = None
    title: str | None = None
    organization_name: str | None = Field(None, description="Organization, as free text.")
    language: str | None = Field(None, description="ISO 639-1 code, e.g. en.")
    metadata: dict[str, Any] | None = None
    balance: int | None = Field(None, description="Credit in cents (minor units) of `currency`.")
    currency: str | None = None
    default_source: Card | None = Field(None, description="The default payment method (card), if any.")
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


def profile_from(data: Any, response: OpenAPIResponse | None = None) -> Profile:
    if isinstance(data, dict) and data.get("metadata") == []:
        data = {**data, "metadata": {}}  # PHP encodes an empty object as []
    return parse(Profile, data, response)


# --- Subscriptions (OPEN_API.md §5.4) -------------------------------------------------------


class Subscription(OpenObject):
    """One of the subscriber's subscriptions; amounts in cents."""

    id: int
    status: str = Field(description="trialing, active, past_due, incomplete, canceled, expired, …")
    plan_id: int | None = None
    plan: str | None = Field(None, description="The plan's name, when the site's plans list it.")
    amount: int | None = Field(None, description="The plan's price per interval, in cents.")
    currency: str | None = None
    interval: str | None = None
    quantity: int | None = None
    auto_renew: bool | None = None
    cancel_at_period_end: bool | None = Field(
        None, description="True: it ends at cancel_at (can still be undone with reactivate_my_subscription)."
    )
    cancel_at: Timestamp | None = Field(None, description="When a pending cancellation takes effect.")
    canceled_at: Timestamp | None = None
    cancel_reason: str | None = None
    ended_at: Timestamp | None = None
    current_period_start: Timestamp | None = None
    current_period_end: Timestamp | None = None
    trial_end: Timestamp | None = None
    renews_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    is_gift_donor: bool | None = Field(None, description="A gift this subscriber gave.")
    is_gift_recipient: bool | None = Field(None, description="A gift this subscriber received.")
    address_id: int | None = Field(None, description="Its shipping address, if any.")
    payment_method_id: int | None = Field(None, description="The saved card it is charged to, if any.")
    created_at: Timestamp | None = None


def subscription_from(data: dict[str, Any], site: Site | None) -> Subscription:
    """A `Subscription` of one entry of the customer resource's `subscriptions` (Core shape:
    `plan`, `address`, `default_source` are ids), named from the site's plans if known."""
    plan = next((p for p in site.plans if p.id == data.get("plan")), None) if site is not None else None
    return parse(
        Subscription,
        {
            **data,
            "plan_id": data.get("plan"),
            "plan": plan.nickname if plan else None,
            "amount": plan.amount if plan else None,
            "currency": plan.currency if plan else None,
            "interval": plan.interval if plan else None,
            "address_id": data.get("address"),
            "payment_method_id": data.get("default_source"),
            "created_at": data.get("created"),
        },
    )


def subscription_line(subscription: Subscription) -> str:
    """One subscription as a person reads it."""
    name = subscription.plan or f"plan {subscription.plan_id}"
    state = subscription.status
    if subscription.cancel_at_period_end and subscription.cancel_at:
        state += f", ends {iso(subscription.cancel_at)}"
    elif subscription.renews_at:
        state += f", renews {iso(subscription.renews_at)}"
    return f"subscription {subscription.id}: {name}, {state}"


class TaxLine(OpenObject):
    name: str | None = None
    rate: float | None = Field(None, description="Percent.")
    amount: int | None = Field(None, description="Cents.")


class OrderPreview(OpenObject):
    """What subscribing would cost now (Open API `/order`, OPEN_API.md §5.4); cents."""

    plan_id: int
    plan: str | None = Field(None, description="The plan's name, when the site's plans list it.")
    currency: str | None = None
    subtotal: int | None = Field(None, description="Price × quantity, in cents.")
    discount: int | None = Field(None, description="The coupon's discount, in cents.")
    proration: int | None = Field(None, description="Credit for the unused part of a replaced subscription.")
    taxes: list[TaxLine] = Field(default_factory=list)
    tax: int | None = Field(None, description="All taxes, in cents.")
    balance_applied: int | None = Field(None, description="The subscriber's credit used, in cents.")
    total: int | None = Field(None, description="What would be charged now, in cents.")
    trial_period_days: int | None = Field(
        None, description="The plan's free trial (nothing is charged before it ends), when known."
    )


# --- Rendering -----------------------------------------------------------------------------


def parse(model: type[M], data: Any, response: OpenAPIResponse | None = None) -> M:
    """Validate Open API data as `model` (`runtime.failures.parse_answer`): a mismatch is an
    upstream error, not a crash; given the `response` of a write, it says the write was applied."""
    return parse_answer(model, data, "Open API", response)


def result(obj: M, summary: str | Callable[[M], str]) -> CallToolResult:
    """`obj` as the tool's result, with a one-line summary first."""
    return structured_result(obj, summary(obj) if callable(summary) else summary)
