"""The subscriber's own profile (Open API `POST /customer` to read, `PUT /customer` to
change, OPEN_API.md §5.3): always the signed-in customer's, never anyone else's."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mcp_bridge.open.calls import open_api, site_name, subscriber_of
from mcp_bridge.open.previews import Verdict, changes, merged_metadata, open_request, preview, send
from mcp_bridge.open.shapes import NoArguments, Profile, profile_from, result
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.schemas import NOTHING_TO_CHANGE, Metadata, ToolInput
from mcp_bridge.runtime.writes import UpstreamRequest, WritePreview


async def read_customer(call: CallContext) -> dict:
    """The customer resource of the signed-in subscriber (profile, subscriptions, addresses,
    payment methods, invoices: OPEN_API.md §3), one upstream read."""
    response = await open_api(call, "POST", "/customer", what="your profile")
    return response.data if isinstance(response.data, dict) else {}


@tool(
    "get_my_profile",
    title="Get my profile",
    input=NoArguments,
    output=Profile,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def get_my_profile(call: CallContext, args: NoArguments):
    """The signed-in subscriber's own profile at this publication: name, e-mail (and whether
    it is confirmed), username, phone, language, metadata, credit balance in cents, and the
    default payment method (card brand and last 4 digits only)."""
    profile = profile_from(await read_customer(call))
    name = " ".join(part for part in (profile.first_name, profile.last_name) if part) or profile.email
    return result(profile, f"{name} (customer {profile.id}) at {site_name(call)}.")


# --- update_my_profile ---------------------------------------------------------------------

PROFILE_RULES = "OPEN_API.md §5.3 (update: partial, metadata merged, a new e-mail unconfirmed)"
# The languages Pelcro offers (OPEN_API.md §1): any other code is stored as en, so the
# profile would silently take another language than the one asked for.
Language = Literal["en", "fr", "it", "ko", "es", "de"]


class UpdateProfileInput(ToolInput):
    """The fields to change; the others stay as they are."""

    email: str | None = Field(
        None,
        max_length=191,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="A new e-mail address: it must then be confirmed again.",
    )
    username: str | None = Field(
        None, min_length=1, max_length=191, pattern=r"^[A-Za-z0-9_-]+$", description="Letters, digits, - and _."
    )
    display_name: str | None = Field(None, min_length=1, max_length=100)
    first_name: str | None = Field(None, min_length=1, max_length=191)
    last_name: str | None = Field(None, min_length=1, max_length=191)
    phone: str | None = Field(
        None, min_length=1, max_length=40, description="5 to 20 digits; the other characters are dropped."
    )
    salutation: str | None = Field(None, min_length=1, max_length=50)
    title: str | None = Field(None, min_length=1, max_length=100)
    organization: str | None = Field(None, min_length=1, max_length=191, description="Organization, free text.")
    language: Language | None = Field(
        None, description="ISO 639-1, one Pelcro offers: en, fr, it, ko, es or de (others would be stored as en)."
    )
    metadata: Metadata | None = None

    @field_validator("phone")
    @classmethod
    def _phone_digits(cls, value: str | None) -> str | None:
        """Pelcro drops the non-digits and refuses fewer than 5 or more than 20 (OPEN_API.md
        §5.1, as register): refused here, so the preview's verdict is the real call's."""
        if value is not None and not 5 <= len(re.sub(r"\D", "", value)) <= 20:
            raise ValueError("a phone number needs 5 to 20 digits (other characters are dropped by Pelcro)")
        return value

    @model_validator(mode="after")
    def _something(self) -> UpdateProfileInput:
        if not self.body():
            raise ValueError(NOTHING_TO_CHANGE)
        return self

    def body(self) -> dict[str, Any]:
        """The fields given: this model's own, never the runtime's `dry_run` or
        `idempotency_key`, which the published model (a subclass) adds."""
        return {name: value for name in UpdateProfileInput.model_fields if (value := getattr(self, name)) is not None}


def _update_request(call: CallContext, args: UpdateProfileInput) -> UpstreamRequest:
    return open_request(call, "PUT", "/customer", args.body())


def _before(customer: dict[str, Any], name: str) -> Any:
    return customer.get("organization_name" if name == "organization" else name)


async def _update_preview(call: CallContext, args: UpdateProfileInput) -> WritePreview:
    """One read (the customer resource); what would change, field by field."""
    request = _update_request(call, args)
    customer = await read_customer(call)
    verdict = Verdict()
    body = args.body()
    if "email" in body or "username" in body:
        verdict.unchecked("that no other customer of the publication uses the new e-mail or username")
    triples = []
    for name, value in body.items():
        after = merged_metadata(customer.get("metadata"), value) if name == "metadata" else value
        if name == "phone":
            after = "".join(ch for ch in value if ch.isdigit())  # non-digits stripped (OPEN_API.md §5.1)
        if name == "email":
            after = value.lower()  # kept in lower case (CORE_API.md §8.2, the same customers)
        triples.append((name, _before(customer, name), after))
    if "email" in body and body["email"].lower() != customer.get("email"):
        triples.append(("email_confirm", customer.get("email_confirm"), False))
    changed = changes(*triples)
    listed = "; ".join(f"{c.field} {c.before!r} → {c.after!r}" for c in changed) or "nothing would change"
    summary = (
        f"Update the profile of customer {subscriber_of(call).customer_id} at {site_name(call)}: {listed}. "
        "It can be changed back later."
    )
    return preview(
        "update_my_profile",
        request,
        verdict,
        allowed="The change is allowed.",
        rule=PROFILE_RULES,
        changed=changed,
        summary=summary,
    )


@tool(
    "update_my_profile",
    title="Update my profile",
    input=UpdateProfileInput,
    output=Profile,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
    preview=_update_preview,
)
async def update_my_profile(call: CallContext, args: UpdateProfileInput):
    """Change the signed-in subscriber's own profile at this publication: only the fields
    given change (name, e-mail, username, phone, salutation, title, organization,
    language, metadata: merged, a key set to null removed). A new e-mail must be confirmed
    again (until then the newsletter tools refuse it). The password cannot be changed here. Refused when another customer of the
    publication already uses the e-mail or username.
    """
    response = await send(
        call,
        _update_request(call, args),
        what="your profile",
        check="read your profile with get_my_profile to see whether it changed",
    )
    profile = profile_from(response.data, response)
    return result(profile, f"Updated the profile of customer {profile.id} at {site_name(call)}.")
