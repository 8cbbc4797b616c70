"""Memberships (OPEN_API.md §5.8): the seats of a group subscription the subscriber owns.

- `GET /subscriptions/{id}/members/list` → `{"data": [member]}`; member (**chosen** shape):
  `id`, `status` (`active` once a customer of the site has the invitation email, i.e. the
  seat is claimed; else `pending`), `invitation_email`, `shipping_address` (that
  customer's default shipping address, or null), `subscription_id` (the parent), `created_at`.
- `POST /subscriptions/{id}/members/invite`: `invitation_emails` (1–100 valid emails) →
  400 validation per entry; one already invited, or more than the free seats (plan seats ×
  quantity, **chosen** 5 seats per seat-plan in the demo data) → 400 + message; each new
  member gets an invitation in the outbox; answers the customer with a fresh token.
- `DELETE /subscriptions/{id}/members/{member_id}` frees the seat:
  `{"status": 200, "message": "Member deleted successfully"}`.

The subscription must be a live membership (plan `type` `membership`) owned by the caller,
and the member must belong to it, else 400 `Invalid subscription provided`.
"""

from __future__ import annotations

from sandbox import clock
from sandbox.core.subscriptions import ENDED
from sandbox.errors import BusinessRuleError, ValidationError
from sandbox.open.customer import answer
from sandbox.open.pipeline import OpenCall
from sandbox.validation import Checker

INVALID = "Invalid subscription provided"
MAX_INVITES = 100


def _membership(call: OpenCall) -> tuple[dict, dict]:
    subscription = call.store.find("subscriptions", call.site_id, call.path_params["id"])
    plan = call.store.by_site["plans"][call.site_id].get(subscription["plan"]) if subscription else None
    if (
        subscription is None
        or subscription["user_id"] != call.customer["id"]
        or plan is None
        or plan["type"] != "membership"
        or subscription["status"] in ENDED
    ):
        raise BusinessRuleError(INVALID)
    subscription.setdefault("_members", [])
    return subscription, plan


def _view(call: OpenCall, subscription: dict, member: dict) -> dict:
    email = member["invitation_email"]
    customer = next((c for c in call.store.live("customers", call.site_id) if c["email"] == email), None)
    address = None
    if customer is not None:
        address = next(
            (
                a
                for a in call.store.live("addresses", call.site_id)
                if a["user_id"] == customer["id"] and a["type"] == "shipping" and a["is_default"]
            ),
            None,
        )
        address = (
            {k: v for k, v in address.items() if not k.startswith("_") and k not in ("site_id", "deleted_at")}
            if address
            else None
        )
    return {
        "id": member["id"],
        "status": "active" if customer else "pending",
        "invitation_email": email,
        "shipping_address": address,
        "subscription_id": subscription["id"],
        "created_at": member["created_at"],
    }


def list_members(call: OpenCall):
    subscription, _ = _membership(call)
    return 200, {"data": [_view(call, subscription, m) for m in subscription["_members"]]}


def invite(call: OpenCall):
    check = Checker(call.body, {"invitation_emails"})
    emails = call.body.get("invitation_emails")
    if not isinstance(emails, list) or not 1 <= len(emails) <= MAX_INVITES:
        check.add("invitation_emails", f"The invitation emails must be a list of 1 to {MAX_INVITES} emails.")
    else:
        for index, email in enumerate(emails):
            one = Checker({"email": email}, {"email"})
            one.email("email", required=True)
            if one.errors:
                check.add(f"invitation_emails.{index}", f"The invitation emails.{index} must be a valid email address.")
    check.done()
    subscription, plan = _membership(call)
    wanted = [email.strip().lower() for email in emails]
    invited = {m["invitation_email"] for m in subscription["_members"]}
    again = sorted(set(wanted) & invited) + sorted({e for e in wanted if wanted.count(e) > 1})
    if again:
        raise ValidationError({"invitation_emails": [f"Already invited: {', '.join(dict.fromkeys(again))}."]})
    seats = plan.get("_seats", 1) * subscription["quantity"]
    if len(invited) + len(wanted) > seats:
        raise BusinessRuleError(f"Not enough seats: {seats - len(invited)} of {seats} free, {len(wanted)} invited.")
    now = clock.now_unix()
    for email in wanted:
        subscription["_members"].append({"id": call.store.next_id(), "invitation_email": email, "created_at": now})
        call.store.open.outbox.append(
            {
                "type": "membership_invitation",
                "site_id": call.site_id,
                "to": email,
                "subscription_id": subscription["id"],
                "sent_at": now,
            }
        )
    return answer(call)


def remove(call: OpenCall):
    Checker(call.body, set()).done()
    subscription, _ = _membership(call)
    member_id = call.path_params["member_id"]
    kept = [m for m in subscription["_members"] if m["id"] != member_id]
    if len(kept) == len(subscription["_members"]):
        raise BusinessRuleError(INVALID)
    subscription["_members"] = kept
    return 200, {"status": 200, "message": "Member deleted successfully"}
