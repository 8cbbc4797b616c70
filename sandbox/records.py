"""Builders of the stored objects, one shape per kind (CORE_API.md §8 fields plus its
**chosen** extras), shared by the seed and the write operations so that every object of a
kind has the same keys. Money is integer cents; every timestamp is Unix seconds (int).

Links between objects are ids under the names the contract uses: a subscription's
`user_id`, `plan`, `coupon`, `address`, `default_source`, `latest_invoice`; an invoice's
`customer_id` and `subscription_id`; a charge's `customer_id` and `invoice_id`; a refund's
`charge_id` and `user_id`; an address's `user_id`; a source's `user_id`.
"""

from __future__ import annotations


def new_customer(obj_id: int, site_id: int, at: int, **fields) -> dict:
    first, last = fields.get("first_name"), fields.get("last_name")
    return {
        "id": obj_id,
        "site_id": site_id,
        "email": fields.get("email"),
        "email_confirm": False,
        "email_hardbounce": fields.get("email_hardbounce", False),
        "first_name": first,
        "last_name": last,
        "display_name": fields.get("display_name"),
        "name": " ".join(part for part in (first, last) if part) or None,
        "username": fields.get("email"),
        "phone": fields.get("phone"),
        "phone_confirm": False,
        "salutation": None,
        "title": None,
        "tin": None,
        "old_provider_id": fields.get("old_provider_id"),
        "mail_marketing": fields.get("mail_marketing", False),
        "tele_marketing": fields.get("tele_marketing", False),
        "metadata": fields.get("metadata") or {},
        "organization": fields.get("organization"),
        "default_source_id": None,
        "default_source": None,
        "has_password": fields.get("has_password", False),
        "password_last_updated_at": at if fields.get("has_password") else None,
        "is_imported": fields.get("is_imported", False),
        "balance": fields.get("balance", 0),
        "currency": fields.get("currency"),
        "created_at": at,
        "updated_at": at,
    }


def set_names(customer: dict) -> None:
    """Recompute the derived `name` after first/last name changed."""
    customer["name"] = " ".join(p for p in (customer["first_name"], customer["last_name"]) if p) or None


def new_organization(obj_id: int, site_id: int, at: int, name: str) -> dict:
    return {"id": obj_id, "site_id": site_id, "name": name, "created_at": at, "updated_at": at}


def new_source(
    obj_id: int,
    site_id: int,
    customer_id: int,
    at: int,
    *,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    old_provider_id: str | None = None,
    gateway_id: str | None = None,
) -> dict:
    """A saved payment source (card) of a customer (**chosen** shape; Core documents only its delete)."""
    return {
        "id": obj_id,
        "site_id": site_id,
        "user_id": customer_id,
        "object": "source",
        "type": "card",
        "brand": brand,
        "last4": last4,
        "exp_month": exp_month,
        "exp_year": exp_year,
        "gateway_id": gateway_id,
        "old_provider_id": old_provider_id,
        "created_at": at,
        "updated_at": at,
    }


def new_address(obj_id: int, site_id: int, customer_id: int, at: int, **fields) -> dict:
    address = {
        "id": obj_id,
        "site_id": site_id,
        "user_id": customer_id,
        "type": fields["type"],
        "is_default": fields.get("is_default", False),
        "line1": fields["line1"],
        "country": fields["country"],
        "created_at": at,
        "updated_at": None,
    }
    for name in ADDRESS_TEXT_FIELDS:
        address[name] = fields.get(name)
    return address


ADDRESS_TEXT_FIELDS = (
    "first_name",
    "last_name",
    "line2",
    "city",
    "state",
    "postal_code",
    "company",
    "salutation",
    "title",
    "department",
    "phone",
    "old_provider_id",
)


