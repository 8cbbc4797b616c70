"""The subscriber's newsletter sign-up at the publication (OPEN_API.md §5.9).

Pelcro's newsletter endpoints are public and keyed by e-mail (`POST /newsletter`,
`GET|PUT|DELETE /newsletter/{email}`): anyone may name any address. These tools only ever
name the signed-in subscriber's own e-mail, read from their customer resource (`POST
/customer`, authenticated) on every call, never from an argument or a stored copy that
could have gone stale (a changed e-mail would otherwise name an address someone else may
now hold). That is why a newsletter preview reads twice (the e-mail, then the sign-up)
where the other previews read once. And they act only while that e-mail is shown to be the
subscriber's (confirmed, or the one they signed in with: `my_email`).

One sign-up per e-mail per site; its `lists` is a comma-separated string of the site's
newsletter ids (`GET /site` `newsletters[*].id`, OPEN_API.md §5.9 **chosen**).
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import quote

from pydantic import BaseModel, Field, model_validator

from accounts.models import Subscriber
from mcp_bridge.open.calls import open_api, site_name, subscriber_of
from mcp_bridge.open.profile import read_customer
from mcp_bridge.open.shapes import NoArguments, OpenObject, parse, result
from mcp_bridge.open.site import read_site
from mcp_bridge.orm import run_db
from mcp_bridge.runtime.context import CallContext
from mcp_bridge.runtime.registry import tool
from mcp_bridge.runtime.results import ToolFailed
from mcp_bridge.runtime.schemas import ToolFailure, ToolInput
from mcp_bridge.runtime.values import Timestamp
from mcp_bridge.runtime.writes import Change, UpstreamRequest, WritePreview
from mcp_bridge.upstream.errors import NotFound

RULE = "OPEN_API.md §5.9"
# How a sign-up made here is labelled (the Core newsletter sources are web, phone, mail,
# other [core-nl]: an assistant acting on the subscriber's request is "other") and its
# consent: the subscriber asked for it.
SOURCE = "other"
CONSENT_TYPE = "explicit"
ListId = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")]


class NewsletterList(BaseModel):
    id: str
    name: str | None = None


class SignUp(OpenObject):
    """A newsletter sign-up as the Open API keeps it."""

    email: str | None = None
    lists: str | None = None
    source: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class MyNewsletters(BaseModel):
    """The subscriber's newsletter sign-up at the publication."""

    site: str = Field(description="The publication, e.g. Acme Daily (site 14).")
    email: str = Field(description="The subscriber's e-mail: the only address these tools sign up.")
    subscribed: bool
    lists: list[str] = Field(description="The newsletter ids signed up for (empty when not subscribed).")
    available_lists: list[NewsletterList] = Field(description="The publication's newsletters.")
    subscribed_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class NewsletterChange(BaseModel):
    """What update_my_newsletters did."""

    email: str
    subscribed: bool = Field(description="Whether the e-mail is now signed up.")
    lists: list[str]
    changed: bool = Field(description="False when it already was as asked (nothing was sent).")
    action: str = Field(description="subscribed, updated, unsubscribed or unchanged.")


class UpdateMyNewslettersInput(ToolInput):
    subscribed: bool = Field(description="true: signed up (to `lists`); false: unsubscribed from everything.")
    lists: list[ListId] | None = Field(
        None,
        min_length=1,
        max_length=20,
        description='Newsletter ids (list_my_newsletters available_lists), e.g. ["default"]. With subscribed true; '
        "left out: the ones already chosen, or default for a new sign-up.",
    )

    @model_validator(mode="after")
    def _lists_with_subscribing(self) -> UpdateMyNewslettersInput:
        if self.lists is not None and not self.subscribed:
            raise ValueError("lists go with subscribed: true (subscribed: false leaves every newsletter)")
        return self