def new_plan(
    obj_id: int,
    site_id: int,
    product_id: int,
    at: int,
    *,
    nickname: str,
    amount: int,
    currency: str,
    interval: str,
    interval_count: int = 1,
    active: bool = True,
    auto_renew: bool = True,
    trial_period_days: int | None = None,
    agency_id: int | None = None,
    old_provider_id: str | None = None,
) -> dict:
    return {
        "id": obj_id,
        "site_id": site_id,
        "product_id": product_id,
        "nickname": nickname,
        "description": f"{nickname} plan",
        "type": "regular",
        "active": "active" if active else "archived",
        "amount": amount,
        "currency": currency,
        "interval": interval,
        "interval_count": interval_count,
        "auto_renew": auto_renew,
        "available_online": active,
        "renewal_strategy": "regular",
        "countries": None,
        "domains": [],
        "entitlements": None,
        "image": None,
        "gift_description": None,
        "agency_id": agency_id,
        "agency_remit_rate": None,
        "group_owner_plan_id": None,
        "apple_product_id": None,
        "allow_send_invoice": True,
        "is_hidden": False,
        "is_donation": False,
        "is_imported": False,
        "metadata": None,
        "trial_period_days": trial_period_days,
        "old_provider_id": old_provider_id,
        "created_at": at,
    }


def new_coupon(
    obj_id: int,
    site_id: int,
    at: int,
    *,
    name: str,
    code: str,
    percent_off: int | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration: str = "once",
    redeem_by: int | None = None,
    max_redemptions: int | None = None,
    times_redeemed: int = 0,
    plans: list[int] | None = None,
) -> dict:
    return {
        "id": obj_id,
        "site_id": site_id,
        "name": name,
        "code": code,
        "percent_off": percent_off,
        "amount_off": amount_off,
        "currency": currency if amount_off is not None else None,
        "duration": duration,
        "redeem_by": redeem_by,
        "max_redemptions": max_redemptions,
        "times_redeemed": times_redeemed,
        "plans": plans or [],
        "metadata": {},
        "created_at": at,
        "updated_at": at,
    }


def new_subscription(
    obj_id: int,
    site_id: int,
    customer_id: int,
    plan: dict,
    at: int,
    *,
    status: str,
    period_start: int,
    period_end: int,
    quantity: int = 1,
    coupon_id: int | None = None,
    address_id: int | None = None,
    source_id: int | None = None,
    billing: str = "charge_automatically",
    auto_renew: bool | None = None,
    trial_end: int | None = None,
    is_gift_recipient: bool = False,
    old_provider_id: str | None = None,
    metadata: list | None = None,
) -> dict:
    auto_renew = plan["auto_renew"] if auto_renew is None else auto_renew
    return {
        "id": obj_id,
        "site_id": site_id,
        "user_id": customer_id,
        "plan": plan["id"],
        "coupon": coupon_id,
        "address": address_id,
        "default_source": source_id,
        "latest_invoice": None,
        "address_required": False,
        "billing": billing,
        "status": status,
        "quantity": quantity,
        "auto_renew": auto_renew,
        "cancel_at_period_end": False,
        "cancel_at": None,
        "canceled_at": None,
        "canceled_by": None,
        "canceled_by_type": None,
        "cancel_reason": None,
        "created": at,
        "current_period_start": period_start,
        "current_period_end": period_end,
        "ended_at": None,
        "trial_start": at if trial_end else None,
        "trial_end": trial_end,
        "expires_at": period_end,
        "renews_at": period_end if auto_renew else None,
        "days_until_due": 30 if billing == "send_invoice" else None,
        "due_date": None,
        "is_gift_donor": False,
        "is_gift_recipient": is_gift_recipient,
        "is_redeemed": False,
        "gift_code": None,
        "shipments_remaining": None,
        "schedule": None,
        "metadata": metadata or [],
        "old_provider_id": old_provider_id,
    }


def line_items(items: list[dict]) -> list[dict]:
    """Normalised line items, each with its `amount` (unit_price × quantity, before tax)."""
    return [
        {
            "description": item.get("description"),
            "unit_price": item["unit_price"],
            "quantity": item.get("quantity", 1),
            "amount": item["unit_price"] * item.get("quantity", 1),
            "tax_name": item.get("tax_name"),
            "tax_rate": item.get("tax_rate"),
        }
        for item in items
    ]