def split_lists(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def path_of(email: str) -> str:
    return f"/newsletter/{quote(email, safe='@')}"


def _signed_in_email(user_id: int) -> str | None:
    return Subscriber.objects.filter(user_id=user_id).values_list("email", flat=True).first()


async def my_email(call: CallContext) -> tuple[str, dict]:
    """The subscriber's e-mail as Pelcro holds it now (module docstring), with the resource.

    Refused (nothing read or changed) unless that e-mail is shown to be theirs: confirmed
    (`email_confirm`), or the one they signed in with (`Subscriber.email`, kept at each
    sign-in). A profile e-mail can be changed to anyone's without confirmation
    (OPEN_API.md §5.3), and Pelcro's sign-ups are public and keyed by e-mail: without this,
    a subscriber would read and change another person's sign-up through these tools."""
    customer = await read_customer(call)
    email = customer.get("email")
    if not isinstance(email, str) or not email:
        raise ToolFailed(
            ToolFailure(error="upstream_error", message="The Open API answered your profile without an e-mail address.")
        )
    if customer.get("email_confirm") is not True:
        signed_in = await run_db(_signed_in_email, call.principal.user_id)
        if signed_in is None or signed_in.casefold() != email.casefold():
            message = (
                f"Your e-mail address at {site_name(call)}, {email}, is not confirmed and is not the one you signed "
                "in with, so the newsletter tools do not act on it (newsletter sign-ups are keyed by e-mail, and an "
                "unconfirmed address may be someone else's). Confirm it with the link the publication sent, or "
                "sign in again with it (reconnect the app), then try again. Nothing was read or changed."
            )
            raise ToolFailed(ToolFailure(error="refused", message=message))
    return email, customer


async def read_sign_up(call: CallContext, email: str) -> SignUp | None:
    """The e-mail's sign-up (`GET /newsletter/{email}`, public), None when there is none."""
    try:
        response = await open_api(call, "GET", path_of(email), what="your newsletter sign-up", public=True)
    except ToolFailed as failed:
        if failed.failure.upstream_status == NotFound.status:
            return None
        raise
    return parse(SignUp, response.data)


def plan_change(args: UpdateMyNewslettersInput, email: str, customer: dict, current: SignUp | None):
    """(method, path, body, action, lists after) of the change `args` asks for on `current`:
    the write that makes the sign-up as asked, or method None when it already is."""
    now = split_lists(current.lists) if current else []
    if not args.subscribed:
        if current is None:
            return None, None, None, "unchanged", []
        return "DELETE", path_of(email), None, "unsubscribed", []
    wanted = args.lists or now or ["default"]
    if current is None:
        body = {
            "email": email,
            "lists": ",".join(wanted),
            "source": SOURCE,
            "consent_type": CONSENT_TYPE,
            **{k: customer[k] for k in ("first_name", "last_name") if isinstance(customer.get(k), str) and customer[k]},
        }
        return "POST", "/newsletter", body, "subscribed", wanted
    if set(wanted) == set(now):
        return None, None, None, "unchanged", now
    return "PUT", path_of(email), {"lists": ",".join(wanted)}, "updated", wanted


async def preview_update_my_newsletters(call: CallContext, args: UpdateMyNewslettersInput) -> WritePreview:
    email, customer = await my_email(call)
    current = await read_sign_up(call, email)
    method, path, body, action, after = plan_change(args, email, customer, current)
    before = split_lists(current.lists) if current else []
    where = site_name(call)
    effects = {
        "unchanged": "nothing changes (it already is as asked; nothing would be sent)",
        "subscribed": f"sign {email} up for {', '.join(after)}",
        "updated": f"change the newsletters of {email} from {', '.join(before)} to {', '.join(after)}",
        "unsubscribed": f"unsubscribe {email} from every newsletter ({', '.join(before) or 'none'})",
    }
    return WritePreview(
        tool="update_my_newsletters",
        would_send=UpstreamRequest(
            method=method or "NONE",
            path=path or path_of(email),
            query={"site_id": subscriber_of(call).site_id},
            body=body,
        ),
        allowed=True,
        verdict="Your own e-mail's sign-up; one per e-mail per site, so the gateway picks the request that makes "
        "it as asked.",
        rule=RULE,
        changes=[] if method is None else [Change(field="newsletters", before=before or None, after=after or None)],
        summary=f"At {where}: {effects[action]}. It can be changed back at any time.",
    )


# --- Tools -------------------------------------------------------------------------------


@tool(
    "list_my_newsletters",
    title="List my newsletters",
    input=NoArguments,
    output=MyNewsletters,
    read_only=True,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
)
async def list_my_newsletters(call: CallContext, args: NoArguments):
    """The publication's newsletters and which of them the signed-in subscriber's e-mail is
    signed up for. Change it with update_my_newsletters. Refused while their e-mail is
    neither confirmed nor the one they signed in with (after a change of e-mail: confirm
    it, or sign in again)."""
    (email, _), site = await asyncio.gather(my_email(call), read_site(call))
    current = await read_sign_up(call, email)
    mine = MyNewsletters(
        site=site_name(call),
        email=email,
        subscribed=current is not None,
        lists=split_lists(current.lists) if current else [],
        available_lists=[
            NewsletterList(id=str(n["id"]), name=n.get("name"))
            for n in site.newsletters
            if isinstance(n, dict) and "id" in n
        ],
        subscribed_at=current.created_at if current else None,
        updated_at=current.updated_at if current else None,
    )
    state = f"signed up for {', '.join(mine.lists) or 'no list'}" if mine.subscribed else "not signed up"
    return result(mine, f"{email} is {state} at {mine.site}.")


@tool(
    "update_my_newsletters",
    title="Sign up for or leave newsletters",
    input=UpdateMyNewslettersInput,
    output=NewsletterChange,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
    server="open",
    preview=preview_update_my_newsletters,
)
async def update_my_newsletters(call: CallContext, args: UpdateMyNewslettersInput):
    """Sign the subscriber's own e-mail up for the publication's newsletters (subscribed:
    true, with lists from list_my_newsletters, e.g. ["default"]), change which ones, or
    unsubscribe from all (subscribed: false). Only ever the signed-in subscriber's e-mail,
    and only while it is confirmed or is the one they signed in with (after a change of
    e-mail: confirm it, or sign in again). Asking for what already is changes nothing.
    Can be changed back at any time; no confirmation needed."""
    email, customer = await my_email(call)
    current = await read_sign_up(call, email)
    method, path, body, action, after = plan_change(args, email, customer, current)
    if method is not None:
        await open_api(
            call,
            method,
            path,
            what="your newsletter sign-up",
            json=body,
            public=True,
            check="see your sign-up with list_my_newsletters",
        )
    change = NewsletterChange(
        email=email, subscribed=args.subscribed, lists=after, changed=method is not None, action=action
    )
    lines = {
        "unchanged": "nothing to change",
        "subscribed": f"signed up for {', '.join(after)}",
        "updated": f"now signed up for {', '.join(after)}",
        "unsubscribed": "unsubscribed from every newsletter",
    }
    return result(change, f"{email} at {site_name(call)}: {lines[action]}.")