def set_line_items(invoice: dict, items: list[dict]) -> None:
    """Replace an invoice's lines and recompute its amounts.

    **chosen:** `tax_rate` is a percentage; tax = round(amount × rate / 100) per line;
    `subtotal` = Σ amounts, `total` = `amount_due` = subtotal + Σ tax.
    """
    invoice["line_items"] = line_items(items)
    subtotal = sum(item["amount"] for item in invoice["line_items"])
    tax = sum(round(item["amount"] * item["tax_rate"] / 100) for item in invoice["line_items"] if item["tax_rate"])
    invoice["subtotal"] = subtotal
    invoice["total"] = invoice["amount_due"] = subtotal + tax
    invoice["amount_remaining"] = invoice["amount_due"] - invoice["amount_paid"]


def new_invoice(
    obj_id: int,
    site_id: int,
    customer_id: int,
    currency: str,
    items: list[dict],
    at: int,
    *,
    status: str = "draft",
    subscription_id: int | None = None,
    billing_reason: str = "manual",
    billing: str = "charge_automatically",
    due_date: int | None = None,
    period_start: int | None = None,
    period_end: int | None = None,
    metadata: dict | None = None,
    is_advance: bool = False,
    description: str | None = None,
    old_provider_id: str | None = None,
) -> dict:
    invoice = {
        "id": obj_id,
        "site_id": site_id,
        "customer_id": customer_id,
        "subscription_id": subscription_id,
        "number": f"SBX-{obj_id:06d}",
        "status": status,
        "currency": currency,
        "description": description,
        "line_items": [],
        "subtotal": 0,
        "total": 0,
        "amount_due": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "paid": False,
        "auto_advance": status == "draft",
        "billing": billing,
        "billing_reason": billing_reason,
        "ending_balance": None,
        "is_imported": False,
        "is_advance": is_advance,
        "due_date": due_date,
        "period_start": period_start if period_start is not None else at,
        "period_end": period_end if period_end is not None else at,
        "metadata": metadata or {},
        "old_provider_id": old_provider_id,
        "created_at": at,
        "updated_at": at,
        "finalized_at": at if status != "draft" else None,
        "paid_at": None,
        "voided_at": None,
        "marked_uncollectible_at": None,
    }
    set_line_items(invoice, items)
    return invoice


def new_charge(
    obj_id: int,
    site_id: int,
    customer_id: int,
    amount: int,
    currency: str,
    at: int,
    *,
    invoice_id: int | None = None,
    status: str = "succeeded",
    offline: bool = False,
    reference: str | None = None,
    payment_category: str | None = None,
    failure_message: str | None = None,
    metadata: dict | None = None,
    offline_entered_by: int | None = None,
) -> dict:
    """A charge; `payment_category` is an offline kind "2".."6" (check, wire, transfer, external, cash) or None."""
    return {
        "id": obj_id,
        "site_id": site_id,
        "customer_id": customer_id,
        "invoice_id": invoice_id,
        "amount": amount,
        "amount_refunded": 0,
        "currency": currency,
        "description": f"Offline payment {reference}" if offline and reference else "Payment",
        "status": status,
        "paid": status == "succeeded",
        "refunded": False,
        "offline": offline,
        "statement_descriptor": "PELCRO SANDBOX",
        "reference": reference,
        "payment_category": payment_category,
        "offline_entered_by": offline_entered_by,
        "failure_message": failure_message,
        "metadata": metadata or {},
        "created_at": at,
        "updated_at": at,
    }


def new_refund(
    obj_id: int, site_id: int, charge: dict, amount: int, created_at: int | None, *, status: str, reason: str | None
) -> dict:
    """A refund of `charge`; its `user_id` is the charge's customer (§8.8)."""
    return {
        "id": obj_id,
        "site_id": site_id,
        "charge_id": charge["id"],
        "user_id": charge["customer_id"],
        "amount": amount,
        "currency": charge["currency"],
        "status": status,
        "reason": reason,
        "created_at": created_at,
    }
